package e2e

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// The diagnosis world (lab/diagworld.go, issue 26): every way a diagnosis
// could say "all clear" while SSH cannot work, beside its healthy twin,
// each judged by ec2ssh --diagnose --json.

// needDiagnosisWorld builds the diagnosis world on the EC2 lab's.
func needDiagnosisWorld(t *testing.T) {
	t.Helper()
	needWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := world.Diagnosis(ctx); err != nil {
		t.Fatalf("the diagnosis world: %v", err)
	}
}

// diagCase is what --diagnose must say of one instance of the world, run
// with args.
type diagCase struct {
	name string
	args []string
	// broken: SSH the chosen way (direct, or --via) does not work there;
	// undecided: it works, but the diagnosis cannot know it (verdict
	// unknown, exit 2 unless a check failed).
	broken, undecided bool
	fail              []string          // the checks that fail, and no others
	unknown           []string          // checks that must be unknown
	pass              []string          // checks that must pass
	says              map[string]string // check -> words its summary, evidence or fix must hold
}

var directChecks = []string{"instance-state", "status-checks", "network-path", "security-group", "network-acl", "key-pair", "login-user", "sshd"}

var diagCases = []diagCase{
	// Security groups per interface.
	{name: "diag-nic2-blocked", broken: true, fail: []string{"security-group"}, unknown: []string{"sshd"},
		says: map[string]string{"security-group": "eni-"}},
	{name: "diag-nic2-open", pass: directChecks},
	// A public address and a client whose address is not known.
	{name: "diag-public", pass: append(directChecks, "ssm-agent", "instance-os")},
	{name: "diag-v6only", broken: true, fail: []string{"security-group"}, says: map[string]string{"security-group": "::/0"}},
	// Routes to gone gateways.
	{name: "diag-igw-gone", broken: true, fail: []string{"network-path"}, pass: []string{"security-group"},
		says: map[string]string{"network-path": "no longer exists"}},
	{name: "diag-igw-detached", broken: true, fail: []string{"network-path"}, pass: []string{"security-group"},
		says: map[string]string{"network-path": "attach-internet-gateway"}},
	// States and status checks.
	{name: "diag-pending", broken: true, fail: []string{"instance-state"}, unknown: []string{"sshd"},
		says: map[string]string{"instance-state": "aws ec2 wait instance-running"}},
	{name: "diag-stopping", broken: true, fail: []string{"instance-state"}, says: map[string]string{"instance-state": "aws ec2 wait instance-stopped"}},
	{name: "diag-shutting-down", broken: true, fail: []string{"instance-state"}, says: map[string]string{"instance-state": "shutting-down"}},
	{name: "diag-impaired", broken: true, fail: []string{"status-checks"}, unknown: []string{"sshd", "ssm-agent"},
		says: map[string]string{"sshd": "status checks", "ssm-agent": "status checks"}},
	// AMI families: the right user and a wrong one.
	{name: "diag-ubuntu", pass: append(directChecks, "instance-os")},
	{name: "diag-ubuntu", args: []string{"-l", "ec2-user"}, broken: true, fail: []string{"login-user"}, says: map[string]string{"login-user": "-l ubuntu"}},
	{name: "diag-debian", args: []string{"-l", "admin"}, pass: directChecks},
	{name: "diag-debian", args: []string{"-l", "ec2-user"}, broken: true, fail: []string{"login-user"}, says: map[string]string{"login-user": "-l admin"}},
	{name: "diag-rhel", args: []string{"-l", "ec2-user"}, pass: directChecks},
	{name: "diag-rhel", args: []string{"-l", "ubuntu"}, broken: true, fail: []string{"login-user"}, says: map[string]string{"login-user": "-l ec2-user"}},
	{name: "diag-suse", pass: directChecks, says: map[string]string{"login-user": "SUSE"}},
	{name: "diag-rocky", pass: directChecks, says: map[string]string{"login-user": "rocky"}},
	{name: "diag-rocky", args: []string{"-l", "ec2-user"}, broken: true, fail: []string{"login-user"}, says: map[string]string{"login-user": "-l rocky"}},
	{name: "diag-bitnami", args: []string{"-l", "admin"}, broken: true, fail: []string{"login-user"}, says: map[string]string{"login-user": "-l bitnami"}},
	{name: "diag-bitnami", pass: directChecks},
	// No agent to look inside: the AMI alone says who logs in.
	{name: "diag-debian-noagent", args: []string{"-l", "ec2-user"}, broken: true, fail: []string{"login-user", "ssm-agent"}, says: map[string]string{"login-user": "Debian AMIs log in as admin"}},
	{name: "diag-debian-noagent", args: []string{"-l", "admin"}, fail: []string{"ssm-agent"}, pass: directChecks},
	{name: "diag-unknown-ami", args: []string{"-l", "ec2-user"}, undecided: true, fail: []string{"ssm-agent"}, unknown: []string{"login-user"},
		says: map[string]string{"login-user": "not one ec2ssh recognises"}},
	// The role, by what it grants.
	{name: "diag-role-customer", pass: []string{"ssm-agent"}},
	{name: "diag-role-customer", args: []string{"--via=ssm"}, pass: []string{"ssm-agent"}},
	{name: "diag-role-wildcards", pass: []string{"ssm-agent"}},
	{name: "diag-role-inline", pass: []string{"ssm-agent"}},
	{name: "diag-role-notaction", pass: []string{"ssm-agent"}},
	{name: "diag-role-deny", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, unknown: []string{"instance-os"},
		says: map[string]string{"ssm-agent": "denies ssmmessages"}},
	{name: "diag-role-register-only", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, unknown: []string{"instance-os"},
		says: map[string]string{"ssm-agent": "does not allow ssmmessages:CreateControlChannel"}},
	{name: "diag-role-none", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, says: map[string]string{"ssm-agent": "does not allow ssm:UpdateInstanceInformation"}},
	// The agent's way out.
	{name: "diag-sg-egress", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, says: map[string]string{"ssm-agent": "authorize-security-group-egress"}},
	{name: "diag-nacl-443out", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, pass: []string{"network-acl"}, says: map[string]string{"ssm-agent": "denies tcp 443 out"}},
	{name: "diag-nacl-ephemeral", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, pass: []string{"network-acl"}, says: map[string]string{"ssm-agent": "drops the replies"}},
	{name: "diag-imds-off", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, says: map[string]string{"ssm-agent": "--http-endpoint enabled"}},
	{name: "diag-nat-live", args: []string{"--via=ssm"}, pass: []string{"ssm-agent", "network-path"}},
	{name: "diag-nat-gone", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, says: map[string]string{"ssm-agent": "NAT gateway that is deleted"}},
	{name: "diag-no-route", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, says: map[string]string{"ssm-agent": "has no route to the internet"}},
	{name: "diag-igw-nopublic", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, says: map[string]string{"ssm-agent": "no public address"}},
	{name: "diag-igw-public", pass: append(directChecks, "ssm-agent")},
	{name: "diag-ep-nossm", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, says: map[string]string{"ssm-agent": "--service-name com.amazonaws.us-east-1.ssm "}},
	{name: "diag-ep-nossmmessages", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, unknown: []string{"instance-os"},
		says: map[string]string{"ssm-agent": "cannot open sessions"}},
	{name: "diag-ep-noec2messages", args: []string{"--via=ssm"}, pass: []string{"ssm-agent", "instance-os"}},
	{name: "diag-ep-nodns", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, says: map[string]string{"ssm-agent": "--private-dns-enabled"}},
	{name: "diag-ep-sg443", args: []string{"--via=ssm"}, broken: true, fail: []string{"ssm-agent"}, says: map[string]string{"ssm-agent": "authorize-security-group-ingress"}},
	// The lab's own healthy instance is the twin of the SSM cases.
	{name: "healthy", args: []string{"--via=ssm"}, pass: []string{"ssm-agent", "instance-os"}},
}

