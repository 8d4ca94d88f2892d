package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Run Command in the SSM stand-in (issue 22), as the service and the agent
// behave, so that ec2ssh's engine meets what users meet:
//   - SendCommand validates as the API does (50 instance ids, 5 targets,
//     the MaxConcurrency and MaxErrors patterns, the timeouts, a document
//     that exists) and refuses the whole call when one instance id is not
//     a managed node (InvalidInstanceId); a tag target reaches the managed
//     nodes with the tag (EC2's tags, from moto) and nothing else;
//   - for a moment after SendCommand (rcListLag) the command's invocations
//     are neither listed (an empty 200) nor found (InvocationDoesNotExist);
//   - invocations go Pending → InProgress → Success / Failed / TimedOut
//     (Execution or Delivery Timed Out) / Cancelled, or Undeliverable (an
//     agent that is registered but not online), at most MaxConcurrency at
//     once; past MaxErrors (Failed and Execution Timed Out count) what has
//     not started is Terminated;
//   - the agent writes the commands to _script.sh and runs "sh -c PATH" as
//     root in the instance's view (runscript.go, runshellscript.go), with
//     AWS_SSM_INSTANCE_ID, AWS_SSM_REGION_NAME and SSM_COMMAND_ID set; a
//     non-zero exit appends "failed to run commands: exit status N" to
//     stderr; a timeout or a cancel kills it (exit code 137);
//   - output is cut as the agent cuts it (pluginutil.StringPrefix: 24,000
//     bytes of stdout, 8,000 of stderr, ending "--output truncated--";
//     TruncateOutput's 2,500 for ListCommandInvocations' Details), and the
//     whole of each stream that is not empty is put to S3 (moto) at
//     PREFIX/COMMAND/INSTANCE/awsrunShellScript/0.awsrunShellScript/stdout
//     before the invocation reports;
//   - every Run Command operation is throttled past a rate
//     (ThrottlingException "Rate exceeded"); the service's real rates are
//     not published, these make throttling happen at a fleet's scale.
// What it does not do: evaluate IAM for the agent's S3 upload (DenyS3Output
// stands in for an instance profile without s3:PutObject), CloudWatch
// output, notifications, documents other than the two shell ones.

const (
	rcDeliveryDelay = 150 * time.Millisecond // the agent's long poll hands the command over
	rcListLag       = 300 * time.Millisecond // eventual consistency after SendCommand
	rcCancelDelay   = 100 * time.Millisecond // the cancel reaches the agent
	rcUndeliverable = time.Second            // an agent not online is given up on
	rcStdoutMax     = 24000
	rcStderrMax     = 8000
	rcCutMark       = "--output truncated--"
	rcDetailsMax    = 2500
	rcRate          = 50.0 // calls per second per operation
	rcBurst         = 100.0
	rcKilledCode    = 137 // appconfig.CommandStoppedPreemptivelyExitCode
)

var (
	rcConcurrencyRE = regexp.MustCompile(`^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$`)
	rcErrorsRE      = regexp.MustCompile(`^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$`)
	rcInstanceRE    = regexp.MustCompile(`^(i-(\w{8}|\w{17})|mi-\w{17})$`)
)

// runCommands is the stand-in's Run Command state.
type runCommands struct {
	mu      sync.Mutex
	cmds    map[string]*rcCommand
	order   []*rcCommand
	lost    map[string]bool // registered agents that are not online: ConnectionLost
	sims    map[string]rcSim
	noS3    map[string]bool
	calls   map[string]int
	buckets map[string]*rcBucket
	running int // invocations InProgress now, over all commands
	peak    int
	latency time.Duration // added to each Run Command call: a region's round trip
	stopped bool
}

// rcSim is an agent-only managed node (no sshd, its script simulated),
// for fleets larger than the lab's hosts.
type rcSim struct {
	region string
	tags   map[string]string
}

type rcCommand struct {
	id, doc, region, comment    string
	commands                    []string
	instanceIDs                 []string
	targets                     []rcTarget
	maxConcurrency, maxErrors   string
	conc, maxErr                int
	timeout, execTimeout        int
	bucket, prefix, bucketRegio string
	at                          time.Time
	invs                        []*rcInvocation
	cancelled                   bool
	wake                        chan struct{}
}

type rcTarget struct {
	Key    string
	Values []string
}

type rcInvocation struct {
	id                 string
	status, details    string
	code               int
	stdout, stderr     string // as the API returns them (cut)
	output             string // Details' Output
	start, end         time.Time
	starting, cancelIt bool
	proc               *os.Process
}

