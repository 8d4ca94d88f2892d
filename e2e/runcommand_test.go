package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ec2ssh/ec2ssh/fleet"
	"github.com/ec2ssh/ec2ssh/lab"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// --all --via run-command (issue 22) in the lab: the ten Fleet=lab
// instances through the SSM stand-in's Run Command (lab/runcommand.go):
// two not run (stopped; no-profile, whose agent never registered), a
// command failing with exit 3 on some, output past SSM's cut with and
// without --output-s3, MaxErrors, --json, Ctrl-C. Calls are counted at
// the stand-in.

// runRC runs ec2ssh with the lab's AWS environment (no -F: Run Command
// has no SSH connection to configure, and refuses it).
func runRC(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(cleanEnv(), world.AWSEnv()...), "XDG_CACHE_HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ec2ssh %q ran past 3 minutes; stderr %q", args, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return result{out.Bytes(), errb.Bytes(), code}
}

func id(name string) string { return world.Instances[name].ID }

// The eight Fleet=lab instances with an online agent.
var managed = []string{"healthy", "sg-no-22", "sg-range", "wrong-key", "sshd-stopped", "imported-rsa", "nacl-egress", "host-firewall"}

func TestRunCommandFleet(t *testing.T) {
	needWorld(t)
	s := world.SSM()
	// The stopped instance's agent registered once (its ping
	// ConnectionLost): the tag target reaches it; ec2ssh does not wait.
	s.SetConnectionLost(id("stopped"), true)
	defer s.SetConnectionLost(id("stopped"), false)
	s.ResetRunCommandCalls()
	command := fmt.Sprintf(`case $AWS_SSM_INSTANCE_ID in %s|%s) echo bad >&2; exit 3;; esac; echo "ran as $(id -u) on $(grep -o 'ListenAddress [0-9.]*' /etc/ssh/sshd_config)"`,
		id("sg-range"), id("wrong-key"))
	r := runRC(t, "--all", "tag:Fleet=lab", "--via", "run-command", "--", command)
	calls := s.RunCommandCalls()
	if r.code != 255 {
		t.Errorf("exit %d, want 255 (two not run)\n%s", r.code, r.stderr)
	}
	// Each instance's line after its name, run as root in its own view.
	for _, name := range managed {
		if name == "sg-range" || name == "wrong-key" {
			if !regexp.MustCompile(`(?m)^` + name + ` +\| bad$`).Match(r.stderr) {
				t.Errorf("no %q stderr line:\n%s", name, r.stderr)
			}
			continue
		}
		want := regexp.MustCompile(`(?m)^` + name + ` +\| ran as 0 on ListenAddress ` + regexp.QuoteMeta(world.Instances[name].IP) + `$`)
		if !want.Match(r.stdout) {
			t.Errorf("no line for %s in:\n%s", name, r.stdout)
		}
	}
	for _, w := range []string{"10 instances (Run Command ", "6 exit 0", "2 exit 3", "2 not run",
		"stopped (" + id("stopped") + "): not run: the instance is stopped",
		"no-profile (" + id("no-profile") + "): not run: not a managed node",
		"sg-range (" + id("sg-range") + "): exit 3"} {
		if !strings.Contains(string(r.stderr), w) {
			t.Errorf("the summary lacks %q:\n%s", w, r.stderr)
		}
	}
	if strings.Contains(string(r.stderr), "failed to run commands") {
		t.Errorf("the agent's own trailer reached stderr:\n%s", r.stderr)
	}
	// One call reached them all: the exact tag became a tag target. Short
	// stdout came with the listing; only the two with stderr were fetched.
	if calls["SendCommand"] != 1 || calls["DescribeInstanceInformation"] != 1 || calls["GetCommandInvocation"] != 2 {
		t.Errorf("calls %v: want 1 SendCommand, 1 DescribeInstanceInformation, 2 GetCommandInvocation", calls)
	}
	t.Logf("calls: %v", calls)
}

