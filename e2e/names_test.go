package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ssh/ec2ssh/lab"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// Names and filters at fleet size (issue 24), over the names world: more
// than a thousand instances in three regions, built once beside the EC2
// lab's world in the same moto. Every answer is compared, in the same run,
// with what EC2's API answers (the SDK asking the lab's EC2 front) and
// with EC2's documented rule applied to the whole inventory.

var (
	namesOnce  sync.Once
	namesWorld *lab.NamesWorld
	namesErr   error
)

func needNames(t *testing.T) *lab.NamesWorld {
	t.Helper()
	needWorld(t)
	namesOnce.Do(func() {
		pub, err := os.ReadFile(world.ED25519Key + ".pub")
		if err != nil {
			namesErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		namesWorld, namesErr = world.BuildNames(ctx, string(pub))
		if namesErr == nil {
			fmt.Fprintf(os.Stderr, "names world: %d instances in %v\n", len(namesWorld.Instances), time.Since(start).Round(time.Second))
		}
	})
	if namesErr != nil {
		t.Fatalf("the names world: %v", namesErr)
	}
	return namesWorld
}

// ec2At is an SDK client for region, at the lab's EC2 front (what
// ec2ssh asks) or at moto itself.
func ec2At(region, endpoint string) *ec2.Client {
	return ec2.NewFromConfig(aws.Config{Region: region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("AKIALABLABLABLABLAB0", "lab-secret-not-a-real-one", "")})
}

var frontURL = fmt.Sprintf("http://127.0.0.1:%d", lab.EC2FrontPort)

// described is every instance DescribeInstances gives for filters in
// region, as "region id".
func described(t *testing.T, c *ec2.Client, region string, filters []ec2types.Filter) map[string]ec2types.Instance {
	t.Helper()
	out := map[string]ec2types.Instance{}
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("DescribeInstances in %s: %v", region, err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				out[region+" "+aws.ToString(in.InstanceId)] = in
			}
		}
	}
	return out
}

var liveStates = ec2types.Filter{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "shutting-down", "stopping", "stopped"}}

// runNames runs ec2ssh on the lab with extra environment (later entries
// win) and a cache of its own.
func runNames(t *testing.T, cache string, extra []string, args ...string) result {
	t.Helper()
	env := append(append(append(cleanEnv(), world.AWSEnv()...), "XDG_CACHE_HOME="+cache), extra...)
	return runCmdEnv(t, env, nil, bin, append([]string{"-F", ec2Cfg}, args...)...)
}

type listedJSON struct {
	ID, Name, Region, State string
	Reach                   preflight.Reach
}

