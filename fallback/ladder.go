package fallback

import (
	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// Step is one rung of the fallback ladder (SPEC.md, "The ladder"), or one
// of the two things the ladder may ask for before it decides a rung: a
// wait for a starting instance, and a look inside it.
type Step int

const (
	Stop            Step = iota // no way left: report the failure
	Direct                      // SSH as ssh(1) would: TCP, or ProxyJump or ProxyCommand
	SSMPort                     // SSH over an SSM port session to the instance's SSH port
	InstanceConnect             // a one-time key from EC2 Instance Connect, then the same transport again
	SSMShell                    // sshd itself is down: an SSM shell, or the command run through SSM
	EICE                        // SSH through an EC2 Instance Connect Endpoint's tunnel to the private address
	WaitRunning                 // the instance is starting: wait (within ConnectTimeout) until it runs
	LookInside                  // ask the instance (over SSM) whether sshd refuses there too
)

var stepNames = map[Step]string{Stop: "stop", Direct: "direct", SSMPort: "SSM port session", InstanceConnect: "EC2 Instance Connect",
	SSMShell: "SSM shell", EICE: "EC2 Instance Connect Endpoint", WaitRunning: "wait for the instance to run",
	LookInside: "look inside the instance"}

func (s Step) String() string { return stepNames[s] }

// Steps lists every step, for tests that must cover them all.
var Steps = []Step{Stop, Direct, SSMPort, InstanceConnect, SSMShell, EICE, WaitRunning, LookInside}

// Agent is what is known of the instance's SSM agent.
type Agent int

const (
	AgentUnknown Agent = iota
	AgentOnline
	AgentOffline
)

// SSHDInside is what the look inside found about sshd on the instance.
type SSHDInside int

const (
	InsideUnknown   SSHDInside = iota // not looked, or it could not say
	InsideRefuses                     // sshd is not running, or refuses on the instance's own loopback
	InsideListening                   // sshd runs and accepts on the port
)

// Situation is what the ladder decides from. It is plain data: the
// orchestration (package reach) fills it from what it has learnt.
type Situation struct {
	Mode connect.Mode
	// Instance: the destination is a known EC2 instance.
	Instance bool
	// MaybeInstance: the destination is an address or EC2 DNS name that
	// the checks beside the dial may find to be an instance.
	MaybeInstance bool
	// State is the instance's state when known ("" when not).
	State preflight.State
	// Waited: the ladder already waited for a pending instance.
	Waited bool
	Agent  Agent
	// Inside is what the look inside said; Looked that it was asked.
	Inside SSHDInside
	Looked bool
	// Raceable: the direct attempt is a plain TCP dial that an SSM port
	// session may run beside (not ProxyJump or ProxyCommand).
	Raceable bool
	// NeedsSSH: the session needs an SSH connection of its own (forwards,
	// -N, -W, -s, a master), which an SSM shell cannot stand in for.
	NeedsSSH bool
	// Proxy: --proxy wants a byte stream to the port, nothing above it.
	Proxy bool
	// Endpoint: a ready EC2 Instance Connect Endpoint serves the
	// instance's VPC.
	Endpoint bool
	Tried    []Attempt
}

// Attempt is a rung that was tried and how it failed.
type Attempt struct {
	Step Step
	// Via is the transport that carried it when that is not Step's own:
	// SSMPort for a direct attempt whose race SSM won, the transport an
	// InstanceConnect retry went over. Zero: Step's own.
	Via  Step
	Kind failure.Kind
}

// Carrier is the transport the attempt actually ran over.
func (a Attempt) Carrier() Step {
	if a.Via != Stop {
		return a.Via
	}
	return a.Step
}

// Decision is the next step.
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

// Next decides the next step from the situation: the one place the ladder
// is decided. Every failure kind is decided after every rung, and the
// default stops.
func Next(s Situation) Decision {
	if s.Instance && s.State == preflight.StatePending && !s.Waited {
		return Decision{Step: WaitRunning, Why: "the instance is starting"}
	}
	if len(s.Tried) == 0 {
		return s.first()
	}
	last := s.Tried[len(s.Tried)-1]
	if last.Kind == failure.InstanceState && s.Waited && s.State.Running() {
		// The dial was cut short because the instance was starting; it
		// runs now: start again.
		return s.first()
	}
	switch {
	case s.Mode == connect.ModeDirect:
		return stop("--fallback=never")
	case !s.Instance:
		return stop("not an EC2 instance")
	case s.State != "" && !s.State.Running():
		return stop("the instance is " + string(s.State) + ": no transport reaches it")
	}
	switch last.Carrier() {
	case Direct:
		return s.afterDirect(last)
	case SSMPort:
		return s.afterSSM(last)
	case EICE:
		return s.afterEICE(last)
	}
	return stop("nothing left")
}

func stop(why string) Decision { return Decision{Step: Stop, Why: why} }

// first is the first rung.
func (s Situation) first() Decision {
	if s.Instance && s.State != "" && !s.State.Running() {
		return stop("the instance is " + string(s.State))
	}
	switch s.Mode {
	case connect.ModeEICE:
		if !s.Instance {
			return stop("--via=eice needs an EC2 instance")
		}
		return Decision{Step: EICE, Why: "--via=eice"}
	case connect.ModeSSM:
		if !s.Instance {
			return stop("--fallback=ssm needs an EC2 instance")
		}
		return Decision{Step: SSMPort, Why: "--fallback=ssm"}
	}
	d := Decision{Step: Direct, Why: "first"}
	if s.Mode == connect.ModeAuto && s.Raceable && (s.Instance && s.Agent != AgentOffline || s.MaybeInstance) {
		d.Race = SSMPort
	}
	return d
}

// portUnreachable: what a failed dial of the SSH port means for the next
// rung, when the network (not sshd, not the keys) is in the way.
func (s Situation) portUnreachable(why string) Decision {
	if !s.tried(SSMPort) && s.Agent != AgentOffline {
		return Decision{Step: SSMPort, Why: why}
	}
	return s.endpointOr(why + " and SSM cannot carry it")
}

// endpointOr is the endpoint when one is ready and untried, else stop.
func (s Situation) endpointOr(why string) Decision {
	if s.Endpoint && !s.tried(EICE) && s.Mode == connect.ModeAuto {
		return Decision{Step: EICE, Why: why}
	}
	return stop(why)
}

func (s Situation) afterDirect(last Attempt) Decision {
	switch last.Kind {
	case failure.Unreachable, failure.Refused, failure.NoBanner, failure.DNS:
		if a, ok := s.lastOver(SSMPort); ok && silentPort(a.Kind) {
			// SSM raced beside it and got nothing from the port.
			return s.afterSSM(a)
		}
		return s.portUnreachable("the SSH port cannot be reached")
	case failure.AuthRejected:
		return s.instanceConnect(last)
	case failure.HostKeyChanged, failure.HostKeyUnknown, failure.Algorithms, failure.AWSAuth, failure.InstanceState,
		failure.Config, failure.Canceled, failure.Unknown, failure.SessionEnded:
		return stop(last.Kind.String() + " is not a transport problem")
	}
	return stop("undecided")
}

// silentPort: an SSM port session that got nothing from the port — the
// agent's basic port session (AWS-StartSSHSession's) ends without a word
// when its dial to the port is refused (SessionEnded); a server that hangs
// up at once (NoBanner).
func silentPort(k failure.Kind) bool { return k == failure.SessionEnded || k == failure.NoBanner }

// lastOver is the last attempt that ran over step.
func (s Situation) lastOver(step Step) (Attempt, bool) {
	for i := len(s.Tried) - 1; i >= 0; i-- {
		if s.Tried[i].Carrier() == step {
			return s.Tried[i], true
		}
	}
	return Attempt{}, false
}

// sshdDown is the last rung, when sshd refuses on the instance itself.
func (s Situation) sshdDown() Decision {
	if s.Proxy || s.NeedsSSH {
		return stop("sshd is down and this needs SSH")
	}
	if s.tried(SSMShell) {
		return stop("nothing left")
	}
	return Decision{Step: SSMShell, Why: "sshd is down"}
}

func (s Situation) afterSSM(last Attempt) Decision {
	switch last.Kind {
	case failure.Refused:
		// The agent could not connect to the port from inside (the
		// multiplexed port plugin says so with ConnectToPortError).
		return s.sshdDown()
	case failure.NoBanner, failure.SessionEnded:
		// The agent's basic port session (AWS-StartSSHSession) ends
		// without a word when its dial to the port is refused: only the
		// instance itself can say whether sshd is down.
		switch {
		case s.Inside == InsideRefuses:
			return s.sshdDown()
		case !s.Looked && s.Agent != AgentOffline && !s.Proxy && !s.NeedsSSH:
			return Decision{Step: LookInside, Why: "the SSM port session ended without an SSH banner"}
		}
		return s.endpointOr("over SSM: no SSH banner")
	case failure.Unknown:
		// The agent's handshake race can still eat the first bytes of a
		// session (sshd then hangs up at the banner): one more session.
		if !s.Proxy && s.count(SSMPort, failure.Unknown) < 2 {
			d := Decision{Step: SSMPort, Why: "the SSH handshake over SSM failed: one more session"}
			if last.Step == InstanceConnect {
				d.Step, d.Via = InstanceConnect, SSMPort // the same one-time key again
			}
			return d
		}
		return s.endpointOr("over SSM: " + last.Kind.String())
	case failure.AuthRejected:
		return s.instanceConnect(last)
	case failure.Unreachable, failure.DNS, failure.AWSAuth:
		return s.endpointOr("SSM cannot carry it: " + last.Kind.String())
	case failure.HostKeyChanged, failure.HostKeyUnknown, failure.Algorithms, failure.InstanceState, failure.Config, failure.Canceled:
		return stop("over SSM: " + last.Kind.String())
	}
	return stop("undecided")
}

func (s Situation) afterEICE(last Attempt) Decision {
	switch last.Kind {
	case failure.AuthRejected:
		return s.instanceConnect(last)
	case failure.Refused, failure.NoBanner:
		if s.Agent == AgentOnline {
			return s.sshdDown()
		}
		return stop("through the endpoint: sshd is down")
	case failure.Unreachable, failure.DNS, failure.HostKeyChanged, failure.HostKeyUnknown, failure.Algorithms,
		failure.AWSAuth, failure.InstanceState, failure.Config, failure.Canceled, failure.Unknown, failure.SessionEnded:
		return stop("through the endpoint: " + last.Kind.String())
	}
	return stop("undecided")
}

// instanceConnect retries with a one-time key over the transport that
// carried the attempt whose keys were refused.
func (s Situation) instanceConnect(last Attempt) Decision {
	if s.Proxy || s.tried(InstanceConnect) {
		return stop("the keys were refused")
	}
	return Decision{Step: InstanceConnect, Via: last.Carrier(), Why: "the keys were refused"}
}

func (s Situation) tried(step Step) bool {
	for _, a := range s.Tried {
		if a.Step == step || a.Carrier() == step {
			return true
		}
	}
	return false
}

// count is how many attempts ran over step and failed with kind.
func (s Situation) count(step Step, kind failure.Kind) int {
	n := 0
	for _, a := range s.Tried {
		if a.Carrier() == step && a.Kind == kind {
			n++
		}
	}
	return n
}