func TestRunCommandJSON(t *testing.T) {
	needWorld(t)
	s := world.SSM()
	s.ResetRunCommandCalls()
	r := runRC(t, "--all", "--json", "sg-*", "--via", "run-command", "--", "echo j; echo k >&2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	dec := json.NewDecoder(bytes.NewReader(r.stdout))
	n := 0
	for dec.More() {
		var res struct {
			ID, Name, Region, Status, Stdout, Stderr string
			CommandID                                string `json:"command_id"`
			Exit                                     int
			Ran                                      bool
		}
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("--json: %v: %s", err, r.stdout)
		}
		b, _ := json.Marshal(raw)
		json.Unmarshal(b, &res)
		n++
		for _, k := range []string{"id", "name", "region", "status", "exit", "ran", "stdout", "stderr", "command_id"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("--json object lacks %q: %s", k, b)
			}
		}
		if res.Status != "success" || res.Exit != 0 || !res.Ran || res.Stdout != "j\n" || res.Stderr != "k\n" || res.CommandID == "" {
			t.Errorf("--json: %s", b)
		}
	}
	// A Name pattern is sent as instance ids: one SendCommand for four.
	if n != 4 || s.RunCommandCalls()["SendCommand"] != 1 {
		t.Errorf("%d objects, calls %v; want 4 and 1 SendCommand", n, s.RunCommandCalls())
	}
	if len(r.stderr) != 0 {
		t.Errorf("--json wrote to stderr: %s", r.stderr)
	}
}

