package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// DiagnosisWait bounds how long a failed connection waits for the checks
// before it reports without them.
const DiagnosisWait = 15 * time.Second

// BesideGrace is how long a dial may take to connect over TCP before the
// checks start beside it. A connection that is up by then does not pay for
// them (AWS calls, and the SDK's memory); one that fails later gets them
// after the failure.
const BesideGrace = 250 * time.Millisecond

// ec2Side is the EC2 part of one run. Its AWS clients are made on first
// use, so a destination reachable as plain ssh makes no AWS call unless the
// connection fails or credentials are configured.
type ec2Side struct {
	args  *connect.Args
	env   *connect.Env
	cache *preflight.Cache

	once   sync.Once
	aws    *preflight.AWS
	awsErr error
}

// target is an instance a destination resolved to.
type target struct {
	Dest     string // as resolved (the HostName)
	Instance *preflight.Instance
	ID       string
	Name     string
	Address  string
	User     string // the AMI's default user, "" if unknown
}

func (t *target) String() string {
	if t.Name != "" && t.Name != t.ID {
		return t.Name + " (" + t.ID + ")"
	}
	return t.ID
}

func newEC2Side(args *connect.Args, env *connect.Env) *ec2Side {
	c := preflight.DefaultCache()
	if args.NoCache {
		c = nil
	}
	return &ec2Side{args: args, env: env, cache: c}
}

func (e *ec2Side) client(ctx context.Context) (*preflight.AWS, error) {
	e.once.Do(func() {
		e.aws, e.awsErr = preflight.LoadAWS(ctx, e.args.Profile, e.args.Region)
	})
	return e.aws, e.awsErr
}

// configured reports whether AWS may be asked without being needed.
func (e *ec2Side) configured() bool { return preflight.Configured(e.args.Profile) }

func (e *ec2Side) cached(ctx context.Context, dest string) *target {
	if e.cache == nil || !e.configured() || !e.cache.Has(e.args.Profile, dest) {
		return nil
	}
	a, err := e.client(ctx)
	if err != nil {
		return nil
	}
	c := e.cache.Get(e.args.Profile, a.Region(), dest)
	if c == nil {
		return nil
	}
	e.env.Debug("debug1: ec2ssh: %s is %s at %s (cached)", dest, c.InstanceID, c.Address)
	return &target{Dest: dest, ID: c.InstanceID, Name: c.Name, Address: c.Address, User: c.User}
}

func (e *ec2Side) dropCache(ctx context.Context, dest string) {
	if e.cache == nil {
		return
	}
	e.cache.Drop(e.args.Profile, dest)
}

// resolve asks EC2 which instance dest is. (nil, nil): not an instance.
func (e *ec2Side) resolve(ctx context.Context, dest string) (*target, error) {
	a, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	if a.Region() == "" {
		return nil, &failure.Error{Kind: failure.AWSAuth, Msg: "no AWS region is configured to look up " + dest,
			Hint: "pass --region, set AWS_REGION, or run: aws configure set region REGION"}
	}
	start := time.Now()
	in, err := a.Resolve(ctx, dest)
	if err != nil || in == nil {
		return nil, err
	}
	addr, err := in.Address(e.args.Address)
	if err != nil {
		return nil, err
	}
	t := &target{Dest: dest, Instance: in, ID: in.ID, Name: in.Name, Address: addr, User: a.ImageUser(ctx, in)}
	e.env.Debug("debug1: ec2ssh: %s is %s (%s) at %s, resolved in %v", dest, in.ID, in.State, addr, time.Since(start).Round(time.Millisecond))
	if e.cache != nil && in.State == "running" {
		e.cache.Put(e.args.Profile, a.Region(), dest, preflight.Cached{InstanceID: in.ID, Name: in.Name, Address: addr, User: t.User})
	}
	return t, nil
}

// apply points cfg at the instance: its address, and the AMI's default
// user when neither the command line nor ssh_config named one.
//
// Host keys are recorded under the instance id (unless HostKeyAlias says
// otherwise), so that a new address or the SSM path does not ask again, and
// OpenSSH with "ProxyCommand ec2ssh --proxy %h %p" for "Host i-*" agrees.
func (t *target) apply(cfg *connect.Config) {
	cfg.HostName = t.Address
	if !cfg.UserSet && t.User != "" {
		cfg.User = t.User
	}
	if cfg.HostKeyAlias == "" && t.ID != "" {
		cfg.HostKeyAlias = t.ID
	}
}

