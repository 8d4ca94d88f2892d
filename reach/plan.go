package reach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// SSMKeepAlive is the ServerAliveInterval of an SSH connection over SSM
// when ssh_config sets none: Session Manager ends sessions idle for the
// account's idle timeout (20 minutes by default), and data inside the
// tunnel counts as activity.
const SSMKeepAlive = time.Minute

// plan is one destination's way in: the fallback ladder (fallback.Next)
// carried out step by step, for a connection or for --proxy.
type plan struct {
	run   *Run
	cfg   *connect.Config
	side  *side
	notes *Notices
	dest  string // the HostName as configured, before an instance's address replaced it
	t     *Target
	proxy bool
	// needsSSH: forwards, -N, -W, -s or a master, which an SSM shell
	// cannot serve.
	needsSSH bool

	tried  []fallback.Attempt
	waited bool // WaitRunning done
	looked bool // LookInside done
	// ep is the EC2 Instance Connect Endpoint chosen for the instance.
	ep       *fallback.TunnelEndpoint
	epTarget string  // the private address it tunnels to
	checks   *checks // the latest checks beside a direct attempt
	facts    *preflight.Facts
	races    []*race
	lastErr  error
	// gatherErr: why the checks could not run (an address never found to
	// be an instance, say, because DescribeInstances did not answer).
	gatherErr error

	notices   sync.WaitGroup // notices waiting for the checks
	finishing chan struct{}  // closed when the run ends: say what is known
}

// outcome is what a rung gave: an authenticated client for a connection,
// a byte stream for --proxy.
type outcome struct {
	client *connect.Client
	creds  *connect.Credentials
	conn   net.Conn
}

// rung is what one step of the ladder does: reach sshd and, for a
// connection, authenticate.
type rung func(ctx context.Context, d fallback.Decision) (outcome, error)

func newPlan(ctx context.Context, r *Run, cfg *connect.Config, proxy bool) (*plan, error) {
	p := &plan{run: r, cfg: cfg, side: newSide(r), notes: r.Notes, dest: cfg.HostName, proxy: proxy, finishing: make(chan struct{})}
	mode := r.Args.Fallback
	t, err := p.side.locate(ctx, p.dest, mode.ForcesInstance(), resolveOpts{user: !cfg.UserSet})
	if err != nil {
		return nil, err
	}
	if mode.ForcesInstance() && t == nil {
		return nil, &failure.Error{Kind: failure.Config, Msg: preflight.Sanitize(p.dest) + " is not an EC2 instance, so " + mode.Flag() + " cannot reach it",
			Hint: "give an instance id or Name tag, or drop " + mode.Flag()}
	}
	if t != nil {
		p.found(t)
		p.side.warm(ctx)
	}
	return p, nil
}

// found makes t the destination.
func (p *plan) found(t *Target) {
	p.t = t
	if p.proxy {
		p.cfg.HostName = t.Address
		return
	}
	t.apply(p.cfg)
}

// situation is what the ladder decides from, from what the run has
// learnt so far.
func (p *plan) situation() fallback.Situation {
	s := fallback.Situation{Mode: p.run.Args.Fallback, Instance: p.t != nil, Proxy: p.proxy, NeedsSSH: p.needsSSH, Tried: p.tried,
		Raceable: p.cfg.ProxyCommand == "" && p.cfg.ProxyJump == "", Waited: p.waited, Looked: p.looked}
	s.MaybeInstance = p.t == nil && p.side.configured() && preflight.ClassifyDest(p.dest) != preflight.DestName
	s.State = p.t.state()
	situationFacts(&s, p.facts)
	return s
}

