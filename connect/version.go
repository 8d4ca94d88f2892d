package connect

import "fmt"

// OpenSSHVersion is the OpenSSH release whose command line, ssh_config and
// messages ec2ssh follows.
const OpenSSHVersion = "9.2p1"

// VersionLine is what -V prints (on stderr, as ssh(1) does): ec2ssh's
// version, and an OpenSSH_N.N token naming the OpenSSH whose command line
// it follows, for tools that read `ssh -V` to choose what to pass (VS Code
// Remote-SSH, lima, and others match OpenSSH_(\d+)\.(\d+)). It is worded
// so that it does not claim to be OpenSSH.
func VersionLine(version string) string {
	return fmt.Sprintf("ec2ssh %s, not OpenSSH: follows the command line of OpenSSH_%s; SSH by golang.org/x/crypto/ssh", version, OpenSSHVersion)
}