// TestDiagnoseNoFalseAllClear runs every case and counts the false
// all-clears (exit 0 where SSH the chosen way cannot work): there must be
// none. Healthy twins must be all clear.
func TestDiagnoseNoFalseAllClear(t *testing.T) {
	needDiagnosisWorld(t)
	var mu sync.Mutex
	var falseClear, runs []string
	t.Run("cases", func(t *testing.T) {
		for _, tt := range diagCases {
			t.Run(tt.name+strings.Join(tt.args, ""), func(t *testing.T) {
				t.Parallel()
				args := append(append([]string{"--diagnose", "--json"}, tt.args...), tt.name)
				r, _ := runEC2(t, 2*time.Minute, args...)
				var rep preflight.Report
				if err := json.Unmarshal(r.stdout, &rep); err != nil {
					t.Fatalf("not JSON (exit %d): %v\n%s\nstderr: %s", r.code, err, r.stdout, r.stderr)
				}
				mu.Lock()
				runs = append(runs, tt.name)
				if r.code == 0 && tt.broken {
					falseClear = append(falseClear, tt.name+" "+strings.Join(tt.args, " "))
				}
				mu.Unlock()
				checkDiagnosis(t, tt, rep, r.code, r.stdout)
			})
		}
	})
	t.Logf("%d diagnoses, %d false all-clears %v", len(runs), len(falseClear), falseClear)
	if len(falseClear) > 0 {
		t.Errorf("false all-clears: %v", falseClear)
	}
}

