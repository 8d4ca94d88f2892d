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