func (rc *runCommands) init() {
	if rc.cmds == nil {
		rc.cmds, rc.lost, rc.sims, rc.noS3, rc.calls, rc.buckets = map[string]*rcCommand{}, map[string]bool{}, map[string]rcSim{}, map[string]bool{}, map[string]int{}, map[string]*rcBucket{}
	}
}

// count records a call to op (every SSM operation the stand-in serves).
func (rc *runCommands) count(op string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.init()
	rc.calls[op]++
}

// RunCommandCalls is how many calls of each SSM operation the stand-in
// has answered, and under "Throttled" how many it refused for the rate.
func (s *ssmStandIn) RunCommandCalls() map[string]int {
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.rc.calls {
		out[k] = v
	}
	return out
}

// ResetRunCommandCalls zeroes the counts and the peak.
func (s *ssmStandIn) ResetRunCommandCalls() {
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	s.rc.calls, s.rc.peak = map[string]int{}, 0
}

// RunCommandPeak is the most invocations that ran at once since the last
// reset.
func (s *ssmStandIn) RunCommandPeak() int {
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	return s.rc.peak
}

// SetAPILatency makes each Run Command call take d longer, as a call to
// a region far away does (the lab's loopback answers in microseconds).
func (s *ssmStandIn) SetAPILatency(d time.Duration) {
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	s.rc.latency = d
}

// SetConnectionLost marks an offline instance's agent as registered (its
// ping ConnectionLost, as a stopped instance's is) or not.
func (s *ssmStandIn) SetConnectionLost(id string, lost bool) {
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	s.rc.init()
	s.rc.lost[id] = lost
}

// DenyS3Output makes an instance's agent fail to write its output to S3,
// as an instance profile without s3:PutObject on the bucket does.
func (s *ssmStandIn) DenyS3Output(id string, deny bool) {
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	s.rc.init()
	s.rc.noS3[id] = deny
}

// AddAgentOnly registers instances that have an online agent and nothing
// else (no sshd, no view: their agent simulates the script); tags, when
// given, are what a tag target matches (else moto's EC2 tags are).
func (s *ssmStandIn) AddAgentOnly(ids []string, region string, tags map[string]string) {
	s.rc.mu.Lock()
	s.rc.init()
	for _, id := range ids {
		s.rc.sims[id] = rcSim{region: region, tags: tags}
	}
	s.rc.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.online[id] = true
	}
}

// RemoveAgentOnly deregisters what AddAgentOnly registered.
func (s *ssmStandIn) RemoveAgentOnly(ids []string) {
	s.rc.mu.Lock()
	for _, id := range ids {
		delete(s.rc.sims, id)
	}
	s.rc.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.online, id)
	}
}

// ping is an instance's agent as SSM sees it: "Online", "ConnectionLost",
// or "" when no agent is registered.
func (s *ssmStandIn) ping(id string) string {
	if s.isOnline(id) {
		return "Online"
	}
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	if s.rc.lost[id] {
		return "ConnectionLost"
	}
	return ""
}

func (rc *runCommands) stop() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.stopped = true
	for _, c := range rc.cmds {
		for _, v := range c.invs {
			if v.proc != nil {
				syscall.Kill(-v.proc.Pid, syscall.SIGKILL)
			}
		}
	}
}

// rcBucket is a token bucket: one per operation.
type rcBucket struct {
	tokens float64
	at     time.Time
}

