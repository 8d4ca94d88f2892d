package reach

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
// passphrase). SPEC.md, "Connecting". What each event means is decided by
// fallback.Race; this file runs the transports and the timers.

const (
	// MinRaceGrace: the least grace, when the region's API answered in
	// less. A TCP connect takes one round trip and an API call at least
	// three, so a healthy connection is up well within the API call's time
	// and makes no AWS call; a connect slower than the whole call lost its
	// SYN (Linux sends the next one after a second). Round 2's floor was
	// BesideGrace (250 ms): over SSM, a blocked port's first output came
	// 1.7 times an open OpenSSH connect (430 vs 250 ms), past issue 20's
	// 1.5 (make bench, the weather rows).
	MinRaceGrace = 100 * time.Millisecond
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
func raceGrace(t *Target, connectTimeout time.Duration) time.Duration {
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

// race runs one attempt to reach sshd: the direct transport, with the
// checks beside it and, for an instance, an SSM port session raced after
// the grace. What happened is left in its fields for the ladder.
type race struct {
	direct connect.Transport
	// ssm opens an SSM port session to t's SSH port; nil: no racing.
	ssm func(ctx context.Context, t *Target) (net.Conn, error)
	// findEndpoint looks for a ready EC2 Instance Connect Endpoint for t,
	// and tunnel opens its tunnel to the SSH port: they race the dial in
	// SSM's place when SSM fails (fallback.Race). nil: no tunnel.
	findEndpoint func(ctx context.Context, t *Target) (*endpointChoice, error)
	tunnel       func(ctx context.Context, ep endpointChoice) (net.Conn, error)
	t            *Target
	grace        time.Duration
	checks       *checks
	wait         time.Duration // bound on waiting for the first bytes (the banner)
	name         string        // host:port, for messages

	// After the race.
	won         fallback.Step // the transport that carried it; Stop if none
	directErr   error
	ssmErr      error // set when SSM was tried and failed
	ssmTried    bool
	ep          *endpointChoice   // the endpoint found while racing
	epErr       error             // why none was found
	tunnelErr   error             // set when the tunnel was tried and failed
	noTunnel    *preflight.Result // the check that proved the endpoint cannot reach the port
	tunnelTried bool
	took        time.Duration // until the winner showed its banner
	cut         *doomedError  // a check that cut the direct dial short

	cleanup sync.WaitGroup // losers still being ended
}

type raced struct {
	step fallback.Step
	conn net.Conn
	err  error
}

// endpointChoice is an endpoint and the private address it tunnels to.
type endpointChoice struct {
	ep fallback.TunnelEndpoint
	ip string
}

type endpointFound struct {
	ep  *endpointChoice
	err error
}

// raceRun is one race's moving parts while it runs.
type raceRun struct {
	r            *race
	ctx, rctx    context.Context
	cancelAll    context.CancelFunc
	cancelDirect context.CancelCauseFunc
	results      chan raced
	endpoints    chan endpointFound
	cancelTunnel context.CancelFunc
	pending      int
	state        fallback.RaceState
	start        time.Time
}

// transport runs the race; it is a connect.Transport.
func (r *race) transport(ctx context.Context) (net.Conn, error) {
	rr := &raceRun{r: r, ctx: ctx, results: make(chan raced, 3), endpoints: make(chan endpointFound, 1), start: time.Now(),
		state: fallback.RaceState{MayRace: r.ssm != nil, Target: r.t != nil, MayTunnel: r.tunnel != nil && r.findEndpoint != nil}}
	rr.rctx, rr.cancelAll = context.WithCancel(ctx)
	dctx, cancelDirect := context.WithCancelCause(rr.rctx)
	rr.cancelDirect = cancelDirect
	tcpUp := make(chan struct{})
	var upOnce sync.Once
	go func() {
		conn, err := r.direct(dctx)
		if err == nil {
			upOnce.Do(func() { close(tcpUp) })
			conn, err = awaitBanner(dctx, conn, r.wait, r.name)
		}
		rr.results <- raced{fallback.Direct, conn, err}
	}()
	rr.pending = 1
	beside := time.NewTimer(BesideGrace)
	grace := time.NewTimer(r.grace)
	defer beside.Stop()
	defer grace.Stop()
	tcp := (<-chan struct{})(tcpUp)
	var found <-chan *Target
	var doomedCh <-chan *doomedError
	var noTunnel <-chan preflight.Result
	if r.checks != nil {
		found, doomedCh, noTunnel = r.checks.found, r.checks.doomed, r.checks.noTunnel
	}
	for rr.pending > 0 {
		select {
		case <-beside.C:
			rr.on(fallback.BesideDue)
		case <-tcp:
			tcp = nil
			rr.on(fallback.TCPUp)
		case <-grace.C:
			rr.on(fallback.GraceDue)
		case t := <-found:
			found = nil
			if r.t == nil {
				r.t = t
				rr.on(fallback.TargetFound)
			}
		case d := <-doomedCh:
			doomedCh = nil
			r.cut = d
			rr.on(fallback.DialDoomed)
		case c := <-noTunnel:
			noTunnel = nil
			r.noTunnel = &c
			rr.on(fallback.TunnelDoomed)
		case e := <-rr.endpoints:
			if e.ep == nil {
				r.epErr = e.err
				rr.on(fallback.EndpointNone)
				continue
			}
			r.ep = e.ep
			rr.on(fallback.EndpointReady)
		case x := <-rr.results:
			rr.pending--
			if x.err == nil {
				return rr.finish(x)
			}
			if x.step == fallback.Direct {
				r.directErr = x.err
				if r.cut != nil && ctx.Err() == nil {
					r.directErr = r.cut.asFailure()
				}
				rr.on(fallback.DirectFailed)
			} else if x.step == fallback.EICE {
				r.tunnelErr = x.err
				rr.on(fallback.TunnelFailed)
			} else {
				r.ssmErr = x.err
				rr.on(fallback.SSMFailed)
			}
		case <-ctx.Done():
			rr.cancelAll()
			rr.drain(rr.pending)
			return nil, &failure.Error{Kind: failure.Canceled, Msg: "interrupted", Err: context.Cause(ctx)}
		}
	}
	rr.cancelAll()
	r.won = fallback.Stop
	if r.directErr != nil {
		return nil, r.directErr
	}
	return nil, r.ssmErr
}

// on carries out what fallback.Race decides about ev.
func (rr *raceRun) on(ev fallback.RaceEvent) {
	r := rr.r
	var a fallback.RaceActions
	rr.state, a = fallback.Race(rr.state, ev)
	if a.StartChecks {
		r.checks.start(rr.ctx)
	}
	if a.CancelDirect {
		rr.cancelDirect(r.cut)
	}
	if a.StartSSM {
		r.ssmTried = true
		rr.pending++
		t := r.t
		go func() {
			c, err := r.ssm(rr.rctx, t)
			if err == nil {
				c, err = awaitBanner(rr.rctx, c, r.wait, r.name)
			}
			rr.results <- raced{fallback.SSMPort, c, err}
		}()
	}
	if a.FindEndpoint {
		t := r.t
		go func() {
			ep, err := r.findEndpoint(rr.rctx, t)
			rr.endpoints <- endpointFound{ep, err}
		}()
	}
	if a.CancelTunnel && rr.cancelTunnel != nil {
		rr.cancelTunnel()
	}
	if a.StartTunnel {
		r.tunnelTried = true
		rr.pending++
		ep := *r.ep
		tctx, cancel := context.WithCancel(rr.rctx)
		rr.cancelTunnel = cancel
		go func() {
			c, err := r.tunnel(tctx, ep)
			if err == nil {
				c, err = awaitBanner(tctx, c, r.wait, r.name)
			}
			rr.results <- raced{fallback.EICE, c, err}
		}()
	}
}

// finish makes winner the connection and ends the loser in the
// background; the run waits for that (TerminateSession) before it exits.
func (rr *raceRun) finish(winner raced) (net.Conn, error) {
	r := rr.r
	r.won, r.took = winner.step, time.Since(rr.start)
	if winner.step != fallback.Direct {
		rr.cancelDirect(errors.New(winner.step.String() + " won the race"))
	} else {
		rr.cancelAll() // an SSM session still starting gives up
	}
	r.cleanup.Add(1)
	go func(left int) {
		defer r.cleanup.Done()
		rr.drain(left)
		rr.cancelAll()
	}(rr.pending)
	return winner.conn, nil
}

// drain waits for n transports still running and closes what they opened.
func (rr *raceRun) drain(n int) {
	for ; n > 0; n-- {
		if x := <-rr.results; x.err == nil {
			x.conn.Close()
		}
	}
}

// awaitBanner waits for a transport's first line (sshd's banner) and gives
// back a conn that replays it: a transport wins the race by showing it. An
// attempt the race ends meanwhile (ctx: the dial proved doomed, the
// endpoint proved unable to reach the port) stops waiting at once, as
// Canceled: a tunnel whose far end never answers is not waited out.
func awaitBanner(ctx context.Context, conn net.Conn, limit time.Duration, name string) (net.Conn, error) {
	if limit <= 0 {
		limit = connect.DefaultHandshakeTimeout
	}
	conn.SetReadDeadline(time.Now().Add(limit))
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		conn.SetReadDeadline(time.Unix(1, 0)) // in the past: the read returns
	})
	br := bufio.NewReaderSize(conn, 512)
	line, err := br.ReadSlice('\n')
	if !stop() {
		<-woken
	}
	conn.SetReadDeadline(time.Time{})
	if err != nil && ctx.Err() != nil {
		conn.Close()
		return nil, &failure.Error{Kind: failure.Canceled, Msg: name + ": ended before its SSH banner", Err: context.Cause(ctx)}
	}
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		if fe := (*failure.Error)(nil); errors.As(err, &fe) {
			conn.Close()
			return nil, err
		}
		if len(line) == 0 {
			conn.Close()
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