// finish says what notices still wait for the checks, and waits (briefly)
// for the losers of races to be ended.
func (p *plan) finish() {
	close(p.finishing)
	p.notices.Wait()
	done := make(chan struct{})
	go func() {
		for _, r := range p.races {
			r.cleanup.Wait()
		}
		close(done)
	}()
	t := time.NewTimer(fallback.TerminateTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// climb carries out the ladder: it returns what the first rung that worked
// gave, or the SSMShell decision (the caller runs the shell), or the
// failure with its explanation already written.
func (p *plan) climb(ctx context.Context, do rung) (outcome, fallback.Decision, error) {
	for {
		d := fallback.Next(p.situation())
		p.run.Env.Debug("debug1: ec2ssh: next: %v (%s)", d.Step, d.Why)
		switch d.Step {
		case fallback.SSMShell:
			return outcome{}, d, nil
		case fallback.Stop:
			return outcome{}, d, p.fail(ctx, d)
		case fallback.WaitRunning:
			if err := p.waitRunning(ctx); err != nil {
				return outcome{}, d, err
			}
			continue
		case fallback.LookInside:
			p.lookInside(ctx)
			continue
		}
		if len(p.tried) > 0 {
			p.announce(d)
		}
		o, err := do(ctx, d)
		if err == nil {
			return o, d, nil
		}
		p.lastErr = err
		a := fallback.Attempt{Step: d.Step, Via: d.Via, Kind: failure.KindOf(err)}
		if d.Step == fallback.Direct && len(p.races) > 0 {
			if won := p.races[len(p.races)-1].won; won == fallback.SSMPort || won == fallback.EICE {
				a.Via = won // the race was won over SSM or a tunnel: what failed after ran there
			}
		}
		p.tried = append(p.tried, a)
		if a.Kind == failure.Canceled {
			return outcome{}, fallback.Decision{Step: fallback.Stop}, err
		}
		p.learn(ctx)
	}
}

// learn takes what the checks beside the last attempt found: an address
// that is an instance, its state, its agent.
func (p *plan) learn(ctx context.Context) {
	if p.checks == nil || p.t == nil && !p.side.configured() {
		return
	}
	g := p.checks.wait(ctx)
	if g.err != nil {
		p.run.Env.Debug("debug1: ec2ssh: the checks could not run: %v", g.err)
		p.gatherErr = g.err
	}
	if g.t != nil && p.t == nil {
		p.found(g.t)
	}
	if g.facts != nil {
		p.facts = g.facts
	}
}

// lookInside asks the instance itself, over SSM (preflight.InsideScript,
// read-only, within preflight.InsideTimeout), whether anything listens on
// the SSH port there: the one way to tell sshd being down from a port
// session ending for another reason. What it found joins the facts, for
// the explanation.
func (p *plan) lookInside(ctx context.Context) {
	p.looked = true
	c, err := p.side.get(ctx)
	if err != nil {
		return
	}
	user := p.cfg.User
	if p.t.User != "" && !p.cfg.UserSet {
		user = p.t.User
	}
	addr := ""
	if p.t.Instance != nil {
		addr = p.t.Instance.PrivateIP
	}
	p.run.Env.Debug("debug1: ec2ssh: the SSM port session got nothing from port %d: looking inside %s", p.cfg.Port, p.t.ID)
	ctx, cancel := context.WithTimeout(preflight.WithRole(ctx, preflight.RoleCheck), preflight.InsideTimeout)
	defer cancel()
	in, err := c.LookInside(ctx, p.t.ID, user, p.cfg.Port, addr)
	if err != nil {
		p.run.Env.Debug("debug1: ec2ssh: could not look inside: %v", err)
		return
	}
	f := preflight.Facts{Region: c.Region(), Port: p.cfg.Port, Instance: p.t.Instance}
	if p.facts != nil {
		f = *p.facts
	}
	f.Inside = in
	p.facts = &f
	p.run.Env.Debug("debug1: ec2ssh: inside, port %d is %v (looked in %v)", p.cfg.Port, in.PortState(p.cfg.Port), in.Took.Round(time.Millisecond))
}

// reason is why the last rung failed, in one line: the check that proved
// it when there is one.
func (p *plan) reason() string {
	if p.facts != nil {
		rep := preflight.NewReport(p.withProbe(), p.cfg.HostName)
		if bad := rep.FirstFailed(preflight.Explaining); bad != nil {
			return bad.Summary
		}
	}
	if p.lastErr != nil {
		return p.lastErr.Error()
	}
	return "it could not be reached"
}

// withProbe is the facts with what the direct dial learnt about the port.
func (p *plan) withProbe() *preflight.Facts {
	f := *p.facts
	for _, a := range p.tried {
		if a.Step == fallback.Direct && a.Via == fallback.Stop && f.SSHD == nil {
			f.SSHD = probeFromDial(p.cfg.HostName, p.cfg.Port, p.directErr())
		}
	}
	return &f
}

func (p *plan) directErr() error {
	for i := len(p.races) - 1; i >= 0; i-- {
		if e := p.races[i].directErr; e != nil {
			if p.races[i].cut != nil {
				return nil // cut short: the dial learnt nothing about the port
			}
			return e
		}
	}
	return p.lastErr
}

// announce is the one stderr line that says why ec2ssh goes on to the next
// rung.
func (p *plan) announce(d fallback.Decision) {
	switch d.Step {
	case fallback.SSMPort:
		if last := p.tried[len(p.tried)-1]; last.Carrier() == fallback.SSMPort {
			return // one more session after a handshake that died: said under -v
		}
		p.notes.Say("%s: %s; continuing over SSM", p.t, p.reason())
	case fallback.EICE:
		p.notes.Say("%s: %s; continuing through an EC2 Instance Connect Endpoint", p.t, p.reason())
	case fallback.InstanceConnect:
		if last := p.tried[len(p.tried)-1]; last.Step == fallback.InstanceConnect {
			return
		}
		reason := "the server refused the keys offered"
		if p.facts != nil {
			if c, ok := preflight.NewReport(p.facts, p.cfg.HostName).Result(preflight.CheckKeyPair); ok && c.Status == preflight.Fail {
				reason = c.Summary
			}
		}
		if p.t.User != "" && p.cfg.User != p.t.User {
			reason += fmt.Sprintf(" (note: the AMI's login user is %s, not %s)", p.t.User, p.cfg.User)
		}
		p.notes.Say("%s: %s; continuing with a one-time key from EC2 Instance Connect", p.t, reason)
	}
}

// fail is the ladder's end: the failure, with the checks that explain it
// written to stderr first.
func (p *plan) fail(ctx context.Context, d fallback.Decision) error {
	err := p.lastErr
	if err == nil {
		err = p.stopWithoutAttempt(d)
	}
	p.side.dropCache(p.dest)
	if p.checks == nil && p.t != nil && failure.KindOf(err) != failure.Canceled && !p.proxy {
		// No checks ran beside the attempts (--fallback=ssm, a stopped
		// instance): run them now.
		creds, _ := connect.LoadCredentials(p.cfg, nil, p.run.Env.Debug)
		p.checks = newChecks(p.side, p.dest, p.t, p.cfg, creds, false)
		p.learn(ctx)
	}
	if p.facts != nil && !p.notes.Quiet() {
		skip := preflight.CheckID("")
		for _, r := range p.races {
			if r.cut != nil {
				skip = r.cut.check.ID
			}
		}
		explain(p.notes, p.t, preflight.NewReport(p.withProbe(), p.cfg.HostName), p.notes.debug, skip)
	}
	p.sayWeather(err)
	return err
}

// sayWeather says, when the ladder stops, which ways in AWS's weather
// closed: an SSM session or an endpoint that could not be started, a
// lookup that could not say whether an address is an instance. The checks
// explain the rest; the error itself is not said twice.
func (p *plan) sayWeather(final error) {
	name := preflight.Sanitize(p.dest)
	if p.t != nil {
		name = p.t.String()
	}
	seen := map[string]bool{}
	say := func(what string, err error) {
		said := weatherSaid(err)
		if said == "" || seen[said] || final != nil && strings.Contains(final.Error(), said) {
			return
		}
		seen[said] = true
		p.notes.Say("%s: %s: %s", name, what, said)
	}
	if p.t == nil {
		say("could not tell whether it is an EC2 instance", p.gatherErr)
	}
	for _, r := range p.races {
		say("SSM could not carry it", r.ssmErr)
		say("no EC2 Instance Connect Endpoint could be used", r.epErr)
		say("the endpoint's tunnel failed", r.tunnelErr)
	}
	if p.facts != nil && p.facts.EndpointsErr != nil {
		say("no EC2 Instance Connect Endpoint could be looked up", p.facts.EndpointsErr)
	}
}

// weatherSaid is how AWS's weather made err, in words ("StartSession: AWS
// answered 500"), or "" when the weather did not make it.
func weatherSaid(err error) string {
	var ce *preflight.CallError
	if errors.As(err, &ce) && ce.Weather != preflight.WeatherNone {
		return ce.Error()
	}
	var ae *preflight.APIError
	if errors.As(err, &ae) && ae.Weather != preflight.WeatherNone {
		return ae.Error()
	}
	return ""
}

// stopWithoutAttempt is the failure when the ladder stops before any rung
// ran: an instance that is not running.
func (p *plan) stopWithoutAttempt(d fallback.Decision) error {
	if st := p.t.state(); st != "" && !st.Running() {
		hint := fmt.Sprintf("start it: aws ec2 start-instances --instance-ids %s", p.t.ID)
		if st == preflight.StatePending {
			hint = fmt.Sprintf("wait for it: aws ec2 wait instance-running --instance-ids %s, then connect again", p.t.ID)
		} else if st.Gone() {
			hint = "it cannot be started again: connect to another instance"
		}
		return &failure.Error{Kind: failure.InstanceState, Msg: fmt.Sprintf("%s is %s", p.t, st), Hint: hint}
	}
	return &failure.Error{Kind: failure.Unknown, Msg: "no way in: " + d.Why}
}

// explain writes the failed checks of a report (all of them with -v) to n,
// but for skip: the check the error itself already reports.
func explain(n *Notices, t *Target, r *preflight.Report, verbose bool, skip preflight.CheckID) {
	name := r.Target.Address
	if t != nil {
		name = t.String()
	}
	for _, c := range r.Checks {
		if c.ID == skip || (c.ID == preflight.CheckSSHD && c.Status != preflight.Fail) {
			continue
		}
		switch {
		case c.Status == preflight.Fail:
			n.Say("%s: %s: %s", name, c.ID, preflight.Sanitize(c.Summary))
			if c.Fix != "" {
				n.Say("fix: %s", c.Fix)
			}
		case verbose:
			n.Say("%s: %s: %s: %s", name, c.ID, c.Status, preflight.Sanitize(c.Summary))
		}
	}
}

// displayName is host, or [host]:port when the port is not 22, as ssh(1)
// names hosts.
func displayName(host string, port int) string {
	if port == 22 {
		return host
	}
	return "[" + host + "]:" + fmt.Sprint(port)
}
