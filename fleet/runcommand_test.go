package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

func TestParseSpec(t *testing.T) {
	for _, tt := range []struct {
		in   string
		zero bool
		want string // "" for an error
	}{
		{"10", false, "10"}, {"1", false, "1"}, {"10%", false, "10%"}, {"100%", false, "100%"}, {"5000", false, "5000"},
		{"0", false, ""}, {"0", true, "0"}, {"0%", true, "0%"}, {"0%", false, ""}, {"101%", false, ""},
		{"-1", true, ""}, {"01", true, ""}, {"1.5", true, ""}, {"", true, ""}, {"%", true, ""}, {"12345678", true, ""}, {"ten", true, ""},
	} {
		got, err := ParseSpec("parallel", tt.in, tt.zero)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("ParseSpec(%q, %v) = %v, want an error", tt.in, tt.zero, got)
		case tt.want == "" && failure.KindOf(err) != failure.Config:
			t.Errorf("ParseSpec(%q) error kind %v, want Config", tt.in, failure.KindOf(err))
		case tt.want != "" && (err != nil || got.String() != tt.want):
			t.Errorf("ParseSpec(%q, %v) = %v, %v, want %s", tt.in, tt.zero, got, err, tt.want)
		}
	}
	if n := (Spec{N: 10, Percent: true}).Of(55); n != 5 {
		t.Errorf("10%% of 55 = %d, want 5 (rounded down)", n)
	}
}

func ids(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("i-%017d", i))
	}
	return out
}

func TestPlanRegion(t *testing.T) {
	shell := func(list []string) map[string]string {
		m := map[string]string{}
		for _, id := range list {
			m[id] = DocShell
		}
		return m
	}
	mixed := shell(ids(3))
	mixed[ids(3)[1]] = DocPowerShell
	must := func(s string, zero bool) Spec { v, _ := ParseSpec("x", s, zero); return v }
	for _, tt := range []struct {
		name     string
		filter   string
		n        int
		docs     map[string]string
		par, err string
		// want
		batches []int // instance ids per batch; {0} for a tag target
		slots   int
		maxErr  string // the first batch's
		budget  int
	}{
		{"exact tag: one tag target", "tag:Fleet=lab", 10, nil, "50", "0", []int{0}, 0, "0", 0},
		{"exact tag, percentages passed through", "tag:Fleet=lab", 10000, nil, "10%", "5%", []int{0}, 0, "5%", 500},
		{"tag pattern: ids", "tag:Fleet=la*", 10, nil, "50", "100%", []int{10}, 50, "100%", 10},
		{"name glob: 50 per call", "web-*", 120, nil, "50", "100%", []int{50, 50, 20}, 50, "100%", 120},
		{"a count of errors is shared when sent", "web-*", 1000, nil, "10%", "3", nil, 100, "", 3},
		{"exact tag but two documents: ids", "tag:Fleet=lab", 3, mixed, "50", "0", []int{2, 1}, 50, "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := preflight.ParseFilter(tt.filter)
			list := ids(tt.n)
			docs := tt.docs
			if docs == nil {
				docs = shell(list)
			}
			p := planRegion(f, list, docs, must(tt.par, false), must(tt.err, true))
			tag := tt.batches != nil && tt.batches[0] == 0
			var got []int
			covered := 0
			for _, b := range p.Batches {
				got = append(got, len(b.IDs))
				covered += len(b.IDs)
				if len(b.IDs) > BatchSize {
					t.Errorf("a batch of %d ids: SendCommand takes at most %d", len(b.IDs), BatchSize)
				}
			}
			if tt.batches != nil && fmt.Sprint(got) != fmt.Sprint(tt.batches) {
				t.Errorf("batches of %v ids, want %v", got, tt.batches)
			}
			if !tag && covered != tt.n {
				t.Errorf("the batches cover %d instances, want %d", covered, tt.n)
			}
			if p.Slots != tt.slots || p.Batches[0].MaxErrors != tt.maxErr || p.ErrorBudget != tt.budget {
				t.Errorf("slots %d, MaxErrors %q, budget %d; want %d, %q, %d", p.Slots, p.Batches[0].MaxErrors, p.ErrorBudget, tt.slots, tt.maxErr, tt.budget)
			}
			if tag && (p.Batches[0].TagKey != "Fleet" || p.Batches[0].TagVal != "lab" || p.Batches[0].MaxConcurrency != tt.par) {
				t.Errorf("tag target %+v", p.Batches[0])
			}
		})
	}
}