// TestNamesFilters: for each filter form, --list --json is exactly what
// the same filter given to DescribeInstances returns; the EC2 front
// answers as EC2's rule says (moto alone does not); REACH is the world's
// known way in for each instance.
func TestNamesFilters(t *testing.T) {
	nw := needNames(t)
	byID := map[string]*lab.Generated{}
	for _, g := range nw.Instances {
		byID[g.ID] = g
	}
	// The inventory: every instance of the three regions with its tags,
	// unfiltered (moto's answer, no wildcard involved).
	inventory := map[string]ec2types.Instance{}
	for _, region := range lab.NamesRegions {
		for k, v := range described(t, ec2At(region, world.MotoURL), region, nil) {
			inventory[k] = v
		}
	}
	if len(inventory) < 1000 {
		t.Fatalf("the inventory holds %d instances, want more than 1000", len(inventory))
	}
	sample := nw.Samples["far-name"][0]
	forms := []struct {
		filter, region string // region: --region ("" for the lab's)
		key, value     string // the filter as DescribeInstances takes it ("" key: none; "id": an instance id)
		min            int    // at least this many match: the form is not vacuous
	}{
		{"", "ap-southeast-2", "", "", 200},
		{"web-0*", "", "tag:Name", "web-0*", 50},
		{"*api*", "all", "tag:Name", "*api*", 20},
		{"team/*/api1?", "all", "tag:Name", "team/*/api1?", 2},
		{"db server ?", "", "tag:Name", "db server ?", 10},
		{"cache-*", "all", "tag:Name", "cache-*", 20},
		{"Cache-*", "all", "tag:Name", "Cache-*", 40},
		{"web[1]", "", "tag:Name", "web[1]", 1},
		{`star\*name-*`, "", "tag:Name", `star\*name-*`, 4},
		{`back\\slash-?`, "all", "tag:Name", `back\\slash-?`, 12},
		{"asg-0?", "all", "tag:Name", "asg-0?", 100},
		{"tag:Env=prod", "", "tag:Env", "prod", 50},
		{"tag:Env=pr*", "all", "tag:Env", "pr*", 200},
		{`tag:Note=50\*off`, "all", "tag:Note", `50\*off`, 20},
		{`tag:Note=*\?`, "", "tag:Note", `*\?`, 10},
		{"tag:Team=*/*", "all", "tag:Team", "*/*", 100},
		{sample.ID, "all", "id", sample.ID, 1},
	}
	checkedReach := 0
	for _, f := range forms {
		t.Run(f.filter+" --region "+f.region, func(t *testing.T) {
			args := []string{"--list", "--json"}
			if f.region != "" {
				args = append(args, "--region", f.region)
			}
			if f.filter != "" {
				args = append(args, f.filter)
			}
			r := runNames(t, t.TempDir(), nil, args...)
			if r.code != 0 {
				t.Fatalf("ec2ssh %q: exit %d: %s", args, r.code, r.stderr)
			}
			var got []listedJSON
			if err := json.Unmarshal(r.stdout, &got); err != nil {
				t.Fatalf("--json: %v: %.300s", err, r.stdout)
			}
			listed := map[string]listedJSON{}
			for _, l := range got {
				listed[l.Region+" "+l.ID] = l
			}
			// What DescribeInstances says, region by region.
			regions := []string{f.region}
			switch f.region {
			case "":
				regions = []string{lab.Region}
			case "all":
				out, err := ec2At(lab.Region, frontURL).DescribeRegions(context.Background(), &ec2.DescribeRegionsInput{})
				if err != nil {
					t.Fatal(err)
				}
				regions = nil
				for _, rg := range out.Regions {
					regions = append(regions, aws.ToString(rg.RegionName))
				}
			}
			want := map[string]ec2types.Instance{}
			for _, region := range regions {
				var filters []ec2types.Filter
				switch f.key {
				case "":
				case "id":
					filters = []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{f.value}}}
				default:
					filters = []ec2types.Filter{{Name: aws.String(f.key), Values: []string{f.value}}}
				}
				for k, v := range described(t, ec2At(region, frontURL), region, append(filters, liveStates)) {
					want[k] = v
				}
			}
			if len(want) < f.min {
				t.Errorf("DescribeInstances gives %d, want at least %d: the form is vacuous", len(want), f.min)
			}
			if diff := setDiff(listed, want); diff != "" {
				t.Errorf("--list %s differs from DescribeInstances: %s", f.filter, diff)
			}
			// EC2's rule over the inventory is what the front answered.
			if f.key != "" && f.key != "id" {
				oracle := map[string]bool{}
				for k, in := range inventory {
					region, _, _ := strings.Cut(k, " ")
					if !slices.Contains(regions, region) || in.State.Name == ec2types.InstanceStateNameTerminated {
						continue
					}
					for _, tg := range in.Tags {
						if "tag:"+aws.ToString(tg.Key) == f.key && preflight.EC2Match(f.value, aws.ToString(tg.Value)) {
							oracle[k] = true
						}
					}
				}
				if diff := setDiff(oracle, want); diff != "" {
					t.Errorf("the EC2 front differs from EC2's rule for %s=%s: %s", f.key, f.value, diff)
				}
			}
			// REACH: the world's known way in.
			for _, l := range got {
				g := byID[l.ID]
				if g == nil || g.Reach == "gone" {
					continue
				}
				if l.Reach.Via != g.Reach || l.Reach.Why == "" {
					t.Errorf("%s (%s, %s): REACH %+v, want %s", l.ID, l.Name, l.Region, l.Reach, g.Reach)
				}
				checkedReach++
			}
		})
	}
	t.Logf("REACH checked for %d listed instances", checkedReach)
	if checkedReach < 500 {
		t.Errorf("REACH was checked for only %d instances", checkedReach)
	}
}

