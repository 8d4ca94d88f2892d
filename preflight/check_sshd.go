package preflight

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ec2ssh/ec2ssh/failure"
)

func checkSSHD(f *Facts) Result {
	p, in := f.SSHD, f.Inside
	if p == nil && in == nil {
		return Result{Status: Skip, Summary: "the SSH port was not probed"}
	}
	port := f.Port
	addr := ""
	if p != nil {
		port, addr = p.Port, p.Address
	} else if f.Instance != nil {
		addr = f.Instance.PrivateIP
	}
	target := fmt.Sprintf("%s port %d", addr, port)
	var ev []string
	if p != nil {
		ev = append(ev, target+": "+string(p.Result))
		if p.Detail != "" {
			ev = append(ev, p.Detail)
		}
	}
	if in != nil {
		ev = append(ev, insideEvidence(in)...)
	}
	result := ProbeResult("")
	if p != nil {
		result = p.Result
	}
	if result != ProbeOpen && f.Instance != nil && f.Instance.State.Running() {
		// An instance failing its status checks (or still booting) explains
		// a silent or refusing port by itself: nothing else is blamed.
		if impaired(f) {
			return Result{Status: Unknown, Summary: target + " does not answer as it should, and the instance fails its status checks: that is the cause (see status-checks)", Evidence: ev}
		}
		if booting(f) && result != ProbeNoBanner {
			return Result{Status: Unknown, Summary: target + ": " + string(result) + " while the instance is still booting (status checks initializing); try again when they pass", Evidence: ev}
		}
	}
	switch {
	case result == ProbeOpen:
		return Result{Status: Pass, Summary: target + " answers: " + p.Banner, Evidence: ev}
	case result == ProbeNoBanner:
		return Result{Status: Fail, Summary: target + " accepts connections but sends no SSH banner", Evidence: ev,
			Fix: "something other than sshd listens there, or sshd is hung: from an SSM shell, sudo systemctl restart sshd"}
	case in != nil && !in.SSHDRunning:
		// Seen from inside: whatever the probe said, sshd is not running.
		r := Result{Status: Fail, Summary: "sshd is not running on the instance", Evidence: ev, Cause: failure.Refused, Inside: true,
			Fix: "start it from an SSM shell (ec2ssh --fallback=ssm HOST): sudo systemctl start sshd"}
		if len(in.ConfigErrors) > 0 {
			r.Summary = "sshd is not running: its configuration has errors (sshd -t: " + in.ConfigErrors[0] + ")"
			r.Fix = "fix /etc/ssh/sshd_config (sudo sshd -t shows what), then sudo systemctl restart sshd, from an SSM shell (ec2ssh --fallback=ssm HOST)"
		}
		return r
	case in != nil && len(in.Listening) > 0 && !listensOn(in.Listening, port):
		return Result{Status: Fail, Summary: fmt.Sprintf("sshd listens on %s, not on port %d", strings.Join(in.Listening, ", "), port), Evidence: ev,
			Cause: failure.Refused, Inside: true,
			Fix: fmt.Sprintf("connect to the port it uses (ec2ssh -p %s …), or set Port %d in /etc/ssh/sshd_config and restart sshd", firstPort(in.Listening), port)}
	case result == ProbeRefused:
		return Result{Status: Fail, Summary: target + " refuses connections: sshd is stopped, or listens on another port", Evidence: ev,
			Fix: "start it from an SSM shell (ec2ssh --fallback=ssm HOST): sudo systemctl start sshd; check its Port in /etc/ssh/sshd_config"}
	case in != nil && len(in.Firewall) > 0:
		rule := in.Firewall[0]
		return Result{Status: Fail, Summary: fmt.Sprintf("a host firewall on the instance (%s) stops port %d: %s", rule.Firewall, port, rule.Rule),
			Evidence: ev, Fix: rule.Fix + " (from an SSM shell: ec2ssh --fallback=ssm HOST)", Inside: true}
	case (result == ProbeTimeout || result == ProbeUnreachable) && f.Instance != nil && !f.Instance.State.Running():
		return Result{Status: Unknown, Summary: target + " does not answer: the instance is " + string(f.Instance.State) + " (see instance-state)", Evidence: ev}
	case result == ProbeTimeout || result == ProbeUnreachable:
		if f.Instance != nil && checkSecurityGroup(f).Status == Pass && checkNetworkACL(f).Status == Pass && checkNetworkPath(f).Status != Fail {
			// What AWS's configuration shows lets the packets through, so
			// something it does not show drops them.
			why := "something on the instance (a host firewall) or on the path (a firewall, a VPN) drops the packets"
			fix := "look inside: with the SSM agent online, ec2ssh --diagnose reads the host firewall; or from an SSM shell: sudo nft list ruleset; sudo iptables -S"
			if in != nil {
				why = "no host firewall rule on the instance stops it, so something on the path (a firewall, a VPN, a proxy) drops the packets"
				fix = "check the network between here and the instance; ec2ssh still gets in over SSM"
			}
			return Result{Status: Fail, Summary: fmt.Sprintf("%s does not answer although the security group and network ACL allow it: %s", target, why),
				Evidence: ev, Fix: fix}
		}
		return Result{Status: Unknown, Summary: target + " does not answer: packets are dropped before they reach sshd (see security-group and network-acl)", Evidence: ev}
	case in != nil:
		return Result{Status: Pass, Summary: "sshd runs on the instance and listens on " + strings.Join(in.Listening, ", "), Evidence: ev}
	}
	return Result{Status: Unknown, Summary: target + ": " + string(result), Evidence: ev}
}

func listensOn(addrs []string, port int) bool {
	for _, a := range addrs {
		if strings.HasSuffix(a, ":"+strconv.Itoa(port)) {
			return true
		}
	}
	return false
}

func firstPort(addrs []string) string {
	for _, a := range addrs {
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			return a[i+1:]
		}
	}
	return ""
}

// insideEvidence is what the look inside says about sshd.
func insideEvidence(in *Inside) []string {
	ev := []string{"looked inside (" + in.How + ")"}
	if in.SSHDActive != "" {
		ev = append(ev, "sshd service: "+in.SSHDActive)
	}
	if len(in.Listening) > 0 {
		ev = append(ev, "sshd listens on "+strings.Join(in.Listening, ", "))
	} else {
		ev = append(ev, "no sshd listens")
	}
	for _, e := range in.ConfigErrors {
		ev = append(ev, "sshd -t: "+e)
	}
	for _, r := range in.Firewall {
		ev = append(ev, r.Firewall+": "+r.Rule)
	}
	return ev
}