// TestShare sends batches as the engine does at the start of a run: the
// MaxConcurrency of the batches in flight never adds up to more than the
// slots, and uses them all when the batches can.
func TestShare(t *testing.T) {
	for _, tt := range []struct {
		slots, n int
		want     string // the MaxConcurrency of each batch sent at once
	}{
		{50, 1000, "[2 2 2 2 2 2 2 2 2 2 3 3 3 3 3 3 3 3 3 3]"},
		{100, 1000, "[5 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5]"},
		{7, 200, "[1 2 2 2]"},
		{5, 1000, "[1 1 1 1 1]"},
		{1, 120, "[1]"},
		{500, 60, "[50 10]"},
		{2000, 1000, "[50 50 50 50 50 50 50 50 50 50 50 50 50 50 50 50 50 50 50 50]"},
	} {
		sizes := []int{}
		for left := tt.n; left > 0; left -= BatchSize {
			sizes = append(sizes, min(BatchSize, left))
		}
		used := 0
		var got []int
		for i, size := range sizes {
			c := share(tt.slots-used, len(sizes)-i, size)
			if c == 0 {
				break
			}
			got = append(got, c)
			used += c
		}
		if fmt.Sprint(got) != tt.want || used > tt.slots {
			t.Errorf("share over %d slots, %d instances: %v (%d used), want %s", tt.slots, tt.n, got, used, tt.want)
		}
	}
}

func TestNotRunWhy(t *testing.T) {
	run := &preflight.Instance{State: preflight.StateRunning}
	for _, tt := range []struct {
		in    *preflight.Instance
		a     agent
		known bool
		want  string
	}{
		{run, agent{Ping: ssmtypes.PingStatusOnline}, true, ""},
		{&preflight.Instance{State: preflight.StateStopped}, agent{}, false, "the instance is stopped"},
		{run, agent{}, false, "not a managed node"},
		{run, agent{Ping: ssmtypes.PingStatusConnectionLost}, true, "not online (ConnectionLost)"},
	} {
		got := notRunWhy(tt.in, tt.a, tt.known)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("notRunWhy(%v, %v, %v) = %q, want %q", tt.in.State, tt.a, tt.known, got, tt.want)
		}
	}
	if d := document(&preflight.Instance{Platform: "Windows"}, agent{}); d != DocPowerShell {
		t.Errorf("document(Windows) = %s", d)
	}
	if d := document(&preflight.Instance{}, agent{Platform: ssmtypes.PlatformTypeWindows}); d != DocPowerShell {
		t.Errorf("document(agent on Windows) = %s", d)
	}
	if d := document(&preflight.Instance{Platform: "Linux/UNIX"}, agent{Platform: ssmtypes.PlatformTypeLinux}); d != DocShell {
		t.Errorf("document(Linux) = %s", d)
	}
}

func TestOutcomeOf(t *testing.T) {
	type S = ssmtypes.CommandInvocationStatus
	seen := map[Outcome]bool{}
	for _, tt := range []struct {
		status  ssmtypes.CommandInvocationStatus
		details string
		code    int
		want    Outcome
		exit    int
	}{
		{S("Success"), "Success", 0, Success, 0},
		{S("Failed"), "Failed", 3, Failed, 3},
		{S("Failed"), "Failed", 3010, Failed, 1},
		{S("Failed"), "Failed", -1, Failed, 255},
		{S("TimedOut"), "ExecutionTimedOut", 137, TimedOut, 255},
		{S("TimedOut"), "Execution Timed Out", 137, TimedOut, 255},
		{S("TimedOut"), "DeliveryTimedOut", -1, NotRun, 255},
		{S("Failed"), "Undeliverable", -1, NotRun, 255},
		{S("Cancelled"), "Terminated", -1, NotRun, 255},
		{S("Cancelled"), "Cancelled", 137, Cancelled, 130},
		{S("Success"), "SomethingNew", 0, Success, 0},
		{S("Failed"), "SomethingNew", 2, Failed, 2},
		{S("TimedOut"), "SomethingNew", -1, TimedOut, 255},
		{S("Cancelled"), "SomethingNew", -1, Cancelled, 130},
	} {
		got, exit, _ := outcomeOf(tt.status, tt.details, tt.code)
		seen[got] = true
		if got != tt.want || exit != tt.exit {
			t.Errorf("outcomeOf(%s, %q, %d) = %s, %d; want %s, %d", tt.status, tt.details, tt.code, got, exit, tt.want, tt.exit)
		}
	}
	for _, o := range Outcomes {
		if !seen[o] {
			t.Errorf("no case ends in %s", o)
		}
	}
	for _, s := range ssmtypes.CommandInvocationStatus("").Values() {
		want := s == "Success" || s == "Failed" || s == "TimedOut" || s == "Cancelled"
		if terminal(s) != want {
			t.Errorf("terminal(%s) = %v", s, !want)
		}
	}
}

