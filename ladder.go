package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
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

// NoticeWait is how long a run that is over waits for the checks that say
// why SSM carried it.
const NoticeWait = 3 * time.Second

// notices writes ec2ssh's own lines to stderr under one quiet rule: -q, or
// LogLevel QUIET, FATAL or ERROR, silences them (SPEC.md, "Output").
type notices struct {
	w     io.Writer
	quiet bool
}

func newNotices(w io.Writer, cfg *connect.Config) *notices {
	return &notices{w: w, quiet: cfg.LogLevel == "QUIET" || cfg.LogLevel == "FATAL" || cfg.LogLevel == "ERROR"}
}

// say writes "ec2ssh: …".
func (n *notices) say(format string, a ...any) {
	if !n.quiet {
		fmt.Fprintf(n.w, "ec2ssh: "+format+"\n", a...)
	}
}

// plan is one destination's way in: the fallback ladder (fallback.Next)
// run rung by rung, for a connection or for --proxy.
type plan struct {
	args  *connect.Args
	cfg   *connect.Config
	env   *connect.Env
	side  *ec2Side
	notes *notices
	dest  string // the HostName as configured, before an instance's address replaced it
	t     *target
	proxy bool
	// needsSSH: forwards, -N, -W or -s, which an SSM shell cannot serve.
	needsSSH bool

	tried []fallback.Attempt
	// inside is what the ladder's LookInside found of the SSH port.
	inside fallback.Inside
	// ep is the EC2 Instance Connect Endpoint chosen for the instance.
	ep       *fallback.TunnelEndpoint
	epTarget string  // the private address it tunnels to
	checks   *checks // the latest checks beside a direct attempt
	facts    *preflight.Facts
	races    []*race
	lastErr  error

	notices   sync.WaitGroup // notices waiting for the checks
	finishing chan struct{}  // closed when the run ends: say what is known
}

func newPlan(ctx context.Context, args *connect.Args, cfg *connect.Config, env *connect.Env, notes *notices, proxy bool) (*plan, error) {
	p := &plan{args: args, cfg: cfg, env: env, side: newEC2Side(args, env), notes: notes, dest: cfg.HostName, proxy: proxy,
		finishing: make(chan struct{})}
	mode := args.Fallback
	t, err := p.side.locate(ctx, p.dest, mode == "ssm" || mode == "eice")
	if err != nil {
		return nil, err
	}
	if (mode == "ssm" || mode == "eice") && t == nil {
		flag := map[string]string{"ssm": "--fallback=ssm", "eice": "--via=eice"}[mode]
		return nil, &failure.Error{Kind: failure.Config, Msg: preflight.Sanitize(p.dest) + " is not an EC2 instance, so " + flag + " cannot reach it",
			Hint: "give an instance id or Name tag, or drop " + flag}
	}
	if t != nil {
		p.found(t)
		p.side.warm(ctx)
	}
	return p, nil
}

// found makes t the destination.
func (p *plan) found(t *target) {
	p.t = t
	if p.proxy {
		p.cfg.HostName = t.Address
		return
	}
	t.apply(p.cfg)
}

func (p *plan) situation() fallback.Situation {
	s := fallback.Situation{Mode: p.args.Fallback, Instance: p.t != nil, Proxy: p.proxy, NeedsSSH: p.needsSSH, Tried: p.tried,
		Raceable: p.cfg.ProxyCommand == "" && p.cfg.ProxyJump == "", Inside: p.inside}
	if p.t != nil && p.t.Instance != nil {
		s.State = string(p.t.Instance.State)
	}
	if f := p.facts; f != nil {
		if f.Instance != nil {
			s.State = string(f.Instance.State)
			for _, ep := range f.Endpoints {
				if ep.VPCID == f.Instance.VPCID && ep.Ready() {
					s.Endpoint = true
				}
			}
		}
		if f.SSM != nil {
			s.Agent = fallback.AgentOffline
			if f.SSM.PingStatus == "Online" {
				s.Agent = fallback.AgentOnline
			}
		}
	}
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
	select {
	case <-done:
	case <-time.After(fallback.TerminateTimeout):
	}
}

// rung is what one rung of the ladder does: reach sshd and, for a
// connection, authenticate.
type rung func(ctx context.Context, d fallback.Decision) (any, error)

