package reach

import (
	"context"
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
// checks start beside it. A connection that is up by then makes no AWS
// call (SPEC.md: "a healthy connection makes no AWS call").
const BesideGrace = 250 * time.Millisecond

// checks are the checks that run beside one connection attempt. They
// start when the TCP connect is slow (BesideGrace) or the attempt fails,
// so a connection that is up in time asks AWS nothing. A failed check that
// proves the dial doomed cancels it; an address that turns out to be an
// instance is reported on found.
type checks struct {
	side   *side
	dest   string
	t      *Target
	cfg    connect.Config
	creds  *connect.Credentials
	inside bool

	once     sync.Once
	done     chan struct{}
	result   gathered
	doomed   chan *doomedError     // at most one
	noTunnel chan preflight.Result // at most one: the endpoint cannot reach the port
	found    chan *Target          // at most one
	cancel   context.CancelFunc
	started  bool
}

type gathered struct {
	facts *preflight.Facts
	t     *Target
	err   error
}

func newChecks(s *side, dest string, t *Target, cfg *connect.Config, creds *connect.Credentials, inside bool) *checks {
	return &checks{side: s, dest: dest, t: t, cfg: *cfg, creds: creds, inside: inside,
		done: make(chan struct{}), doomed: make(chan *doomedError, 1), noTunnel: make(chan preflight.Result, 1), found: make(chan *Target, 1)}
}

// start starts the checks once (nil checks do nothing).
func (c *checks) start(ctx context.Context) {
	if c == nil {
		return
	}
	c.once.Do(func() {
		ctx, c.cancel = context.WithCancel(ctx)
		c.started = true
		go func() {
			defer close(c.done)
			// An address found to be an instance is said at once, before
			// the checks' own calls: SSM may race the dial without waiting
			// for the slowest of them (issue 20).
			sent := false
			onFound := func(t *Target) {
				if c.t == nil && !sent {
					sent = true
					c.found <- t
				}
			}
			f, t, err := c.side.gather(ctx, c.dest, c.t, &c.cfg, c.creds, gatherOpts{inside: c.inside, found: onFound})
			c.result = gathered{f, t, err}
			if t != nil {
				onFound(t)
			}
			if f != nil && t != nil {
				rep := preflight.NewReport(f, t.Address)
				if bad := doomed(rep); bad != nil {
					c.doomed <- &doomedError{check: *bad, t: t}
				}
				if bad := tunnelUseless(f, rep); bad != nil {
					c.noTunnel <- *bad
				}
			}
		}()
	})
}

// wait returns what the checks gathered (starting them if need be),
// waiting DiagnosisWait at most.
func (c *checks) wait(ctx context.Context) gathered {
	if c == nil {
		return gathered{}
	}
	c.start(ctx)
	t := time.NewTimer(DiagnosisWait)
	defer t.Stop()
	select {
	case <-c.done:
		return c.result
	case <-t.C:
		c.side.run.Env.Debug("debug1: ec2ssh: the checks took longer than %v; reporting without them", DiagnosisWait)
	case <-ctx.Done():
	}
	return gathered{}
}

// stop cancels checks that are no longer needed.
func (c *checks) stop() {
	if c != nil && c.cancel != nil {
		c.cancel()
	}
}

// doomed reports a check whose failure means the dial cannot succeed, so
// waiting for its TCP timeout is pointless: a blocking check, or what the
// look inside proved about sshd (a host firewall, sshd not running).
func doomed(r *preflight.Report) *preflight.Result {
	if bad := r.FirstFailed(preflight.Blocking); bad != nil {
		return bad
	}
	if c, ok := r.Result(preflight.CheckSSHD); ok && c.Status == preflight.Fail && c.Inside {
		return &c
	}
	return nil
}

// tunnelUseless reports the check that proves an EC2 Instance Connect
// Endpoint cannot carry a connection to the port: none is ready, or the
// security groups read on both sides leave no path (a path judged without
// them is unknown, and proves nothing).
func tunnelUseless(f *preflight.Facts, r *preflight.Report) *preflight.Result {
	c, ok := r.Result(preflight.CheckEICE)
	if !ok || len(f.SecurityGroups) == 0 {
		return nil
	}
	switch c.Status {
	case preflight.Fail, preflight.Warn, preflight.Skip:
		return &c
	}
	return nil
}

// doomedError is the cause a dial is cancelled with when a check proved it
// cannot succeed.
type doomedError struct {
	check preflight.Result
	t     *Target
}

func (d *doomedError) Error() string { return d.check.Summary }

// asFailure turns a cut-short dial into the failure the check found: its
// kind is what the check proved (preflight.Result.Kind).
func (d *doomedError) asFailure() error {
	return &failure.Error{Kind: d.check.FailureKind(), Msg: d.t.String() + ": " + d.check.Summary, Hint: d.check.Fix}
}

// gatherOpts say what the checks look at.
type gatherOpts struct {
	probe  bool // probe the SSH port (else the dial answers for it)
	inside bool // look inside the instance when its SSM agent is online
	// userFromImage: no user was given and the image's login user is
	// wanted: gather looks the image up beside the other parts.
	userFromImage bool
	// found, when set, hears of the instance as soon as it is resolved,
	// before the facts are gathered.
	found func(*Target)
}

// gather collects the facts about t (resolving dest first when t is nil).
func (s *side) gather(ctx context.Context, dest string, t *Target, cfg *connect.Config, creds *connect.Credentials, o gatherOpts) (*preflight.Facts, *Target, error) {
	c, err := s.get(ctx)
	if err != nil {
		return nil, t, err
	}
	if t == nil || t.Instance == nil {
		rt, err := s.resolve(ctx, dest, resolveOpts{user: !cfg.UserSet && !o.userFromImage && (t == nil || t.User == "")})
		if err != nil {
			return nil, nil, err
		}
		if rt != nil {
			if t != nil && rt.User == "" {
				rt.User = t.User
			}
			t = rt
			if o.found != nil {
				o.found(t)
			}
		}
		if c, err = s.get(ctx); err != nil { // the instance may be in another region
			return nil, t, err
		}
	}
	req := preflight.Request{Port: cfg.Port, SourceIP: s.run.Args.SourceIP, NoProbe: !o.probe, Address: cfg.HostName, User: cfg.User,
		UserFrom: preflight.UserFromLocal}
	if cfg.UserSet {
		req.UserFrom = preflight.UserFromCommandLine
	}
	if t != nil {
		req.Instance, req.Address = t.Instance, t.Address
		if t.User != "" && !cfg.UserSet {
			req.User, req.UserFrom = t.User, preflight.UserFromAMI
		}
	}
	req.UserFromImage = o.userFromImage && !cfg.UserSet && req.UserFrom != preflight.UserFromAMI
	if o.inside {
		req.Inside = &insideRunner{ssm: c.SSM()}
	}
	if creds != nil {
		for _, k := range creds.Keys {
			req.Keys = append(req.Keys, preflight.KeyMaterial{Source: k.Source, Type: k.Type, Blob: k.Blob, Public: k.Public, Private: k.Private})
		}
	}
	start := time.Now()
	facts := c.Gather(ctx, req)
	s.run.Env.Debug("debug1: ec2ssh: checks gathered in %v", time.Since(start).Round(time.Millisecond))
	for part, took := range facts.Timings {
		s.run.Env.Debug("debug1: ec2ssh: gathered %s in %v", part, took.Round(time.Millisecond))
	}
	return facts, t, nil
}

// probeFromDial is what a failed dial learnt about the SSH port, so the
// sshd check needs no second connection. A failure that says nothing about
// the port (DNS, a cancel, an unclassified error) gives no probe: it must
// never pass for "open".
func probeFromDial(addr string, port int, err error) *preflight.Probe {
	p := &preflight.Probe{Address: addr, Port: port}
	switch k := failure.KindOf(err); k {
	case failure.Refused:
		p.Result = preflight.ProbeRefused
	case failure.Unreachable:
		p.Result = preflight.ProbeTimeout
	case failure.NoBanner:
		p.Result = preflight.ProbeNoBanner
	case failure.AuthRejected, failure.HostKeyChanged, failure.HostKeyUnknown, failure.Algorithms:
		p.Result, p.Banner = preflight.ProbeOpen, "SSH-2.0 (the handshake began)"
	case failure.DNS, failure.Canceled, failure.Config, failure.Unknown, failure.AWSAuth, failure.InstanceState, failure.SessionEnded:
		return nil
	}
	return p
}

// situationFacts folds what the checks found into the ladder's situation.
func situationFacts(s *fallback.Situation, f *preflight.Facts) {
	if f == nil {
		return
	}
	if f.Instance != nil {
		s.State = f.Instance.State
		for _, ep := range f.Endpoints {
			if ep.VPCID == f.Instance.VPCID && ep.Ready() {
				s.Endpoint = true
			}
		}
		if s.Endpoint && tunnelUseless(f, preflight.NewReport(f, f.Instance.PrivateIP)) != nil {
			s.Endpoint = false // ready, but the checks prove it cannot reach the port
		}
	}
	if f.SSM != nil {
		s.Agent = fallback.AgentOffline
		if f.SSM.Online() {
			s.Agent = fallback.AgentOnline
		}
	}
	if f.Inside != nil {
		s.Inside = insideOf(f.Inside, f.Port)
	}
}

// insideOf is what the look inside says of the SSH port, for the ladder.
func insideOf(in *preflight.Inside, port int) fallback.SSHDInside {
	switch in.PortState(port) {
	case preflight.PortRefused:
		return fallback.InsideRefuses
	case preflight.PortListening:
		return fallback.InsideListening
	}
	return fallback.InsideUnknown
}