func TestAgentMarks(t *testing.T) {
	long := strings.Repeat("x", 30000)
	got, isCut := cut(stringPrefix(long, APIStdoutMax), APIStdoutMax)
	if !isCut || got != long[:APIStdoutMax-len(agentCutMark)] {
		t.Errorf("cut(30,000 bytes) = %d bytes, %v", len(got), isCut)
	}
	// Exactly the limit is cut too: the agent's test is len < limit.
	if _, isCut := cut(stringPrefix(long[:APIStderrMax], APIStderrMax), APIStderrMax); !isCut {
		t.Errorf("a stream of exactly 8,000 bytes comes back cut, and is not seen so")
	}
	if got, isCut := cut("short\n", APIStdoutMax); isCut || got != "short\n" {
		t.Errorf("cut(short) = %q, %v", got, isCut)
	}
	for _, tt := range []struct{ in, want string }{
		{"boom\n\nfailed to run commands: exit status 3", "boom\n"},
		{"failed to run commands: exit status 3", ""},
		{"no newline\nfailed to run commands: exit status 3", "no newline"},
		{"failed to run commands: exit status 4", "failed to run commands: exit status 4"}, // another code: the command's own text
		{"plain\n", "plain\n"},
	} {
		if got := stripAgentTrailer(tt.in, 3); got != tt.want {
			t.Errorf("stripAgentTrailer(%q, 3) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct {
		stdout, stderr string
		ok             bool
	}{
		{"hello\n", "", true},
		{"", "", true},
		{"hello\n", "oops\n", false},
		{strings.Repeat("y", 2499), "", true},
		{strings.Repeat("y", 2500), "", false},
		{"looks like\n---Output truncated---", "", false},
	} {
		got, ok := fromDetails(truncateOutput(tt.stdout, tt.stderr))
		if ok != tt.ok || ok && got != tt.stdout {
			t.Errorf("fromDetails(%d bytes out, %d err) = %d bytes, %v; want %v", len(tt.stdout), len(tt.stderr), len(got), ok, tt.ok)
		}
	}
	if k := s3Key("runs/x", "cmd-1", "i-1", DocShell, "stdout"); k != "runs/x/cmd-1/i-1/awsrunShellScript/0.awsrunShellScript/stdout" {
		t.Errorf("s3Key = %s", k)
	}
	if k := s3Key("", "cmd-1", "i-1", DocPowerShell, "stderr"); k != "cmd-1/i-1/awsrunPowerShellScript/0.awsrunPowerShellScript/stderr" {
		t.Errorf("s3Key(no prefix, PowerShell) = %s", k)
	}
}

func TestParseOutputS3(t *testing.T) {
	for _, tt := range []struct{ in, bucket, prefix string }{
		{"my-bucket", "my-bucket", ""},
		{"my-bucket/runs/", "my-bucket", "runs"},
		{"s3://my.bucket/a/b", "my.bucket", "a/b"},
		{"ab", "", ""}, {"My-Bucket", "", ""}, {"-bucket", "", ""}, {"bucket-", "", ""}, {"b_ucket", "", ""},
	} {
		b, p, err := ParseOutputS3(tt.in)
		if tt.bucket == "" {
			if failure.KindOf(err) != failure.Config {
				t.Errorf("ParseOutputS3(%q) = %q, %q, %v; want a Config error", tt.in, b, p, err)
			}
			continue
		}
		if err != nil || b != tt.bucket || p != tt.prefix {
			t.Errorf("ParseOutputS3(%q) = %q, %q, %v", tt.in, b, p, err)
		}
	}
}

// fleet makes n running instances named web-NN tagged Fleet=lab, with an
// online agent each, in the fake.
func fleet(f *fakeSSM, n int) []*preflight.Instance {
	var out []*preflight.Instance
	for i, id := range ids(n) {
		out = append(out, &preflight.Instance{ID: id, Name: fmt.Sprintf("web-%02d", i), State: preflight.StateRunning, Region: "us-east-1",
			Tags: map[string]string{"Fleet": "lab"}})
		f.agents[id] = ssmtypes.PingStatusOnline
		f.tags["Fleet=lab"] = append(f.tags["Fleet=lab"], id)
	}
	return out
}

type run struct {
	code           int
	err            error
	stdout, stderr string
	took           time.Duration
}

func runIt(ctx context.Context, req Request, ins []*preflight.Instance, deps Deps) run {
	var out, errb bytes.Buffer
	start := time.Now()
	code, err := Run(ctx, req, ins, deps, &out, &errb)
	return run{code, err, out.String(), errb.String(), time.Since(start)}
}

func TestRunFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSSM()
		ins := fleet(f, 10)
		ins[2].State = preflight.StateStopped
		f.agents[ins[2].ID] = ssmtypes.PingStatusConnectionLost // as a stopped instance's agent is
		delete(f.agents, ins[3].ID)                             // no agent registered
		f.agents[ins[4].ID] = ssmtypes.PingStatusConnectionLost
		f.outcome = func(id string) fakeRun {
			if id == ins[5].ID || id == ins[6].ID {
				return fakeRun{took: 2 * time.Second, code: 3, stdout: "ran\n", stderr: "bad\n\nfailed to run commands: exit status 3"}
			}
			return fakeRun{took: time.Second, stdout: "ran\n"}
		}
		f.lag = 300 * time.Millisecond
		filter, _ := preflight.ParseFilter("tag:Fleet=lab")
		r := runIt(t.Context(), Request{Command: "echo ran", Filter: filter}, ins, fakeDeps(f, nil))
		if r.err != nil || r.code != 255 {
			t.Fatalf("Run = %d, %v; want 255 (some not run)\n%s", r.code, r.err, r.stderr)
		}
		if n := f.Calls("SendCommand"); n != 1 || len(f.cmds[0].in.Targets) != 1 || aws.ToString(f.cmds[0].in.Targets[0].Key) != "tag:Fleet" {
			t.Errorf("%d SendCommands, want one with a tag target: %+v", n, f.cmds[0].in.Targets)
		}
		if got := strings.Count(r.stdout, "| ran\n"); got != 7 {
			t.Errorf("%d instances printed ran, want 7:\n%s", got, r.stdout)
		}
		if !strings.Contains(r.stdout, "web-05 | ran\n") || !strings.Contains(r.stderr, "web-05 | bad\n") || strings.Contains(r.stderr, "failed to run commands") {
			t.Errorf("stdout and stderr not kept apart, or the agent's trailer left in:\n%s\n%s", r.stdout, r.stderr)
		}
		for _, w := range []string{"10 instances (Run Command ", "5 exit 0", "2 exit 3", "3 not run",
			"web-02 (i-", "not run: the instance is stopped", "web-03 (i-", "not a managed node", "web-04 (i-", "ConnectionLost", "web-05 (i-00000000000000005): exit 3"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("the summary lacks %q:\n%s", w, r.stderr)
			}
		}
		// The invocation the tag target reached on the offline agent is
		// cancelled, so it does not run later unwatched.
		if len(f.cancels) != 1 || len(f.cancels[0].InstanceIds) != 2 {
			t.Errorf("cancels %+v, want one for %s and %s", f.cancels, ins[2].ID, ins[4].ID)
		}
		// Short stdout comes with the listing: no GetCommandInvocation for
		// the five that succeeded; the two failures (stderr) are fetched.
		if n := f.Calls("GetCommandInvocation"); n != 2 {
			t.Errorf("%d GetCommandInvocation calls, want 2", n)
		}
	})
}

func TestRunPrintsAsEachEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSSM()
		ins := fleet(f, 2)
		f.outcome = func(id string) fakeRun {
			if id == ins[1].ID {
				return fakeRun{took: time.Minute, stdout: "slow\n"}
			}
			return fakeRun{took: time.Second, stdout: "fast\n"}
		}
		out := &syncBuffer{}
		done := make(chan int)
		filter, _ := preflight.ParseFilter("web-*")
		go func() {
			code, _ := Run(t.Context(), Request{Command: "x", Filter: filter}, ins, fakeDeps(f, nil), out, &bytes.Buffer{})
			done <- code
		}()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if s := out.String(); !strings.Contains(s, "web-00 | fast") || strings.Contains(s, "slow") {
			t.Errorf("after 10 s: %q; want the fast one printed, the slow one not yet", s)
		}
		if code := <-done; code != 0 {
			t.Errorf("exit %d", code)
		}
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRunNothingToSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSSM()
		filter, _ := preflight.ParseFilter("nothing-*")
		r := runIt(t.Context(), Request{Command: "true", Filter: filter}, nil, fakeDeps(f, nil))
		if failure.KindOf(r.err) != failure.Config || f.Calls("SendCommand") != 0 {
			t.Errorf("no instance: %d, %v, %d SendCommands; want a Config error and none", r.code, r.err, f.Calls("SendCommand"))
		}
		ins := fleet(f, 3)
		for _, in := range ins {
			delete(f.agents, in.ID)
		}
		r = runIt(t.Context(), Request{Command: "true", Filter: filter}, ins, fakeDeps(f, nil))
		if r.err != nil || r.code != 255 || f.Calls("SendCommand") != 0 || !strings.Contains(r.stderr, "3 not run") {
			t.Errorf("no managed node: %d, %v, %d SendCommands, %q; want 255 and none", r.code, r.err, f.Calls("SendCommand"), r.stderr)
		}
		r = runIt(t.Context(), Request{Command: "true", Filter: filter, Parallel: "0"}, ins, fakeDeps(f, nil))
		if failure.KindOf(r.err) != failure.Config {
			t.Errorf("--parallel 0: %v", r.err)
		}
	})
}

