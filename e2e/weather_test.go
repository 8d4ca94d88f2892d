package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/lab"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// AWS weather in the lab (issue 20): each weather the lab's stand-ins can
// make (slower than any budget, throttled, 500, reset, absent) is put in
// turn on the calls a session does not need, and then on each call it
// does. Where the weather is on calls it does not need, the session's first
// output and its exit come within 10% + 100 ms of the same run in fair
// weather; where it is on a call it needs, the outcome is bounded by that
// call's budget and said in words. Every reason given is readable: no SDK
// text.

// timed is one run of ec2ssh, timed: when its first output came (stdout's
// first byte) and when it exited, from its start.
type timed struct {
	result
	first, exit time.Duration
}

// firstWriter notes when the first byte is written to it.
type firstWriter struct {
	mu    sync.Mutex
	start time.Time
	first time.Duration
	buf   bytes.Buffer
}

func (w *firstWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() == 0 && len(p) > 0 {
		w.first = time.Since(w.start)
	}
	return w.buf.Write(p)
}

// runTimed runs ec2ssh against the lab world with a cache of its own (cold)
// and extra environment.
func runTimed(t *testing.T, extraEnv []string, args ...string) timed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-F", ec2Cfg}, args...)...)
	cmd.Env = append(append(append(cleanEnv(), world.AWSEnv()...), "XDG_CACHE_HOME="+t.TempDir()), extraEnv...)
	cmd.Stdin = io.NopCloser(strings.NewReader(""))
	var errb strings.Builder
	start := time.Now()
	out := &firstWriter{start: start}
	cmd.Stdout, cmd.Stderr = out, &errb
	err := cmd.Run()
	exit := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("ec2ssh %q ran past 90 s; stderr %q", args, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	first := out.first
	if out.buf.Len() == 0 {
		first = exit
	}
	return timed{result{out.buf.Bytes(), []byte(errb.String()), code}, first, exit}
}

// weathers are the lab's weathers, each on every call it is put on.
var weathers = []struct {
	name string
	w    lab.Weather
}{
	{"slow", lab.Weather{Latency: 2 * time.Minute}}, // past every budget: the caller gives up
	{"throttled", lab.Weather{Fault: lab.FaultThrottle}},
	{"500", lab.Weather{Fault: lab.FaultServer}},
	{"reset", lab.Weather{Fault: lab.FaultReset}},
	{"absent", lab.Weather{Fault: lab.FaultAbsent}},
}

// wxScenario is one way ec2ssh is used, and the AWS calls its outcome
// needs: everything else it asks is for the checks, the notices, the
// cleanup.
type wxScenario struct {
	name  string
	args  func() []string
	needs []string
	// ok says what a good run printed.
	ok func(r timed) error
	// json: stdout is --diagnose --json's report.
	json bool
	// silent: port 22 is silent to this machine and AWS cannot show why
	// (a host firewall, or an address AWS cannot be asked about): with SSM
	// or DescribeInstances failing there is no other way in, and the dial
	// waits for TCP's own timeout as ssh(1) does, or for ConnectTimeout,
	// which the runs with weather on a needed call set (5 s).
	silent bool
	// reports: the output is made of the calls it does not strictly need
	// (--diagnose's checks, --list's REACH column): each may take a check's
	// budget before it is said to be unknown, and the bound grows by that.
	reports bool
}

func wantOut(want string) func(timed) error {
	return func(r timed) error {
		if r.code != 0 || string(r.stdout) != want {
			return fmt.Errorf("exit %d, stdout %q, want 0 and %q", r.code, r.stdout, want)
		}
		return nil
	}
}

