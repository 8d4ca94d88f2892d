package preflight

import "strings"

// State is an instance's state as EC2 names it (DescribeInstances'
// State.Name). Code compares states through these constants and methods,
// never through string literals.
type State string

const (
	StatePending      State = "pending"
	StateRunning      State = "running"
	StateStopping     State = "stopping"
	StateStopped      State = "stopped"
	StateShuttingDown State = "shutting-down"
	StateTerminated   State = "terminated"
)

// Running reports whether the instance is running.
func (s State) Running() bool { return s == StateRunning }

// Gone reports whether the instance is terminated or on its way there: it
// names nothing a user can connect to again.
func (s State) Gone() bool { return s == StateTerminated || s == StateShuttingDown }

func (s State) String() string { return string(s) }

// Ready reports whether an EC2 Instance Connect Endpoint can open tunnels:
// create-complete, or being updated (update-in-progress, update-complete,
// update-failed keep the endpoint serving).
func (e InstanceConnectEndpoint) Ready() bool {
	return e.State == "create-complete" || strings.HasPrefix(e.State, "update-")
}
