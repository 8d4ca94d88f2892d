package fallback

import "github.com/ec2ssh/ec2ssh/failure"

// Step is one rung of the fallback ladder (SPEC.md, "The ladder").
type Step int

const (
	Stop            Step = iota // no way left: report the failure
	Direct                      // SSH as ssh(1) would: TCP, or ProxyJump or ProxyCommand
	SSMPort                     // SSH over an SSM port session to the instance's SSH port
	InstanceConnect             // a one-time key from EC2 Instance Connect, then the same transport again
	SSMShell                    // sshd itself is down: an SSM shell, or the command run through SSM
	EICE                        // SSH through an EC2 Instance Connect Endpoint's tunnel to the private address
	// LookInside is not a way in: it asks the instance over SSM
	// (preflight.InsideScript) whether anything listens on the SSH port,
	// when an SSM port session could not tell sshd down from another end.
	// The caller records the answer in Situation.Inside and asks again.
	LookInside
)

var stepNames = map[Step]string{Stop: "stop", Direct: "direct", SSMPort: "SSM port session", InstanceConnect: "EC2 Instance Connect",
	SSMShell: "SSM shell", EICE: "EC2 Instance Connect Endpoint", LookInside: "look inside"}

func (s Step) String() string { return stepNames[s] }

// Agent is what is known of the instance's SSM agent.
type Agent int

const (
	AgentUnknown Agent = iota
	AgentOnline
	AgentOffline
)

// Inside is what a look inside the instance says of its SSH port.
type Inside int

const (
	InsideNotLooked Inside = iota
	InsideRefused          // nothing listens on the port there: sshd is down
	InsideListening        // something listens: the session ended for another reason
	InsideUnknown          // the look inside could not run, or could not tell
)

// Situation is what the ladder decides from.
type Situation struct {
	Mode     string // --fallback: "auto" (or ""), "ssm", "never"; --via=eice: "eice"
	Instance bool   // the destination is a known EC2 instance
	// State is the instance's state when known ("" when not).
	State string
	Agent Agent
	// Raceable: the direct attempt is a plain TCP dial that an SSM port
	// session may run beside (not ProxyJump or ProxyCommand).
	Raceable bool
	// NeedsSSH: the session needs an SSH connection of its own (forwards,
	// -N, -W, -s), which an SSM shell cannot stand in for.
	NeedsSSH bool
	// Proxy: --proxy wants a byte stream to the port, nothing above it.
	Proxy bool
	// Endpoint: a ready EC2 Instance Connect Endpoint serves the
	// instance's VPC.
	Endpoint bool
	// Inside is what the look inside found, once LookInside has run.
	Inside Inside
	Tried  []Attempt
}

// Attempt is a rung that was tried and how it failed.
type Attempt struct {
	Step Step
	Kind failure.Kind
}

// Decision is the next rung.
type Decision struct {
	Step Step
	// Via is the transport InstanceConnect retries over (Direct, SSMPort
	// or EICE).
	Via Step
	// Race, for Direct, is a rung to start beside it when its TCP connect
	// is slow: whichever reaches sshd first carries the connection.
	Race Step
	Why  string
}