// gather collects the facts about t (resolving dest first when t is nil).
// probe asks the SSH port itself; without it the dial's own result stands
// in (see probeFromDial).
func (e *ec2Side) gather(ctx context.Context, dest string, t *target, cfg *connect.Config, creds *connect.Credentials, probe bool) (*preflight.Facts, *target, error) {
	a, err := e.client(ctx)
	if err != nil {
		return nil, t, err
	}
	if t == nil || t.Instance == nil {
		if t, err = e.resolve(ctx, dest); err != nil {
			return nil, nil, err
		}
	}
	req := preflight.Request{Port: cfg.Port, SourceIP: e.args.SourceIP, NoProbe: !probe, Address: cfg.HostName}
	if t != nil {
		req.Instance, req.Address = t.Instance, t.Address
	}
	if creds != nil {
		for _, k := range creds.Keys {
			req.Keys = append(req.Keys, preflight.KeyMaterial{Source: k.Source, Type: k.Type, Blob: k.Blob, Public: k.Public, Private: k.Private})
		}
	}
	start := time.Now()
	facts := a.Gather(ctx, req)
	e.env.Debug("debug1: ec2ssh: checks gathered in %v", time.Since(start).Round(time.Millisecond))
	return facts, t, nil
}

// doomed reports a check whose failure means the dial cannot succeed, so
// waiting for its TCP timeout is pointless.
func doomed(r *preflight.Report) *preflight.Result {
	for _, id := range []string{"instance-state", "security-group", "network-acl", "network-path"} {
		if c, ok := r.Result(id); ok && c.Status == preflight.Fail {
			return &c
		}
	}
	return nil
}

// doomedError is the cause a dial is cancelled with when a check proved it
// cannot succeed.
type doomedError struct {
	check preflight.Result
	t     *target
}

func (d *doomedError) Error() string { return d.check.Summary }

// asFailure turns a cut-short dial into the failure the check found.
func (d *doomedError) asFailure() error {
	kind := failure.Unreachable
	if d.check.ID == "instance-state" {
		kind = failure.InstanceState
	}
	return &failure.Error{Kind: kind, Msg: fmt.Sprintf("%s: %s", d.t, d.check.Summary), Hint: d.check.Fix}
}

// probeFromDial is what the dial learnt about the SSH port, so the sshd
// check needs no second connection.
func probeFromDial(addr string, port int, err error) *preflight.Probe {
	p := &preflight.Probe{Address: addr, Port: port, Result: "open", Banner: "SSH-2.0 (the handshake began)"}
	switch failure.KindOf(err) {
	case failure.Refused:
		p.Result, p.Banner = "refused", ""
	case failure.Unreachable:
		p.Result, p.Banner = "timeout", ""
	case failure.NoBanner:
		p.Result, p.Banner = "no-banner", ""
	case failure.DNS, failure.Canceled, failure.Config:
		return nil
	}
	return p
}

// explain writes the failed checks of a report (all of them with -v) to w,
// but for skip: the check the error itself already reports.
func explain(w io.Writer, t *target, r *preflight.Report, verbose bool, skip string) {
	name := r.Target.Address
	if t != nil {
		name = t.String()
	}
	for _, c := range r.Checks {
		if c.ID == skip || (c.ID == "sshd" && c.Status != preflight.Fail) {
			continue
		}
		switch {
		case c.Status == preflight.Fail:
			fmt.Fprintf(w, "ec2ssh: %s: %s: %s\n", name, c.ID, c.Summary)
			if c.Fix != "" {
				fmt.Fprintf(w, "ec2ssh: fix: %s\n", c.Fix)
			}
		case verbose:
			fmt.Fprintf(w, "ec2ssh: %s: %s: %s: %s\n", name, c.ID, c.Status, c.Summary)
		}
	}
}

