package preflight

import "fmt"

func checkStatusChecks(f *Facts) Result {
	if f.Instance == nil || !f.Instance.State.Running() {
		return Result{Status: Skip, Summary: "the instance is not running"}
	}
	if f.StatusErr != nil {
		return unknownFrom(f.StatusErr)
	}
	s := f.Status
	if s == nil {
		return Result{Status: Unknown, Summary: "EC2 reported no status checks yet"}
	}
	ev := []string{"system status " + s.System, "instance status " + s.Instance}
	switch {
	case s.System == "impaired" || s.Instance == "impaired":
		fix := fmt.Sprintf("see the console output: aws ec2 get-console-output --instance-id %s --region %s; a reboot often helps: aws ec2 reboot-instances --instance-ids %s --region %s",
			f.Instance.ID, f.Region, f.Instance.ID, f.Region)
		if s.System == "impaired" {
			fix = fmt.Sprintf("the host hardware or network is failing: stop and start the instance to move it: aws ec2 stop-instances --instance-ids %s --region %s, then start-instances", f.Instance.ID, f.Region)
		}
		return Result{Status: Fail, Summary: "status checks are failing", Evidence: ev, Fix: fix}
	case s.System == "initializing" || s.Instance == "initializing":
		return Result{Status: Warn, Summary: "status checks are still initializing (the instance is booting)", Evidence: ev}
	case s.System == "ok" && s.Instance == "ok":
		return Result{Status: Pass, Summary: "system and instance status checks are ok", Evidence: ev}
	}
	return Result{Status: Unknown, Summary: "status checks are not conclusive", Evidence: ev}
}

// impaired reports whether EC2 says the instance fails its status checks.
func impaired(f *Facts) bool {
	return f.Status != nil && (f.Status.System == "impaired" || f.Status.Instance == "impaired")
}

// booting reports whether the status checks are still initializing.
func booting(f *Facts) bool {
	return f.Status != nil && !impaired(f) && (f.Status.System == "initializing" || f.Status.Instance == "initializing")
}