func wxScenarios() []wxScenario {
	in := world.Instances
	return []wxScenario{
		{name: "address", args: func() []string { return []string{"ec2-user@" + in["healthy"].IP, "echo x"} }, ok: wantOut("x\n")},
		// An address that turns out to be a blocked instance: the checks find
		// it (DescribeInstances) and SSM carries it.
		{name: "address-blocked", args: func() []string { return []string{"ec2-user@" + in["host-firewall"].IP, "echo x"} },
			needs: []string{"ec2:DescribeInstances", "ssm:StartSession"}, silent: true, ok: wantOut("x\n")},
		{name: "name-cold", args: func() []string { return []string{"ec2-user@healthy", "echo x"} },
			needs: []string{"ec2:DescribeInstances"}, ok: wantOut("x\n")},
		// Port 22 silent for a reason AWS's configuration does not show: SSM
		// races the pending dial.
		{name: "blocked-ssm", args: func() []string { return []string{"ec2-user@host-firewall", "echo x"} },
			needs: []string{"ec2:DescribeInstances", "ssm:StartSession"}, silent: true, ok: wantOut("x\n")},
		// Port 22 closed by the security group: the checks can prove it, but
		// SSM must not wait for them.
		{name: "blocked-sg-ssm", args: func() []string { return []string{"ec2-user@sg-no-22", "echo x"} },
			needs: []string{"ec2:DescribeInstances", "ssm:StartSession"}, ok: wantOut("x\n")},
		// No agent, port 22 open only to the endpoint: SSM is tried (and
		// DescribeInstanceInformation says its agent is offline, which ends
		// StartSession's retries of TargetNotConnected), then the endpoint.
		{name: "endpoint-only", args: func() []string { return []string{"ec2-user@eice-only", "echo x"} },
			needs: []string{"ec2:DescribeInstances", "ssm:StartSession", "ssm:DescribeInstanceInformation", "ec2:DescribeInstanceConnectEndpoints"},
			ok:    wantOut("x\n")},
		{name: "diagnose", args: func() []string { return []string{"--diagnose", "--json", "healthy"} },
			needs: []string{"ec2:DescribeInstances"}, json: true, reports: true, ok: func(r timed) error {
				// 2: a check that matters could not decide (its call met the
				// weather); that is said as unknown, never as a pass.
				switch r.code {
				case 0, 1:
				case 2:
					if !bytes.Contains(r.stdout, []byte(`"status": "unknown"`)) {
						return fmt.Errorf("exit 2 with no check unknown: %s", r.stdout)
					}
				default:
					return fmt.Errorf("exit %d, want 0, 1 or 2: %s", r.code, r.stderr)
				}
				return nil
			}},
		{name: "list", args: func() []string { return []string{"--list", "--json", "tag:Fleet=lab"} },
			needs: []string{"ec2:DescribeInstances"}, reports: true, ok: func(r timed) error {
				var got []json.RawMessage
				if err := json.Unmarshal(r.stdout, &got); err != nil || len(got) != 10 || r.code != 0 {
					return fmt.Errorf("exit %d, %d instances (%v): %s", r.code, len(got), err, r.stderr)
				}
				return nil
			}},
	}
}

// sdkText is what only the SDK says: never shown to a person.
var sdkText = []string{"operation error", "https response error", "StatusCode:", "RequestID:", "context deadline exceeded",
	"api error", "exceeded maximum number of attempts", "retry quota", "deserialization failed", "<?xml", "__type", "smithy"}

// unreadable is the first line of s that carries SDK text, or "".
func unreadable(s string) string {
	for _, line := range strings.Split(s, "\n") {
		for _, bad := range sdkText {
			if strings.Contains(line, bad) {
				return line
			}
		}
	}
	return ""
}