// run climbs the ladder: it returns what the first rung that worked gave,
// or the SSMShell decision (the caller runs the shell), or the failure with
// its explanation already written.
func (p *plan) run(ctx context.Context, do rung) (any, fallback.Step, error) {
	for {
		d := fallback.Next(p.situation())
		p.env.Debug("debug1: ec2ssh: next: %v (%s)", d.Step, d.Why)
		if d.Step == fallback.SSMShell {
			return nil, d.Step, nil
		}
		if d.Step == fallback.LookInside {
			p.inside = p.lookInside(ctx)
			continue
		}
		if d.Step == fallback.Stop {
			return nil, d.Step, p.fail(ctx)
		}
		if len(p.tried) > 0 {
			p.announce(d)
		}
		v, err := do(ctx, d)
		if err == nil {
			return v, d.Step, nil
		}
		p.lastErr = err
		step := d.Step
		if d.Step == fallback.Direct && len(p.races) > 0 && p.races[len(p.races)-1].won == fallback.SSMPort {
			step = fallback.SSMPort // the race was won over SSM: what failed after ran there
		}
		p.tried = append(p.tried, fallback.Attempt{Step: step, Kind: failure.KindOf(err)})
		if failure.KindOf(err) == failure.Canceled {
			return nil, fallback.Stop, err
		}
		p.learn(ctx)
	}
}

// learn takes what the checks beside the last attempt found: an address
// that is an instance, its state, its agent.
func (p *plan) learn(ctx context.Context) {
	if p.checks == nil {
		return
	}
	if p.t == nil && !p.side.configured() {
		return
	}
	g := p.checks.wait(ctx)
	if g.err != nil {
		p.env.Debug("debug1: ec2ssh: the checks could not run: %v", g.err)
	}
	if g.t != nil && p.t == nil {
		p.found(g.t)
	}
	if g.facts != nil {
		p.facts = g.facts
	}
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
		if a.Step == fallback.Direct && f.SSHD == nil {
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
		p.notes.say("%s: %s; continuing over SSM", p.t, p.reason())
	case fallback.EICE:
		p.notes.say("%s: %s; continuing through an EC2 Instance Connect Endpoint", p.t, p.reason())
	case fallback.InstanceConnect:
		reason := "the server refused the keys offered"
		if p.facts != nil {
			if c, ok := preflight.NewReport(p.facts, p.cfg.HostName).Result(preflight.CheckKeyPair); ok && c.Status == preflight.Fail {
				reason = c.Summary
			}
		}
		if p.t.User != "" && p.cfg.User != p.t.User {
			reason += fmt.Sprintf(" (note: the AMI's login user is %s, not %s)", p.t.User, p.cfg.User)
		}
		p.notes.say("%s: %s; continuing with a one-time key from EC2 Instance Connect", p.t, reason)
	}
}

// fail is the ladder's end: the failure, with the checks that explain it
// written to stderr first.
func (p *plan) fail(ctx context.Context) error {
	err := p.lastErr
	if err == nil {
		err = failure.New(failure.Unknown, "no way in", "")
	}
	p.side.dropCache(p.dest)
	if p.checks == nil && p.t != nil && failure.KindOf(err) != failure.Canceled && !p.proxy {
		// No checks ran beside the attempts (--fallback=ssm): run them now.
		creds, _ := connect.LoadCredentials(p.cfg, nil, p.env.Debug)
		p.checks = newChecks(p.side, p.dest, p.t, p.cfg, creds, false)
		p.learn(ctx)
	}
	if p.facts != nil && !p.notes.quiet {
		skip := preflight.CheckID("")
		for _, r := range p.races {
			if r.cut != nil {
				skip = r.cut.check.ID
			}
		}
		explain(p.notes, p.t, preflight.NewReport(p.withProbe(), p.cfg.HostName), strings.HasPrefix(p.cfg.LogLevel, "DEBUG"), skip)
	}
	return err
}

// explain writes the failed checks of a report (all of them with -v) to w,
// but for skip: the check the error itself already reports.
func explain(n *notices, t *target, r *preflight.Report, verbose bool, skip preflight.CheckID) {
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
			n.say("%s: %s: %s", name, c.ID, preflight.Sanitize(c.Summary))
			if c.Fix != "" {
				n.say("fix: %s", c.Fix)
			}
		case verbose:
			n.say("%s: %s: %s: %s", name, c.ID, c.Status, preflight.Sanitize(c.Summary))
		}
	}
}

