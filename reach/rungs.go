package reach

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// NoticeWait is how long the line that says why SSM won a race may wait
// for the checks, while the session runs. It never holds the exit: when the
// session ends first, the line says what is known then.
const NoticeWait = 3 * time.Second

// newRace sets up a direct attempt: the checks beside it and, when the
// ladder says so, SSM raced after the grace.
func (p *plan) newRace(d fallback.Decision, creds *connect.Credentials) *race {
	var ch *checks
	if p.t != nil || (p.side.configured() && preflight.ClassifyDest(p.dest) != preflight.DestName) {
		inside := p.run.Args.Fallback == connect.ModeDirect // there, proof is all the checks can give
		ch = newChecks(p.side, p.dest, p.t, p.cfg, creds, inside)
	}
	p.checks = ch
	wait := p.cfg.ConnectTimeout
	if wait == 0 {
		wait = connect.DefaultHandshakeTimeout
	}
	r := &race{direct: p.run.direct(p.cfg), t: p.t, grace: raceGrace(p.t, p.cfg.ConnectTimeout), checks: ch, wait: wait,
		name: displayName(p.cfg.HostName, p.cfg.Port)}
	if d.Race == fallback.SSMPort {
		r.ssm = func(ctx context.Context, t *Target) (net.Conn, error) {
			p.run.Env.Debug("debug1: ec2ssh: no TCP connection to %s after %v: starting an SSM session beside it", t.Address, r.grace)
			return p.ssmConn(ctx, t)
		}
		if p.run.Args.Fallback == connect.ModeAuto {
			// Where the ladder would go next when SSM cannot carry it.
			port := p.cfg.Port
			r.findEndpoint = func(ctx context.Context, t *Target) (*endpointChoice, error) {
				ch, err := findEndpoint(ctx, p.side, t.ID, t.Instance, nil)
				if err != nil {
					p.run.Env.Debug("debug1: ec2ssh: no endpoint to race the dial: %v", err)
					return nil, err
				}
				return &ch, nil
			}
			r.tunnel = func(ctx context.Context, ch endpointChoice) (net.Conn, error) {
				p.run.Env.Debug("debug1: ec2ssh: SSM cannot carry it: opening a tunnel through %s beside the dial", ch.ep.ID)
				return tunnelThrough(ctx, p.side, ch, port, p.run.Env.Debug)
			}
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
	if r.ep != nil && p.ep == nil {
		p.ep, p.epTarget = &r.ep.ep, r.ep.ip
	}
	if r.tunnelTried && r.won != fallback.EICE {
		p.tried = append(p.tried, fallback.Attempt{Step: fallback.EICE, Kind: failure.KindOf(r.tunnelErr)})
	}
	switch r.won {
	case fallback.SSMPort, fallback.EICE:
		p.noticeRace(r)
	case fallback.Direct:
		if r.ssmTried {
			p.run.Env.Debug("debug1: ec2ssh: the direct connection answered first, in %v", r.took.Round(time.Millisecond))
		}
		r.checks.stop()
	}
}

// noticeRace is the one line that says SSM won the race, and why: the
// check that explains the silent port when the checks have answered. They
// are started only now that the connection is up (so that they do not
// slow its handshake) and may still be running: the line waits for them
// beside the session, at most NoticeWait, and is said with what is known
// when the session ends first.
func (p *plan) noticeRace(r *race) {
	say := func(g gathered) {
		if r.won == fallback.EICE {
			p.notes.Say("%s: %s; continuing through an EC2 Instance Connect Endpoint (SSM could not carry it; the tunnel answered in %v)",
				p.t, p.raceReason(r, g), r.took.Round(time.Millisecond))
			return
		}
		p.notes.Say("%s: %s; continuing over SSM (it answered first, in %v)", p.t, p.raceReason(r, g), r.took.Round(time.Millisecond))
	}
	if r.checks == nil {
		say(gathered{})
		return
	}
	r.checks.start(context.Background())
	p.notices.Add(1)
	go func() {
		defer p.notices.Done()
		t := time.NewTimer(NoticeWait)
		defer t.Stop()
		select {
		case <-r.checks.done:
			say(r.checks.result)
			return
		case <-p.finishing:
		case <-t.C:
		}
		say(gathered{})
		r.checks.stop()
	}()
}

// raceReason is why the direct dial lost: the check that explains the
// silent port when the checks answered, else what the dial saw.
func (p *plan) raceReason(r *race, g gathered) string {
	why := fmt.Sprintf("port %d did not answer in %v", p.cfg.Port, r.grace.Round(time.Millisecond))
	if r.directErr != nil {
		why = r.directErr.Error()
	}
	if r.cut != nil {
		return r.cut.check.Summary
	}
	if g.facts == nil || g.t == nil {
		return why
	}
	f := *g.facts
	if r.directErr == nil {
		// The TCP connect was still pending when SSM answered.
		f.SSHD = &preflight.Probe{Address: p.cfg.HostName, Port: p.cfg.Port, Result: preflight.ProbeTimeout,
			Detail: "no TCP connection in " + r.grace.Round(time.Millisecond).String()}
	} else {
		f.SSHD = probeFromDial(p.cfg.HostName, p.cfg.Port, r.directErr)
	}
	if bad := preflight.NewReport(&f, g.t.Address).FirstFailed(preflight.Explaining); bad != nil {
		return bad.Summary
	}
	return why
}

// ssmConn opens an SSM port session to t's SSH port.
func (p *plan) ssmConn(ctx context.Context, t *Target) (net.Conn, error) {
	c, err := p.side.get(ctx)
	if err != nil {
		return nil, err
	}
	return c.PortSession(ctx, t.ID, p.cfg.Port)
}

func (p *plan) ssmTransport() connect.Transport {
	return func(ctx context.Context) (net.Conn, error) { return p.ssmConn(ctx, p.t) }
}

// endpoint finds the instance's EC2 Instance Connect Endpoint: one of its
// VPC, in its subnet when there is one there.
func (p *plan) endpoint(ctx context.Context) (fallback.TunnelEndpoint, string, error) {
	if p.ep != nil {
		return *p.ep, p.epTarget, nil
	}
	in := p.t.Instance
	var eps []preflight.InstanceConnectEndpoint
	if p.facts != nil && p.facts.Instance != nil {
		in, eps = p.facts.Instance, p.facts.Endpoints
	}
	ch, err := findEndpoint(ctx, p.side, p.t.ID, in, eps)
	if err != nil {
		return fallback.TunnelEndpoint{}, "", err
	}
	p.ep, p.epTarget = &ch.ep, ch.ip
	return ch.ep, ch.ip, nil
}

// findEndpoint picks the endpoint for instance id (in, when known; eps,
// the endpoints of its VPC when known), asking AWS what is not known. It
// writes nothing of the plan's: the race calls it beside the dial.
func findEndpoint(ctx context.Context, s *side, id string, in *preflight.Instance, eps []preflight.InstanceConnectEndpoint) (endpointChoice, error) {
	c, err := s.get(ctx)
	if err != nil {
		return endpointChoice{}, err
	}
	if in == nil {
		if in, err = c.Resolve(ctx, id); err != nil {
			return endpointChoice{}, err
		}
		if in == nil {
			return endpointChoice{}, failure.New(failure.Config, "no instance "+id, "")
		}
	}
	if eps == nil {
		if eps, err = c.Endpoints(ctx, in.VPCID); err != nil {
			return endpointChoice{}, err
		}
	}
	ep, ok := fallback.PickEndpoint(eps, in.VPCID, in.SubnetID)
	if !ok {
		return endpointChoice{}, &failure.Error{Kind: failure.Unreachable, Msg: "no EC2 Instance Connect Endpoint is ready in " + in.VPCID,
			Hint: fmt.Sprintf("create one: aws ec2 create-instance-connect-endpoint --subnet-id %s --region %s", in.SubnetID, c.Region())}
	}
	if in.PrivateIP == "" {
		return endpointChoice{}, failure.New(failure.Unreachable, in.ID+" has no private address for an endpoint to reach", "")
	}
	return endpointChoice{ep: ep, ip: in.PrivateIP}, nil
}

// eiceConn opens a tunnel to the instance's port through its endpoint.
func (p *plan) eiceConn(ctx context.Context) (net.Conn, error) {
	ep, ip, err := p.endpoint(ctx)
	if err != nil {
		return nil, err
	}
	return tunnelThrough(ctx, p.side, endpointChoice{ep: ep, ip: ip}, p.cfg.Port, p.run.Env.Debug)
}

// tunnelThrough opens ch's tunnel to port.
func tunnelThrough(ctx context.Context, s *side, ch endpointChoice, port int, debug func(string, ...any)) (net.Conn, error) {
	c, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	debug("debug1: ec2ssh: opening a tunnel through %s (%s) to %s port %d", ch.ep.ID, ch.ep.DNSName, ch.ip, port)
	return c.Tunnel(ctx, ch.ep, ch.ip, port)
}

func (p *plan) eiceTransport() connect.Transport {
	return func(ctx context.Context) (net.Conn, error) { return p.eiceConn(ctx) }
}

// transportFor is the transport a step runs over (nil: connect.Dial's own,
// for a jump host); race is set when the step races.
func (p *plan) transportFor(step fallback.Step, d fallback.Decision, creds *connect.Credentials) (connect.Transport, *race) {
	switch step {
	case fallback.SSMPort:
		return p.ssmTransport(), nil
	case fallback.EICE:
		return p.eiceTransport(), nil
	case fallback.Direct:
		if p.cfg.ProxyJump == "" { // a jump host is reached by connect.Dial itself
			r := p.newRace(d, creds)
			return r.transport, r
		}
	}
	return nil, nil
}

// connectRung is a rung for a connection: an authenticated client.
func (p *plan) connectRung(ctx context.Context, d fallback.Decision) (outcome, error) {
	env := p.run.Env
	creds, err := connect.LoadCredentialsWarn(p.cfg, env.Prompter, env.Debug, env.Log)
	if err != nil {
		return outcome{}, err
	}
	via := d.Step
	if d.Step == fallback.InstanceConnect {
		if err := p.pushKey(ctx, creds); err != nil {
			creds.Close()
			return outcome{}, err
		}
		via = d.Via
	}
	var transport connect.Transport
	var r *race
	switch {
	case d.Step != fallback.InstanceConnect || via != fallback.Direct:
		transport, r = p.transportFor(via, d, creds)
	case p.cfg.ProxyJump == "": // a retry with a new key needs no second race
		transport = p.run.direct(p.cfg)
	}
	if r != nil {
		defer p.raced(r)
	}
	start := time.Now()
	client, err := connect.Dial(ctx, p.cfg, creds, connect.NewHostKeys(p.cfg, env.Prompter, env.Log), transport, env)
	if err != nil {
		creds.Close()
		return outcome{}, err
	}
	if via == fallback.SSMPort || r != nil && r.won == fallback.SSMPort {
		env.Debug("debug1: ec2ssh: connected over SSM in %v", time.Since(start).Round(time.Millisecond))
		if !p.cfg.ServerAliveSet {
			client.StartKeepalive(SSMKeepAlive)
		}
	}
	return outcome{client: client, creds: creds}, nil
}

// pushKey pushes a one-time key with EC2 Instance Connect and offers it
// first.
func (p *plan) pushKey(ctx context.Context, creds *connect.Credentials) error {
	c, err := p.side.get(ctx)
	if err != nil {
		return err
	}
	signer, err := c.OneTimeKey(ctx, p.t.ID, p.cfg.User)
	if err != nil {
		return err
	}
	creds.Prepend(signer)
	return nil
}

// streamRung is a rung for --proxy: a byte stream to the port.
func (p *plan) streamRung(ctx context.Context, d fallback.Decision) (outcome, error) {
	switch d.Step {
	case fallback.Direct, fallback.SSMPort, fallback.EICE:
		transport, r := p.transportFor(d.Step, d, nil)
		if r != nil {
			defer p.raced(r)
		}
		conn, err := transport(ctx)
		if err != nil {
			return outcome{}, err
		}
		return outcome{conn: conn}, nil
	}
	return outcome{}, failure.New(failure.Config, "--proxy carries a byte stream: "+d.Step.String()+" cannot", "")
}