// readable checks what a run said: stderr, and each reason of a report.
func readable(t *testing.T, sc wxScenario, r timed) {
	t.Helper()
	if line := unreadable(string(r.stderr)); line != "" {
		t.Errorf("stderr says SDK text: %q", line)
	}
	if !sc.json || r.code == 255 && len(r.stdout) == 0 { // --diagnose that could not run prints no report
		if line := unreadable(string(r.stdout)); line != "" {
			t.Errorf("stdout says SDK text: %q", line)
		}
		return
	}
	var rep preflight.Report
	if err := json.Unmarshal(r.stdout, &rep); err != nil {
		t.Errorf("not a report: %v: %s", err, r.stdout)
		return
	}
	for _, c := range rep.Checks {
		text := c.Summary + "\n" + strings.Join(c.Evidence, "\n") + "\n" + c.Fix
		if line := unreadable(text); line != "" {
			t.Errorf("%s (%s) says SDK text: %q", c.ID, c.Status, line)
		}
		if c.Status == preflight.Unknown && (c.Summary == "" || len(c.Summary) > 200) {
			t.Errorf("%s is unknown with no readable reason: %q", c.ID, c.Summary)
		}
	}
}

// within: got is no more than 10% + 100 ms (and extra) over fair.
func within(got, fair, extra time.Duration) bool {
	return got <= fair+fair/10+100*time.Millisecond+extra
}

// verbose (EC2SSH_WEATHER_VERBOSE=1) runs ec2ssh -v in weather and logs
// what it said, to see where the time went.
var verbose = os.Getenv("EC2SSH_WEATHER_VERBOSE") != ""

// setWeather puts w on every call but the needed ones.
func setWeather(needs []string, w lab.Weather) {
	world.ClearWeather()
	for _, api := range needs {
		world.SetWeather(api, lab.Weather{}) // fair: the first matching rule wins
	}
	world.SetWeather("*", w)
}

// TestWeatherOnCallsNotNeeded: the weather on every call a session does
// not need changes neither its first output nor its exit (10% + 100 ms),
// measured in pairs (fair, then weather) so that both see the same load;
// up to three pairs when the first is out of bounds.
func TestWeatherOnCallsNotNeeded(t *testing.T) {
	needWorld(t)
	defer world.ClearWeather()
	for _, sc := range wxScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			for _, wx := range weathers {
				t.Run(wx.name, func(t *testing.T) {
					var log []string
					for pair := 1; pair <= 3; pair++ {
						world.ClearWeather()
						fair := runTimed(t, nil, sc.args()...)
						if err := sc.ok(fair); err != nil {
							t.Fatalf("fair weather: %v", err)
						}
						setWeather(sc.needs, wx.w)
						args := sc.args()
						if verbose {
							args = append([]string{"-v"}, args...)
						}
						r := runTimed(t, nil, args...)
						if verbose {
							t.Logf("-v: %s", r.stderr)
						}
						_, met := world.Weather().Calls()
						world.ClearWeather()
						if err := sc.ok(r); err != nil {
							again := runTimed(t, nil, append([]string{"-v"}, sc.args()...)...)
							t.Fatalf("%s on %d calls: %v\n-v: %s", wx.name, total(met), err, again.stderr)
						}
						readable(t, sc, r)
						log = append(log, fmt.Sprintf("first %v / %v, exit %v / %v (fair / weather; %d calls met it: %s)",
							ms(fair.first), ms(r.first), ms(fair.exit), ms(r.exit), total(met), names(met)))
						extra := time.Duration(0)
						if sc.reports {
							extra = preflight.Budgets[preflight.RoleCheck]
						}
						if within(r.first, fair.first, extra) && within(r.exit, fair.exit, extra) {
							t.Logf("%s", strings.Join(log, "\n"))
							return
						}
					}
					t.Errorf("out of bounds in three pairs:\n%s", strings.Join(log, "\n"))
				})
			}
		})
	}
}