// Next decides the next rung from the situation: the one place the ladder
// is decided. Every failure kind is decided for every rung, and the
// default stops.
func Next(s Situation) Decision {
	if len(s.Tried) == 0 {
		if s.Mode == "eice" {
			if !s.Instance {
				return Decision{Step: Stop, Why: "--via=eice needs an EC2 instance"}
			}
			return Decision{Step: EICE, Why: "--via=eice"}
		}
		if s.Mode == "ssm" {
			if !s.Instance {
				return Decision{Step: Stop, Why: "--fallback=ssm needs an EC2 instance"}
			}
			return Decision{Step: SSMPort, Why: "--fallback=ssm"}
		}
		d := Decision{Step: Direct, Why: "first"}
		if s.Mode != "never" && s.Instance && s.Raceable && (s.State == "" || s.State == "running") && s.Agent != AgentOffline {
			d.Race = SSMPort
		}
		return d
	}
	last := s.Tried[len(s.Tried)-1]
	switch {
	case s.Mode == "never":
		return Decision{Step: Stop, Why: "--fallback=never"}
	case !s.Instance:
		return Decision{Step: Stop, Why: "not an EC2 instance"}
	case s.State != "" && s.State != "running":
		return Decision{Step: Stop, Why: "the instance is " + s.State + ": no transport reaches it"}
	}
	switch last.Step {
	case Direct:
		switch last.Kind {
		case failure.Unreachable, failure.Refused, failure.NoBanner, failure.DNS:
			if k, ok := s.triedKind(SSMPort); ok && (k == failure.Refused || k == failure.SessionEnded) {
				return s.silentPort() // SSM raced beside it and got nothing from the port
			}
			if !s.tried(SSMPort) && s.Agent != AgentOffline {
				return Decision{Step: SSMPort, Why: "the SSH port cannot be reached"}
			}
			if s.Endpoint && !s.tried(EICE) {
				return Decision{Step: EICE, Why: "the SSH port cannot be reached and SSM cannot carry it"}
			}
			if s.tried(SSMPort) {
				return Decision{Step: Stop, Why: "SSM was tried beside it"}
			}
			return Decision{Step: Stop, Why: "the SSM agent is offline"}
		case failure.AuthRejected:
			return s.instanceConnect(Direct)
		case failure.HostKeyChanged, failure.HostKeyUnknown, failure.Algorithms, failure.AWSAuth, failure.InstanceState,
			failure.Config, failure.Canceled, failure.Unknown:
			return Decision{Step: Stop, Why: last.Kind.String() + " is not a transport problem"}
		case failure.SessionEnded:
			// Only an SSM port session ends so (a race SSM won is recorded
			// as SSMPort): not from a direct transport.
			return Decision{Step: Stop, Why: "a direct connection cannot end so"}
		}
	case SSMPort:
		switch last.Kind {
		case failure.Refused, failure.SessionEnded:
			return s.silentPort()
		case failure.AuthRejected:
			return s.instanceConnect(SSMPort)
		case failure.Unreachable, failure.NoBanner, failure.DNS, failure.AWSAuth, failure.Unknown:
			if s.Endpoint && !s.tried(EICE) && s.Mode != "ssm" {
				return Decision{Step: EICE, Why: "SSM cannot carry it: " + last.Kind.String()}
			}
			return Decision{Step: Stop, Why: "over SSM: " + last.Kind.String()}
		case failure.HostKeyChanged, failure.HostKeyUnknown, failure.Algorithms, failure.InstanceState, failure.Config, failure.Canceled:
			return Decision{Step: Stop, Why: "over SSM: " + last.Kind.String()}
		}
	case EICE:
		switch last.Kind {
		case failure.AuthRejected:
			return s.instanceConnect(EICE)
		case failure.Refused:
			if !s.Proxy && !s.NeedsSSH && s.Agent == AgentOnline && !s.tried(SSMShell) {
				return Decision{Step: SSMShell, Why: "sshd is down"}
			}
			return Decision{Step: Stop, Why: "through the endpoint: sshd is down"}
		case failure.Unreachable, failure.NoBanner, failure.DNS, failure.HostKeyChanged, failure.HostKeyUnknown, failure.Algorithms,
			failure.AWSAuth, failure.InstanceState, failure.Config, failure.Canceled, failure.Unknown, failure.SessionEnded:
			return Decision{Step: Stop, Why: "through the endpoint: " + last.Kind.String()}
		}
	case InstanceConnect:
		switch last.Kind {
		case failure.Refused:
			if s.Proxy || s.NeedsSSH || !s.tried(SSMPort) {
				return Decision{Step: Stop, Why: "refused"}
			}
			return Decision{Step: SSMShell, Why: "sshd is down"}
		case failure.Unreachable, failure.NoBanner, failure.DNS, failure.AuthRejected, failure.HostKeyChanged, failure.HostKeyUnknown,
			failure.Algorithms, failure.AWSAuth, failure.InstanceState, failure.Config, failure.Canceled, failure.Unknown, failure.SessionEnded:
			return Decision{Step: Stop, Why: "with EC2 Instance Connect: " + last.Kind.String()}
		}
	case SSMShell, Stop, LookInside:
		return Decision{Step: Stop, Why: "nothing left"}
	}
	return Decision{Step: Stop, Why: "undecided"}
}

// silentPort decides after an SSM port session that got nothing from the
// port: the agent said it could not connect (ConnectToPortError, which only
// its multiplexed port session sends), or the session ended before the
// port sent a byte (its basic port session, AWS-StartSSHSession's, when the
// dial is refused; and a server that hangs up at once). A look inside tells
// sshd down from the rest.
func (s Situation) silentPort() Decision {
	if s.Proxy || s.NeedsSSH {
		return Decision{Step: Stop, Why: "sshd does not answer over SSM and this needs SSH"}
	}
	switch s.Inside {
	case InsideNotLooked:
		return Decision{Step: LookInside, Why: "the SSM port session got nothing from the port: is sshd down?"}
	case InsideRefused:
		return Decision{Step: SSMShell, Why: "sshd is down: nothing listens on the port inside the instance"}
	case InsideListening:
		if s.Endpoint && !s.tried(EICE) && s.Mode != "ssm" {
			return Decision{Step: EICE, Why: "sshd listens inside, but the SSM port session ended"}
		}
		return Decision{Step: Stop, Why: "sshd listens inside the instance, but the SSM port session ended"}
	}
	return Decision{Step: Stop, Why: "could not look inside the instance to confirm that sshd is down"}
}

func (s Situation) instanceConnect(via Step) Decision {
	if s.Proxy || s.tried(InstanceConnect) {
		return Decision{Step: Stop, Why: "the keys were refused"}
	}
	return Decision{Step: InstanceConnect, Via: via, Why: "the keys were refused"}
}

// triedKind is how the last attempt at step failed.
func (s Situation) triedKind(step Step) (failure.Kind, bool) {
	for i := len(s.Tried) - 1; i >= 0; i-- {
		if s.Tried[i].Step == step {
			return s.Tried[i].Kind, true
		}
	}
	return 0, false
}

func (s Situation) tried(step Step) bool {
	for _, a := range s.Tried {
		if a.Step == step {
			return true
		}
	}
	return false
}