func TestRunBatchesAndPacing(t *testing.T) {
	for _, tt := range []struct {
		n                 int
		parallel          string
		sends, inFlightMx int
	}{
		{120, "", 3, 50},
		{1000, "100", 20, 100},
		{1000, "10%", 20, 100},
		{200, "7", 4, 7},
		{1000, "", 20, 50},
	} {
		t.Run(fmt.Sprintf("%d at %s", tt.n, tt.parallel), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeSSM()
				ins := fleet(f, tt.n)
				filter, _ := preflight.ParseFilter("web-*")
				r := runIt(t.Context(), Request{Command: "true", Filter: filter, Parallel: tt.parallel}, ins, fakeDeps(f, nil))
				if r.code != 0 || r.err != nil {
					t.Fatalf("exit %d, %v: %s", r.code, r.err, r.stderr)
				}
				if got := f.Calls("SendCommand"); got != tt.sends {
					t.Errorf("%d SendCommands, want %d (⌈%d/50⌉)", got, tt.sends, tt.n)
				}
				if peak := f.peak(); peak > tt.inFlightMx || peak < tt.inFlightMx*8/10 {
					t.Errorf("%d invocations ran at once; --parallel %s allows %d", peak, tt.parallel, tt.inFlightMx)
				}
				// Wall time from the concurrency: each invocation takes 1 s.
				slots := tt.inFlightMx
				ideal := time.Duration((tt.n+slots-1)/slots) * time.Second
				if r.took > 2*ideal+10*time.Second {
					t.Errorf("took %v for %d one-second invocations at %d at once (ideal %v)", r.took, tt.n, slots, ideal)
				}
				t.Logf("%d instances at --parallel %q: %v, %d SendCommand, %d ListCommandInvocations, peak %d at once",
					tt.n, tt.parallel, r.took, f.Calls("SendCommand"), f.Calls("ListCommandInvocations"), f.peak())
			})
		})
	}
}

func TestRunPollingBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSSM()
		ins := fleet(f, 1000)
		f.outcome = func(string) fakeRun { return fakeRun{took: 10 * time.Minute, stdout: "ok\n"} }
		filter, _ := preflight.ParseFilter("tag:Fleet=lab")
		r := runIt(t.Context(), Request{Command: "true", Filter: filter, Parallel: "100%"}, ins, fakeDeps(f, nil))
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		// Ten quiet minutes cost one ListCommands a round: ≤ 10 min / 5 s +
		// the rounds of the growing delay. The invocations are listed (20
		// pages) only when something ended.
		rounds := f.Calls("ListCommands")
		if rounds > int(10*time.Minute/(pollMax*3/4))+10 {
			t.Errorf("%d rounds in 10 minutes; the delay does not reach %v", rounds, pollMax)
		}
		if n := f.Calls("ListCommandInvocations"); n > 3*20 {
			t.Errorf("%d ListCommandInvocations pages for 1,000 instances that all ended at once; want a few rounds of 20", n)
		}
		if f.Calls("GetCommandInvocation") != 0 || f.Calls("SendCommand") != 1 || f.Calls("DescribeInstanceInformation") != 20 {
			t.Errorf("calls %v", f.calls)
		}
	})
}