// runDiagnose is --diagnose: every check, as a table or JSON; exit 0 when
// none failed, 1 when some did, 255 when it could not run.
func runDiagnose(ctx context.Context, args *connect.Args, cfg *connect.Config, env *connect.Env, stdout, stderr *os.File) int {
	side := newEC2Side(args, env)
	side.cache = nil // a diagnosis looks afresh
	creds, err := connect.LoadCredentials(cfg, nil, env.Debug)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	defer creds.Close()
	if !side.configured() && preflight.ClassifyDest(cfg.HostName) != preflight.DestID {
		// Without AWS there is only the port to look at; say so.
		env.Log("ec2ssh: no AWS credentials are configured: only the SSH port can be checked")
	}
	facts, t, err := side.gather(ctx, cfg.HostName, nil, cfg, creds, true)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	addr := cfg.HostName
	if t != nil {
		addr = t.Address
	}
	rep := preflight.NewReport(facts, addr)
	if t == nil {
		env.Log("ec2ssh: %s is not an EC2 instance in %s: the instance checks are skipped", cfg.HostName, rep.Target.Region)
	}
	if args.JSON {
		if err := rep.WriteJSON(stdout); err != nil {
			return report(stderr, err, args.Quiet)
		}
	} else {
		rep.WriteTable(stdout, isTerminal(stdout) && os.Getenv("NO_COLOR") == "")
	}
	if len(rep.Failed()) > 0 {
		return 1
	}
	return 0
}

type gathered struct {
	facts *preflight.Facts
	t     *target
	err   error
}

