package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
	"github.com/ec2ssh/ec2ssh/reach"
)

// The fleet without AWS: a fake region, and this test binary standing in
// for ec2ssh itself when --all runs it once per instance.

// helperEnv makes this binary act as ec2ssh for one instance: it prints
// its arguments and ends as the instance's name says ("exit-N" ends with
// N, "down" fails as ec2ssh does).
const helperEnv = "EC2SSH_FLEET_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helper(argv []string) int {
	id := ""
	for _, a := range argv {
		if strings.HasPrefix(a, "i-") {
			id = a
		}
	}
	fmt.Printf("ran on %s\n", id)
	switch id {
	case "i-00000000000000003":
		fmt.Fprintln(os.Stderr, "a remote complaint")
		return 3
	case "i-00000000000000004":
		fmt.Fprintln(os.Stderr, "ec2ssh: error: connect to 10.0.0.4 port 22: Connection refused")
		fmt.Fprintln(os.Stderr, "ec2ssh: hint: is sshd running?")
		return 255
	}
	return 0
}

type fakeRegion struct {
	reach.Cloud // what the fleet does not ask: nil, so a call would fail the test
	region      string
	instances   []*preflight.Instance
	regions     []string
	others      map[string]*fakeRegion
	// err, when set, is how asking this region fails; lookups counts
	// resolution's calls (names_test.go).
	err     error
	mu      sync.Mutex
	lookups int
	// facts, when set, are an instance's facts for ListFacts.
	facts func(in *preflight.Instance, port int) *preflight.Facts
}

func (f *fakeRegion) Region() string { return f.region }

func (f *fakeRegion) List(ctx context.Context, flt preflight.Filter) ([]*preflight.Instance, error) {
	var out []*preflight.Instance
	for _, in := range f.instances {
		// As EC2 selects with the filter and the states a listing asks for.
		if flt.Matches(in) && in.State != preflight.StateTerminated {
			c := *in
			c.Region = f.region
			out = append(out, &c)
		}
	}
	return out, nil
}

func (f *fakeRegion) Regions(ctx context.Context) ([]string, error) { return f.regions, nil }

// ListFacts: every instance's group admits port 22 from anywhere, its
// subnet's ACL lets everything through, and no agent is registered.
func (f *fakeRegion) ListFacts(ctx context.Context, ins []*preflight.Instance, req preflight.ListRequest) map[string]*preflight.Facts {
	out := map[string]*preflight.Facts{}
	for _, in := range ins {
		if f.facts != nil {
			out[in.ID] = f.facts(in, req.Port)
			continue
		}
		out[in.ID] = openFacts(in, req.Port)
	}
	return out
}

func openFacts(in *preflight.Instance, port int) *preflight.Facts {
	in.Interfaces = []preflight.Interface{{ID: "eni-1", SecurityGroups: []string{"sg-1"}}}
	return &preflight.Facts{Region: in.Region, Port: port, Instance: in,
		SecurityGroups: []preflight.SecurityGroup{{ID: "sg-1", Ingress: []preflight.SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"0.0.0.0/0"}}}}},
		NetworkACL: &preflight.NetworkACL{ID: "acl-1", Entries: []preflight.ACLEntry{{Number: 100, Protocol: "-1", Allow: true, CIDR: "0.0.0.0/0"},
			{Number: 100, Egress: true, Protocol: "-1", Allow: true, CIDR: "0.0.0.0/0"}}},
		SSM: &preflight.SSMAgent{}, Source: preflight.Source{Address: "203.0.113.5", How: "--source-ip", EphemeralLow: 32768, EphemeralHigh: 60999}}
}

func inst(n int, name string, state preflight.State) *preflight.Instance {
	return &preflight.Instance{ID: fmt.Sprintf("i-%017d", n), Name: name, State: state, PrivateIP: "10.0.0." + strconv.Itoa(n)}
}

func fleetRun(t *testing.T, f *fakeRegion, argv ...string) (*reach.Run, *os.File, *os.File) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	args, err := connect.ParseArgs(argv)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := connect.ResolveConfig(args)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stdout, _ := os.Create(filepath.Join(dir, "out"))
	stderr, _ := os.Create(filepath.Join(dir, "err"))
	stdin, _ := os.Open(os.DevNull)
	t.Cleanup(func() { stdout.Close(); stderr.Close(); stdin.Close() })
	self, _ := os.Executable()
	t.Setenv(helperEnv, "1")
	r := &reach.Run{Argv: argv, Args: args, Config: cfg, IO: reach.IO{Stdin: stdin, Stdout: stdout, Stderr: stderr, Log: stderr},
		Env: &connect.Env{Log: func(string, ...any) {}, Debug: func(string, ...any) {}}, Self: self,
		Cloud: func(ctx context.Context, opts preflight.Options) (reach.Cloud, error) {
			if o, ok := f.others[opts.Region]; ok {
				return o, nil
			}
			return f, nil
		}}
	return r, stdout, stderr
}

