package reach

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// The race, with fake transports on in-memory pipes and fake time: it
// needs no lab and no root, and its timing is exact.

// sshdPipe is a transport that answers with a banner after delay.
func sshdPipe(delay time.Duration) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, &failure.Error{Kind: failure.Canceled, Msg: "cancelled", Err: ctx.Err()}
		}
		client, server := net.Pipe()
		go func() { server.Write([]byte("SSH-2.0-fake\r\n")); <-ctx.Done(); server.Close() }()
		return client, nil
	}
}

// silent never connects: dropped SYNs.
func silent(ctx context.Context) (net.Conn, error) {
	<-ctx.Done()
	return nil, &failure.Error{Kind: failure.Unreachable, Msg: "connection timed out", Err: context.Cause(ctx)}
}

func refused(ctx context.Context) (net.Conn, error) {
	return nil, &failure.Error{Kind: failure.Refused, Msg: "connection refused"}
}

func TestRace(t *testing.T) {
	inst := &Target{ID: "i-1", Address: "10.0.0.1"}
	tests := []struct {
		name     string
		direct   func(context.Context) (net.Conn, error)
		ssmAfter time.Duration // -1: no SSM rung
		won      fallback.Step
		ssmTried bool
		took     time.Duration
		kind     failure.Kind
	}{
		{"healthy: direct in 20 ms, SSM never asked", sshdPipe(20 * time.Millisecond), 50 * time.Millisecond, fallback.Direct, false, 20 * time.Millisecond, 0},
		{"silent port: SSM starts at the grace and wins", silent, 80 * time.Millisecond, fallback.SSMPort, true, 300*time.Millisecond + 80*time.Millisecond, 0},
		{"slow direct still wins if first", sshdPipe(320 * time.Millisecond), 200 * time.Millisecond, fallback.Direct, true, 320 * time.Millisecond, 0},
		{"refused at once: no SSM, the ladder decides", refused, 50 * time.Millisecond, fallback.Stop, false, 0, failure.Refused},
		{"not an instance: no race", silentFor(2 * time.Second), -1, fallback.Stop, false, 2 * time.Second, failure.Unreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := &race{direct: tt.direct, t: inst, grace: 300 * time.Millisecond, wait: 5 * time.Second}
				if tt.ssmAfter >= 0 {
					ssm := sshdPipe(tt.ssmAfter)
					r.ssm = func(ctx context.Context, _ *Target) (net.Conn, error) { return ssm(ctx) }
				}
				start := time.Now()
				conn, err := r.transport(context.Background())
				took := time.Since(start)
				if tt.kind != 0 {
					if failure.KindOf(err) != tt.kind {
						t.Fatalf("transport = %v, want %v", err, tt.kind)
					}
				} else if err != nil {
					t.Fatalf("transport = %v", err)
				} else {
					buf := make([]byte, 32)
					n, _ := conn.Read(buf)
					if string(buf[:n]) != "SSH-2.0-fake\r\n" {
						t.Errorf("the winner's banner was not replayed: %q", buf[:n])
					}
					conn.Close()
				}
				if r.won != tt.won || r.ssmTried != tt.ssmTried {
					t.Errorf("won %v (SSM tried %v), want %v (%v)", r.won, r.ssmTried, tt.won, tt.ssmTried)
				}
				if took != tt.took {
					t.Errorf("took %v, want %v", took, tt.took)
				}
				r.cleanup.Wait() // the loser is ended
			})
		})
	}
}

func silentFor(d time.Duration) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		return nil, &failure.Error{Kind: failure.Unreachable, Msg: "connection timed out", Err: errors.New("timeout")}
	}
}