// newRace sets up a direct attempt: the checks beside it and, when the
// ladder says so, SSM raced after the grace.
func (p *plan) newRace(d fallback.Decision, creds *connect.Credentials) *race {
	var ch *checks
	if p.t != nil || (p.side.configured() && preflight.ClassifyDest(p.dest) != preflight.DestName) {
		inside := p.args.Fallback == "never" // there, proof is all the checks can give
		ch = newChecks(p.side, p.dest, p.t, p.cfg, creds, inside)
	}
	p.checks = ch
	wait := p.cfg.ConnectTimeout
	if wait == 0 {
		wait = connect.DefaultHandshakeTimeout
	}
	r := &race{direct: connect.DirectTransport(p.cfg, p.env), t: p.t, grace: raceGrace(p.t, p.cfg.ConnectTimeout), checks: ch, wait: wait,
		name: displayName(p.cfg.HostName, p.cfg.Port)}
	// An address may turn out to be an instance (the checks find it): then
	// it is raced too.
	mayBeInstance := p.t == nil && p.side.configured() && p.args.Fallback != "never" && p.args.Fallback != "ssm" &&
		p.cfg.ProxyCommand == "" && preflight.ClassifyDest(p.dest) != preflight.DestName
	if d.Race == fallback.SSMPort || mayBeInstance {
		r.ssm = func(ctx context.Context, t *target) (net.Conn, error) {
			p.env.Debug("debug1: ec2ssh: no TCP connection to %s after %v: starting an SSM session beside it", t.Address, r.grace)
			return p.ssmConn(ctx, t)
		}
	}
	p.races = append(p.races, r)
	return r
}

// raced records what a race did for the ladder, and says which path won.
func (p *plan) raced(r *race) {
	if r.t != nil && p.t == nil {
		p.found(r.t)
	}
	if r.ssmTried && r.won != fallback.SSMPort {
		p.tried = append(p.tried, fallback.Attempt{Step: fallback.SSMPort, Kind: failure.KindOf(r.ssmErr)})
	}
	switch r.won {
	case fallback.SSMPort:
		p.noticeRace(r)
	case fallback.Direct:
		if r.ssmTried {
			p.env.Debug("debug1: ec2ssh: the direct connection answered first, in %v", r.took.Round(time.Millisecond))
		}
		r.checks.stop()
	}
}

// noticeRace is the one line that says SSM won the race, and why: the
// check that explains the silent port when the checks have answered. They
// were started beside the dial and may still be running: the line waits
// for them (not the session), and is said with what is known when the run
// ends first.
func (p *plan) noticeRace(r *race) {
	say := func(g gathered) {
		why := fmt.Sprintf("port %d did not answer in %v", p.cfg.Port, r.grace.Round(time.Millisecond))
		if r.directErr != nil {
			why = r.directErr.Error()
		}
		if r.cut != nil {
			why = r.cut.check.Summary
		} else if g.facts != nil && g.t != nil {
			f := *g.facts
			if r.directErr == nil {
				// The TCP connect was still pending when SSM answered.
				f.SSHD = &preflight.Probe{Address: p.cfg.HostName, Port: p.cfg.Port, Result: preflight.ProbeTimeout,
					Detail: "no TCP connection in " + r.grace.Round(time.Millisecond).String()}
			} else {
				f.SSHD = probeFromDial(p.cfg.HostName, p.cfg.Port, r.directErr)
			}
			if bad := preflight.NewReport(&f, g.t.Address).FirstFailed(preflight.Explaining); bad != nil {
				why = bad.Summary
			}
		}
		p.notes.say("%s: %s; continuing over SSM (it answered first, in %v)", p.t, why, r.took.Round(time.Millisecond))
	}
	if r.checks == nil {
		say(gathered{})
		return
	}
	// Started only now that the connection is up, so that they do not slow
	// its handshake.
	r.checks.start(context.Background())
	select {
	case <-r.checks.done:
		say(r.checks.result)
		return
	default:
	}
	p.notices.Add(1)
	go func() {
		defer p.notices.Done()
		select {
		case <-r.checks.done:
			say(r.checks.result)
			return
		case <-p.finishing:
		}
		// The session is over before the checks: they get a short while
		// more, so that the line says why rather than only that.
		select {
		case <-r.checks.done:
			say(r.checks.result)
		case <-time.After(NoticeWait):
			say(gathered{})
			r.checks.stop()
		}
	}()
}