// dialTarget resolves the destination when it names an instance, dials it,
// and runs the checks beside the dial. The happy path never waits on AWS:
// an address or a resolvable name is dialled at once, and the checks'
// results are dropped when the connection succeeds. When it fails, the
// failed checks are written to stderr before the error is returned; a
// check that proves the dial doomed cuts it short.
func dialTarget(ctx context.Context, args *connect.Args, cfg *connect.Config, env *connect.Env, stderr io.Writer) (*connect.Client, *connect.Credentials, error) {
	side := newEC2Side(args, env)
	dest := cfg.HostName
	kind := preflight.ClassifyDest(dest)
	var t *target
	switch kind {
	case preflight.DestID:
		if t = side.cached(ctx, dest); t == nil {
			var err error
			if t, err = side.resolve(ctx, dest); err != nil {
				return nil, nil, err
			}
			if t == nil {
				return nil, nil, &failure.Error{Kind: failure.Config, Msg: "no instance " + dest + " in " + side.aws.Region(),
					Hint: "check the id and the region (--region, AWS_REGION)"}
			}
		}
	case preflight.DestName:
		t = side.cached(ctx, dest)
	}
	if args.Fallback == "ssm" {
		// Straight to SSM: the destination must be an instance.
		if t == nil {
			var err error
			if t, err = side.resolve(ctx, dest); err != nil {
				return nil, nil, err
			}
			if t == nil {
				return nil, nil, &failure.Error{Kind: failure.Config, Msg: dest + " is not an EC2 instance, so --fallback=ssm cannot reach it",
					Hint: "give an instance id or Name tag, or drop --fallback=ssm"}
			}
		}
		t.apply(cfg)
		client, creds, err := dialOverSSM(ctx, side, t, cfg, env)
		if failure.KindOf(err) == failure.Refused {
			return nil, nil, &sshdDown{side: side, t: t, err: err}
		}
		return client, creds, err
	}
	if t != nil {
		t.apply(cfg)
	}
	for attempt := 0; ; attempt++ {
		creds, err := connect.LoadCredentials(cfg, env.Prompter, env.Debug)
		if err != nil {
			return nil, nil, err
		}
		beside := t != nil || ((kind == preflight.DestAddress || kind == preflight.DestEC2DNS) && side.configured())
		var client *connect.Client
		chk, err := side.dialWithChecks(ctx, dest, t, cfg, creds, env, beside, func(ctx context.Context, denv *connect.Env) error {
			var err error
			client, err = connect.Dial(ctx, cfg, creds, connect.NewHostKeys(cfg, env.Prompter, env.Log), nil, denv)
			return err
		})
		if err == nil {
			return client, creds, nil
		}
		creds.Close()
		de := chk.de
		// A name DNS does not know may be a Name tag (SPEC.md, "Destinations").
		if attempt == 0 && kind == preflight.DestName && t == nil && failure.KindOf(err) == failure.DNS && side.configured() {
			chk.cancel()
			tt, rerr := side.resolve(ctx, dest)
			if rerr != nil {
				return nil, nil, rerr
			}
			if tt != nil {
				t = tt
				t.apply(cfg)
				continue
			}
			return nil, nil, err
		}
		side.dropCache(ctx, dest)
		var g gathered
		if failure.KindOf(err) != failure.Canceled {
			g = chk.wait(ctx, env)
		}
		chk.cancel()
		if t == nil && g.t != nil {
			t = g.t // an address or EC2 name that turned out to be an instance
		}
		if t != nil && ladder(args.Fallback, failure.KindOf(err)) == viaSSM && running(t, g.facts) {
			reason := err.Error()
			if de != nil {
				reason = de.check.Summary
			} else if g.facts != nil {
				if bad := firstFailure(preflight.NewReport(g.facts, cfg.HostName)); bad != nil {
					reason = bad.Summary
				}
			}
			if cfg.LogLevel != "QUIET" {
				fmt.Fprintf(stderr, "ec2ssh: %s: %s; continuing over SSM\n", t, reason)
			}
			t.apply(cfg)
			client, creds, ssmErr := dialOverSSM(ctx, side, t, cfg, env)
			if ssmErr == nil {
				return client, creds, nil
			}
			if failure.KindOf(ssmErr) == failure.Refused {
				return nil, nil, &sshdDown{side: side, t: t, err: ssmErr}
			}
			if k := failure.KindOf(ssmErr); k == failure.HostKeyChanged || k == failure.AuthRejected || k == failure.HostKeyUnknown {
				return nil, nil, ssmErr
			}
			err = &failure.Error{Kind: failure.KindOf(err), Msg: err.Error() + "; over SSM too: " + ssmErr.Error(), Err: err, Hint: failure.HintOf(ssmErr)}
		}
		if t != nil && ladder(args.Fallback, failure.KindOf(err)) == viaInstanceConnect && running(t, g.facts) {
			reason := "the server refused the keys offered"
			if g.facts != nil {
				if c, ok := preflight.NewReport(g.facts, cfg.HostName).Result("key-pair"); ok && c.Status == preflight.Fail {
					reason = c.Summary
				}
			}
			if t.User != "" && cfg.User != t.User {
				reason += fmt.Sprintf(" (note: the AMI's login user is %s, not %s)", t.User, cfg.User)
			}
			if cfg.LogLevel != "QUIET" {
				fmt.Fprintf(stderr, "ec2ssh: %s: %s; continuing with a one-time key from EC2 Instance Connect\n", t, reason)
			}
			client, creds, eicErr := dialWithInstanceConnect(ctx, side, t, cfg, env)
			if eicErr == nil {
				return client, creds, nil
			}
			err = &failure.Error{Kind: failure.KindOf(err), Msg: err.Error() + "; with EC2 Instance Connect too: " + eicErr.Error(), Err: err,
				Hint: failure.HintOf(eicErr)}
		}
		if g.facts != nil {
			g.facts.SSHD = probeFromDial(cfg.HostName, cfg.Port, err)
			if de != nil {
				g.facts.SSHD = nil // the dial was cut short: it learnt nothing
			}
			if cfg.LogLevel != "QUIET" {
				skip := ""
				if de != nil {
					skip = de.check.ID
				}
				explain(stderr, g.t, preflight.NewReport(g.facts, cfg.HostName), strings.HasPrefix(cfg.LogLevel, "DEBUG"), skip)
				for part, took := range g.facts.Timings {
					env.Debug("debug1: ec2ssh: gathered %s in %v", part, took.Round(time.Millisecond))
				}
			}
		} else if g.err != nil {
			env.Debug("debug1: ec2ssh: the checks could not run: %v", g.err)
		}
		return nil, nil, err
	}
}

// route is what the fallback ladder does after a failure.
type route int

const (
	giveUp             route = iota // report the failure
	viaSSM                          // SSH over an SSM port session
	viaInstanceConnect              // a one-time key pushed with EC2 Instance Connect, and one retry
)

