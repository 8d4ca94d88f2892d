package preflight

// CheckID names a check (SPEC.md, "Pre-flight checks"). The ids are part of
// the contract: --diagnose --json prints them.
type CheckID string

const (
	CheckCredentials   CheckID = "credentials"
	CheckInstanceState CheckID = "instance-state"
	CheckStatusChecks  CheckID = "status-checks"
	CheckNetworkPath   CheckID = "network-path"
	CheckSecurityGroup CheckID = "security-group"
	CheckNetworkACL    CheckID = "network-acl"
	CheckKeyPair       CheckID = "key-pair"
	CheckLoginUser     CheckID = "login-user"
	CheckSSHD          CheckID = "sshd"
	CheckInstanceOS    CheckID = "instance-os"
	CheckSSMAgent      CheckID = "ssm-agent"
	CheckEICE          CheckID = "instance-connect-endpoint"
)

// Blocking are the checks whose failure means a direct connection cannot
// succeed, so waiting out a TCP timeout is pointless; in the order a
// failure is best explained by.
var Blocking = []CheckID{CheckInstanceState, CheckSecurityGroup, CheckNetworkACL, CheckNetworkPath}

// Explaining are the checks a failed connection is explained by, first
// match first.
var Explaining = []CheckID{CheckInstanceState, CheckSecurityGroup, CheckNetworkACL, CheckNetworkPath, CheckSSHD}

// ProbeResult is what the SSH port answered.
type ProbeResult string

const (
	ProbeOpen        ProbeResult = "open"        // an SSH banner came
	ProbeRefused     ProbeResult = "refused"     // nothing listens there
	ProbeTimeout     ProbeResult = "timeout"     // no answer: packets are dropped
	ProbeNoBanner    ProbeResult = "no-banner"   // connected, but no SSH banner
	ProbeUnreachable ProbeResult = "unreachable" // no route to the host
)