func (rc *runCommands) allow(op string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.init()
	b := rc.buckets[op]
	now := time.Now()
	if b == nil {
		b = &rcBucket{tokens: rcBurst, at: now}
		rc.buckets[op] = b
	}
	b.tokens = min(rcBurst, b.tokens+now.Sub(b.at).Seconds()*rcRate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// runCommand serves the Run Command operations.
func (s *ssmStandIn) runCommand(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	s.rc.mu.Lock()
	latency := s.rc.latency
	s.rc.mu.Unlock()
	time.Sleep(latency)
	if !s.rc.allow(op) {
		s.rc.mu.Lock()
		s.rc.calls[op]--
		s.rc.calls["Throttled"]++
		s.rc.mu.Unlock()
		apiError(w, "ThrottlingException", "Rate exceeded")
		return
	}
	region := requestRegion(r)
	switch op {
	case "SendCommand":
		s.sendCommand(w, region, body)
	case "ListCommands":
		s.listCommands(w, body)
	case "ListCommandInvocations":
		s.listInvocations(w, body)
	case "GetCommandInvocation":
		s.getInvocation(w, body)
	case "CancelCommand":
		s.cancelCommand(w, body)
	}
}

// requestRegion is the region a SigV4 request was signed for.
func requestRegion(r *http.Request) string {
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	parts := strings.Split(cred, "/")
	if len(parts) >= 3 {
		return parts[2]
	}
	return Region
}

func validation(w http.ResponseWriter, field, value, constraint string) {
	apiError(w, "ValidationException", fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, constraint))
}

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// rcCount is a MaxConcurrency or MaxErrors value among n targets.
func rcCount(spec string, n int) int {
	if p, ok := strings.CutSuffix(spec, "%"); ok {
		v, _ := strconv.Atoi(p)
		return v * n / 100
	}
	v, _ := strconv.Atoi(spec)
	return v
}

func (s *ssmStandIn) sendCommand(w http.ResponseWriter, region string, body []byte) {
	var in struct {
		DocumentName                                          string
		InstanceIds                                           []string
		Targets                                               []rcTarget
		Parameters                                            map[string][]string
		MaxConcurrency, MaxErrors, Comment                    string
		TimeoutSeconds                                        *int
		OutputS3BucketName, OutputS3KeyPrefix, OutputS3Region string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		apiError(w, "SerializationException", err.Error())
		return
	}
	switch {
	case in.DocumentName != "AWS-RunShellScript" && in.DocumentName != "AWS-RunPowerShellScript":
		apiError(w, "InvalidDocument", "Document with name "+in.DocumentName+" does not exist.")
		return
	case len(in.InstanceIds) > 50:
		validation(w, "instanceIds", fmt.Sprint(in.InstanceIds), "Member must have length less than or equal to 50")
		return
	case len(in.Targets) > 5:
		validation(w, "targets", fmt.Sprint(in.Targets), "Member must have length less than or equal to 5")
		return
	case len(in.InstanceIds) == 0 && len(in.Targets) == 0:
		apiError(w, "ValidationException", "Either InstanceIds or Targets must be specified.")
		return
	case len(in.InstanceIds) > 0 && len(in.Targets) > 0:
		apiError(w, "ValidationException", "InstanceIds and Targets cannot both be specified.")
		return
	case in.MaxConcurrency != "" && !rcConcurrencyRE.MatchString(in.MaxConcurrency):
		validation(w, "maxConcurrency", in.MaxConcurrency, "Member must satisfy regular expression pattern: "+rcConcurrencyRE.String())
		return
	case in.MaxErrors != "" && !rcErrorsRE.MatchString(in.MaxErrors):
		validation(w, "maxErrors", in.MaxErrors, "Member must satisfy regular expression pattern: "+rcErrorsRE.String())
		return
	case in.TimeoutSeconds != nil && (*in.TimeoutSeconds < 30 || *in.TimeoutSeconds > 2592000):
		validation(w, "timeoutSeconds", strconv.Itoa(*in.TimeoutSeconds), "Member must have value between 30 and 2592000")
		return
	case len(in.Comment) > 100:
		validation(w, "comment", in.Comment, "Member must have length less than or equal to 100")
		return
	case len(in.OutputS3KeyPrefix) > 500:
		validation(w, "outputS3KeyPrefix", in.OutputS3KeyPrefix, "Member must have length less than or equal to 500")
		return
	case len(in.Parameters["commands"]) == 0:
		apiError(w, "InvalidParameters", "Parameter \"commands\" is required.")
		return
	}
	exec := 3600
	if v := in.Parameters["executionTimeout"]; len(v) > 0 {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > 172800 {
			apiError(w, "InvalidParameters", "Parameter \"executionTimeout\" \""+v[0]+"\" does not match the allowed pattern.")
			return
		}
		exec = n
	}
	var ids []string
	for _, id := range in.InstanceIds {
		if !rcInstanceRE.MatchString(id) || s.ping(id) == "" {
			apiError(w, "InvalidInstanceId", "Instances [["+id+"]] not in a valid state for account 123456789012")
			return
		}
		ids = append(ids, id)
	}
	for _, t := range in.Targets {
		if len(t.Values) == 0 || len(t.Values) > 50 {
			validation(w, "targets.member.values", fmt.Sprint(t.Values), "Member must have length between 1 and 50")
			return
		}
		switch {
		case t.Key == "InstanceIds":
			for _, id := range t.Values {
				if s.ping(id) != "" {
					ids = append(ids, id)
				}
			}
		case strings.HasPrefix(t.Key, "tag:"):
			found, err := s.tagged(region, strings.TrimPrefix(t.Key, "tag:"), t.Values)
			if err != nil {
				apiError(w, "InternalServerError", err.Error())
				return
			}
			ids = append(ids, found...)
		default:
			apiError(w, "ValidationException", "Target key "+t.Key+" is not supported by the lab's stand-in")
			return
		}
	}
	c := &rcCommand{id: uuid(), doc: in.DocumentName, region: region, comment: in.Comment, commands: in.Parameters["commands"],
		instanceIDs: in.InstanceIds, targets: in.Targets, maxConcurrency: or(in.MaxConcurrency, "50"), maxErrors: or(in.MaxErrors, "0"),
		timeout: 3600, execTimeout: exec, bucket: in.OutputS3BucketName, prefix: in.OutputS3KeyPrefix, bucketRegio: or(in.OutputS3Region, region),
		at: time.Now(), wake: make(chan struct{}, 1)}
	if in.TimeoutSeconds != nil {
		c.timeout = *in.TimeoutSeconds
	}
	c.conc = max(1, rcCount(c.maxConcurrency, len(ids)))
	c.maxErr = rcCount(c.maxErrors, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			c.invs = append(c.invs, &rcInvocation{id: id, status: "Pending", details: "Pending", code: -1})
		}
	}
	s.rc.mu.Lock()
	s.rc.init()
	s.rc.cmds[c.id] = c
	s.rc.order = append(s.rc.order, c)
	resp := map[string]any{"Command": s.commandJSON(c)}
	s.rc.mu.Unlock()
	go s.dispatch(c)
	json.NewEncoder(w).Encode(resp)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// tagged is the managed nodes in region with one of values for tag key:
// EC2's instances (moto) and the agent-only nodes.
func (s *ssmStandIn) tagged(region, key string, values []string) ([]string, error) {
	cfg := aws.Config{Region: region, BaseEndpoint: aws.String(fmt.Sprintf("http://127.0.0.1:%d", MotoPort)),
		Credentials: credentials.NewStaticCredentialsProvider("AKIALABLABLABLABLAB0", "lab-secret-not-a-real-one", "")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	p := ec2.NewDescribeInstancesPaginator(ec2.NewFromConfig(cfg), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + key), Values: values}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("resolve the tag target in moto: %w", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				if id := aws.ToString(in.InstanceId); s.ping(id) != "" {
					ids = append(ids, id)
				}
			}
		}
	}
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	for id, sim := range s.rc.sims {
		if v, ok := sim.tags[key]; ok && sim.region == region && contains(values, v) && !contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (c *rcCommand) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func terminalStatus(st string) bool {
	return st == "Success" || st == "Failed" || st == "TimedOut" || st == "Cancelled"
}

// dispatch is the service's side of one command: it hands invocations to
// agents as MaxConcurrency allows, gives up on agents that are not online,
// and stops at MaxErrors.
func (s *ssmStandIn) dispatch(c *rcCommand) {
	for {
		s.rc.mu.Lock()
		if s.rc.stopped {
			s.rc.mu.Unlock()
			return
		}
		now := time.Now()
		running, errs, open := 0, 0, 0
		for _, v := range c.invs {
			if v.starting || v.status == "InProgress" || v.status == "Cancelling" {
				running++
			}
			if v.details == "Failed" || v.details == "ExecutionTimedOut" {
				errs++
			}
		}
		for _, v := range c.invs {
			if v.status != "Pending" || v.starting {
				if !terminalStatus(v.status) {
					open++
				}
				continue
			}
			switch {
			case errs > c.maxErr:
				v.status, v.details, v.end = "Cancelled", "Terminated", now
			case now.Sub(c.at) > time.Duration(c.timeout)*time.Second:
				v.status, v.details, v.end = "TimedOut", "DeliveryTimedOut", now
			case s.rc.lost[v.id] && !s.isOnlineLocked(v.id):
				if now.Sub(c.at) >= rcUndeliverable {
					v.status, v.details, v.end = "Failed", "Undeliverable", now
				} else {
					open++
				}
			case running < c.conc:
				v.starting = true
				running++
				open++
				go s.execute(c, v)
			default:
				open++
			}
		}
		s.rc.mu.Unlock()
		if open == 0 {
			return
		}
		select {
		case <-c.wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// isOnlineLocked is isOnline for a caller holding rc.mu (s.mu is another
// lock, taken after it).
func (s *ssmStandIn) isOnlineLocked(id string) bool { return s.isOnline(id) }

// execute is the agent's side of one invocation: receive, run the script,
// write the output, report.
func (s *ssmStandIn) execute(c *rcCommand, v *rcInvocation) {
	time.Sleep(rcDeliveryDelay)
	s.rc.mu.Lock()
	v.starting = false
	if v.cancelIt || s.rc.stopped {
		v.status, v.details, v.end = "Cancelled", "Cancelled", time.Now()
		s.rc.mu.Unlock()
		c.poke()
		return
	}
	v.status, v.details, v.start = "InProgress", "InProgress", time.Now()
	s.rc.running++
	s.rc.peak = max(s.rc.peak, s.rc.running)
	view := s.opts.Views[v.id]
	_, sim := s.rc.sims[v.id]
	s.rc.mu.Unlock()

	var stdout, stderr string
	var code int
	var how string
	if sim && view == nil {
		stdout, stderr, code, how = s.simulate(c, v)
	} else {
		stdout, stderr, code, how = s.runScript(c, v, view)
	}
	if code != 0 && how == "" {
		// runscript.go: MarkAsFailed(fmt.Errorf("failed to run commands: %v", err)).
		if stderr != "" {
			stderr += "\n"
		}
		stderr += fmt.Sprintf("failed to run commands: exit status %d", code)
	}
	s.rc.mu.Lock()
	noS3 := s.rc.noS3[v.id]
	s.rc.mu.Unlock()
	if c.bucket != "" && !noS3 {
		s.putOutput(c, v.id, "stdout", stdout)
		s.putOutput(c, v.id, "stderr", stderr)
	}
	s.rc.mu.Lock()
	defer c.poke()
	defer s.rc.mu.Unlock()
	s.rc.running--
	v.proc = nil
	v.code, v.end = code, time.Now()
	v.stdout, v.stderr = stringPrefix(stdout, rcStdoutMax), stringPrefix(stderr, rcStderrMax)
	v.output = truncateOutput(stdout, stderr, rcDetailsMax)
	switch {
	case how == "cancelled":
		v.status, v.details = "Cancelled", "Cancelled"
	case how == "timeout":
		v.status, v.details = "TimedOut", "ExecutionTimedOut"
	case code == 0:
		v.status, v.details = "Success", "Success"
	default:
		v.status, v.details = "Failed", "Failed"
	}
}

// runScript runs the commands as the agent does, and returns the streams,
// the exit code, and "cancelled" or "timeout" when it was stopped.
func (s *ssmStandIn) runScript(c *rcCommand, v *rcInvocation, view *View) (string, string, int, string) {
	dir, err := os.MkdirTemp("", "ssm-"+c.id+"-")
	if err != nil {
		return "", "failed to create orchestrationDir directory", 1, ""
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "_script.sh")
	// No fork while the script is open for writing: a child forked then
	// would hold it open, and running it would fail with ETXTBSY.
	syscall.ForkLock.Lock()
	err = os.WriteFile(script, []byte(strings.Join(c.commands, "\n")+"\n"), 0o700)
	syscall.ForkLock.Unlock()
	if err != nil {
		return "", "failed to create script file. " + err.Error(), 1, ""
	}
	var cmd *exec.Cmd
	if view != nil {
		cmd = view.Command("sh", "-c", script)
	} else {
		cmd = exec.Command("sh", "-c", script)
	}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
		"AWS_SSM_INSTANCE_ID=" + v.id, "AWS_SSM_REGION_NAME=" + c.region, "SSM_COMMAND_ID=" + c.id}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", err.Error(), 1, ""
	}
	s.rc.mu.Lock()
	v.proc = cmd.Process
	s.rc.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	how := ""
	timeout := time.NewTimer(time.Duration(c.execTimeout) * time.Second)
	defer timeout.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for how == "" {
		select {
		case <-done:
			return out.String(), errb.String(), exitCode(cmd), ""
		case <-timeout.C:
			how = "timeout"
		case <-tick.C:
			s.rc.mu.Lock()
			if v.cancelIt || s.rc.stopped {
				how = "cancelled"
			}
			s.rc.mu.Unlock()
		}
	}
	if how == "cancelled" {
		time.Sleep(rcCancelDelay)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	return out.String(), errb.String(), rcKilledCode, how
}

// simulate is an agent-only node's agent running the script: a thousand
// such nodes would cost a thousand processes on one host, which measures
// the host, so they run a tiny part of sh in-process, one command per line
// or ";": true, false, exit N, sleep SECONDS, echo WORDS [>&2]. Anything
// else fails as sh would (127).
func (s *ssmStandIn) simulate(c *rcCommand, v *rcInvocation) (stdout, stderr string, code int, how string) {
	deadline := time.Now().Add(time.Duration(c.execTimeout) * time.Second)
	stopped := func() string {
		s.rc.mu.Lock()
		defer s.rc.mu.Unlock()
		switch {
		case v.cancelIt || s.rc.stopped:
			return "cancelled"
		case time.Now().After(deadline):
			return "timeout"
		}
		return ""
	}
	for _, line := range strings.Split(strings.Join(c.commands, "\n"), "\n") {
		for _, part := range strings.Split(line, ";") {
			words := strings.Fields(part)
			if len(words) == 0 {
				continue
			}
			switch words[0] {
			case "true":
				code = 0
			case "false":
				code = 1
			case "exit":
				code = 0
				if len(words) > 1 {
					code, _ = strconv.Atoi(words[1])
				}
				return stdout, stderr, code, ""
			case "sleep":
				secs, _ := strconv.ParseFloat(words[len(words)-1], 64)
				for end := time.Now().Add(time.Duration(secs * float64(time.Second))); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
					if how = stopped(); how != "" {
						if how == "cancelled" {
							time.Sleep(rcCancelDelay)
						}
						return stdout, stderr, rcKilledCode, how
					}
				}
				code = 0
			case "echo":
				if words[len(words)-1] == ">&2" {
					stderr += strings.Join(words[1:len(words)-1], " ") + "\n"
				} else {
					stdout += strings.Join(words[1:], " ") + "\n"
				}
				code = 0
			default:
				stderr += fmt.Sprintf("%s: %s: not found (the lab's agent-only nodes run echo, sleep, true, false, exit)\n", "sh", words[0])
				code = 127
			}
		}
	}
	return stdout, stderr, code, ""
}

func exitCode(cmd *exec.Cmd) int {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

// putOutput writes a stream to the command's bucket, as the agent does
// when the stream is not empty; a failure is the agent's to log, not the
// command's.
func (s *ssmStandIn) putOutput(c *rcCommand, id, stream, text string) {
	if text == "" {
		return
	}
	p := "awsrunShellScript"
	if c.doc == "AWS-RunPowerShellScript" {
		p = "awsrunPowerShellScript"
	}
	key := path.Join(c.prefix, c.id, id, p, "0."+p, stream)
	cfg := aws.Config{Region: c.bucketRegio, BaseEndpoint: aws.String(fmt.Sprintf("http://127.0.0.1:%d", MotoPort)),
		Credentials: credentials.NewStaticCredentialsProvider("AKIALABLABLABLABLAB0", "lab-secret-not-a-real-one", "")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(c.bucket), Key: aws.String(key), Body: strings.NewReader(text)})
}

// stringPrefix is the agent's cut (pluginutil.StringPrefix).
func stringPrefix(s string, limit int) string {
	if len(s) < limit {
		return s
	}
	return s[:limit-len(rcCutMark)] + rcCutMark
}

// truncateOutput is the agent's Details output (iohandler.TruncateOutput).
func truncateOutput(stdout, stderr string, capacity int) string {
	const title, outCut, errCut = "\n----------ERROR-------\n", "\n---Output truncated---", "\n---Error truncated----"
	t := ""
	if stderr != "" {
		t = title
	}
	space := capacity - len(t)
	switch {
	case len(stdout)+len(stderr) < space:
		return stdout + t + stderr
	case len(stdout) > space/2 && len(stderr) > space/2:
		n := (space - len(errCut) - len(outCut)) / 2
		return stdout[:n] + outCut + t + stderr[:n] + errCut
	case len(stdout) <= space/2:
		return stdout + t + stderr[:space-len(errCut)-len(stdout)] + errCut
	}
	return stdout[:space-len(outCut)-len(stderr)] + outCut + t + stderr
}

func epoch(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return float64(t.UnixNano()) / 1e9
}

// commandJSON is a Command as the API returns it; rc.mu held.
func (s *ssmStandIn) commandJSON(c *rcCommand) map[string]any {
	done, errs, delivery := 0, 0, 0
	status := "Pending"
	anyStarted, anyBad := false, false
	for _, v := range c.invs {
		if terminalStatus(v.status) {
			done++
		}
		if v.status != "Pending" {
			anyStarted = true
		}
		switch v.details {
		case "Failed", "ExecutionTimedOut":
			errs++
		case "DeliveryTimedOut":
			delivery++
		}
		if terminalStatus(v.status) && v.details != "Success" && v.details != "Undeliverable" {
			anyBad = true
		}
	}
	details := status
	switch {
	case done == len(c.invs) && c.cancelled:
		status, details = "Cancelled", "Cancelled"
	case done == len(c.invs) && errs > c.maxErr:
		status, details = "Failed", "Failed"
	case done == len(c.invs) && anyBad:
		status, details = "Failed", "Incomplete"
	case done == len(c.invs):
		status, details = "Success", "Success"
	case c.cancelled:
		status, details = "Cancelling", "Cancelling"
	case anyStarted:
		status, details = "InProgress", "InProgress"
	}
	m := map[string]any{"CommandId": c.id, "DocumentName": c.doc, "Comment": c.comment, "Status": status, "StatusDetails": details,
		"RequestedDateTime": epoch(c.at), "Parameters": map[string][]string{"commands": c.commands}, "MaxConcurrency": c.maxConcurrency,
		"MaxErrors": c.maxErrors, "TargetCount": len(c.invs), "CompletedCount": done, "ErrorCount": errs, "DeliveryTimedOutCount": delivery,
		"TimeoutSeconds": c.timeout, "OutputS3BucketName": c.bucket, "OutputS3KeyPrefix": c.prefix, "OutputS3Region": c.bucketRegio}
	if len(c.instanceIDs) > 0 {
		m["InstanceIds"] = c.instanceIDs
	}
	if len(c.targets) > 0 {
		m["Targets"] = c.targets
	}
	return m
}

// page reads MaxResults (1..50) and NextToken; it fails the request with
// the API's error when they are out of range.
func page(w http.ResponseWriter, maxResults *int, token string, n int) (from, to int, next string, ok bool) {
	size := 50
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > 50 {
			validation(w, "maxResults", strconv.Itoa(*maxResults), "Member must have value between 1 and 50")
			return 0, 0, "", false
		}
		size = *maxResults
	}
	if token != "" {
		b, err := base64.StdEncoding.DecodeString(token)
		v, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || v < 0 || v > n {
			apiError(w, "InvalidNextToken", "The specified token is not valid.")
			return 0, 0, "", false
		}
		from = v
	}
	to = min(n, from+size)
	if to < n {
		next = base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(to)))
	}
	return from, to, next, true
}