func text(t *testing.T, f *os.File) string {
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestList(t *testing.T) {
	f := &fakeRegion{region: "us-east-1", instances: []*preflight.Instance{inst(1, "web-1", preflight.StateRunning), inst(2, "web-2", preflight.StateStopped),
		inst(3, "db-1", preflight.StateRunning)}}
	r, stdout, _ := fleetRun(t, f, "-F", "none", "--list", "web-*")
	if code, err := List(context.Background(), r); code != 0 || err != nil {
		t.Fatalf("List = %d, %v", code, err)
	}
	out := text(t, stdout)
	if !strings.Contains(out, "web-1") || !strings.Contains(out, "web-2") || strings.Contains(out, "db-1") || !strings.Contains(out, "REACH") {
		t.Errorf("the table:\n%s", out)
	}
	r, stdout, _ = fleetRun(t, f, "-F", "none", "--list", "--json", "db-*")
	List(context.Background(), r)
	var got []map[string]any
	if err := json.Unmarshal([]byte(text(t, stdout)), &got); err != nil || len(got) != 1 || got[0]["id"] != "i-00000000000000003" {
		t.Errorf("--json: %v %v\n%s", err, got, text(t, stdout))
	}
	if reach, _ := got[0]["reach"].(map[string]any); reach["via"] != "direct" {
		t.Errorf("--json reach: %v", got[0]["reach"])
	}
}

func TestListAllRegions(t *testing.T) {
	eu := &fakeRegion{region: "eu-west-1", instances: []*preflight.Instance{inst(9, "far", preflight.StateRunning)}}
	us := &fakeRegion{region: "us-east-1", regions: []string{"eu-west-1", "us-east-1"}, instances: []*preflight.Instance{inst(1, "near", preflight.StateRunning)}}
	us.others = map[string]*fakeRegion{"eu-west-1": eu, "us-east-1": us}
	r, stdout, _ := fleetRun(t, us, "-F", "none", "--list", "--region", "all")
	if code, err := List(context.Background(), r); code != 0 || err != nil {
		t.Fatalf("List = %d, %v", code, err)
	}
	out := text(t, stdout)
	for _, want := range []string{"REGION", "far", "eu-west-1", "near", "us-east-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the listing lacks %q:\n%s", want, out)
		}
	}
}

func TestListNoRegion(t *testing.T) {
	r, _, _ := fleetRun(t, &fakeRegion{}, "-F", "none", "--list")
	if _, err := List(context.Background(), r); failure.KindOf(err) != failure.AWSAuth || failure.HintOf(err) == "" {
		t.Errorf("List with no region = %v, want an AWSAuth error with a hint", err)
	}
}

func TestAll(t *testing.T) {
	f := &fakeRegion{region: "us-east-1", instances: []*preflight.Instance{inst(1, "web-1", preflight.StateRunning),
		inst(2, "web-2", preflight.StateStopped), inst(3, "web-3", preflight.StateRunning), inst(4, "web-4", preflight.StateRunning)}}
	r, stdout, stderr := fleetRun(t, f, "-F", "none", "--all", "web-*", "--", "uptime")
	code, err := All(context.Background(), r)
	if err != nil || code != 255 {
		t.Fatalf("All = %d, %v; want the worst status, 255", code, err)
	}
	out, errs := text(t, stdout), text(t, stderr)
	for _, want := range []string{"web-1 | ran on i-00000000000000001", "web-3 | ran on i-00000000000000003"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"web-3 | a remote complaint", "4 instances:", "1 exit 0", "1 exit 3", "2 not run",
		"web-2 (i-00000000000000002): not run: the instance is stopped", "web-4 (i-00000000000000004): not run: connect to 10.0.0.4 port 22: Connection refused"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}

	r, stdout, _ = fleetRun(t, f, "-F", "none", "--all", "--json", "web-*", "--", "uptime")
	All(context.Background(), r)
	dec := json.NewDecoder(strings.NewReader(text(t, stdout)))
	n := 0
	for dec.More() {
		var res fleetResult
		if err := dec.Decode(&res); err != nil {
			t.Fatal(err)
		}
		n++
		if res.ID == "i-00000000000000003" && (res.Exit != 3 || !res.Ran || res.Stderr != "a remote complaint\n") {
			t.Errorf("--json for web-3: %+v", res)
		}
	}
	if n != 4 {
		t.Errorf("--json gave %d objects, want 4", n)
	}
}

func TestAllNothingMatches(t *testing.T) {
	r, _, _ := fleetRun(t, &fakeRegion{region: "us-east-1"}, "-F", "none", "--all", "nope-*", "--", "true")
	if code, err := All(context.Background(), r); code != 255 || failure.KindOf(err) != failure.Config {
		t.Errorf("All over nothing = %d, %v; want 255 and a Config error", code, err)
	}
}

func TestFleetArgv(t *testing.T) {
	args, _ := connect.ParseArgs([]string{"--all", "--parallel", "3", "--json", "-v", "web-*", "--", "uptime"})
	got := strings.Join(fleetArgv([]string{"--all", "--parallel", "3", "--json", "-v", "web-*", "--", "uptime"}, args,
		&preflight.Instance{ID: "i-1", Region: "eu-west-1"}), " ")
	if want := "--region eu-west-1 -T -n -v i-1 -- uptime"; got != want {
		t.Errorf("fleetArgv = %q, want %q", got, want)
	}
}
