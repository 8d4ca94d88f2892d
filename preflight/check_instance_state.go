package preflight

import "fmt"

func checkInstanceState(f *Facts) Result {
	if f.InstanceErr != nil {
		return unknownFrom(f.InstanceErr)
	}
	in := f.Instance
	if in == nil {
		return Result{Status: Skip, Summary: "not an EC2 instance"}
	}
	ev := []string{in.ID + " is " + string(in.State)}
	if in.StateReason != "" {
		ev = append(ev, in.StateReason)
	}
	switch in.State {
	case StateRunning:
		return Result{Status: Pass, Summary: in.ID + " is running", Evidence: ev}
	case StatePending:
		return Result{Status: Warn, Summary: in.ID + " is starting (pending)", Evidence: ev,
			Fix: fmt.Sprintf("wait for it: aws ec2 wait instance-running --instance-ids %s --region %s", in.ID, f.Region)}
	case StateStopped, StateStopping:
		return Result{Status: Fail, Summary: in.ID + " is " + string(in.State), Evidence: ev,
			Fix: fmt.Sprintf("start it: aws ec2 start-instances --instance-ids %s --region %s", in.ID, f.Region)}
	}
	return Result{Status: Fail, Summary: in.ID + " is " + string(in.State) + ": it cannot be started again", Evidence: ev,
		Fix: "connect to another instance; this one is gone"}
}