func TestRunCutOutput(t *testing.T) {
	big := strings.Repeat("0123456789", 3000) + "\n" // 30,001 bytes
	for _, withS3 := range []bool{false, true} {
		t.Run(fmt.Sprint("s3=", withS3), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeSSM()
				ins := fleet(f, 2)
				f.outcome = func(id string) fakeRun {
					if id == ins[0].ID {
						return fakeRun{took: time.Second, stdout: big}
					}
					return fakeRun{took: time.Second, stdout: "small\n"}
				}
				b := &fakeS3{bucket: "out-bucket", objects: map[string]string{}}
				req := Request{Command: "x", Filter: preflight.Filter{NameGlob: "web-*"}, JSON: true}
				if withS3 {
					req.OutputS3 = "out-bucket/runs"
					// What the agent writes: the whole stream, once it knows the
					// command id (the first command is the fake's 1st).
					b.objects["runs/00000001-0000-0000-0000-000000000000/"+ins[0].ID+"/awsrunShellScript/0.awsrunShellScript/stdout"] = big
				}
				r := runIt(t.Context(), req, ins, fakeDeps(f, b))
				if r.code != 0 {
					t.Fatalf("exit %d: %s", r.code, r.stderr)
				}
				got := map[string]Result{}
				dec := json.NewDecoder(strings.NewReader(r.stdout))
				for dec.More() {
					var res Result
					if err := dec.Decode(&res); err != nil {
						t.Fatal(err)
					}
					got[res.Name] = res
				}
				res := got["web-00"]
				if withS3 {
					if res.Stdout != big || res.StdoutCut || strings.Contains(r.stderr, "cut by SSM") {
						t.Errorf("with --output-s3: %d bytes, cut %v, stderr %q; want the whole %d", len(res.Stdout), res.StdoutCut, r.stderr, len(big))
					}
					if len(b.gets) != 1 {
						t.Errorf("S3 reads %v, want only the cut stream", b.gets)
					}
					if aws.ToString(f.cmds[0].in.OutputS3BucketName) != "out-bucket" || aws.ToString(f.cmds[0].in.OutputS3KeyPrefix) != "runs" {
						t.Errorf("SendCommand without the bucket: %+v", f.cmds[0].in)
					}
				} else {
					if len(res.Stdout) != APIStdoutMax-len(agentCutMark) || !res.StdoutCut || !strings.Contains(r.stderr, "web-00 (i-00000000000000000): stdout cut by SSM at 24,000 characters; pass --output-s3") {
						t.Errorf("without --output-s3: %d bytes, cut %v, stderr %q", len(res.Stdout), res.StdoutCut, r.stderr)
					}
				}
				if got["web-01"].Stdout != "small\n" || got["web-01"].StdoutCut || got["web-01"].Status != Success || !got["web-01"].Ran {
					t.Errorf("web-01: %+v", got["web-01"])
				}
			})
		})
	}
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSSM()
		ins := fleet(f, 1)
		r := runIt(t.Context(), Request{Command: "x", Filter: preflight.Filter{NameGlob: "web-*"}, OutputS3: "missing-bucket"}, ins, fakeDeps(f, &fakeS3{bucket: "other"}))
		if failure.KindOf(r.err) != failure.Config || f.Calls("SendCommand") != 0 {
			t.Errorf("a missing bucket: %v, %d SendCommands; want a Config error before anything is sent", r.err, f.Calls("SendCommand"))
		}
	})
}

func TestRunInvocationLag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSSM()
		ins := fleet(f, 1)
		f.outcome = func(string) fakeRun {
			return fakeRun{took: 0, code: 2, stderr: "failed to run commands: exit status 2"}
		}
		f.lag = 3 * time.Second // longer than the first polls
		r := runIt(t.Context(), Request{Command: "x", Filter: preflight.Filter{NameGlob: "web-*"}}, ins, fakeDeps(f, nil))
		if r.code != 2 || r.stderr == "" || strings.Contains(r.stderr, "could not be read") {
			t.Errorf("exit %d, %q; want 2 once SSM lists the invocation", r.code, r.stderr)
		}
	})
}