func TestRunCommandCutOutput(t *testing.T) {
	needWorld(t)
	s := world.SSM()
	ctx := context.Background()
	api := s3.NewFromConfig(aws.Config{Region: lab.Region, BaseEndpoint: aws.String(world.MotoURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIALABLABLABLABLAB0", "lab-secret-not-a-real-one", "")}, func(o *s3.Options) { o.UsePathStyle = true })
	const bucket = "ec2ssh-lab-runs"
	if _, err := api.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create the bucket in moto: %v", err)
	}
	command := `head -c 30000 /dev/zero | tr '\0' a; echo; head -c 9000 /dev/zero | tr '\0' e >&2`
	type res struct {
		Stdout, Stderr string
		StdoutCut      bool   `json:"stdout_cut"`
		StderrCut      bool   `json:"stderr_cut"`
		CommandID      string `json:"command_id"`
		ID, Status     string
	}
	one := func(r result) res {
		t.Helper()
		var v res
		if err := json.Unmarshal(r.stdout, &v); err != nil {
			t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
		}
		return v
	}
	// Without --output-s3: SSM's cut, said, naming --output-s3.
	r := runRC(t, "--all", "--json", "healthy", "--via", "run-command", "--", command)
	v := one(r)
	if len(v.Stdout) != 24000-len("--output truncated--") || !v.StdoutCut || len(v.Stderr) != 8000-len("--output truncated--") || !v.StderrCut {
		t.Errorf("cut output: stdout %d bytes (cut %v), stderr %d (cut %v)", len(v.Stdout), v.StdoutCut, len(v.Stderr), v.StderrCut)
	}
	for _, w := range []string{"stdout cut by SSM at 24,000 characters; pass --output-s3", "stderr cut by SSM at 8,000 characters"} {
		if !strings.Contains(string(r.stderr), w) {
			t.Errorf("no notice %q: %s", w, r.stderr)
		}
	}
	// With it: the whole of both, read where the agent wrote them.
	r = runRC(t, "--all", "--json", "healthy", "--via", "run-command", "--output-s3", bucket+"/runs", "--", command)
	v = one(r)
	if len(v.Stdout) != 30001 || v.StdoutCut || len(v.Stderr) != 9000 || v.StderrCut || len(r.stderr) != 0 {
		t.Errorf("with --output-s3: stdout %d bytes (cut %v), stderr %d (cut %v), %s", len(v.Stdout), v.StdoutCut, len(v.Stderr), v.StderrCut, r.stderr)
	}
	key := "runs/" + v.CommandID + "/" + id("healthy") + "/awsrunShellScript/0.awsrunShellScript/stdout"
	if out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Errorf("the agent's stdout is not at s3://%s/%s: %v", bucket, key, err)
	} else {
		b, _ := io.ReadAll(out.Body)
		if len(b) != 30001 {
			t.Errorf("s3://%s/%s holds %d bytes", bucket, key, len(b))
		}
	}
	// An instance that may not write there: cut, and said why.
	s.DenyS3Output(id("healthy"), true)
	r = runRC(t, "--all", "--json", "healthy", "--via", "run-command", "--output-s3", bucket+"/runs", "--", command)
	s.DenyS3Output(id("healthy"), false)
	if v = one(r); !v.StdoutCut || !strings.Contains(string(r.stderr), "the agent did not write it to s3://"+bucket+"/runs/") {
		t.Errorf("no S3 output: cut %v, %s", v.StdoutCut, r.stderr)
	}
	// A bucket that is not there: refused before anything is sent.
	s.ResetRunCommandCalls()
	r = runRC(t, "--all", "healthy", "--via", "run-command", "--output-s3", "no-such-bucket-here", "--", "true")
	if r.code != 255 || !strings.Contains(string(r.stderr), "ec2ssh: error: --output-s3: bucket no-such-bucket-here does not exist") || s.RunCommandCalls()["SendCommand"] != 0 {
		t.Errorf("missing bucket: exit %d, %s, calls %v", r.code, r.stderr, s.RunCommandCalls())
	}
}

func TestRunCommandMaxErrors(t *testing.T) {
	needWorld(t)
	r := runRC(t, "--all", "tag:Fleet=lab", "--via", "run-command", "--parallel", "1", "--max-errors", "0", "--", "exit 3")
	if r.code != 255 {
		t.Errorf("exit %d, want 255", r.code)
	}
	// One at a time, none allowed to fail: the first fails, SSM sends the
	// command to no other.
	if n := strings.Count(string(r.stderr), "not run: --max-errors was reached"); n != len(managed)-1 || !strings.Contains(string(r.stderr), "1 exit 3") {
		t.Errorf("%d stopped by --max-errors, want %d:\n%s", n, len(managed)-1, r.stderr)
	}
}

func TestRunCommandRefusals(t *testing.T) {
	needWorld(t)
	s := world.SSM()
	s.ResetRunCommandCalls()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--all", "nothing-matches-*", "--via", "run-command", "--", "true"}, `no instance matches "nothing-matches-*"`},
		{[]string{"--all", "tag:Fleet=lab", "--via", "run-command", "--parallel", "0", "--", "true"}, "bad --parallel"},
		{[]string{"--all", "tag:Fleet=lab", "--via", "run-command", "--max-errors", "101%", "--", "true"}, "bad --max-errors"},
		{[]string{"--all", "tag:Fleet=lab", "--via", "run-command", "--output-s3", "Bad_Bucket", "--", "true"}, "bad --output-s3"},
		{[]string{"--via", "run-command", "healthy", "true"}, "goes with --all"},
		{[]string{"--all", "tag:Fleet=lab", "--max-errors", "1", "--", "true"}, "go with --all --via run-command"},
	} {
		r := runRC(t, tt.args...)
		if r.code != 255 || !strings.Contains(string(r.stderr), "ec2ssh: error: ") || !strings.Contains(string(r.stderr), tt.want) || !strings.Contains(string(r.stderr), "ec2ssh: hint: ") {
			t.Errorf("%q: exit %d, %q; want 255 and an error naming %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
	if n := s.RunCommandCalls()["SendCommand"]; n != 0 {
		t.Errorf("%d SendCommands for refused command lines", n)
	}
}

// startRC starts ec2ssh and returns it with its output buffers.
func startRC(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(cleanEnv(), world.AWSEnv()...), "XDG_CACHE_HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out, &errb
}

// waitSent waits until ec2ssh has sent its command and the instances
// have had time to start it.
func waitSent(t *testing.T, s *lab.SSMStandIn) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); s.RunCommandCalls()["SendCommand"] == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no SendCommand within 30 s")
		}
	}
	time.Sleep(time.Second)
}