// lookInside runs the look inside (preflight.InsideScript, over SSM) to
// learn whether the agent's connection to the SSH port is refused there,
// and keeps what it found for the explanation. InsideTimeout bounds it.
func (p *plan) lookInside(ctx context.Context) fallback.Inside {
	user := p.cfg.User
	if p.t.User != "" && !p.cfg.UserSet {
		user = p.t.User
	}
	addr := ""
	if p.t.Instance != nil {
		addr = p.t.Instance.PrivateIP
	}
	p.env.Debug("debug1: ec2ssh: the SSM port session got nothing from port %d: looking inside %s", p.cfg.Port, p.t.ID)
	ctx, cancel := context.WithTimeout(ctx, preflight.InsideTimeout)
	defer cancel()
	r := &insideRunner{side: p.side}
	start := time.Now()
	out, err := r.RunScript(ctx, p.t.ID, preflight.InsideScript, user, strconv.Itoa(p.cfg.Port))
	if err != nil && len(out) == 0 {
		p.env.Debug("debug1: ec2ssh: could not look inside: %v", err)
		return fallback.InsideUnknown
	}
	in := preflight.ParseInside(out, user, p.cfg.Port, addr)
	in.How, in.Took = r.How(), time.Since(start)
	if p.facts != nil && p.facts.Inside == nil {
		f := *p.facts
		f.Inside = in
		p.facts = &f
	}
	state := in.PortState(p.cfg.Port)
	p.env.Debug("debug1: ec2ssh: inside, port %d is %v (looked in %v)", p.cfg.Port, state, in.Took.Round(time.Millisecond))
	switch state {
	case preflight.PortRefused:
		return fallback.InsideRefused
	case preflight.PortListening:
		return fallback.InsideListening
	}
	return fallback.InsideUnknown
}

// ssmConn opens an SSM port session to t's SSH port.
func (p *plan) ssmConn(ctx context.Context, t *target) (net.Conn, error) {
	s, err := p.side.ssm(ctx)
	if err != nil {
		return nil, err
	}
	return s.StartPort(ctx, t.ID, p.cfg.Port, true)
}

// endpoint finds the instance's EC2 Instance Connect Endpoint: one of its
// VPC, in its subnet when there is one there.
func (p *plan) endpoint(ctx context.Context) (fallback.TunnelEndpoint, string, error) {
	if p.ep != nil {
		return *p.ep, p.epTarget, nil
	}
	a, err := p.side.client(ctx)
	if err != nil {
		return fallback.TunnelEndpoint{}, "", err
	}
	in := p.t.Instance
	if p.facts != nil && p.facts.Instance != nil {
		in = p.facts.Instance
	}
	if in == nil {
		if in, err = a.Resolve(ctx, p.t.ID); err != nil {
			return fallback.TunnelEndpoint{}, "", err
		}
		if in == nil {
			return fallback.TunnelEndpoint{}, "", failure.New(failure.Config, "no instance "+p.t.ID, "")
		}
	}
	var eps []preflight.InstanceConnectEndpoint
	if p.facts != nil && p.facts.Instance != nil {
		eps = p.facts.Endpoints
	}
	if eps == nil {
		var apiErr *preflight.APIError
		if eps, apiErr = a.InstanceConnectEndpoints(ctx, in.VPCID); apiErr != nil {
			return fallback.TunnelEndpoint{}, "", apiErr.AsFailure()
		}
	}
	var tes []fallback.TunnelEndpoint
	for _, e := range eps {
		tes = append(tes, fallback.TunnelEndpoint{ID: e.ID, DNSName: e.DNSName, VPCID: e.VPCID, SubnetID: e.SubnetID, State: e.State,
			SecurityGroups: e.SecurityGroups, PreserveClientIP: e.PreserveClientIP})
	}
	ep, ok := fallback.PickEndpoint(tes, in.VPCID, in.SubnetID)
	if !ok {
		return fallback.TunnelEndpoint{}, "", &failure.Error{Kind: failure.Unreachable, Msg: "no EC2 Instance Connect Endpoint is ready in " + in.VPCID,
			Hint: fmt.Sprintf("create one: aws ec2 create-instance-connect-endpoint --subnet-id %s --region %s", in.SubnetID, a.Region())}
	}
	if in.PrivateIP == "" {
		return fallback.TunnelEndpoint{}, "", failure.New(failure.Unreachable, in.ID+" has no private address for an endpoint to reach", "")
	}
	p.ep, p.epTarget = &ep, in.PrivateIP
	return ep, in.PrivateIP, nil
}

