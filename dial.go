package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// Racing: an instance whose TCP connect has not completed after a short
// grace gets an SSM port session started beside the pending dial, and the
// transport that first shows sshd's banner carries the connection; the
// other is ended (the dial cancelled, the session terminated). One SSH
// handshake runs, on the winner: two would ask the person twice (host key,
// passphrase). SPEC.md, "Connecting".

const (
	// MinRaceGrace: no AWS call before BesideGrace (a healthy connection
	// makes none).
	MinRaceGrace = BesideGrace
	// MaxRaceGrace: a TCP connect slower than this to an instance in a
	// region whose API answered faster is not a slow network.
	MaxRaceGrace = time.Second
	// UnknownRaceGrace is the grace when no round trip to the region has
	// been measured (an address resolved by the checks, an old cache entry).
	UnknownRaceGrace = 500 * time.Millisecond
)

// raceGrace is how long a TCP connect to t may take before SSM races it.
// An EC2 API call to the instance's region takes at least three round
// trips on the same network (TCP, TLS, the request) plus the service's
// time, so a TCP connect (one round trip) that has not completed in one
// API call's time is a dropped SYN, not a slow network. Bounded by
// [MinRaceGrace, MaxRaceGrace], and by half the ConnectTimeout so that the
// race runs inside it.
func raceGrace(t *target, connectTimeout time.Duration) time.Duration {
	g := UnknownRaceGrace
	if t != nil && t.APIRTT > 0 {
		g = t.APIRTT
	}
	g = min(max(g, MinRaceGrace), MaxRaceGrace)
	if connectTimeout > 0 {
		g = min(g, connectTimeout/2)
	}
	return g
}

// checks are the checks that run beside one connection attempt. They
// start when the TCP connect is slow (BesideGrace) or the attempt fails,
// so a connection that is up in time asks AWS nothing. A failed check that
// proves the dial doomed cancels it; an address that turns out to be an
// instance is reported on found.
type checks struct {
	side   *ec2Side
	dest   string
	t      *target
	cfg    connect.Config
	creds  *connect.Credentials
	inside bool

	once    sync.Once
	started chan struct{}
	done    chan struct{}
	result  gathered
	doomed  chan *doomedError // at most one
	found   chan *target      // at most one
	cancel  context.CancelFunc
}

type gathered struct {
	facts *preflight.Facts
	t     *target
	err   error
}

func newChecks(side *ec2Side, dest string, t *target, cfg *connect.Config, creds *connect.Credentials, inside bool) *checks {
	return &checks{side: side, dest: dest, t: t, cfg: *cfg, creds: creds, inside: inside,
		started: make(chan struct{}), done: make(chan struct{}), doomed: make(chan *doomedError, 1), found: make(chan *target, 1)}
}