// setDiff says what is in one set and not the other (a few of each).
func setDiff[A, B any](got map[string]A, want map[string]B) string {
	var extra, missing []string
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(extra) == 0 && len(missing) == 0 {
		return ""
	}
	sort.Strings(extra)
	sort.Strings(missing)
	return fmt.Sprintf("%d listed that it does not give (%.5q), %d it gives not listed (%.5q)", len(extra), extra, len(missing), missing)
}

// TestNamesMotoIsNotEC2: why the front rewrites filters. moto reads
// "web[1]" as a character class and "\\" as two backslashes; EC2 does
// neither. If moto ever agrees with EC2, this says so and the rewrite can
// go.
func TestNamesMotoIsNotEC2(t *testing.T) {
	needNames(t)
	names := func(endpoint, value string) []string {
		var out []string
		for _, in := range described(t, ec2At(lab.Region, endpoint), lab.Region, []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{value}}}) {
			for _, tg := range in.Tags {
				if aws.ToString(tg.Key) == "Name" {
					out = append(out, aws.ToString(tg.Value))
				}
			}
		}
		sort.Strings(out)
		return out
	}
	for _, tt := range []struct {
		value     string
		moto, ec2 []string
	}{
		{"web[1]", []string{"web1", "web[1]"}, []string{"web[1]"}},
		{`back\\slash-1`, nil, []string{`back\slash-1`}},
	} {
		if got := names(world.MotoURL, tt.value); !slices.Equal(got, tt.moto) {
			t.Errorf("moto: tag:Name=%s gives %q, measured %q before: moto changed", tt.value, got, tt.moto)
		}
		if got := names(frontURL, tt.value); !slices.Equal(got, tt.ec2) {
			t.Errorf("the EC2 front: tag:Name=%s gives %q, EC2 gives %q", tt.value, got, tt.ec2)
		}
	}
	// Several values of a filter on a list (an ACL's subnets): EC2 matches
	// any; moto only a subset or superset, so the VPC's default ACL
	// (associated with other subnets too) is missing from its answer.
	var subnets []string
	for _, name := range []string{"healthy", "nacl-egress"} {
		in := described(t, ec2At(lab.Region, world.MotoURL), lab.Region, []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{world.Instances[name].ID}}})
		for _, i := range in {
			subnets = append(subnets, aws.ToString(i.SubnetId))
		}
	}
	acls := func(endpoint string) map[string]string {
		out, err := ec2At(lab.Region, endpoint).DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{
			Filters: []ec2types.Filter{{Name: aws.String("association.subnet-id"), Values: subnets}}})
		if err != nil {
			t.Fatal(err)
		}
		bySubnet := map[string]string{}
		for _, a := range out.NetworkAcls {
			for _, as := range a.Associations {
				bySubnet[aws.ToString(as.SubnetId)] = aws.ToString(a.NetworkAclId)
			}
		}
		return bySubnet
	}
	if m := acls(world.MotoURL); m[subnets[0]] != "" {
		t.Errorf("moto now gives the ACL of %s for %q: it agrees with EC2, and the front's merge can go", subnets[0], subnets)
	}
	if m := acls(frontURL); m[subnets[0]] == "" || m[subnets[1]] == "" || m[subnets[0]] == m[subnets[1]] {
		t.Errorf("the EC2 front gives ACLs %v for %q, want one for each", m, subnets)
	}
}