func (s *ssmStandIn) listCommands(w http.ResponseWriter, body []byte) {
	var in struct {
		CommandId, InstanceId, NextToken string
		MaxResults                       *int
	}
	json.Unmarshal(body, &in)
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	var list []*rcCommand
	for _, c := range s.rc.order {
		if in.CommandId == "" || c.id == in.CommandId {
			list = append(list, c)
		}
	}
	if in.CommandId != "" && len(list) == 0 {
		apiError(w, "InvalidCommandId", "")
		return
	}
	from, to, next, ok := page(w, in.MaxResults, in.NextToken, len(list))
	if !ok {
		return
	}
	out := []map[string]any{}
	for _, c := range list[from:to] {
		out = append(out, s.commandJSON(c))
	}
	resp := map[string]any{"Commands": out}
	if next != "" {
		resp["NextToken"] = next
	}
	json.NewEncoder(w).Encode(resp)
}

func (s *ssmStandIn) invocationJSON(c *rcCommand, v *rcInvocation, details bool) map[string]any {
	m := map[string]any{"CommandId": c.id, "InstanceId": v.id, "InstanceName": "", "DocumentName": c.doc, "Comment": c.comment,
		"RequestedDateTime": epoch(c.at), "Status": v.status, "StatusDetails": v.details}
	urls := func() (string, string) {
		if c.bucket == "" {
			return "", ""
		}
		p := "awsrunShellScript"
		if c.doc == "AWS-RunPowerShellScript" {
			p = "awsrunPowerShellScript"
		}
		base := fmt.Sprintf("https://s3.%s.amazonaws.com/%s/%s", c.bucketRegio, c.bucket, path.Join(c.prefix, c.id, v.id, p, "0."+p))
		return base + "/stdout", base + "/stderr"
	}
	outURL, errURL := urls()
	m["StandardOutputUrl"], m["StandardErrorUrl"] = outURL, errURL
	if details {
		plugin := map[string]any{"Name": "aws:runShellScript", "Status": v.status, "StatusDetails": v.details, "ResponseCode": v.code,
			"Output": v.output, "StandardOutputUrl": outURL, "StandardErrorUrl": errURL, "OutputS3BucketName": c.bucket,
			"ResponseStartDateTime": epoch(v.start), "ResponseFinishDateTime": epoch(v.end)}
		if c.doc == "AWS-RunPowerShellScript" {
			plugin["Name"] = "aws:runPowerShellScript"
		}
		m["CommandPlugins"] = []any{plugin}
	}
	return m
}

