package reach

import (
	"context"
	"net"
	"net/http/httptrace"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// Cloud is what the way in asks of AWS, in one region: the calls made on
// the way to a session, grouped by what uses them. Production uses
// liveCloud (the SDK's clients, through preflight and fallback); tests use
// fakes.
type Cloud interface {
	Region() string
	finder
	gatherer
	doors
	console
}

// finder is what resolving a destination asks (target.go).
type finder interface {
	// Resolve finds the instance dest names in this region: (nil, nil)
	// when none does; a failure.Config error listing the candidates when
	// a Name tag names several.
	Resolve(ctx context.Context, dest string) (*preflight.Instance, error)
	// Lookup is what this region says dest names (preflight.Decide judges
	// it).
	Lookup(ctx context.Context, dest string) preflight.Answer
	// Elsewhere is what every other enabled region says dest names; an
	// error when the regions could not be listed.
	Elsewhere(ctx context.Context, dest string) ([]preflight.Answer, error)
	// ImageUser is the login user of the instance's AMI, "" when unknown.
	ImageUser(ctx context.Context, in *preflight.Instance) string
	// WaitRunning waits for a pending instance to run (preflight's rules).
	WaitRunning(ctx context.Context, id string, o preflight.WaitOptions) (*preflight.Instance, error)
}

// gatherer is what the checks ask (checks.go, diagnose.go).
type gatherer interface {
	Gather(ctx context.Context, req preflight.Request) *preflight.Facts
}

// doors are the ways in that AWS opens (rungs.go, shell.go).
type doors interface {
	// PortSession is an SSM port session to the instance's port, its
	// input held until the port speaks (SSH's server speaks first).
	PortSession(ctx context.Context, instanceID string, port int) (net.Conn, error)
	// Endpoints are the EC2 Instance Connect Endpoints of a VPC.
	Endpoints(ctx context.Context, vpc string) ([]preflight.InstanceConnectEndpoint, error)
	// Tunnel opens an Instance Connect Endpoint tunnel to privateIP:port.
	Tunnel(ctx context.Context, ep fallback.TunnelEndpoint, privateIP string, port int) (net.Conn, error)
	// OneTimeKey pushes a one-time key for user with EC2 Instance Connect.
	OneTimeKey(ctx context.Context, instanceID, user string) (ssh.Signer, error)
	// SSM is Session Manager, for shells and commands.
	SSM() *fallback.SSM
	// LookInside runs the read-only look inside (preflight.InsideScript)
	// as user, for the port.
	LookInside(ctx context.Context, instanceID, user string, port int, addr string) (*preflight.Inside, error)
}

// console is what --serial asks (serial.go).
type console interface {
	// SerialAccess: whether the account allows serial consoles here;
	// known is false when it could not be asked.
	SerialAccess(ctx context.Context) (enabled, known bool)
	// Nitro: whether an instance type has a serial console.
	Nitro(ctx context.Context, instanceType string) (nitro, known bool)
	// SerialKey pushes a one-time key for the instance's serial console.
	SerialKey(ctx context.Context, instanceID string) (ssh.Signer, error)
}

// CloudOpener opens AWS as o says (a profile, a region or "" for the one
// the configuration names, the retry mode). It makes no call: a bad
// profile is its only error.
type CloudOpener func(ctx context.Context, o preflight.Options) (Cloud, error)

// LiveCloud opens AWS through the SDK's usual chain.
func LiveCloud(ctx context.Context, o preflight.Options) (Cloud, error) {
	a, err := preflight.Load(ctx, o)
	if err != nil {
		return nil, err
	}
	return &liveCloud{AWS: a, debug: o.Debug}, nil
}

// liveCloud is Cloud on the SDK: preflight's clients for EC2, IAM, STS
// and SSM's agent information, fallback's for sessions and keys.
type liveCloud struct {
	*preflight.AWS
	ssmOnce sync.Once
	ssm     *fallback.SSM
	debug   func(string, ...any)
}

func (c *liveCloud) SSM() *fallback.SSM {
	c.ssmOnce.Do(func() {
		c.ssm = fallback.NewSSM(c.Config)
		c.ssm.Client = terminateSent{c.ssm.Client}
		c.ssm.Debug = c.debug
		c.ssm.AgentOnline = c.AgentOnline
	})
	return c.ssm
}

func (c *liveCloud) LookInside(ctx context.Context, instanceID, user string, port int, addr string) (*preflight.Inside, error) {
	r := &insideRunner{ssm: c.SSM()}
	start := time.Now()
	out, err := r.RunScript(ctx, instanceID, preflight.InsideScript, user, strconv.Itoa(port))
	if err != nil && len(out) == 0 {
		return nil, err
	}
	in := preflight.ParseInside(out, user, port, addr)
	in.How, in.Took = r.How(), time.Since(start)
	return in, nil
}

func (c *liveCloud) PortSession(ctx context.Context, instanceID string, port int) (net.Conn, error) {
	return c.SSM().StartPort(ctx, instanceID, port, true)
}

func (c *liveCloud) Endpoints(ctx context.Context, vpc string) ([]preflight.InstanceConnectEndpoint, error) {
	eps, err := c.InstanceConnectEndpoints(ctx, vpc)
	if err != nil {
		return nil, err.AsFailure()
	}
	return eps, nil
}

func (c *liveCloud) Tunnel(ctx context.Context, ep fallback.TunnelEndpoint, privateIP string, port int) (net.Conn, error) {
	return fallback.NewEICETunnels(c.Config).Open(ctx, ep, privateIP, port)
}

func (c *liveCloud) OneTimeKey(ctx context.Context, instanceID, user string) (ssh.Signer, error) {
	return fallback.OneTimeKey(ctx, fallback.NewInstanceConnect(c.Config), instanceID, user)
}

// side is the AWS part of one run. Its Cloud is opened on first use, so a
// destination reachable as plain ssh loads no AWS configuration unless
// the connection fails; a destination found in another region moves every
// later call of the run there.
type side struct {
	run   *Run
	cache *preflight.Cache

	mu     sync.Mutex
	opened bool
	cloud  Cloud
	err    error
}

func newSide(r *Run) *side {
	s := &side{run: r}
	if !r.Args.NoCache {
		s.cache = preflight.DefaultCache()
	}
	return s
}

func (s *side) open(ctx context.Context, region string) (Cloud, error) {
	return s.run.Open(ctx, region)
}

// get is the run's Cloud, opened on first use.
func (s *side) get(ctx context.Context) (Cloud, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opened {
		s.cloud, s.err = s.open(ctx, s.run.Args.Region)
		s.opened = true
	}
	return s.cloud, s.err
}

// warm opens the Cloud in the background: loading the configuration is no
// AWS call, and a slow dial then starts SSM without waiting for it.
func (s *side) warm(ctx context.Context) { go s.get(ctx) }

// useRegion makes region the one every later call of this run goes to.
func (s *side) useRegion(ctx context.Context, region string) (Cloud, error) {
	c, err := s.open(ctx, region)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cloud, s.err, s.opened = c, nil, true
	s.mu.Unlock()
	return c, nil
}

// configured reports whether AWS may be asked without being needed.
func (s *side) configured() bool { return preflight.Configured(s.run.Args.Profile) }

// terminateSent is the SSM client whose TerminateSession returns once the
// request is on the wire, not when AWS answers it: a session ends (and
// ec2ssh exits) when the remote command does, whatever AWS's weather
// (issue 20: a TerminateSession answering slowly held the exit for its
// whole budget). The call carries on in the background for as long as the
// process lives, with its own budget; AWS acts on a request it received
// whether or not the answer is read. A call that fails before it is sent
// (no connection to AWS) returns its error as before.
type terminateSent struct{ fallback.SSMAPI }

func (c terminateSent) TerminateSession(ctx context.Context, in *ssm.TerminateSessionInput, opts ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error) {
	type answer struct {
		out *ssm.TerminateSessionOutput
		err error
	}
	wrote := make(chan struct{})
	var once sync.Once
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(wrote) }) }}
	answered := make(chan answer, 1)
	// The caller's context ends when it returns: the call must outlive it.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fallback.TerminateTimeout)
	go func() {
		defer cancel()
		out, err := c.SSMAPI.TerminateSession(httptrace.WithClientTrace(cctx, trace), in, opts...)
		answered <- answer{out, err}
	}()
	select {
	case a := <-answered:
		return a.out, a.err
	case <-wrote:
		return &ssm.TerminateSessionOutput{SessionId: in.SessionId}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