// TestRaceCutShort: the checks prove the direct dial doomed before the
// grace: it is cancelled with their finding, and SSM starts at once.
func TestRaceCutShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inst := &Target{ID: "i-1", Address: "10.0.0.1"}
		ch := &checks{done: make(chan struct{}), doomed: make(chan *doomedError, 1), found: make(chan *Target, 1)}
		ch.once.Do(func() {}) // the checks are the test's: start does nothing
		r := &race{direct: silent, t: inst, grace: time.Second, wait: 5 * time.Second, checks: ch}
		ssm := sshdPipe(50 * time.Millisecond)
		r.ssm = func(ctx context.Context, _ *Target) (net.Conn, error) { return ssm(ctx) }
		go func() {
			time.Sleep(100 * time.Millisecond)
			ch.doomed <- &doomedError{check: preflight.Result{ID: preflight.CheckSecurityGroup, Summary: "port 22 blocked by sg-1"}, t: inst}
		}()
		start := time.Now()
		conn, err := r.transport(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if took := time.Since(start); took != 150*time.Millisecond || r.won != fallback.SSMPort || r.cut == nil {
			t.Errorf("took %v, won %v, cut %v; want 150ms over SSM, cut by the check", took, r.won, r.cut)
		}
		r.cleanup.Wait()
	})
}

// TestRaceTunnelInSSMsPlace: SSM fails beside a silent dial; the endpoint
// is looked up and its tunnel carries the connection, without waiting for
// the checks to prove the dial doomed (issue 20). With no endpoint, the
// race waits for the dial as before.
func TestRaceTunnelInSSMsPlace(t *testing.T) {
	inst := &Target{ID: "i-1", Address: "10.0.0.1", Instance: &preflight.Instance{ID: "i-1", VPCID: "vpc-1", PrivateIP: "10.0.0.1"}}
	notConnected := func(ctx context.Context, _ *Target) (net.Conn, error) {
		time.Sleep(10 * time.Millisecond)
		return nil, &failure.Error{Kind: failure.Unreachable, Msg: "TargetNotConnected"}
	}
	for _, tt := range []struct {
		name     string
		endpoint bool
		won      fallback.Step
		took     time.Duration
	}{
		{"an endpoint: its tunnel wins", true, fallback.EICE, 300*time.Millisecond + 10*time.Millisecond + 20*time.Millisecond + 30*time.Millisecond},
		{"no endpoint: the dial's own end", false, fallback.Stop, 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				looked, tunnels := 0, 0
				r := &race{direct: silentFor(2 * time.Second), t: inst, grace: 300 * time.Millisecond, wait: 5 * time.Second, ssm: notConnected,
					findEndpoint: func(ctx context.Context, _ *Target) (*endpointChoice, error) {
						looked++
						time.Sleep(20 * time.Millisecond)
						if !tt.endpoint {
							return nil, &failure.Error{Kind: failure.Unreachable, Msg: "no endpoint"}
						}
						return &endpointChoice{ep: fallback.TunnelEndpoint{ID: "eice-1"}, ip: "10.0.0.1"}, nil
					},
					tunnel: func(ctx context.Context, ep endpointChoice) (net.Conn, error) {
						tunnels++
						return sshdPipe(30 * time.Millisecond)(ctx)
					}}
				start := time.Now()
				conn, err := r.transport(context.Background())
				took := time.Since(start)
				if conn != nil {
					conn.Close()
				}
				if tt.endpoint && err != nil || !tt.endpoint && failure.KindOf(err) != failure.Unreachable {
					t.Fatalf("transport = %v", err)
				}
				if r.won != tt.won || took != tt.took || looked != 1 || tunnels != map[bool]int{true: 1}[tt.endpoint] {
					t.Errorf("won %v in %v (looked %d, tunnels %d), want %v in %v", r.won, took, looked, tunnels, tt.won, tt.took)
				}
				if tt.endpoint && (r.ep == nil || r.ep.ep.ID != "eice-1") {
					t.Errorf("the endpoint found is not kept for the ladder: %+v", r.ep)
				}
				r.cleanup.Wait()
			})
		})
	}
}