func (s *ssmStandIn) listInvocations(w http.ResponseWriter, body []byte) {
	var in struct {
		CommandId, InstanceId, NextToken string
		MaxResults                       *int
		Details                          bool
	}
	json.Unmarshal(body, &in)
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	var cmds []*rcCommand
	for _, c := range s.rc.order {
		if (in.CommandId == "" || c.id == in.CommandId) && time.Since(c.at) >= rcListLag {
			cmds = append(cmds, c)
		}
	}
	type pair struct {
		c *rcCommand
		v *rcInvocation
	}
	var list []pair
	for _, c := range cmds {
		for _, v := range c.invs {
			if in.InstanceId == "" || v.id == in.InstanceId {
				list = append(list, pair{c, v})
			}
		}
	}
	from, to, next, ok := page(w, in.MaxResults, in.NextToken, len(list))
	if !ok {
		return
	}
	out := []map[string]any{}
	for _, p := range list[from:to] {
		out = append(out, s.invocationJSON(p.c, p.v, in.Details))
	}
	resp := map[string]any{"CommandInvocations": out}
	if next != "" {
		resp["NextToken"] = next
	}
	json.NewEncoder(w).Encode(resp)
}

func iso(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func (s *ssmStandIn) getInvocation(w http.ResponseWriter, body []byte) {
	var in struct{ CommandId, InstanceId, PluginName string }
	json.Unmarshal(body, &in)
	s.rc.mu.Lock()
	defer s.rc.mu.Unlock()
	c := s.rc.cmds[in.CommandId]
	if c == nil || time.Since(c.at) < rcListLag {
		apiError(w, "InvocationDoesNotExist", "")
		return
	}
	for _, v := range c.invs {
		if v.id != in.InstanceId {
			continue
		}
		m := s.invocationJSON(c, v, false)
		delete(m, "RequestedDateTime")
		m["PluginName"] = "aws:runShellScript"
		m["ResponseCode"] = v.code
		m["ExecutionStartDateTime"], m["ExecutionEndDateTime"] = iso(v.start), iso(v.end)
		if terminalStatus(v.status) {
			m["StandardOutputContent"], m["StandardErrorContent"] = v.stdout, v.stderr
		} else {
			m["StandardOutputContent"], m["StandardErrorContent"] = "", ""
		}
		json.NewEncoder(w).Encode(m)
		return
	}
	apiError(w, "InvocationDoesNotExist", "")
}

func (s *ssmStandIn) cancelCommand(w http.ResponseWriter, body []byte) {
	var in struct {
		CommandId   string
		InstanceIds []string
	}
	json.Unmarshal(body, &in)
	if len(in.InstanceIds) > 50 {
		validation(w, "instanceIds", fmt.Sprint(in.InstanceIds), "Member must have length less than or equal to 50")
		return
	}
	s.rc.mu.Lock()
	c := s.rc.cmds[in.CommandId]
	if c == nil {
		s.rc.mu.Unlock()
		apiError(w, "InvalidCommandId", "")
		return
	}
	if len(in.InstanceIds) == 0 {
		c.cancelled = true
	}
	now := time.Now()
	for _, v := range c.invs {
		if len(in.InstanceIds) > 0 && !contains(in.InstanceIds, v.id) || terminalStatus(v.status) {
			continue
		}
		switch {
		case v.status == "Pending" && !v.starting:
			v.status, v.details, v.end = "Cancelled", "Cancelled", now
		default:
			// Handed to the agent: it stops the script when the cancel
			// reaches it.
			v.cancelIt = true
			if v.status == "InProgress" {
				v.status, v.details = "Cancelling", "Cancelling"
			}
		}
	}
	s.rc.mu.Unlock()
	c.poke()
	json.NewEncoder(w).Encode(map[string]any{})
}

// AgentOnlyFleet registers n agent-only managed nodes in region, tagged
// as given, for fleets larger than moto can list quickly (it takes
// seconds per thousand instances): they have an online agent and no sshd,
// and their agent runs a small part of sh in-process (simulate). It returns their ids and a func
// that deregisters them.
func (w *World) AgentOnlyFleet(region string, n int, tags map[string]string) ([]string, func()) {
	ids := make([]string, n)
	for i := range ids {
		b := make([]byte, 9)
		rand.Read(b)
		ids[i] = fmt.Sprintf("i-%x", b)[:19]
	}
	w.ssm.AddAgentOnly(ids, region, tags)
	return ids, func() { w.ssm.RemoveAgentOnly(ids) }
}