func exitOf(t *testing.T, cmd *exec.Cmd, within time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(within):
		cmd.Process.Kill()
		<-done
		t.Errorf("ec2ssh still running %v after the signal", within)
	}
	return cmd.ProcessState.ExitCode(), time.Since(start)
}

func TestRunCommandInterrupt(t *testing.T) {
	needWorld(t)
	s := world.SSM()

	// Ctrl-C: the command is cancelled, the two running report (with what
	// they printed), the summary follows, exit 130.
	s.ResetRunCommandCalls()
	cmd, out, errb := startRC(t, "--all", "tag:Fleet=lab", "--via", "run-command", "--parallel", "2", "--", "echo started; sleep 30")
	waitSent(t, s)
	cmd.Process.Signal(os.Interrupt)
	code, took := exitOf(t, cmd, fleet.CancelWait+5*time.Second)
	if code != 130 || took > fleet.CancelWait+time.Second {
		t.Errorf("Ctrl-C: exit %d after %v; want 130 within %v", code, took, fleet.CancelWait)
	}
	if n := s.RunCommandCalls()["CancelCommand"]; n != 1 {
		t.Errorf("%d CancelCommand calls, want 1", n)
	}
	if n := strings.Count(out.String(), "| started\n"); n != 2 {
		t.Errorf("%d instances had started, want the 2 --parallel allows:\n%s", n, out)
	}
	for _, w := range []string{"ec2ssh: interrupted: cancelling the command", "10 instances (Run Command ", "8 cancelled", "2 not run"} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("lacks %q:\n%s", w, errb)
		}
	}

	// A second Ctrl-C leaves at once.
	cmd, _, _ = startRC(t, "--all", "tag:Fleet=lab", "--via", "run-command", "--", "sleep 5")
	s.ResetRunCommandCalls()
	waitSent(t, s)
	cmd.Process.Signal(os.Interrupt)
	time.Sleep(50 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	if code, took := exitOf(t, cmd, 5*time.Second); code != 130 || took > time.Second {
		t.Errorf("second Ctrl-C: exit %d after %v; want 130 at once", code, took)
	}

	// SIGHUP (the terminal gone): the command goes on in AWS, and ec2ssh
	// says how to follow it.
	s.ResetRunCommandCalls()
	cmd, _, errb = startRC(t, "--all", "healthy", "--via", "run-command", "--", "sleep 2; echo done")
	waitSent(t, s)
	cmd.Process.Signal(syscall.SIGHUP)
	code, _ = exitOf(t, cmd, 5*time.Second)
	if code != 255 || s.RunCommandCalls()["CancelCommand"] != 0 || !strings.Contains(errb.String(), "aws ssm list-command-invocations --region us-east-1 --command-id ") {
		t.Errorf("SIGHUP: exit %d, calls %v, %s", code, s.RunCommandCalls(), errb)
	}
}

