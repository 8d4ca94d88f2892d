package reach

import (
	"context"
	"time"

	"github.com/ec2ssh/ec2ssh/preflight"
)

// WaitRunningBudget bounds the wait for a starting (pending) instance when
// ssh_config sets no ConnectTimeout: instances run within a minute or two
// of starting, and a person waiting deserves an end.
const WaitRunningBudget = 2 * time.Minute

// waitInterval is the pause between polls (0: preflight's); tests shorten
// it.
var waitInterval time.Duration

// waitRunning waits for a pending instance to run, saying so, within
// ConnectTimeout (or WaitRunningBudget), as `aws ec2 wait instance-running`
// would (preflight.WaitRunning); the instance's address is read afresh (a
// starting instance gets its addresses as it runs). It fails with
// failure.InstanceState when the instance turns to another state or is
// still not running when the budget is spent.
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
	in, err := c.WaitRunning(ctx, p.t.ID, preflight.WaitOptions{Budget: budget, Interval: waitInterval,
		Progress: func(s preflight.State, waited time.Duration) {
			p.run.Env.Debug("debug1: ec2ssh: %s is still %s after %v", p.t.ID, s, waited.Round(time.Second))
		}})
	if err != nil {
		return err
	}
	addr, err := in.Address(p.run.Args.Address)
	if err != nil {
		return err
	}
	p.t.Instance, p.t.Address = in, addr
	p.found(p.t)
	return nil
}