func checkDiagnosis(t *testing.T, tt diagCase, rep preflight.Report, code int, out []byte) {
	t.Helper()
	if rep.Target.Name != tt.name {
		t.Errorf("target = %+v, want %s", rep.Target, tt.name)
	}
	var failed []string
	byID := map[string]preflight.Result{}
	for _, c := range rep.Checks {
		byID[string(c.ID)] = c
		if c.Status == preflight.Fail {
			failed = append(failed, string(c.ID))
			if c.Fix == "" {
				t.Errorf("%s fails with no fix", c.ID)
			}
		}
	}
	sort.Strings(failed)
	want := append([]string(nil), tt.fail...)
	sort.Strings(want)
	if strings.Join(failed, ",") != strings.Join(want, ",") {
		t.Errorf("failed checks = %v, want %v\n%s", failed, want, out)
	}
	for _, id := range tt.unknown {
		if c := byID[id]; c.Status != preflight.Unknown {
			t.Errorf("%s = %s (%s), want unknown", id, c.Status, c.Summary)
		}
	}
	for _, id := range tt.pass {
		if c := byID[id]; c.Status != preflight.Pass {
			t.Errorf("%s = %s (%s), want pass", id, c.Status, c.Summary)
		}
	}
	for id, words := range tt.says {
		c := byID[id]
		if text := c.Summary + " " + c.Fix + " " + strings.Join(c.Evidence, " "); !strings.Contains(text, words) {
			t.Errorf("%s (%s: %s / %s) does not say %q", id, c.Status, c.Summary, c.Fix, words)
		}
	}
	// The verdict for the way chosen: never pass while a check that
	// matters is failed or unknown; pass for a way that works.
	v := rep.Verdict
	for _, id := range v.Checks {
		if st := byID[string(id)].Status; v.Status == preflight.Pass && (st == preflight.Fail || st == preflight.Unknown) {
			t.Errorf("verdict %q is pass while %s is %s", v.Summary, id, st)
		}
	}
	if tt.broken && v.Status == preflight.Pass {
		t.Errorf("verdict %q for a way that does not work", v.Summary)
	}
	switch {
	case tt.undecided && v.Status != preflight.Unknown:
		t.Errorf("verdict %q (%s), want unknown", v.Summary, v.Status)
	case !tt.broken && !tt.undecided && v.Status != preflight.Pass:
		t.Errorf("verdict %q (%s) for a way that works", v.Summary, v.Status)
	}
	for _, c := range rep.Checks {
		if c.Status == preflight.Fail || c.Status == preflight.Unknown {
			t.Logf("%s %s: %s", c.Status, c.ID, c.Summary)
		}
	}
	t.Logf("verdict: %s", v.Summary)
	wantCode := 0
	switch {
	case len(tt.fail) > 0:
		wantCode = 1
	case v.Status == preflight.Unknown:
		wantCode = 2
	}
	if code != wantCode {
		t.Errorf("exit = %d, want %d", code, wantCode)
	}
}

