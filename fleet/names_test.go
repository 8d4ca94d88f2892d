package fleet

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
	"github.com/ec2ssh/ec2ssh/reach"
)

// Resolution is the same whatever ran before it (issue 24): a cold
// cache, a warm one, and every kind of listing leave each name meaning
// what EC2 says it means, over three fake regions that answer as EC2 does.

func (f *fakeRegion) Lookup(ctx context.Context, dest string) preflight.Answer {
	f.mu.Lock()
	f.lookups++
	f.mu.Unlock()
	if f.err != nil {
		return preflight.Answer{Region: f.region, Err: f.err}
	}
	ans := preflight.Answer{Region: f.region}
	for _, in := range f.instances {
		if in.ID == dest || in.Name == dest {
			c := *in
			c.Region = f.region
			ans.Instances = append(ans.Instances, &c)
		}
	}
	return ans
}

func (f *fakeRegion) Elsewhere(ctx context.Context, dest string) ([]preflight.Answer, error) {
	var out []preflight.Answer
	for _, r := range f.regions {
		if r != f.region {
			out = append(out, f.others[r].Lookup(ctx, dest))
		}
	}
	return out, nil
}

func (f *fakeRegion) Resolve(ctx context.Context, dest string) (*preflight.Instance, error) {
	in, _, _, err := preflight.Decide(dest, f.Lookup(ctx, dest), nil, true)
	return in, err
}

func (f *fakeRegion) ImageUser(ctx context.Context, in *preflight.Instance) string { return "" }

func (f *fakeRegion) asked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups
}

func tagged(in *preflight.Instance, kv ...string) *preflight.Instance {
	in.Tags = map[string]string{"Name": in.Name}
	for i := 0; i+1 < len(kv); i += 2 {
		in.Tags[kv[i]] = kv[i+1]
	}
	return in
}

// threeRegions: us-east-1 (home), eu-west-1, ap-south-1.
func threeRegions() (home *fakeRegion, all []*fakeRegion) {
	regions := []string{"ap-south-1", "eu-west-1", "us-east-1"}
	home = &fakeRegion{region: "us-east-1", regions: regions, instances: []*preflight.Instance{
		tagged(inst(1, "web-1", preflight.StateRunning), "Env", "prod"),
		tagged(inst(2, "twin", preflight.StateRunning)),
		tagged(inst(3, "twin", preflight.StateStopped)),
		tagged(inst(4, "Web-1", preflight.StateRunning)),
		tagged(inst(5, "team/api", preflight.StateRunning), "Env", "prod"),
		tagged(inst(6, "gone", preflight.StateTerminated)),
		tagged(inst(7, "db server 1", preflight.StateStopped)),
	}}
	eu := &fakeRegion{region: "eu-west-1", regions: regions, instances: []*preflight.Instance{
		tagged(inst(11, "web-1", preflight.StateRunning), "Env", "prod"),
		tagged(inst(12, "far", preflight.StateRunning)),
		tagged(inst(13, "far-twin", preflight.StateRunning)),
		tagged(inst(14, "gone", preflight.StateRunning)),
	}}
	ap := &fakeRegion{region: "ap-south-1", regions: regions, instances: []*preflight.Instance{
		tagged(inst(21, "far-twin", preflight.StateRunning)),
		tagged(inst(22, "only-ap", preflight.StateRunning), "Env", "prod"),
	}}
	all = []*fakeRegion{home, eu, ap}
	others := map[string]*fakeRegion{"us-east-1": home, "eu-west-1": eu, "ap-south-1": ap}
	for _, r := range all {
		r.others = others
	}
	return home, all
}

// resolved is what dest resolves to, as a connection would, with the
// cache in dir: the instance id and region, or the error.
func resolved(t *testing.T, home *fakeRegion, dir, dest string) string {
	t.Helper()
	// (ssh's command line refuses a host with a space or a slash; the
	// resolution is asked directly.)
	r, _, _ := fleetRun(t, home, "-F", "none", "-l", "ec2-user", "host")
	t.Setenv("XDG_CACHE_HOME", dir)
	tg, err := reach.Locate(context.Background(), r, dest)
	switch {
	case err != nil:
		return "error: " + err.Error()
	case tg == nil:
		return "none"
	}
	return tg.ID
}