// TestRunCommandScale runs the engine over 1,000 agent-only managed nodes
// (moto lists a thousand instances too slowly to stand behind them),
// through the SDK's real clients to the stand-in, and counts the calls
// there: SendCommand ⌈N/50⌉ times by ids, once by tag; polling bounded;
// the wall time set by MaxConcurrency, not by N round trips.
func TestRunCommandScale(t *testing.T) {
	needWorld(t)
	for _, kv := range world.AWSEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	const region, n = "us-west-2", 1000
	ids, stop := world.AgentOnlyFleet(region, n, map[string]string{"Scale": "1k"})
	defer stop()
	var ins []*preflight.Instance
	for _, id := range ids {
		ins = append(ins, &preflight.Instance{ID: id, State: preflight.StateRunning, Region: region, Tags: map[string]string{"Scale": "1k"}})
	}
	s := world.SSM()
	run := func(filter, parallel, command string) (time.Duration, map[string]int) {
		t.Helper()
		f, _ := preflight.ParseFilter(filter)
		s.ResetRunCommandCalls()
		var out, errb bytes.Buffer
		start := time.Now()
		code, err := fleet.Run(context.Background(), fleet.Request{Command: command, Filter: f, Parallel: parallel}, ins, fleet.NewDeps(context.Background(), ""), &out, &errb)
		took := time.Since(start)
		if err != nil || code != 0 || !strings.Contains(errb.String(), fmt.Sprintf("%d instances", n)) || strings.Count(out.String(), "\n") != strings.Count(command, "echo")*n {
			t.Fatalf("%s at %s: exit %d, %v\n%s", filter, parallel, code, err, errb.String()[:min(2000, errb.Len())])
		}
		calls := s.RunCommandCalls()
		t.Logf("%d instances, %s, --parallel %s, %q: %v, peak %d at once; calls %v", n, filter, parallel, command, took.Round(time.Millisecond), s.RunCommandPeak(), calls)
		return took, calls
	}
	_, byTag := run("tag:Scale=1k", "100", "true")
	_, byIDs := run("tag:Scale=1*", "100", "true")
	if byTag["SendCommand"] != 1 || byIDs["SendCommand"] != (n+49)/50 {
		t.Errorf("SendCommand: %d by tag (want 1), %d by ids (want %d)", byTag["SendCommand"], byIDs["SendCommand"], (n+49)/50)
	}
	for name, calls := range map[string]map[string]int{"by tag": byTag, "by ids": byIDs} {
		// A poll round lists at most 20 pages (1,000 / 50) and is a growing
		// delay apart; the output of `true` comes with the listing.
		// (The stand-in counts requests: an SDK retry of a call, after a
		// connection reset on this loaded host, counts again.)
		if d := calls["DescribeInstanceInformation"]; d < n/50 || d > n/50+2 || calls["GetCommandInvocation"] != 0 || calls["ListCommandInvocations"] > 20*12 {
			t.Errorf("%s: calls %v", name, calls)
		}
	}
	if byTag["ListCommandInvocations"] > (20+1)*byTag["ListCommands"] { // 20 pages a round, or 1 while SSM lists nothing yet
		t.Errorf("by tag: %d pages in %d rounds", byTag["ListCommandInvocations"], byTag["ListCommands"])
	}
	// The wall time follows MaxConcurrency, 1,000 × 0.3 s at 100 and at
	// 250, and not N round trips: with each call 20 ms away, as a region
	// is, 1,000 calls in turn would take 20 s.
	const rtt = 20 * time.Millisecond
	s.SetAPILatency(rtt)
	defer s.SetAPILatency(0)
	slow, _ := run("tag:Scale=1k", "100", "sleep 0.3")
	fast, _ := run("tag:Scale=1k", "250", "sleep 0.3")
	if float64(slow)/float64(fast) < 1.5 || fast > n*rtt/2 {
		t.Errorf("%v at --parallel 100, %v at 250, N × rtt %v: the wall time does not follow MaxConcurrency", slow, fast, n*rtt)
	}
	t.Logf("a call's round trip %v: N × rtt = %v; wall at 100: %v, at 250: %v", rtt, time.Duration(n)*rtt, slow, fast)
}

