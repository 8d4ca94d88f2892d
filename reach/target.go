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

// cached is dest's resolution from the cache, or nil. The cache holds
// what regions answered for dest; the answer is preflight.Decide over
// them, the rule a fresh resolution follows, and only when that rule can
// decide from what is held (the home region's answer, and every other
// region's when the home region has no live instance of the name) and
// decides one running instance. Anything else (an ambiguous name, a
// stopped instance, a region not remembered) is resolved afresh.
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
	m := s.cache.Recall(profile, dest)
	if m == nil {
		return nil
	}
	home, ok := m.Answers[region]
	if !ok {
		return nil
	}
	var others []preflight.Answer
	if m.Swept {
		others = []preflight.Answer{}
		for r, a := range m.Answers {
			if r != region {
				others = append(others, a)
			}
		}
	}
	in, where, _, err := preflight.Decide(dest, home, others, s.run.Args.Region != "")
	if err != nil || in == nil || !in.State.Running() {
		return nil
	}
	user := m.Users[in.ID]
	if o.user && !user.Looked {
		return nil
	}
	addr, err := in.Address(s.run.Args.Address)
	if err != nil {
		return nil
	}
	if where != region {
		// Found in another region before: go there again.
		if _, err := s.useRegion(ctx, where); err != nil {
			return nil
		}
	}
	s.run.Env.Debug("debug1: ec2ssh: %s is %s at %s (cached)", dest, in.ID, addr)
	return &Target{Dest: dest, ID: in.ID, Name: in.Name, Address: addr, User: user.User, APIRTT: m.Answers[where].Took}
}

func (s *side) dropCache(dest string) {
	if s.cache != nil {
		s.cache.Drop(s.run.Args.Profile, dest)
	}
}

// resolve asks EC2 which instance dest is (preflight.Decide over the
// home region's answer and, when it has no live instance of the name and
// no --region pins it, every other enabled region's). (nil, nil): not an
// instance. What the regions answered is remembered, as they answered it.
func (s *side) resolve(ctx context.Context, dest string, o resolveOpts) (*Target, error) {
	c, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	if c.Region() == "" {
		return nil, &failure.Error{Kind: failure.AWSAuth, Msg: "no AWS region is configured to look up " + preflight.Sanitize(dest),
			Hint: "pass --region, set AWS_REGION, or run: aws configure set region REGION"}
	}
	pinned := s.run.Args.Region != ""
	home := c.Lookup(ctx, dest)
	in, region, more, err := preflight.Decide(dest, home, nil, pinned)
	var others []preflight.Answer
	if more {
		// Not here: the account's other regions, in parallel. A region
		// given with --region is where to look, and only there.
		if others, err = c.Elsewhere(ctx, dest); err != nil {
			return nil, err
		}
		in, region, _, err = preflight.Decide(dest, home, others, pinned)
	}
	if err != nil || in == nil {
		return nil, err
	}
	rtt := home.Took
	if region != c.Region() {
		s.run.Env.Log("ec2ssh: %s is in %s, not %s (--region %s saves this lookup)", preflight.Sanitize(dest), region, c.Region(), region)
		for _, a := range others {
			if a.Region == region {
				rtt = a.Took
			}
		}
		if c, err = s.useRegion(ctx, region); err != nil {
			return nil, err
		}
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
		s.cache.Remember(s.run.Args.Profile, dest, append([]preflight.Answer{home}, others...), more,
			preflight.LoginUser{ID: in.ID, User: t.User, Looked: o.user})
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

// Locate is what a connection to dest would resolve it to before anything
// is dialled (the cache, then AWS), as an instance is asked for: an ssh
// host that DNS knows is not tried as a Name. (nil, nil): not an instance.
// Its errors are resolution's (preflight.Decide): a Name several live
// instances carry, a region that could not be asked.
func Locate(ctx context.Context, r *Run, dest string) (*Target, error) {
	return newSide(r).locate(ctx, dest, true, resolveOpts{user: !r.Config.UserSet})
}