func listWith(t *testing.T, home *fakeRegion, dir string, argv ...string) {
	t.Helper()
	r, _, stderr := fleetRun(t, home, append([]string{"-F", "none", "--list"}, argv...)...)
	t.Setenv("XDG_CACHE_HOME", dir)
	if code, err := List(context.Background(), r); code != 0 || err != nil {
		t.Fatalf("--list %q = %d, %v: %s", argv, code, err, text(t, stderr))
	}
}

var names = []struct{ dest, want string }{
	{"web-1", "i-00000000000000001"}, // the home region wins over eu-west-1's
	{"twin", `error: 2 instances are named "twin"`},
	{"Web-1", "i-00000000000000004"},
	{"team/api", "i-00000000000000005"},
	{"gone", "i-00000000000000014"}, // a live one elsewhere beats a terminated one at home
	{"far", "i-00000000000000012"},
	{"far-twin", `error: 2 instances in 2 regions are named "far-twin"`},
	{"only-ap", "i-00000000000000022"},
	{"db server 1", "i-00000000000000007"},
	{"i-00000000000000012", "i-00000000000000012"},
	{"nowhere", "none"},
}

func TestResolutionIsTheSameWhateverRanBefore(t *testing.T) {
	setAWS(t)
	home, _ := threeRegions()
	cold := map[string]string{}
	for _, n := range names {
		got := resolved(t, home, t.TempDir(), n.dest)
		if !strings.HasPrefix(got, n.want) {
			t.Errorf("cold: %q resolves to %q, want %q", n.dest, got, n.want)
		}
		cold[n.dest] = got
	}
	t.Run("warm", func(t *testing.T) {
		dir := t.TempDir()
		for _, n := range names {
			resolved(t, home, dir, n.dest)
		}
		for _, n := range names {
			if got := resolved(t, home, dir, n.dest); got != cold[n.dest] {
				t.Errorf("warm: %q resolves to %q, cold to %q", n.dest, got, cold[n.dest])
			}
		}
	})
	listings := []struct {
		argv []string
		// hits are names the listing lets resolve from the cache alone.
		hits []string
	}{
		{argv: nil, hits: []string{"web-1", "Web-1", "team/api"}},
		{argv: []string{"*"}, hits: []string{"web-1", "Web-1", "team/api"}},
		{argv: []string{"--region", "all"}, hits: []string{"web-1", "Web-1", "team/api", "gone", "far", "only-ap"}},
		{argv: []string{"--region", "all", "*-*"}, hits: []string{"web-1", "Web-1", "only-ap"}},
		{argv: []string{"web*"}, hits: []string{"web-1"}},
		{argv: []string{"*api"}, hits: []string{"team/api"}},
		{argv: []string{"tag:Env=prod"}},
		{argv: []string{"--region", "all", "tag:Env=prod"}},
		{argv: []string{"--region", "eu-west-1"}},
		{argv: []string{"i-00000000000000012"}},
	}
	for _, l := range listings {
		t.Run("after --list "+strings.Join(l.argv, " "), func(t *testing.T) {
			dir := t.TempDir()
			listWith(t, home, dir, l.argv...)
			for _, n := range names {
				before := home.asked()
				got := resolved(t, home, dir, n.dest)
				if got != cold[n.dest] {
					t.Errorf("%q resolves to %q, cold to %q", n.dest, got, cold[n.dest])
				}
				if hit := home.asked() == before; hit != slices.Contains(l.hits, n.dest) {
					t.Errorf("%q: answered from the cache alone: %v, want %v", n.dest, hit, !hit)
				}
			}
		})
	}
}

// TestResolutionWithARegionUnasked: a region that could not be asked is
// not a region without the name, unless the home region, the id or
// --region decides.
func TestResolutionWithARegionUnasked(t *testing.T) {
	setAWS(t)
	home, all := threeRegions()
	all[2].err = &failure.Error{Kind: failure.Unreachable, Msg: "DescribeInstances: AWS answered 500"}
	for _, tt := range []struct{ dest, want string }{
		{"web-1", "i-00000000000000001"},
		{"i-00000000000000012", "i-00000000000000012"},
		{"far", "error: far is i-00000000000000012 in eu-west-1, but 1 region could not be asked: ap-south-1 (DescribeInstances: AWS answered 500)"},
		{"nowhere", "error: nowhere is not in us-east-1 or the 1 other regions that answered, but 1 region could not be asked: ap-south-1"},
	} {
		if got := resolved(t, home, t.TempDir(), tt.dest); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%q resolves to %q, want %q", tt.dest, got, tt.want)
		}
	}
	// --region decides: only there is asked.
	r, _, _ := fleetRun(t, home, "-F", "none", "-l", "ec2-user", "--region", "us-east-1", "far")
	if tg, err := reach.Locate(context.Background(), r, "far"); tg != nil || err != nil {
		t.Errorf("--region us-east-1 far = %v, %v; want no instance", tg, err)
	}
	// The error says how to choose.
	r, _, _ = fleetRun(t, home, "-F", "none", "-l", "ec2-user", "far")
	_, err := reach.Locate(context.Background(), r, "far")
	if h := failure.HintOf(err); !strings.Contains(h, "--region eu-west-1") || !strings.Contains(h, "ec2ssh i-00000000000000012") {
		t.Errorf("hint %q", h)
	}
}