// start starts the checks once (nil checks do nothing).
func (c *checks) start(ctx context.Context) {
	if c == nil {
		return
	}
	c.once.Do(func() {
		ctx, c.cancel = context.WithCancel(ctx)
		close(c.started)
		go func() {
			defer close(c.done)
			f, t, err := c.side.gather(ctx, c.dest, c.t, &c.cfg, c.creds, gatherOpts{inside: c.inside})
			c.result = gathered{f, t, err}
			if t != nil && c.t == nil {
				c.found <- t
			}
			if f != nil && t != nil {
				if bad := doomed(preflight.NewReport(f, t.Address)); bad != nil {
					c.doomed <- &doomedError{check: *bad, t: t}
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
	select {
	case <-c.done:
		return c.result
	case <-time.After(DiagnosisWait):
		c.side.env.Debug("debug1: ec2ssh: the checks took longer than %v; reporting without them", DiagnosisWait)
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
	if c, ok := r.Result(preflight.CheckSSHD); ok && c.Status == preflight.Fail {
		for _, e := range c.Evidence {
			if len(e) > 13 && e[:13] == "looked inside" {
				return &c
			}
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
	switch d.check.ID {
	case preflight.CheckInstanceState:
		kind = failure.InstanceState
	case preflight.CheckSSHD:
		if d.check.Summary != "" && containsAny(d.check.Summary, "not running", "listens on") {
			kind = failure.Refused
		}
	}
	return &failure.Error{Kind: kind, Msg: d.t.String() + ": " + d.check.Summary, Hint: d.check.Fix}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}

// race runs one attempt to reach sshd: the direct transport, with the
// checks beside it and, for an instance, an SSM port session raced after
// the grace. What happened is left in its fields for the ladder.
type race struct {
	direct connect.Transport
	// ssm opens an SSM port session to t's SSH port; nil: no racing.
	ssm    func(ctx context.Context, t *target) (net.Conn, error)
	t      *target
	grace  time.Duration
	checks *checks
	wait   time.Duration // bound on waiting for the first bytes (the banner)
	name   string        // host:port, for messages

	// After the race.
	won       fallback.Step // the transport that carried it; Stop if none
	directErr error
	ssmErr    error // set when SSM was tried and failed
	ssmTried  bool
	took      time.Duration // until the winner showed its banner
	cut       *doomedError  // a check that cut the direct dial short

	cleanup sync.WaitGroup // losers still being ended
}

type raced struct {
	step fallback.Step
	conn net.Conn
	err  error
}

// transport runs the race; it is a connect.Transport.
func (r *race) transport(ctx context.Context) (net.Conn, error) {
	start := time.Now()
	rctx, cancelAll := context.WithCancel(ctx)
	dctx, cancelDirect := context.WithCancelCause(rctx)
	results := make(chan raced, 2)
	tcpUp := make(chan struct{})
	var upOnce sync.Once
	directEnv := func(ctx context.Context) (net.Conn, error) {
		conn, err := r.direct(ctx)
		if err != nil {
			return nil, err
		}
		upOnce.Do(func() { close(tcpUp) })
		return awaitBanner(conn, r.wait, r.name)
	}
	go func() {
		c, err := directEnv(dctx)
		results <- raced{fallback.Direct, c, err}
	}()
	pending := 1
	besideTimer := time.NewTimer(BesideGrace)
	raceTimer := time.NewTimer(r.grace)
	defer besideTimer.Stop()
	defer raceTimer.Stop()
	tcp := (<-chan struct{})(tcpUp)
	raceDue, up := false, false
	var found <-chan *target
	var doomedCh <-chan *doomedError
	if r.checks != nil {
		found, doomedCh = r.checks.found, r.checks.doomed
	}
	startSSM := func() {
		if r.ssmTried || r.ssm == nil || r.t == nil {
			return
		}
		r.ssmTried = true
		pending++
		t := r.t
		go func() {
			c, err := r.ssm(rctx, t)
			if err == nil {
				c, err = awaitBanner(c, r.wait, r.name)
			}
			results <- raced{fallback.SSMPort, c, err}
		}()
	}
	finish := func(winner raced) (net.Conn, error) {
		r.won, r.took = winner.step, time.Since(start)
		if winner.step == fallback.SSMPort {
			cancelDirect(errors.New("SSM won the race"))
		} else {
			cancelAll() // an SSM session still starting gives up
		}
		// Whatever is still running is ended in the background; run waits
		// for it (TerminateSession) before it exits.
		r.cleanup.Add(1)
		go func(left int) {
			defer r.cleanup.Done()
			for ; left > 0; left-- {
				if x := <-results; x.err == nil {
					x.conn.Close()
				}
			}
			cancelAll()
		}(pending)
		return winner.conn, nil
	}
	for pending > 0 {
		select {
		case <-besideTimer.C:
			// Slow to connect: the checks may say why, and may prove the
			// dial doomed. When SSM races it, that proof gains nothing (SSM
			// starts anyway): they wait, so as not to slow the race on a
			// small machine, until a transport has won or failed.
			if !up && (r.ssm == nil || r.t == nil) {
				r.checks.start(ctx) // (an address's instance is found by them)
			}
		case <-tcp:
			up, tcp = true, nil
		case <-raceTimer.C:
			raceDue = true
			if !up {
				startSSM()
			}
		case t := <-found:
			found = nil
			if r.t == nil {
				r.t = t
				if raceDue && !up {
					startSSM()
				}
			}
		case d := <-doomedCh:
			doomedCh = nil
			r.cut = d
			cancelDirect(d)
			startSSM() // the direct dial cannot succeed: no reason to wait for the grace
		case x := <-results:
			pending--
			if x.err == nil {
				return finish(x)
			}
			switch x.step {
			case fallback.Direct:
				r.directErr = x.err
				if r.cut != nil && ctx.Err() == nil {
					r.directErr = r.cut.asFailure()
				}
				r.checks.start(ctx) // failed: the checks say why (and may find an instance)
			case fallback.SSMPort:
				r.ssmErr = x.err
				// SSM cannot carry it (no agent, denied): the checks may
				// now prove the pending dial doomed, rather than let it wait
				// out TCP's timeout.
				if !up {
					r.checks.start(ctx)
				}
			}
		case <-ctx.Done():
			cancelAll()
			for ; pending > 0; pending-- {
				if x := <-results; x.err == nil {
					x.conn.Close()
				}
			}
			return nil, &failure.Error{Kind: failure.Canceled, Msg: "interrupted", Err: context.Cause(ctx)}
		}
	}
	cancelAll()
	r.won = fallback.Stop
	if r.directErr != nil {
		return nil, r.directErr
	}
	return nil, r.ssmErr
}

// awaitBanner waits for a transport's first line (sshd's banner) and gives
// back a conn that replays it: a transport wins the race by showing it.
func awaitBanner(conn net.Conn, limit time.Duration, name string) (net.Conn, error) {
	if limit <= 0 {
		limit = connect.DefaultHandshakeTimeout
	}
	conn.SetReadDeadline(time.Now().Add(limit))
	br := bufio.NewReaderSize(conn, 512)
	line, err := br.ReadSlice('\n')
	conn.SetReadDeadline(time.Time{})
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		if fe := (*failure.Error)(nil); errors.As(err, &fe) {
			conn.Close()
			return nil, err
		}
		conn.Close()
		if len(line) == 0 {
			return nil, connect.BannerError(conn, name, err)
		}
	}
	return &replayConn{Conn: conn, pre: append([]byte(nil), line...), rest: br}, nil
}

// replayConn gives back what was read ahead, then the rest.
type replayConn struct {
	net.Conn
	pre  []byte
	rest *bufio.Reader
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.pre) > 0 {
		n := copy(p, r.pre)
		r.pre = r.pre[n:]
		return n, nil
	}
	return r.rest.Read(p)
}

// CloseWrite passes a half-close on when the transport has one.
func (r *replayConn) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