// TestRaceTunnelDoomed: the checks prove the endpoint cannot reach the
// port (its security groups leave no path): the tunnel racing the dial is
// ended then, whether it is still opening or open and waiting for a banner
// that will not come (the service accepts the WebSocket, then cannot reach
// the port), not left to time out.
func TestRaceTunnelDoomed(t *testing.T) {
	var far net.Conn // the far end of an open tunnel: it says nothing
	for _, tt := range []struct {
		name   string
		tunnel func(ctx context.Context) (net.Conn, error)
	}{
		{"still opening", silent},
		{"open, no banner", func(ctx context.Context) (net.Conn, error) {
			client, server := net.Pipe()
			far = server
			return client, nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				defer func() {
					if far != nil {
						far.Close()
					}
				}()
				inst := &Target{ID: "i-1", Address: "10.0.0.1", Instance: &preflight.Instance{ID: "i-1", VPCID: "vpc-1", PrivateIP: "10.0.0.1"}}
				ch := &checks{done: make(chan struct{}), doomed: make(chan *doomedError, 1), noTunnel: make(chan preflight.Result, 1), found: make(chan *Target, 1)}
				ch.once.Do(func() {})
				start := time.Now()
				r := &race{direct: silentFor(2 * time.Second), t: inst, grace: 300 * time.Millisecond, wait: 30 * time.Second, checks: ch,
					ssm: func(ctx context.Context, _ *Target) (net.Conn, error) {
						return nil, &failure.Error{Kind: failure.Unreachable, Msg: "StartSession: AWS answered 500"}
					},
					findEndpoint: func(ctx context.Context, _ *Target) (*endpointChoice, error) {
						return &endpointChoice{ep: fallback.TunnelEndpoint{ID: "eice-1"}, ip: "10.0.0.1"}, nil
					},
					tunnel: func(ctx context.Context, ep endpointChoice) (net.Conn, error) { return tt.tunnel(ctx) }}
				go func() {
					time.Sleep(500 * time.Millisecond)
					ch.noTunnel <- preflight.Result{ID: preflight.CheckEICE, Status: preflight.Warn, Summary: "the instance's security groups do not admit eice-1"}
				}()
				_, err := r.transport(context.Background())
				if failure.KindOf(err) != failure.Unreachable || !r.tunnelTried || r.noTunnel == nil {
					t.Fatalf("transport = %v (tunnel tried %v, doomed %v)", err, r.tunnelTried, r.noTunnel)
				}
				// Not the tunnel's 30 s wait for a banner: the dial's own end.
				if took := time.Since(start); took != 2*time.Second || r.tunnelErr == nil {
					t.Errorf("took %v, the tunnel ended with %v; want 2s and the tunnel ended", took, r.tunnelErr)
				}
				r.cleanup.Wait()
			})
		})
	}
}

func TestRaceGrace(t *testing.T) {
	tests := []struct {
		apiRTT, connectTimeout, want time.Duration
	}{
		{0, 0, UnknownRaceGrace},
		{40 * time.Millisecond, 0, MinRaceGrace},
		{600 * time.Millisecond, 0, 600 * time.Millisecond},
		{3 * time.Second, 0, MaxRaceGrace},
		{600 * time.Millisecond, time.Second, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := raceGrace(&Target{APIRTT: tt.apiRTT}, tt.connectTimeout); got != tt.want {
			t.Errorf("raceGrace(rtt %v, ConnectTimeout %v) = %v, want %v", tt.apiRTT, tt.connectTimeout, got, tt.want)
		}
	}
}

// TestProbeFromDial: what a failed dial says about the port. A failure
// that says nothing (an unclassified error) must never read as "open".
func TestProbeFromDial(t *testing.T) {
	for _, k := range failure.Kinds {
		p := probeFromDial("10.0.0.1", 22, &failure.Error{Kind: k, Msg: "x"})
		want := map[failure.Kind]preflight.ProbeResult{failure.Refused: preflight.ProbeRefused, failure.Unreachable: preflight.ProbeTimeout,
			failure.NoBanner: preflight.ProbeNoBanner, failure.AuthRejected: preflight.ProbeOpen, failure.HostKeyChanged: preflight.ProbeOpen,
			failure.HostKeyUnknown: preflight.ProbeOpen, failure.Algorithms: preflight.ProbeOpen}[k]
		got := preflight.ProbeResult("")
		if p != nil {
			got = p.Result
		}
		if got != want {
			t.Errorf("probeFromDial(%v) = %q, want %q", k, got, want)
		}
	}
}
