package preflight

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2ssh/ec2ssh/failure"
)

// A connection to a pending instance waits for it to run, as
// `aws ec2 wait instance-running` does, but within the connection's own
// budget (ConnectTimeout) and saying so as it goes: WaitRunning polls
// DescribeInstances with the SDK waiter's acceptors for instance-running
// (ec2.InstanceRunningWaiter: success when the instance runs; failure when
// it is shutting-down, terminated or stopping; InvalidInstanceID.NotFound,
// which a just-launched instance can answer, retried). It also gives up on
// stopped: the SDK waiter keeps waiting there for someone to start it, and
// ec2ssh never will.

// Clock is the time WaitRunning reads and sleeps on, injected so its
// timing is tested without waiting.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// WaitInterval is the pause between two polls: the SDK waiter's 15 s
// minimum would overrun most ConnectTimeouts in one step, and an instance
// runs some 5 to 30 s after launch.
const WaitInterval = 2 * time.Second

// DefaultWaitBudget bounds the wait when the caller gives none (ssh's
// ConnectTimeout unset).
const DefaultWaitBudget = 60 * time.Second

// WaitOptions shape WaitRunning.
type WaitOptions struct {
	Budget   time.Duration // how long to wait at most; 0: DefaultWaitBudget
	Interval time.Duration // between polls; 0: WaitInterval
	Clock    Clock         // nil: the machine's clock
	// Progress, when set, is told of each poll that did not settle it:
	// the state seen and how long ec2ssh has waited (for a visible wait).
	Progress func(state State, waited time.Duration)
}

// waitVerdict is what one poll means.
type waitVerdict int

const (
	waitRetry waitVerdict = iota
	waitDone
	waitFail
)

// runningAcceptor is the instance-running waiter's decision for one poll:
// the instance described (nil when not found) or the call's error.
func runningAcceptor(in *Instance, err *APIError) waitVerdict {
	switch {
	case err != nil && err.Code == "InvalidInstanceID.NotFound":
		return waitRetry
	case err != nil:
		return waitFail
	case in == nil:
		return waitRetry
	}
	switch in.State {
	case StateRunning:
		return waitDone
	case StatePending:
		return waitRetry
	}
	return waitFail // stopping, stopped, shutting-down, terminated, unknown
}

// WaitRunning waits for instance id to run and returns it as described
// then. It fails with a failure.InstanceState error when the instance
// turns to another state than running or is still not running when the
// budget is spent (the hint says how to wait longer), with the AWS error's
// kind (failure.AWSAuth) when DescribeInstances is refused, and with
// failure.Canceled when ctx ends first. It never waits past the budget.
func (a *AWS) WaitRunning(ctx context.Context, id string, o WaitOptions) (*Instance, error) {
	clock := o.Clock
	if clock == nil {
		clock = realClock{}
	}
	budget, interval := o.Budget, o.Interval
	if budget <= 0 {
		budget = DefaultWaitBudget
	}
	if interval <= 0 {
		interval = WaitInterval
	}
	start := clock.Now()
	deadline := start.Add(budget)
	hint := fmt.Sprintf("wait for it: aws ec2 wait instance-running --instance-ids %s --region %s; or give ec2ssh longer: -o ConnectTimeout=SECONDS", id, a.Region())
	var last State
	spent := func() error {
		state := "not described yet"
		if last != "" {
			state = "still " + string(last)
		}
		return &failure.Error{Kind: failure.InstanceState, Target: id,
			Msg: fmt.Sprintf("%s is %s after %s", id, state, budget.Round(time.Second)), Hint: hint}
	}
	canceled := func() error {
		return &failure.Error{Kind: failure.Canceled, Op: "wait for " + id + " to run", Err: context.Cause(ctx)}
	}
	for {
		remaining := deadline.Sub(clock.Now())
		if remaining <= 0 {
			return nil, spent()
		}
		// No call runs past the budget.
		cctx, cancel := context.WithTimeout(ctx, remaining)
		ins, err := a.describeInstances(cctx, []string{id}, nil)
		timedOut := cctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return nil, canceled()
		}
		var in *Instance
		if err == nil && len(ins) > 0 {
			in = ins[0]
		}
		switch runningAcceptor(in, err) {
		case waitDone:
			return in, nil
		case waitFail:
			if err != nil && (timedOut || !clock.Now().Before(deadline)) {
				return nil, spent()
			}
			if err != nil {
				return nil, err.AsFailure()
			}
			r := checkInstanceState(&Facts{Region: a.Region(), Instance: in})
			return nil, &failure.Error{Kind: failure.InstanceState, Target: id,
				Msg: fmt.Sprintf("%s is %s, not running (waited %s)", id, in.State, clock.Now().Sub(start).Round(time.Second)), Hint: r.Fix}
		}
		if in != nil {
			last = in.State
		}
		if o.Progress != nil {
			o.Progress(last, clock.Now().Sub(start))
		}
		next := min(interval, deadline.Sub(clock.Now()))
		if next <= 0 {
			return nil, spent()
		}
		select {
		case <-clock.After(next):
		case <-ctx.Done():
			return nil, canceled()
		}
	}
}
