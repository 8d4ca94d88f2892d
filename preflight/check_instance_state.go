package preflight

import "fmt"

// checkInstanceState fails every state but running, each with what to do:
// SSH answers only a running instance (EC2 User Guide, "Instance state
// changes"). A pending instance is on its way: ec2ssh waits for it when
// connecting (WaitRunning), the fix says how to wait by hand.
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
	ids := fmt.Sprintf("--instance-ids %s --region %s", in.ID, f.Region)
	switch in.State {
	case StateRunning:
		return Result{Status: Pass, Summary: in.ID + " is running", Evidence: ev}
	case StatePending:
		return Result{Status: Fail, Summary: in.ID + " is still starting (pending): nothing answers SSH until it is running", Evidence: ev,
			Fix: "wait until it runs, then connect: aws ec2 wait instance-running " + ids + " (a connection with ec2ssh waits for it within ConnectTimeout)"}
	case StateStopping:
		return Result{Status: Fail, Summary: in.ID + " is stopping", Evidence: ev,
			Fix: fmt.Sprintf("let it stop, then start it: aws ec2 wait instance-stopped %s && aws ec2 start-instances %s", ids, ids)}
	case StateStopped:
		return Result{Status: Fail, Summary: in.ID + " is stopped", Evidence: ev,
			Fix: "start it: aws ec2 start-instances " + ids}
	case StateShuttingDown, StateTerminated:
		return Result{Status: Fail, Summary: in.ID + " is " + string(in.State) + ": it is being deleted and cannot be started again", Evidence: ev,
			Fix: "connect to another instance; this one is gone (launch a new one from its AMI or a snapshot)"}
	}
	return Result{Status: Unknown, Summary: in.ID + " is in state " + string(in.State) + ", which ec2ssh does not know", Evidence: ev}
}
