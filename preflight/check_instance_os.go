package preflight

import "fmt"

// checkInstanceOS judges what the look inside found about the system
// around sshd: full disks, sshd's last words.
func checkInstanceOS(f *Facts) Result {
	in := f.Inside
	if f.Instance == nil {
		return Result{Status: Skip, Summary: "not an EC2 instance"}
	}
	if in == nil {
		if f.InsideErr != "" {
			return Result{Status: Unknown, Summary: "could not look inside the instance: " + f.InsideErr}
		}
		return Result{Status: Skip, Summary: "the instance was not looked into (it needs its SSM agent online)"}
	}
	ev := []string{"looked inside (" + in.How + ")"}
	for _, l := range in.Log {
		ev = append(ev, "sshd log: "+l)
	}
	// Whether the login user exists is login-user's to say.
	for _, d := range in.Disks {
		if d.UsedPct >= 98 {
			what := "full"
			if d.Inodes {
				what = "out of inodes"
			}
			return Result{Status: Fail, Summary: fmt.Sprintf("%s is %s (%d%%): sshd and logins fail when they cannot write", d.Mount, what, d.UsedPct),
				Evidence: ev, Fix: fmt.Sprintf("free space on %s from an SSM shell (ec2ssh --fallback=ssm HOST): sudo journalctl --vacuum-size=100M; sudo du -xh %s | sort -h | tail", d.Mount, d.Mount)}
		}
	}
	if !in.Complete {
		return Result{Status: Warn, Summary: "the look inside the instance was cut short", Evidence: ev}
	}
	return Result{Status: Pass, Summary: "the disks have room", Evidence: ev}
}
