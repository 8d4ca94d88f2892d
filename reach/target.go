package reach

import (
	"context"
	"net"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// DNSWait bounds asking DNS whether a name is a host's (a name it does not
// know may be a Name tag): every ssh to a plain host waits on it.
const DNSWait = 2 * time.Second

// Target is an instance a destination resolved to.
type Target struct {
	Dest     string // as resolved (the HostName)
	Instance *preflight.Instance
	ID       string
	Name     string
	Address  string
	User     string        // the AMI's default user, "" if unknown
	APIRTT   time.Duration // how long resolving it took (one EC2 API round trip), 0 if unknown
}

func (t *Target) String() string {
	if t.Name != "" && t.Name != t.ID {
		return preflight.Sanitize(t.Name) + " (" + t.ID + ")"
	}
	return t.ID
}

// state is the instance's state when known.
func (t *Target) state() preflight.State {
	if t == nil || t.Instance == nil {
		return ""
	}
	return t.Instance.State
}

// apply points cfg at the instance: its address, and the AMI's default
// user when neither the command line nor ssh_config named one.
//
// Host keys are recorded under the instance id (unless HostKeyAlias says
// otherwise), so that a new address or the SSM path does not ask again, and
// OpenSSH with "ProxyCommand ec2ssh --proxy %h %p" for "Host i-*" agrees.
func (t *Target) apply(cfg *connect.Config) {
	cfg.HostName = t.Address
	if !cfg.UserSet && t.User != "" {
		cfg.User = t.User
	}
	if cfg.HostKeyAlias == "" && t.ID != "" {
		cfg.HostKeyAlias = t.ID
	}
}

// resolveOpts say what a resolution needs.
type resolveOpts struct {
	// user: the AMI's login user is wanted (no user was given).
	user bool
}

// cached is dest's resolution from the cache, or nil.
func (s *side) cached(ctx context.Context, dest string, o resolveOpts) *Target {
	profile := s.run.Args.Profile
	if s.cache == nil || !s.configured() || !s.cache.Has(profile, dest) {
		return nil
	}
	// The region from --region or the environment needs no configuration
	// loaded: the dial starts sooner, and the clients are made beside it
	// (warm), for the checks and SSM should they be needed.
	region := preflight.RegionHint(s.run.Args.Region)
	if region == "" {
		c, err := s.get(ctx)
		if err != nil {
			return nil
		}
		region = c.Region()
	}
	c := s.cache.Get(profile, region, dest)
	if c == nil && s.run.Args.Region == "" {
		// Found in another region before: go there again.
		if c = s.cache.Get(profile, "", dest); c != nil {
			if _, err := s.useRegion(ctx, c.Region); err != nil {
				return nil
			}
		}
	}
	if c == nil || o.user && !c.UserLooked {
		return nil
	}
	s.run.Env.Debug("debug1: ec2ssh: %s is %s at %s (cached)", dest, c.InstanceID, c.Address)
	return &Target{Dest: dest, ID: c.InstanceID, Name: c.Name, Address: c.Address, User: c.User, APIRTT: c.APIRTT}
}

func (s *side) dropCache(dest string) {
	if s.cache != nil {
		s.cache.Drop(s.run.Args.Profile, dest)
	}
}

// resolve asks EC2 which instance dest is. (nil, nil): not an instance.
func (s *side) resolve(ctx context.Context, dest string, o resolveOpts) (*Target, error) {
	c, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	if c.Region() == "" {
		return nil, &failure.Error{Kind: failure.AWSAuth, Msg: "no AWS region is configured to look up " + preflight.Sanitize(dest),
			Hint: "pass --region, set AWS_REGION, or run: aws configure set region REGION"}
	}
	start := time.Now()
	in, err := c.Resolve(ctx, dest)
	if err != nil {
		return nil, err
	}
	rtt := time.Since(start)
	kind := preflight.ClassifyDest(dest)
	if in == nil && s.run.Args.Region == "" && (kind == preflight.DestID || kind == preflight.DestName) {
		// Not here: the account's other regions, in parallel. A region
		// given with --region is where to look, and only there.
		elsewhere, region, err := c.ResolveElsewhere(ctx, dest)
		if err != nil {
			return nil, err
		}
		if elsewhere == nil {
			return nil, nil
		}
		s.run.Env.Log("ec2ssh: %s is in %s, not %s (--region %s saves this lookup)", preflight.Sanitize(dest), region, c.Region(), region)
		if c, err = s.useRegion(ctx, region); err != nil {
			return nil, err
		}
		in = elsewhere
	}
	if in == nil {
		return nil, nil
	}
	addr, err := in.Address(s.run.Args.Address)
	if err != nil {
		return nil, err
	}
	t := &Target{Dest: dest, Instance: in, ID: in.ID, Name: in.Name, Address: addr, APIRTT: rtt}
	if o.user {
		// Only when no user was given: the AMI lookup is a call the
		// session would otherwise wait on for nothing. It is a nicety (the
		// local user name is the answer without it), so it has a check's
		// budget, not the way in's.
		t.User = c.ImageUser(preflight.WithRole(ctx, preflight.RoleCheck), in)
		if t.User == "" {
			s.run.Env.Debug("debug1: ec2ssh: the login user of %s's image is not known: the default user applies", in.ID)
		}
	}
	s.run.Env.Debug("debug1: ec2ssh: %s is %s (%s) at %s, resolved in %v", dest, in.ID, in.State, addr, rtt.Round(time.Millisecond))
	if s.cache != nil && in.State.Running() {
		s.cache.Put(s.run.Args.Profile, c.Region(), dest, preflight.Cached{InstanceID: in.ID, Name: in.Name, Address: addr,
			User: t.User, UserLooked: o.user, APIRTT: rtt})
	}
	return t, nil
}

// locate finds what dest is before anything is dialled: the one place the
// ways in (a connection, --proxy, --diagnose, --serial) resolve a
// destination (SPEC.md, "Destinations"). An instance id is always looked
// up; a Name tag only when DNS does not know the name (else every
// git@github.com would wait on EC2); an address is found to be an instance
// by the checks, beside the dial, unless must asks for an instance now
// (--fallback=ssm, --diagnose). nil, nil: not (yet) known to be an
// instance.
func (s *side) locate(ctx context.Context, dest string, must bool, o resolveOpts) (*Target, error) {
	switch preflight.ClassifyDest(dest) {
	case preflight.DestID:
		if t := s.cached(ctx, dest, o); t != nil {
			return t, nil
		}
		t, err := s.resolve(ctx, dest, o)
		if err != nil {
			return nil, err
		}
		if t == nil {
			c, _ := s.get(ctx)
			return nil, &failure.Error{Kind: failure.Config, Msg: "no instance " + dest + " in " + c.Region(),
				Hint: "check the id and the region (--region, AWS_REGION)"}
		}
		return t, nil
	case preflight.DestName:
		if t := s.cached(ctx, dest, o); t != nil {
			return t, nil
		}
		if !s.configured() || (!must && resolvable(ctx, dest)) {
			return nil, nil
		}
	default:
		if !must || !s.configured() {
			return nil, nil
		}
	}
	return s.resolve(ctx, dest, o)
}

// resolvable reports whether DNS knows name (briefly: a name it does not
// know may be a Name tag).
func resolvable(ctx context.Context, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, DNSWait)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	return err == nil && len(addrs) > 0
}