// ladder decides, from the failure kind alone, whether another transport
// can help (SPEC.md, "The ladder"). Every kind is decided here, and the
// default gives up.
func ladder(mode string, k failure.Kind) route {
	if mode == "never" {
		return giveUp
	}
	switch k {
	case failure.Unreachable, failure.Refused, failure.NoBanner, failure.DNS:
		return viaSSM
	case failure.AuthRejected:
		return viaInstanceConnect
	case failure.HostKeyChanged, failure.HostKeyUnknown, failure.InstanceState, failure.Algorithms,
		failure.AWSAuth, failure.Config, failure.Canceled, failure.Unknown:
		return giveUp
	}
	return giveUp
}

// running reports whether the instance is running, as far as is known.
func running(t *target, f *preflight.Facts) bool {
	if f != nil && f.Instance != nil {
		return f.Instance.State == "running"
	}
	return t.Instance == nil || t.Instance.State == "running"
}

func firstFailure(r *preflight.Report) *preflight.Result {
	for _, id := range []string{"instance-state", "security-group", "network-acl", "network-path", "sshd"} {
		if c, ok := r.Result(id); ok && c.Status == preflight.Fail {
			return &c
		}
	}
	return nil
}

// ssmTransport opens an SSM port session to the instance's SSH port.
func ssmTransport(side *ec2Side, t *target, port int) connect.Transport {
	return func(ctx context.Context) (net.Conn, error) {
		a, err := side.client(ctx)
		if err != nil {
			return nil, err
		}
		s := fallback.NewSSM(a.Config)
		return s.StartPort(ctx, t.ID, port, true)
	}
}

// dialOverSSM runs the same SSH connection (host key check, authentication,
// forwarding) over an SSM port session.
func dialOverSSM(ctx context.Context, side *ec2Side, t *target, cfg *connect.Config, env *connect.Env) (*connect.Client, *connect.Credentials, error) {
	creds, err := connect.LoadCredentials(cfg, env.Prompter, env.Debug)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	client, err := connect.Dial(ctx, cfg, creds, connect.NewHostKeys(cfg, env.Prompter, env.Log), ssmTransport(side, t, cfg.Port), env)
	if err != nil {
		creds.Close()
		return nil, nil, err
	}
	env.Debug("debug1: ec2ssh: connected over SSM in %v", time.Since(start).Round(time.Millisecond))
	return client, creds, nil
}

// proxyConn opens the byte stream for --proxy: the port directly when it
// answers, else (for an instance, under --fallback=auto) an SSM port
// session to it. The checks run beside the direct attempt and cut a doomed
// one short, as for a connection.
func proxyConn(ctx context.Context, args *connect.Args, cfg *connect.Config, env *connect.Env, stderr io.Writer) (net.Conn, error) {
	side := newEC2Side(args, env)
	dest := cfg.HostName
	kind := preflight.ClassifyDest(dest)
	var t *target
	if kind == preflight.DestID || kind == preflight.DestName {
		t = side.cached(ctx, dest)
		if t == nil && (kind == preflight.DestID || (side.configured() && !resolvable(ctx, dest))) {
			var err error
			if t, err = side.resolve(ctx, dest); err != nil {
				return nil, err
			}
			if t == nil && kind == preflight.DestID {
				return nil, failure.Configf("check the id and the region", "no instance %s", dest)
			}
		}
	}
	if t != nil {
		cfg.HostName = t.Address
	}
	if args.Fallback == "ssm" && t != nil {
		return ssmTransport(side, t, cfg.Port)(ctx)
	}
	beside := t != nil || ((kind == preflight.DestAddress || kind == preflight.DestEC2DNS) && side.configured())
	var conn net.Conn
	chk, err := side.dialWithChecks(ctx, dest, t, cfg, nil, env, beside, func(ctx context.Context, denv *connect.Env) error {
		var err error
		conn, err = connect.DirectTransport(cfg, denv)(ctx)
		return err
	})
	if err == nil {
		return conn, nil
	}
	defer chk.cancel()
	if chk.de != nil {
		t = chk.de.t
	}
	if t == nil {
		t = chk.wait(ctx, env).t // an address that turned out to be an instance
	}
	if t == nil || ladder(args.Fallback, failure.KindOf(err)) != viaSSM {
		return nil, err
	}
	if !args.Quiet {
		fmt.Fprintf(stderr, "ec2ssh: %s: %s; continuing over SSM\n", t, err)
	}
	return ssmTransport(side, t, cfg.Port)(ctx)
}

