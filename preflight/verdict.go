package preflight

import "github.com/ec2ssh/ec2ssh/failure"

// What the checks' findings mean for the way in, as values the
// orchestration decides from (no reading of summaries or evidence).

// FailureKind is the failure a dial cut short by this (failed) check ends
// with: the instance's state, sshd refusing on the instance (Cause), or
// otherwise a network that does not let the connection through.
func (r Result) FailureKind() failure.Kind {
	switch {
	case r.ID == CheckInstanceState:
		return failure.InstanceState
	case r.Cause != failure.Unknown:
		return r.Cause
	}
	return failure.Unreachable
}

// Online reports whether the agent is registered and Online.
func (a *SSMAgent) Online() bool { return a != nil && a.Registered && a.PingStatus == "Online" }

// SSHDInside is what the look inside says about sshd on the SSH port.
type SSHDInside int

const (
	SSHDUnknown   SSHDInside = iota // the look did not run to its end
	SSHDRefuses                     // sshd is not running, or not on the port
	SSHDListening                   // sshd runs and listens on the port
)

// SSHDVerdict says whether sshd accepts on the port, seen from inside.
func (in *Inside) SSHDVerdict() SSHDInside {
	switch {
	case in == nil || !in.Complete:
		return SSHDUnknown
	case !in.SSHDRunning:
		return SSHDRefuses
	case len(in.Listening) > 0 && !listensOn(in.Listening, in.Port):
		return SSHDRefuses
	case len(in.Listening) > 0:
		return SSHDListening
	}
	return SSHDUnknown
}