// TestWaitRunningInTheLab waits for an instance the EC2 front shows
// pending for a few seconds, as a connection to a booting instance would,
// and gives up within its budget on one that stays pending.
func TestWaitRunningInTheLab(t *testing.T) {
	needDiagnosisWorld(t)
	id := world.DiagInstance("diag-booting").ID
	a := &preflight.AWS{Config: world.FrontConfig(), EC2: ec2.NewFromConfig(world.FrontConfig())}
	world.SetState(id, "pending", time.Now().Add(3*time.Second))
	var seen []preflight.State
	start := time.Now()
	in, err := a.WaitRunning(context.Background(), id, preflight.WaitOptions{Budget: 20 * time.Second, Interval: 500 * time.Millisecond,
		Progress: func(s preflight.State, _ time.Duration) { seen = append(seen, s) }})
	took := time.Since(start)
	if err != nil || in.State != preflight.StateRunning || took < 3*time.Second || took > 10*time.Second {
		t.Fatalf("WaitRunning = %+v, %v after %v, want running after 3 s", in, err, took)
	}
	if len(seen) == 0 || seen[0] != preflight.StatePending {
		t.Errorf("progress told %v, want pending first", seen)
	}
	// Pending for longer than the budget: an InstanceState error, on time.
	world.SetState(id, "pending", time.Now().Add(time.Minute))
	defer world.SetState(id, "pending", time.Now())
	r, _ := runEC2(t, time.Minute, "--diagnose", "--json", "diag-booting")
	if r.code != 1 || !strings.Contains(string(r.stdout), "still starting (pending)") {
		t.Errorf("--diagnose of a pending instance: exit %d\n%s", r.code, r.stdout)
	}
	start = time.Now()
	_, err = a.WaitRunning(context.Background(), id, preflight.WaitOptions{Budget: 2 * time.Second, Interval: 500 * time.Millisecond})
	if took := time.Since(start); failure.KindOf(err) != failure.InstanceState || took > 3*time.Second {
		t.Errorf("WaitRunning past its budget = %v (kind %v) after %v, want InstanceState within 2 s", err, failure.KindOf(err), took)
	}
}

// TestConnectWaitsForAStartingInstance: a connect to a pending instance
// waits for it, saying so, and runs the command once it runs; one that
// stays pending past ConnectTimeout ends with the state and the way to
// wait longer, on time, never hanging.
func TestConnectWaitsForAStartingInstance(t *testing.T) {
	needDiagnosisWorld(t)
	id := world.DiagInstance("diag-booting").ID
	defer world.SetState(id, "pending", time.Now())
	world.SetState(id, "pending", time.Now().Add(3*time.Second))
	r, took := runEC2(t, time.Minute, "-o", "ConnectTimeout=30", "diag-booting", "echo up")
	if r.code != 0 || string(r.stdout) != "up\n" || !strings.Contains(string(r.stderr), "is starting (pending); waiting up to 30s for it to run") {
		t.Errorf("connect to a starting instance: exit %d after %v, stdout %q\n%s", r.code, took, r.stdout, r.stderr)
	}
	if took < 3*time.Second {
		t.Errorf("the connection came in %v, before the instance ran", took)
	}
	world.SetState(id, "pending", time.Now().Add(time.Minute))
	r, took = runEC2(t, time.Minute, "-o", "ConnectTimeout=3", "--fallback=never", "diag-booting", "echo up")
	if r.code != 255 || !strings.Contains(string(r.stderr), "still pending") || !strings.Contains(string(r.stderr), "aws ec2 wait instance-running") {
		t.Errorf("connect to an instance that stays pending: exit %d after %v\n%s", r.code, took, r.stderr)
	}
	if took > 10*time.Second {
		t.Errorf("took %v, past ConnectTimeout=3", took)
	}
}