// resolvable reports whether DNS knows name (briefly: a name it does not
// know may be a Name tag).
func resolvable(ctx context.Context, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	return err == nil && len(addrs) > 0
}

// dialWithInstanceConnect pushes a one-time key with EC2 Instance Connect
// and dials once more, offering it first.
func dialWithInstanceConnect(ctx context.Context, side *ec2Side, t *target, cfg *connect.Config, env *connect.Env) (*connect.Client, *connect.Credentials, error) {
	a, err := side.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	signer, err := fallback.OneTimeKey(ctx, fallback.NewInstanceConnect(a.Config), t.ID, cfg.User)
	if err != nil {
		return nil, nil, err
	}
	creds, err := connect.LoadCredentials(cfg, env.Prompter, env.Debug)
	if err != nil {
		return nil, nil, err
	}
	creds.Prepend(signer)
	client, err := connect.Dial(ctx, cfg, creds, connect.NewHostKeys(cfg, env.Prompter, env.Log), nil, env)
	if err != nil {
		creds.Close()
		return nil, nil, err
	}
	return client, creds, nil
}

// checked is the checks that ran (or may run) beside one dial.
type checked struct {
	on      bool
	de      *doomedError // set when a failed check cut the dial short
	results chan gathered
	cancel  context.CancelFunc
}

// wait returns what the checks gathered, waiting DiagnosisWait at most.
func (c *checked) wait(ctx context.Context, env *connect.Env) gathered {
	if !c.on {
		return gathered{}
	}
	select {
	case g := <-c.results:
		return g
	case <-time.After(DiagnosisWait):
		env.Debug("debug1: ec2ssh: the checks took longer than %v; reporting without them", DiagnosisWait)
	case <-ctx.Done():
	}
	return gathered{}
}

// dialWithChecks runs dial with the checks beside it (when on). They start
// when the TCP connect is slow (BesideGrace) or the dial fails, so a
// connection that is up in time asks AWS nothing; a check that proves the
// dial doomed cancels it, and its error becomes that check's failure. On
// success the checks are cancelled; on failure the caller waits for them
// and cancels them.
func (e *ec2Side) dialWithChecks(ctx context.Context, dest string, t *target, cfg *connect.Config, creds *connect.Credentials,
	env *connect.Env, on bool, dial func(context.Context, *connect.Env) error) (*checked, error) {
	dialCtx, cancelDial := context.WithCancelCause(ctx)
	defer cancelDial(nil)
	gatherCtx, cancelGather := context.WithCancel(ctx)
	c := &checked{on: on, results: make(chan gathered, 1), cancel: cancelGather}
	failed, connected := make(chan struct{}), make(chan struct{})
	var once sync.Once
	denv := *env
	denv.Connected = func() { once.Do(func() { close(connected) }) }
	if on {
		cc := *cfg
		go func() {
			select {
			case <-time.After(BesideGrace): // slow to connect: the checks may say why
			case <-connected: // up in time: check only if it fails after all
				select {
				case <-failed:
				case <-gatherCtx.Done():
					return
				}
			case <-gatherCtx.Done():
				return
			}
			f, tt, err := e.gather(gatherCtx, dest, t, &cc, creds, false) // the dial is the probe
			c.results <- gathered{f, tt, err}
			if f != nil && tt != nil {
				if bad := doomed(preflight.NewReport(f, tt.Address)); bad != nil {
					cancelDial(&doomedError{check: *bad, t: tt})
				}
			}
		}()
	}
	err := dial(dialCtx, &denv)
	if err == nil {
		cancelGather() // the checks' answers are not needed
		return c, nil
	}
	close(failed)
	if errors.As(context.Cause(dialCtx), &c.de) && ctx.Err() == nil {
		err = c.de.asFailure()
	}
	return c, err
}