// TestNamesReachAgreesWithConnecting: for instances whose way in the lab
// really offers (a real sshd, the network's rules, the SSM stand-in, the
// endpoint), REACH is the way a connection then takes.
func TestNamesReachAgreesWithConnecting(t *testing.T) {
	needWorld(t)
	for _, name := range []string{"healthy", "sg-no-22", "stopped", "nacl-deny", "nacl-egress", "eice-only", "eice-noegress", "sg-other-net"} {
		t.Run(name, func(t *testing.T) {
			r := runNames(t, t.TempDir(), nil, "--list", "--json", name)
			var got []listedJSON
			if err := json.Unmarshal(r.stdout, &got); err != nil || len(got) != 1 {
				t.Fatalf("--list %s: %v %s %s", name, err, r.stdout, r.stderr)
			}
			c := runNames(t, t.TempDir(), nil, "-v", "-l", lab.LoginUser, "-o", "ConnectTimeout=5", name, "echo in")
			way := "none"
			switch {
			case c.code != 0:
			case strings.Contains(string(c.stderr), "continuing through an EC2 Instance Connect Endpoint"):
				way = "eice"
			case strings.Contains(string(c.stderr), "continuing over SSM"):
				way = "ssm"
			default:
				way = "direct"
			}
			if got[0].Reach.Via != way {
				t.Errorf("REACH %+v; the connection got in: %s (exit %d)\n%s", got[0].Reach, way, c.code, lastLines(c.stderr, 8))
			}
		})
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var resolvedLine = regexp.MustCompile(`debug1: ec2ssh: (\S+) is (i-[0-9a-f]+)(?: \([a-z-]+\))? at \S+(,| \(cached\))`)

// resolveByConnecting connects to dest (as root, to a sample's sshd) and
// says what it resolved to: the id, whether from the cache, or the error.
func resolveByConnecting(t *testing.T, cache string, extra []string, args ...string) (string, bool) {
	t.Helper()
	r := runNames(t, cache, extra, append([]string{"-v", "-l", "root", "-o", "ConnectTimeout=5"}, append(args, "echo ok")...)...)
	if r.code != 0 {
		// The error, with the lines that belong to it (the candidates).
		_, e, ok := strings.Cut(string(r.stderr), "ec2ssh: error: ")
		if !ok {
			return fmt.Sprintf("exit %d: %s", r.code, lastLines(r.stderr, 5)), false
		}
		e, _, _ = strings.Cut(e, "ec2ssh: hint: ")
		return "ec2ssh: error: " + strings.TrimSpace(e), false
	}
	m := resolvedLine.FindSubmatch(r.stderr)
	if m == nil || string(r.stdout) != "ok\n" {
		return "no resolution: " + lastLines(r.stderr, 5), false
	}
	return string(m[2]), string(m[3]) == " (cached)"
}

// TestNamesResolution: the same name resolves identically with a cold
// cache, a warm one and after each kind of listing; a listing warms the
// cache only with what resolution would say.
func TestNamesResolution(t *testing.T) {
	nw := needNames(t)
	s := nw.Samples
	far := s["far-name"][0].ID
	cases := []struct {
		dest string
		want []string // the id, or what the error must name
	}{
		{"shared-name", []string{s["shared-name"][0].ID}},
		{"twin-name", []string{`ec2ssh: error: 2 instances are named "twin-name"`, s["twin-name"][0].ID, s["twin-name"][1].ID}},
		{"far-name", []string{far}},
		{"split-twin", []string{`ec2ssh: error: 2 instances in 2 regions are named "split-twin"`, "ap-southeast-2", lab.FarRegion}},
		{"gone-name", nil},
		{far, []string{far}},
	}
	for _, g := range s["shared-name"] {
		if g.Region == lab.Region {
			cases[0].want = []string{g.ID}
		}
	}
	for _, g := range s["gone-name"] {
		if g.Region == "ap-southeast-2" {
			cases[4].want = []string{g.ID}
		}
	}
	cold := map[string]string{}
	for _, c := range cases {
		got, _ := resolveByConnecting(t, t.TempDir(), nil, c.dest)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("cold: %s resolves to %q, want it to say %q", c.dest, got, w)
			}
		}
		cold[c.dest] = got
	}
	states := []struct {
		name string
		list []string // the listing first; nil: resolve each case first (warm)
		hits []string
	}{
		{name: "warm", hits: []string{"shared-name", "far-name", "gone-name", far}},
		{name: "after --list", list: []string{}, hits: []string{"shared-name"}},
		{name: "after --list *-name", list: []string{"*-name"}, hits: []string{"shared-name"}},
		{name: "after --list --region all", list: []string{"--region", "all"}, hits: []string{"shared-name", "far-name", "gone-name"}},
		{name: "after --list --region all *-name", list: []string{"--region", "all", "*-name"}, hits: []string{"shared-name", "far-name", "gone-name"}},
		{name: "after --list tag:World=names", list: []string{"tag:World=names"}},
		{name: "after --list --region eu-west-1", list: []string{"--region", lab.FarRegion}},
		{name: "after --list " + far, list: []string{far}},
	}
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			cache := t.TempDir()
			if st.list == nil {
				for _, c := range cases {
					resolveByConnecting(t, cache, nil, c.dest)
				}
			} else if r := runNames(t, cache, nil, append([]string{"--list"}, st.list...)...); r.code != 0 {
				t.Fatalf("--list %q: exit %d: %s", st.list, r.code, r.stderr)
			}
			for _, c := range cases {
				got, hit := resolveByConnecting(t, cache, nil, c.dest)
				if got != cold[c.dest] {
					t.Errorf("%s resolves to %q; cold, to %q", c.dest, got, cold[c.dest])
				}
				if want := slices.Contains(st.hits, c.dest); hit != want {
					t.Errorf("%s: from the cache alone: %v, want %v", c.dest, hit, want)
				}
			}
		})
	}
}