// TestRunCommandStandIn holds the stand-in to the service's answers that
// the engine relies on (the SendCommand API reference; the SDK's typed
// errors): the limits refused as ValidationException, a node that is not
// managed refusing the whole call, the moment after SendCommand when
// nothing is listed or found yet, paging, and a cancel.
func TestRunCommandStandIn(t *testing.T) {
	needWorld(t)
	ctx := context.Background()
	api := ssm.NewFromConfig(aws.Config{Region: lab.Region, BaseEndpoint: aws.String(fmt.Sprintf("http://127.0.0.1:%d", lab.SSMPort)),
		Credentials: credentials.NewStaticCredentialsProvider("AKIALABLABLABLABLAB0", "lab-secret-not-a-real-one", "")})
	send := func(in ssm.SendCommandInput) (*ssm.SendCommandOutput, error) {
		if in.DocumentName == nil {
			in.DocumentName = aws.String("AWS-RunShellScript")
		}
		if in.Parameters == nil {
			in.Parameters = map[string][]string{"commands": {"sleep 5; echo x"}}
		}
		return api.SendCommand(ctx, &in)
	}
	many := make([]string, 51)
	for i := range many {
		many[i] = id("healthy")
	}
	for _, tt := range []struct {
		name string
		in   ssm.SendCommandInput
		code string
	}{
		{"51 ids", ssm.SendCommandInput{InstanceIds: many}, "ValidationException"},
		{"MaxConcurrency 0", ssm.SendCommandInput{InstanceIds: []string{id("healthy")}, MaxConcurrency: aws.String("0")}, "ValidationException"},
		{"MaxErrors 101%", ssm.SendCommandInput{InstanceIds: []string{id("healthy")}, MaxErrors: aws.String("101%")}, "ValidationException"},
		{"TimeoutSeconds 10", ssm.SendCommandInput{InstanceIds: []string{id("healthy")}, TimeoutSeconds: aws.Int32(10)}, "ValidationException"},
		{"no target", ssm.SendCommandInput{}, "ValidationException"},
		{"no such document", ssm.SendCommandInput{InstanceIds: []string{id("healthy")}, DocumentName: aws.String("AWS-Nope")}, "InvalidDocument"},
		{"not a managed node", ssm.SendCommandInput{InstanceIds: []string{id("healthy"), id("no-profile")}}, "InvalidInstanceId"},
	} {
		_, err := send(tt.in)
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tt.code {
			t.Errorf("SendCommand, %s: %v; want %s", tt.name, err, tt.code)
		}
	}
	var invalid *ssmtypes.InvalidInstanceId
	if _, err := send(ssm.SendCommandInput{InstanceIds: []string{id("no-profile")}}); !errors.As(err, &invalid) {
		t.Errorf("SendCommand to a node that is not managed: %v, want the SDK's InvalidInstanceId", err)
	}
	out, err := send(ssm.SendCommandInput{Targets: []ssmtypes.Target{{Key: aws.String("tag:Fleet"), Values: []string{"lab"}}}, MaxConcurrency: aws.String("3")})
	if err != nil {
		t.Fatal(err)
	}
	cid := out.Command.CommandId
	if len(aws.ToString(cid)) != 36 {
		t.Errorf("command id %q is not 36 characters", aws.ToString(cid))
	}
	// Just after: nothing listed, nothing found.
	list, err := api.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{CommandId: cid})
	var missing *ssmtypes.InvocationDoesNotExist
	_, gerr := api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: cid, InstanceId: aws.String(id("healthy"))})
	if err != nil || len(list.CommandInvocations) != 0 || !errors.As(gerr, &missing) {
		t.Errorf("just after SendCommand: %v, %d listed, %v; want none listed and InvocationDoesNotExist", err, len(list.CommandInvocations), gerr)
	}
	time.Sleep(time.Second)
	// The tag target reached the eight managed nodes, three at a time;
	// paged.
	var seen, running int
	p := ssm.NewListCommandInvocationsPaginator(api, &ssm.ListCommandInvocationsInput{CommandId: cid, MaxResults: aws.Int32(3)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, inv := range page.CommandInvocations {
			seen++
			if inv.Status == ssmtypes.CommandInvocationStatusInProgress {
				running++
			}
		}
	}
	if seen != len(managed) || pages != 3 || running != 3 {
		t.Errorf("%d invocations in %d pages, %d running; want %d in 3, 3 running", seen, pages, running, len(managed))
	}
	if _, err := api.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{CommandId: cid, MaxResults: aws.Int32(51)}); err == nil {
		t.Errorf("MaxResults 51 accepted")
	}
	if _, err := api.CancelCommand(ctx, &ssm.CancelCommandInput{CommandId: cid}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	lc, err := api.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: cid})
	if err != nil || len(lc.Commands) != 1 || lc.Commands[0].Status != ssmtypes.CommandStatusCancelled || lc.Commands[0].CompletedCount != int32(len(managed)) {
		t.Errorf("after CancelCommand: %v %+v", err, lc)
	}
}