// eiceConn opens a tunnel to the instance's port through its endpoint.
func (p *plan) eiceConn(ctx context.Context) (net.Conn, error) {
	ep, ip, err := p.endpoint(ctx)
	if err != nil {
		return nil, err
	}
	a, err := p.side.client(ctx)
	if err != nil {
		return nil, err
	}
	p.env.Debug("debug1: ec2ssh: opening a tunnel through %s (%s) to %s port %d", ep.ID, ep.DNSName, ip, p.cfg.Port)
	return fallback.NewEICETunnels(a.Config).Open(ctx, ep, ip, p.cfg.Port)
}

func (p *plan) eiceTransport() connect.Transport {
	return func(ctx context.Context) (net.Conn, error) { return p.eiceConn(ctx) }
}

// connectRung is a rung for a connection: an authenticated client.
func (p *plan) connectRung(ctx context.Context, d fallback.Decision) (any, error) {
	creds, err := connect.LoadCredentialsWarn(p.cfg, p.env.Prompter, p.env.Debug, p.env.Log)
	if err != nil {
		return nil, err
	}
	var transport connect.Transport
	via := d.Step
	switch d.Step {
	case fallback.Direct:
		if p.cfg.ProxyJump == "" { // a jump host is reached by connect.Dial itself
			r := p.newRace(d, creds)
			transport = r.transport
			defer func() { p.raced(r) }()
		}
	case fallback.SSMPort:
		transport = p.ssmTransport()
	case fallback.EICE:
		transport = p.eiceTransport()
	case fallback.InstanceConnect:
		a, err := p.side.client(ctx)
		if err != nil {
			creds.Close()
			return nil, err
		}
		signer, err := fallback.OneTimeKey(ctx, fallback.NewInstanceConnect(a.Config), p.t.ID, p.cfg.User)
		if err != nil {
			creds.Close()
			return nil, err
		}
		creds.Prepend(signer)
		via = d.Via
		switch d.Via {
		case fallback.SSMPort:
			transport = p.ssmTransport()
		case fallback.EICE:
			transport = p.eiceTransport()
		}
	}
	start := time.Now()
	client, err := connect.Dial(ctx, p.cfg, creds, connect.NewHostKeys(p.cfg, p.env.Prompter, p.env.Log), transport, p.env)
	if err != nil && via == fallback.SSMPort && failure.KindOf(err) == failure.Unknown {
		// The agent's handshake race can still eat the first bytes of a
		// session (sshd then hangs up at the banner): one more session.
		p.env.Debug("debug1: ec2ssh: the SSH handshake over SSM failed (%v); one more session", err)
		client, err = connect.Dial(ctx, p.cfg, creds, connect.NewHostKeys(p.cfg, p.env.Prompter, p.env.Log), p.ssmTransport(), p.env)
	}
	if err != nil {
		creds.Close()
		return nil, err
	}
	overSSM := via == fallback.SSMPort
	if d.Step == fallback.Direct && len(p.races) > 0 && p.races[len(p.races)-1].won == fallback.SSMPort {
		overSSM = true
	}
	if overSSM {
		p.env.Debug("debug1: ec2ssh: connected over SSM in %v", time.Since(start).Round(time.Millisecond))
		if !p.cfg.ServerAliveSet {
			client.StartKeepalive(SSMKeepAlive)
		}
	}
	return connected{client, creds}, nil
}

type connected struct {
	client *connect.Client
	creds  *connect.Credentials
}

func (p *plan) ssmTransport() connect.Transport {
	return func(ctx context.Context) (net.Conn, error) { return p.ssmConn(ctx, p.t) }
}

// streamRung is a rung for --proxy: a byte stream to the port.
func (p *plan) streamRung(ctx context.Context, d fallback.Decision) (any, error) {
	switch d.Step {
	case fallback.Direct:
		r := p.newRace(d, nil)
		defer p.raced(r)
		return r.transport(ctx)
	case fallback.SSMPort:
		return p.ssmConn(ctx, p.t)
	case fallback.EICE:
		return p.eiceConn(ctx)
	}
	return nil, failure.New(failure.Config, "--proxy carries a byte stream: "+d.Step.String()+" cannot", "")
}

// displayName is host, or [host]:port when the port is not 22, as ssh(1)
// names hosts.
func displayName(host string, port int) string {
	if port == 22 {
		return host
	}
	return "[" + host + "]:" + strconv.Itoa(port)
}