// TestNamesRegionUnasked: a region answering 500 is not a region without
// the name.
func TestNamesRegionUnasked(t *testing.T) {
	nw := needNames(t)
	w, err := lab.StartRegionWeather(frontURL)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	w.Fail("ap-southeast-2", true)
	env := []string{"AWS_ENDPOINT_URL_EC2=" + w.URL()}
	far := nw.Samples["far-name"][0].ID
	shared := ""
	for _, g := range nw.Samples["shared-name"] {
		if g.Region == lab.Region {
			shared = g.ID
		}
	}
	start := time.Now()
	got, _ := resolveByConnecting(t, t.TempDir(), env, "far-name")
	took := time.Since(start)
	for _, want := range []string{"ec2ssh: error: far-name is " + far + " in " + lab.FarRegion, "could not be asked: ap-southeast-2 (DescribeInstances: AWS answered 500)"} {
		if !strings.Contains(got, want) {
			t.Errorf("far-name with ap-southeast-2 failing: %q, want it to say %q", got, want)
		}
	}
	t.Logf("the error came after %v", took.Round(time.Millisecond))
	r := runNames(t, t.TempDir(), env, "-l", "root", "far-name", "true")
	if hint := string(r.stderr); !strings.Contains(hint, "ec2ssh: hint: choose it with --region "+lab.FarRegion+" or by its id (ec2ssh "+far+")") {
		t.Errorf("the hint: %s", r.stderr)
	}
	// What decides without the failed region still does.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"shared-name"}, shared},                      // the home region has it
		{[]string{far}, far},                                   // an id is unique
		{[]string{"--region", lab.FarRegion, "far-name"}, far}, // --region names the region
	} {
		if got, _ := resolveByConnecting(t, t.TempDir(), env, tt.args...); got != tt.want {
			t.Errorf("%q with ap-southeast-2 failing: %q, want %s", tt.args, got, tt.want)
		}
	}
	// A listing of every region says which one failed, in one line.
	r = runNames(t, t.TempDir(), env, "--list", "--region", "all", "*-name")
	lines := strings.Split(strings.TrimSpace(string(r.stderr)), "\n")
	if r.code != 255 || !strings.HasPrefix(lines[0], "ec2ssh: error: ap-southeast-2: DescribeInstances: AWS answered 500") || len(lines) > 2 ||
		strings.Contains(string(r.stderr), "operation error") {
		t.Errorf("--list --region all with a region failing: exit %d\n%s", r.code, r.stderr)
	}
}

