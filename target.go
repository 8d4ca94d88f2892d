package main

import (
	"context"
	"net"
	"os"
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

// ec2Side is the EC2 part of one run. Its AWS clients are made on first
// use, so a destination reachable as plain ssh makes no AWS call unless the
// connection fails.
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
	User     string        // the AMI's default user, "" if unknown
	APIRTT   time.Duration // how long resolving it took (one EC2 API round trip), 0 if unknown
}

func (t *target) String() string {
	if t.Name != "" && t.Name != t.ID {
		return preflight.Sanitize(t.Name) + " (" + t.ID + ")"
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

// ssm is Session Manager for this run, its -v lines going to -v.
func (e *ec2Side) ssm(ctx context.Context) (*fallback.SSM, error) {
	a, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	s := fallback.NewSSM(a.Config)
	s.Debug = e.env.Debug
	s.AgentOnline = a.AgentOnline
	return s, nil
}

// useRegion makes region the one every later call of this run goes to.
func (e *ec2Side) useRegion(ctx context.Context, region string) (*preflight.AWS, error) {
	e.client(ctx) // settle the once first
	a, err := preflight.LoadAWS(ctx, e.args.Profile, region)
	if err != nil {
		return nil, err
	}
	e.aws = a
	return a, nil
}

// configured reports whether AWS may be asked without being needed.
func (e *ec2Side) configured() bool { return preflight.Configured(e.args.Profile) }

func (e *ec2Side) cached(ctx context.Context, dest string) *target {
	if e.cache == nil || !e.configured() || !e.cache.Has(e.args.Profile, dest) {
		return nil
	}
	// The region from --region or the environment needs no configuration
	// loaded: the dial starts sooner, and the clients are made beside it
	// (warm), for the checks and SSM should they be needed.
	region := preflight.RegionHint(e.args.Region)
	if region == "" {
		a, err := e.client(ctx)
		if err != nil {
			return nil
		}
		region = a.Region()
	}
	c := e.cache.Get(e.args.Profile, region, dest)
	if c == nil && e.args.Region == "" {
		// Found in another region before: go there again.
		if c = e.cache.Get(e.args.Profile, "", dest); c != nil {
			if _, err := e.useRegion(ctx, c.Region); err != nil {
				return nil
			}
		}
	}
	if c == nil {
		return nil
	}
	e.env.Debug("debug1: ec2ssh: %s is %s at %s (cached)", dest, c.InstanceID, c.Address)
	return &target{Dest: dest, ID: c.InstanceID, Name: c.Name, Address: c.Address, User: c.User, APIRTT: c.APIRTT}
}

// warm makes the AWS clients in the background: loading the configuration
// is no AWS call, and a slow dial then starts SSM without waiting for it.
func (e *ec2Side) warm(ctx context.Context) {
	go e.client(ctx)
}

func (e *ec2Side) dropCache(dest string) {
	if e.cache != nil {
		e.cache.Drop(e.args.Profile, dest)
	}
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
	if err != nil {
		return nil, err
	}
	rtt := time.Since(start)
	if in == nil && e.args.Region == "" && (preflight.ClassifyDest(dest) == preflight.DestID || preflight.ClassifyDest(dest) == preflight.DestName) {
		// Not here: the account's other regions, in parallel. A region
		// given with --region is where to look, and only there.
		elsewhere, region, err := a.ResolveElsewhere(ctx, dest)
		if err != nil {
			return nil, err
		}
		if elsewhere == nil {
			return nil, nil
		}
		e.env.Log("ec2ssh: %s is in %s, not %s (--region %s saves this lookup)", preflight.Sanitize(dest), region, a.Region(), region)
		if a, err = e.useRegion(ctx, region); err != nil {
			return nil, err
		}
		in = elsewhere
	}
	if in == nil {
		return nil, nil
	}
	addr, err := in.Address(e.args.Address)
	if err != nil {
		return nil, err
	}
	t := &target{Dest: dest, Instance: in, ID: in.ID, Name: in.Name, Address: addr, User: a.ImageUser(ctx, in), APIRTT: rtt}
	e.env.Debug("debug1: ec2ssh: %s is %s (%s) at %s, resolved in %v", dest, in.ID, in.State, addr, rtt.Round(time.Millisecond))
	if e.cache != nil && in.State == "running" {
		e.cache.Put(e.args.Profile, a.Region(), dest, preflight.Cached{InstanceID: in.ID, Name: in.Name, Address: addr, User: t.User, APIRTT: rtt})
	}
	return t, nil
}

// locate finds what dest is before anything is dialled: the one place the
// three ways in (a connection, --proxy, --diagnose) resolve a destination
// (SPEC.md, "Destinations"). An instance id is always looked up; a Name
// tag only when DNS does not know the name (else every git@github.com
// would wait on EC2); an address is found to be an instance by the checks,
// beside the dial, unless must asks for an instance now (--fallback=ssm,
// --diagnose). nil, nil: not (yet) known to be an instance.
func (e *ec2Side) locate(ctx context.Context, dest string, must bool) (*target, error) {
	kind := preflight.ClassifyDest(dest)
	var t *target
	switch kind {
	case preflight.DestID:
		if t = e.cached(ctx, dest); t == nil {
			var err error
			if t, err = e.resolve(ctx, dest); err != nil {
				return nil, err
			}
			if t == nil {
				return nil, &failure.Error{Kind: failure.Config, Msg: "no instance " + dest + " in " + e.aws.Region(),
					Hint: "check the id and the region (--region, AWS_REGION)"}
			}
		}
		return t, nil
	case preflight.DestName:
		if t = e.cached(ctx, dest); t != nil {
			return t, nil
		}
		if !e.configured() || (!must && resolvable(ctx, dest)) {
			return nil, nil
		}
	default:
		if !must || !e.configured() {
			return nil, nil
		}
	}
	return e.resolve(ctx, dest)
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

// resolvable reports whether DNS knows name (briefly: a name it does not
// know may be a Name tag).
func resolvable(ctx context.Context, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	return err == nil && len(addrs) > 0
}

// gatherOpts say what the checks look at.
type gatherOpts struct {
	probe  bool // probe the SSH port (else the dial answers for it)
	inside bool // look inside the instance when its SSM agent is online
}

// gather collects the facts about t (resolving dest first when t is nil).
func (e *ec2Side) gather(ctx context.Context, dest string, t *target, cfg *connect.Config, creds *connect.Credentials, o gatherOpts) (*preflight.Facts, *target, error) {
	a, err := e.client(ctx)
	if err != nil {
		return nil, t, err
	}
	if t == nil || t.Instance == nil {
		rt, err := e.resolve(ctx, dest)
		if err != nil {
			return nil, nil, err
		}
		if rt != nil {
			t = rt
		}
	}
	req := preflight.Request{Port: cfg.Port, SourceIP: e.args.SourceIP, NoProbe: !o.probe, Address: cfg.HostName, User: cfg.User}
	if t != nil {
		req.Instance, req.Address = t.Instance, t.Address
		if t.User != "" && !cfg.UserSet {
			req.User = t.User
		}
	}
	if o.inside {
		req.Inside = &insideRunner{side: e}
	}
	if creds != nil {
		for _, k := range creds.Keys {
			req.Keys = append(req.Keys, preflight.KeyMaterial{Source: k.Source, Type: k.Type, Blob: k.Blob, Public: k.Public, Private: k.Private})
		}
	}
	start := time.Now()
	facts := a.Gather(ctx, req)
	e.env.Debug("debug1: ec2ssh: checks gathered in %v", time.Since(start).Round(time.Millisecond))
	for part, took := range facts.Timings {
		e.env.Debug("debug1: ec2ssh: gathered %s in %v", part, took.Round(time.Millisecond))
	}
	return facts, t, nil
}

// insideRunner runs the look inside (preflight.InsideScript) as a
// non-interactive SSM command: one StartSession and the output streamed
// back, faster than Run Command's SendCommand and polling, and it needs
// only the permissions the SSM rungs need anyway.
type insideRunner struct{ side *ec2Side }

func (r *insideRunner) How() string {
	return "an SSM session running " + fallback.CommandDocument + ", read-only"
}

func (r *insideRunner) RunScript(ctx context.Context, instanceID, script string, args ...string) ([]byte, error) {
	s, err := r.side.ssm(ctx)
	if err != nil {
		return nil, err
	}
	command := "sh -c " + shellQuote(script) + " ec2ssh-inside"
	for _, a := range args {
		command += " " + shellQuote(a)
	}
	cmd, err := s.StartCommand(ctx, instanceID, command)
	if err != nil {
		return nil, err
	}
	defer cmd.Close()
	stop := context.AfterFunc(ctx, func() { cmd.Close() })
	defer stop()
	var out, errb limitedBuffer
	out.max, errb.max = 1<<20, 64<<10
	_, err = cmd.Run(&out, &errb)
	return out.b, err
}

func shellQuote(s string) string {
	q := "'"
	for _, r := range s {
		if r == '\'' {
			q += `'\''`
		} else {
			q += string(r)
		}
	}
	return q + "'"
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
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
	t, err := side.locate(ctx, cfg.HostName, side.configured())
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	facts, t, err := side.gather(ctx, cfg.HostName, t, cfg, creds, gatherOpts{probe: true, inside: true})
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	addr := cfg.HostName
	if t != nil {
		addr = t.Address
	}
	rep := preflight.NewReport(facts, addr)
	if t == nil {
		env.Log("ec2ssh: %s is not an EC2 instance in %s: the instance checks are skipped", preflight.Sanitize(cfg.HostName), rep.Target.Region)
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
