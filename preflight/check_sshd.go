package preflight

import "fmt"

func checkSSHD(f *Facts) Result {
	p := f.SSHD
	if p == nil {
		return Result{Status: Skip, Summary: "the SSH port was not probed"}
	}
	target := fmt.Sprintf("%s port %d", p.Address, p.Port)
	ev := []string{target + ": " + p.Result}
	if p.Detail != "" {
		ev = append(ev, p.Detail)
	}
	switch p.Result {
	case "open":
		return Result{Status: Pass, Summary: target + " answers: " + p.Banner, Evidence: ev}
	case "refused":
		return Result{Status: Fail, Summary: target + " refuses connections: sshd is stopped, or listens on another port", Evidence: ev,
			Fix: "start it from an SSM shell (ec2ssh --fallback=ssm HOST): sudo systemctl start sshd; check its Port in /etc/ssh/sshd_config"}
	case "no-banner":
		return Result{Status: Fail, Summary: target + " accepts connections but sends no SSH banner", Evidence: ev,
			Fix: "something other than sshd listens there, or sshd is hung: from an SSM shell, sudo systemctl restart sshd"}
	case "timeout", "unreachable":
		return Result{Status: Unknown, Summary: target + " does not answer: packets are dropped before they reach sshd (see security-group and network-acl)", Evidence: ev}
	}
	return Result{Status: Unknown, Summary: target + ": " + p.Result, Evidence: ev}
}