// setAWS makes AWS look configured, in the fake regions' home.
func setAWS(t *testing.T) {
	t.Helper()
	for _, v := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
}

// TestListReach: REACH and its JSON are the ladder's choice over each
// instance's facts (reach.Predict), not a judgement of the listing's own.
func TestListReach(t *testing.T) {
	f := &fakeRegion{region: "us-east-1", instances: []*preflight.Instance{inst(1, "open", preflight.StateRunning),
		inst(2, "blocked-agent", preflight.StateRunning), inst(3, "blocked", preflight.StateRunning), inst(4, "stopped", preflight.StateStopped)}}
	f.facts = func(in *preflight.Instance, port int) *preflight.Facts {
		fs := openFacts(in, port)
		switch in.Name {
		case "blocked-agent":
			fs.SecurityGroups[0].Ingress = nil
			fs.SSM = &preflight.SSMAgent{Registered: true, PingStatus: "Online"}
		case "blocked":
			fs.SecurityGroups[0].Ingress = nil
		}
		return fs
	}
	r, stdout, _ := fleetRun(t, f, "-F", "none", "--list", "--json")
	if code, err := List(context.Background(), r); code != 0 || err != nil {
		t.Fatalf("List = %d, %v", code, err)
	}
	var got []struct {
		Name  string
		Reach preflight.Reach
	}
	if err := json.Unmarshal([]byte(text(t, stdout)), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"open": "direct", "blocked-agent": "ssm", "blocked": "none", "stopped": "none"}
	for _, g := range got {
		if g.Reach.Via != want[g.Name] || g.Reach.Why == "" {
			t.Errorf("%s: reach %+v, want via %s", g.Name, g.Reach, want[g.Name])
		}
	}
	if len(got) != 4 {
		t.Errorf("listed %d", len(got))
	}
}

// TestListTakesAnyFilter: a FILTER is EC2's, not a host name: spaces,
// backslashes, brackets and "@" are EC2's to judge.
func TestListTakesAnyFilter(t *testing.T) {
	f := &fakeRegion{region: "us-east-1", instances: []*preflight.Instance{tagged(inst(1, "db server 1", preflight.StateRunning)),
		tagged(inst(2, `back\slash`, preflight.StateRunning)), tagged(inst(3, "a@b", preflight.StateRunning), "Note", "50*off")}}
	for _, tt := range []struct{ filter, want string }{
		{"db server ?", "db server 1"},
		{`back\\slash`, `back\slash`},
		{"a@*", "a@b"},
		{`tag:Note=50\*off`, "a@b"},
	} {
		r, stdout, stderr := fleetRun(t, f, "-F", "none", "--list", "--json", tt.filter)
		if code, err := List(context.Background(), r); code != 0 || err != nil {
			t.Fatalf("--list %q = %d, %v: %s", tt.filter, code, err, text(t, stderr))
		}
		var got []struct{ Name string }
		json.Unmarshal([]byte(text(t, stdout)), &got)
		if len(got) != 1 || got[0].Name != tt.want {
			t.Errorf("--list %q lists %v, want %q", tt.filter, got, tt.want)
		}
	}
	args, err := connect.ParseArgs([]string{"--all", "db server ?", "--", "uptime"})
	if err != nil || args.Destination != "db server ?" {
		t.Errorf("--all with a filter with spaces: %v, %v", args, err)
	}
	// --all's user is split off as ssh splits a destination.
	args, err = connect.ParseArgs([]string{"--all", `root@back\slash-?`, "--", "uptime"})
	if err != nil || args.Destination != `back\slash-?` || len(args.Settings) == 0 || args.Settings[0].Key != "User" || args.Settings[0].Value != "root" {
		t.Errorf("--all root@FILTER: %+v, %v", args, err)
	}
}