// TestWeatherOnCallsNeeded: the weather on a call the outcome needs bounds
// the outcome by that call's budget, said in words; weather that the
// retries absorb (throttled twice, one 500) costs only their backoff.
func TestWeatherOnCallsNeeded(t *testing.T) {
	needWorld(t)
	defer world.ClearWeather()
	words := map[string]string{"slow": "did not answer in", "throttled": "throttled by AWS", "500": "AWS answered 500",
		"reset": "connection to AWS was cut", "absent": "not available here"}
	for _, sc := range wxScenarios() {
		if len(sc.needs) == 0 {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			args := sc.args()
			var wait time.Duration // what the run may wait besides the call
			if sc.silent {
				args, wait = append([]string{"-o", "ConnectTimeout=5"}, args...), 5*time.Second
			}
			world.ClearWeather()
			fair := runTimed(t, nil, args...)
			if err := sc.ok(fair); err != nil {
				t.Fatalf("fair weather: %v", err)
			}
			for _, api := range sc.needs {
				t.Run(api, func(t *testing.T) {
					budget := callBudget(api, sc.name) + wait
					for _, wx := range weathers {
						world.ClearWeather()
						world.SetWeather(api, wx.w)
						r := runTimed(t, nil, args...)
						_, met := world.Weather().Calls()
						world.ClearWeather()
						readable(t, sc, r)
						bound := fair.exit + fair.exit/10 + budget + time.Second
						t.Logf("%s: exit %d in %v (fair %v, bound %v): %s", wx.name, r.code, ms(r.exit), ms(fair.exit), ms(bound), tailLines(r.stderr, 6))
						if r.exit > bound {
							t.Errorf("%s on %s: exit after %v, past %v (fair %v + the call's budget %v)", wx.name, api, r.exit, bound, fair.exit, budget)
						}
						if met[api] == 0 {
							t.Errorf("%s on %s: the call was never made", wx.name, api)
							continue
						}
						if sc.ok(r) == nil {
							continue // another way round it (a second way in, a report with that check unknown)
						}
						if !strings.Contains(string(r.stderr), words[wx.name]) && !strings.Contains(string(r.stdout), words[wx.name]) {
							t.Errorf("%s on %s: exit %d, nothing says %q:\n%s", wx.name, api, r.code, words[wx.name], r.stderr)
						}
					}
					// Weather the retries absorb.
					absorb := time.Second // the standard retries' backoff: 50-100 ms, then 100-200 ms
					if sc.name == "list" {
						// A fleet's adaptive retries slow down when throttled
						// (the SDK's client-side rate starts at its floor, 0.5
						// requests a second, in a new process): bounded by the
						// page's budget, not by the backoff.
						absorb = budget
					}
					for _, wx := range []lab.Weather{{Fault: lab.FaultThrottle, Times: 2}, {Fault: lab.FaultServer, Times: 1}, {Fault: lab.FaultReset, Times: 1}} {
						world.ClearWeather()
						world.SetWeather(api, wx)
						r := runTimed(t, nil, args...)
						world.ClearWeather()
						if err := sc.ok(r); err != nil {
							t.Errorf("%v on %s: %v: %s", wx, api, err, r.stderr)
						}
						t.Logf("%v: first %v, exit %v (fair %v, %v)", wx, ms(r.first), ms(r.exit), ms(fair.first), ms(fair.exit))
						if r.exit > fair.exit+fair.exit/10+absorb {
							t.Errorf("%v on %s: exit after %v (fair %v): the retries took too long", wx, api, r.exit, fair.exit)
						}
					}
				})
			}
		})
	}
}

// callBudget is the budget of api's calls in a scenario (preflight.Budgets).
func callBudget(api, scenario string) time.Duration {
	switch {
	case api == "ssm:DescribeInstanceInformation":
		// It tells an offline agent from one that restarts: while it
		// cannot say, StartSession's TargetNotConnected is retried for its
		// window (SPEC.md, "TargetNotConnected is retried only while the
		// agent is Online or cannot be asked").
		return fallback.NotConnectedRetry
	case scenario == "list" && api == "ec2:DescribeInstances":
		return preflight.Budgets[preflight.RoleFleet]
	case scenario == "diagnose" && api != "ec2:DescribeInstances", scenario == "address-blocked" && api == "ec2:DescribeInstances":
		return preflight.Budgets[preflight.RoleCheck]
	}
	return preflight.Budgets[preflight.RoleWayIn]
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func names(m map[string]int) string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

func tailLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