// TestNamesSlowPages: a listing whose pages each answer late finishes
// (each page has its own budget), as the AWS CLI's does; on a terminal a
// line counts pages and instances meanwhile, and nowhere else.
func TestNamesSlowPages(t *testing.T) {
	needNames(t)
	lab.Require(t, "tmux")
	w, err := lab.StartRegionWeather(frontURL)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	want := described(t, ec2At(lab.Region, frontURL), lab.Region, []ec2types.Filter{liveStates})
	const delay = 6 * time.Second
	w.Delay("DescribeInstances", delay)
	dir := t.TempDir()
	env := append(append(append(cleanEnv(), world.AWSEnv()...), "XDG_CACHE_HOME="+dir), "AWS_ENDPOINT_URL_EC2="+w.URL())
	var script strings.Builder
	script.WriteString("#!/bin/sh\n")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" || strings.ContainsAny(k, "()%") || strings.Contains(v, "'") {
			continue
		}
		fmt.Fprintf(&script, "export %s='%s'\n", k, v)
	}
	out := filepath.Join(dir, "list.json")
	fmt.Fprintf(&script, "%s -F %s --list --json > %s\necho EXIT:$?\n", bin, ec2Cfg, out)
	sh := filepath.Join(dir, "list.sh")
	os.WriteFile(sh, []byte(script.String()), 0o755)
	tm := newTmux(t)
	start := time.Now()
	tm.send(sh)
	tm.enter()
	scr := tm.waitFor("so far", 2*delay+10*time.Second)
	if !regexp.MustCompile(`ec2ssh: listing: \d+ pages?, \d+ instances? so far`).MatchString(scr) {
		t.Errorf("the progress line: %q", scr)
	}
	scr = tm.waitFor("EXIT:", 10*delay+time.Minute)
	took := time.Since(start)
	if !strings.Contains(scr, "EXIT:0") {
		t.Fatalf("the slow listing failed:\n%s", scr)
	}
	pages := w.Calls("DescribeInstances", lab.Region)
	var got []listedJSON
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &got); err != nil || len(got) != len(want) {
		t.Errorf("listed %d (%v), DescribeInstances gives %d", len(got), err, len(want))
	}
	if pages < 2 || took < time.Duration(pages)*delay || took < preflight.Budgets[preflight.RoleFleet] {
		t.Errorf("%d pages in %v: not a test of slow pages past one call's budget (%v)", pages, took, preflight.Budgets[preflight.RoleFleet])
	}
	t.Logf("%d instances in %d pages of %v each, in %v", len(got), pages, delay, took.Round(time.Millisecond))
	// Not on a terminal: no progress line at all.
	w.Delay("DescribeInstances", time.Second)
	r := runNames(t, t.TempDir(), []string{"AWS_ENDPOINT_URL_EC2=" + w.URL()}, "--list", "--json", "web-*")
	if r.code != 0 || len(r.stderr) != 0 {
		t.Errorf("off a terminal: exit %d, stderr %q", r.code, r.stderr)
	}
}
