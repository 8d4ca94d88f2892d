package reach

import (
	"context"
	"fmt"
	"time"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// WaitRunningBudget bounds the wait for a starting (pending) instance when
// ssh_config sets no ConnectTimeout: instances run within a minute or two
// of starting, and a person waiting deserves an end.
const WaitRunningBudget = 2 * time.Minute

// waitPolls are the pauses between DescribeInstances while an instance
// starts: quick at first, then every 5 s (the SDK's waiter asks every 15 s,
// too slowly for someone waiting at a prompt).
var waitPolls = []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second}

// waitRunning waits for a pending instance to run, saying so, within
// ConnectTimeout (or WaitRunningBudget); the instance is then resolved
// afresh (a starting instance gets its addresses as it runs). It fails
// only when asking fails or the wait is interrupted; an instance still
// not running when the budget is spent is left for the ladder to stop on.
func (p *plan) waitRunning(ctx context.Context) error {
	p.waited = true
	budget := WaitRunningBudget
	if p.cfg.ConnectTimeout > 0 {
		budget = p.cfg.ConnectTimeout
	}
	p.notes.Say("%s is starting (%s); waiting up to %v for it to run", p.t, p.t.state(), budget)
	c, err := p.side.get(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(budget)
	for i := 0; ; i++ {
		pause := waitPolls[min(i, len(waitPolls)-1)]
		if time.Until(deadline) < pause {
			p.run.Env.Debug("debug1: ec2ssh: %s is still %s after %v", p.t.ID, p.t.state(), budget)
			return nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return &failure.Error{Kind: failure.Canceled, Msg: "interrupted while waiting for " + p.t.String() + " to run", Err: context.Cause(ctx)}
		case <-t.C:
		}
		in, err := c.Resolve(ctx, p.t.ID)
		if err != nil {
			return err
		}
		if in == nil {
			return &failure.Error{Kind: failure.InstanceState, Msg: fmt.Sprintf("%s is gone", p.t), Hint: "connect to another instance"}
		}
		p.t.Instance = in
		p.run.Env.Debug("debug1: ec2ssh: %s is %s", p.t.ID, in.State)
		if in.State == preflight.StatePending {
			continue
		}
		if in.State.Running() {
			addr, err := in.Address(p.run.Args.Address)
			if err != nil {
				return err
			}
			p.t.Address = addr
			p.found(p.t)
		}
		return nil
	}
}