func TestRunInterrupt(t *testing.T) {
	for _, detach := range []bool{false, true} {
		t.Run(fmt.Sprint("detach=", detach), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeSSM()
				ins := fleet(f, 120)
				f.outcome = func(string) fakeRun { return fakeRun{took: time.Hour, stdout: "partial\n"} }
				ctx, cancel := context.WithCancelCause(t.Context())
				time.AfterFunc(10*time.Second, func() {
					if detach {
						cancel(ErrDetach)
					} else {
						cancel(errors.New("signal interrupt"))
					}
				})
				r := runIt(ctx, Request{Command: "sleep 3600", Filter: preflight.Filter{NameGlob: "web-*"}, Parallel: "1"}, ins, fakeDeps(f, nil))
				if detach {
					if r.code != 255 || len(f.cancels) != 0 || !strings.Contains(r.stderr, "aws ssm list-command-invocations") {
						t.Errorf("detached: exit %d, cancels %v, %q", r.code, f.cancels, r.stderr)
					}
					return
				}
				if r.code != 130 || r.took > 10*time.Second+CancelWait+time.Second {
					t.Errorf("exit %d after %v; want 130 within %v of Ctrl-C", r.code, r.took, CancelWait)
				}
				// Only what was sent is cancelled; the rest was never sent.
				if f.Calls("SendCommand") != len(f.cancels) || len(f.cancels) == 0 {
					t.Errorf("%d sent, %d cancelled", f.Calls("SendCommand"), len(f.cancels))
				}
				for _, w := range []string{"interrupted: cancelling", "120 instances", "cancelled", "not run: interrupted before it was sent", "web-00  | partial", "web-01 (i-00000000000000001): cancelled\n"} {
					if !strings.Contains(r.stderr+r.stdout, w) {
						t.Errorf("lacks %q:\n%s%s", w, r.stdout, r.stderr)
					}
				}
			})
		})
	}
}

func TestRunMaxErrorsAcrossBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSSM()
		ins := fleet(f, 150)
		f.outcome = func(id string) fakeRun {
			if id == ins[0].ID {
				return fakeRun{took: time.Second, code: 3, stderr: "failed to run commands: exit status 3"}
			}
			return fakeRun{took: 5 * time.Second, stdout: "ok\n"}
		}
		r := runIt(t.Context(), Request{Command: "x", Filter: preflight.Filter{NameGlob: "web-*"}, Parallel: "2", MaxErrors: "0"}, ins, fakeDeps(f, nil))
		if r.code != 255 {
			t.Errorf("exit %d, want 255 (not run after --max-errors)", r.code)
		}
		if n := f.Calls("SendCommand"); n != 2 {
			t.Errorf("%d SendCommands, want the 2 in flight and no more once --max-errors 0 was passed", n)
		}
		if aws.ToString(f.cmds[0].in.MaxErrors) != "0" {
			t.Errorf("MaxErrors %s", aws.ToString(f.cmds[0].in.MaxErrors))
		}
		for _, w := range []string{"--max-errors 0 reached", "--max-errors was reached: not sent", "1 exit 3"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("lacks %q:\n%s", w, r.stderr)
			}
		}
	})
}

func TestAdaptiveRetryAbsorbsThrottling(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if n.Add(1) <= 2 {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
			return
		}
		fmt.Fprint(w, `{"Commands":[]}`)
	}))
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_SSM", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAUNITTEST00000000")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "unit-test")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	api, err := NewDeps(t.Context(), "").SSM("us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	// As Run's callers call it: a fleet's budget per call.
	ctx := preflight.WithRole(t.Context(), preflight.RoleFleet)
	if _, err := api.ListCommands(ctx, &ssm.ListCommandsInput{}); err != nil || n.Load() != 3 {
		t.Errorf("ListCommands through 2 throttles: %v after %d tries", err, n.Load())
	}
}

func TestS3PathStyle(t *testing.T) {
	var o s3.Options
	s3Options(&o)
	if o.UsePathStyle {
		t.Errorf("path-style without an endpoint")
	}
	o = s3.Options{BaseEndpoint: aws.String("http://127.0.0.1:5000")}
	s3Options(&o)
	if !o.UsePathStyle {
		t.Errorf("virtual-hosted style with an endpoint set")
	}
}
