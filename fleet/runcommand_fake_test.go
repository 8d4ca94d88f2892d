package fleet

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// fakeSSM is SSM as the engine sees it, in memory, on the (synctest)
// clock: each invocation starts when MaxConcurrency lets it, runs for its
// duration and ends as outcome says; SendCommand's limits are checked.
type fakeSSM struct {
	mu      sync.Mutex
	agents  map[string]ssmtypes.PingStatus
	windows map[string]bool
	tags    map[string][]string // "Key=Value" -> instance ids a tag target reaches
	// outcome decides what the command does on an instance.
	outcome func(id string) fakeRun
	// lag: for this long after SendCommand, the command's invocations are
	// neither listed nor found (SSM's eventual consistency).
	lag     time.Duration
	sendErr error
	cmds    []*fakeCmd
	calls   map[string]int
	cancels []*ssm.CancelCommandInput
}

type fakeRun struct {
	took           time.Duration
	code           int32
	stdout, stderr string
	status         ssmtypes.CommandInvocationStatus // "" for Success/Failed by code
	details        string
}

type fakeCmd struct {
	id       string
	in       *ssm.SendCommandInput
	at       time.Time
	invs     []*fakeInv
	conc     int
	maxErr   int
	cursor   time.Time // how far advance has run it
	canceled bool
}

type fakeInv struct {
	id             string
	run            fakeRun
	start, end     time.Time // zero until started
	status         ssmtypes.CommandInvocationStatus
	details        string
	code           int32
	stdout, stderr string
}

func newFakeSSM() *fakeSSM {
	return &fakeSSM{agents: map[string]ssmtypes.PingStatus{}, windows: map[string]bool{}, tags: map[string][]string{}, calls: map[string]int{},
		outcome: func(string) fakeRun { return fakeRun{took: time.Second, stdout: "ok\n"} }}
}

func (f *fakeSSM) count(op string) {
	f.mu.Lock()
	f.calls[op]++
	f.mu.Unlock()
}

func (f *fakeSSM) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func apiErr(code, msg string) error { return &smithy.GenericAPIError{Code: code, Message: msg} }

func (f *fakeSSM) DescribeInstanceInformation(_ context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	f.count("DescribeInstanceInformation")
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &ssm.DescribeInstanceInformationOutput{}
	for _, flt := range in.Filters {
		if aws.ToString(flt.Key) != "InstanceIds" {
			continue
		}
		if len(flt.Values) > 50 {
			return nil, apiErr("InvalidInstanceInformationFilterValue", "too many ids")
		}
		for _, id := range flt.Values {
			if p, ok := f.agents[id]; ok {
				pt := ssmtypes.PlatformTypeLinux
				if f.windows[id] {
					pt = ssmtypes.PlatformTypeWindows
				}
				out.InstanceInformationList = append(out.InstanceInformationList, ssmtypes.InstanceInformation{InstanceId: aws.String(id), PingStatus: p, PlatformType: pt})
			}
		}
	}
	return out, nil
}

func spec(s string, total int) int {
	if n, ok := strings.CutSuffix(s, "%"); ok {
		v, _ := strconv.Atoi(n)
		return v * total / 100
	}
	v, _ := strconv.Atoi(s)
	return v
}

func (f *fakeSSM) SendCommand(_ context.Context, in *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	f.count("SendCommand")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return nil, f.sendErr
	}
	if len(in.InstanceIds) > 50 {
		return nil, apiErr("ValidationException", "Member must have length less than or equal to 50")
	}
	if (len(in.InstanceIds) == 0) == (len(in.Targets) == 0) {
		return nil, apiErr("ValidationException", "give InstanceIds or Targets")
	}
	ids := in.InstanceIds
	for _, id := range ids {
		if _, ok := f.agents[id]; !ok {
			return nil, &ssmtypes.InvalidInstanceId{Message: aws.String("Instances [[" + id + "]] not in a valid state for account")}
		}
	}
	for _, t := range in.Targets {
		key := strings.TrimPrefix(aws.ToString(t.Key), "tag:")
		for _, id := range f.tags[key+"="+t.Values[0]] {
			if _, managed := f.agents[id]; managed { // a tag target reaches managed nodes only
				ids = append(ids, id)
			}
		}
	}
	c := &fakeCmd{id: fmt.Sprintf("%08d-0000-0000-0000-000000000000", len(f.cmds)+1), in: in, at: time.Now()}
	c.conc = max(1, spec(aws.ToString(in.MaxConcurrency), len(ids)))
	c.maxErr = spec(aws.ToString(in.MaxErrors), len(ids))
	for _, id := range ids {
		c.invs = append(c.invs, &fakeInv{id: id, run: f.outcome(id), status: ssmtypes.CommandInvocationStatusPending, code: -1})
	}
	f.cmds = append(f.cmds, c)
	return &ssm.SendCommandOutput{Command: &ssmtypes.Command{CommandId: aws.String(c.id)}}, nil
}

// advance brings every invocation up to now, event by event, as SSM
// runs them whether or not anyone asks: each command starts what its
// MaxConcurrency allows, ends each at its time, and past MaxErrors
// terminates what has not started.
func (f *fakeSSM) advance() {
	now := time.Now()
	for _, c := range f.cmds {
		if c.cursor.IsZero() {
			c.cursor = c.at
		}
		for {
			t := c.cursor
			inProgress, errs := 0, 0
			for _, v := range c.invs {
				switch {
				case v.status == ssmtypes.CommandInvocationStatusInProgress:
					inProgress++
				case v.details == "Failed" || v.details == "ExecutionTimedOut":
					errs++
				}
			}
			for _, v := range c.invs {
				if v.status != ssmtypes.CommandInvocationStatusPending {
					continue
				}
				if errs > c.maxErr {
					v.status, v.details = ssmtypes.CommandInvocationStatusCancelled, "Terminated"
					continue
				}
				if inProgress < c.conc && f.agents[v.id] == ssmtypes.PingStatusOnline {
					v.status, v.details, v.start, v.end = ssmtypes.CommandInvocationStatusInProgress, "InProgress", t, t.Add(v.run.took)
					inProgress++
				}
			}
			var next time.Time
			for _, v := range c.invs {
				if v.status == ssmtypes.CommandInvocationStatusInProgress && (next.IsZero() || v.end.Before(next)) {
					next = v.end
				}
			}
			if next.IsZero() || next.After(now) {
				break
			}
			for _, v := range c.invs {
				if v.status != ssmtypes.CommandInvocationStatusInProgress || !v.end.Equal(next) {
					continue
				}
				v.status, v.details, v.code, v.stdout, v.stderr = ssmtypes.CommandInvocationStatusSuccess, "Success", v.run.code, v.run.stdout, v.run.stderr
				if v.run.code != 0 {
					v.status, v.details = ssmtypes.CommandInvocationStatusFailed, "Failed"
				}
				if v.run.status != "" {
					v.status, v.details = v.run.status, v.run.details
				}
			}
			c.cursor = next
		}
	}
}

// peak is the most invocations that ran at once, over all commands.
func (f *fakeSSM) peak() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	type ev struct {
		at time.Time
		d  int
	}
	var evs []ev
	for _, c := range f.cmds {
		for _, v := range c.invs {
			if !v.start.IsZero() {
				evs = append(evs, ev{v.start, 1}, ev{v.end, -1})
			}
		}
	}
	sort.Slice(evs, func(i, j int) bool {
		if !evs[i].at.Equal(evs[j].at) {
			return evs[i].at.Before(evs[j].at)
		}
		return evs[i].d < evs[j].d
	})
	n, most := 0, 0
	for _, e := range evs {
		n += e.d
		most = max(most, n)
	}
	return most
}

func (f *fakeSSM) find(id string) *fakeCmd {
	for _, c := range f.cmds {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (f *fakeSSM) ListCommands(_ context.Context, in *ssm.ListCommandsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	f.count("ListCommands")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	c := f.find(aws.ToString(in.CommandId))
	if c == nil {
		return nil, &ssmtypes.InvalidCommandId{}
	}
	done := int32(0)
	for _, v := range c.invs {
		if terminal(v.status) {
			done++
		}
	}
	st := ssmtypes.CommandStatusInProgress
	if done == int32(len(c.invs)) {
		st = ssmtypes.CommandStatusSuccess
	}
	return &ssm.ListCommandsOutput{Commands: []ssmtypes.Command{{CommandId: in.CommandId, TargetCount: int32(len(c.invs)), CompletedCount: done, Status: st}}}, nil
}

func (f *fakeSSM) ListCommandInvocations(_ context.Context, in *ssm.ListCommandInvocationsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
	f.count("ListCommandInvocations")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	c := f.find(aws.ToString(in.CommandId))
	out := &ssm.ListCommandInvocationsOutput{}
	if c == nil || time.Since(c.at) < f.lag {
		return out, nil // 200 and an empty list, as SSM answers just after SendCommand
	}
	from, _ := strconv.Atoi(aws.ToString(in.NextToken))
	n := int(aws.ToInt32(in.MaxResults))
	if n == 0 {
		n = 50
	}
	for i := from; i < len(c.invs) && i < from+n; i++ {
		v := c.invs[i]
		inv := ssmtypes.CommandInvocation{CommandId: in.CommandId, InstanceId: aws.String(v.id), Status: v.status, StatusDetails: aws.String(v.details)}
		if in.Details {
			inv.CommandPlugins = []ssmtypes.CommandPlugin{{Name: aws.String("aws:runShellScript"), ResponseCode: v.code, Output: aws.String(truncateOutput(v.stdout, v.stderr))}}
		}
		out.CommandInvocations = append(out.CommandInvocations, inv)
	}
	if from+n < len(c.invs) {
		out.NextToken = aws.String(strconv.Itoa(from + n))
	}
	return out, nil
}

func (f *fakeSSM) GetCommandInvocation(_ context.Context, in *ssm.GetCommandInvocationInput, _ ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	f.count("GetCommandInvocation")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	c := f.find(aws.ToString(in.CommandId))
	if c == nil || time.Since(c.at) < f.lag {
		return nil, &ssmtypes.InvocationDoesNotExist{}
	}
	for _, v := range c.invs {
		if v.id == aws.ToString(in.InstanceId) {
			return &ssm.GetCommandInvocationOutput{Status: v.status, StatusDetails: aws.String(v.details), ResponseCode: v.code,
				StandardOutputContent: aws.String(stringPrefix(v.stdout, APIStdoutMax)), StandardErrorContent: aws.String(stringPrefix(v.stderr, APIStderrMax))}, nil
		}
	}
	return nil, &ssmtypes.InvocationDoesNotExist{}
}

func (f *fakeSSM) CancelCommand(_ context.Context, in *ssm.CancelCommandInput, _ ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error) {
	f.count("CancelCommand")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance()
	f.cancels = append(f.cancels, in)
	c := f.find(aws.ToString(in.CommandId))
	for _, v := range c.invs {
		if len(in.InstanceIds) > 0 && !contains(in.InstanceIds, v.id) {
			continue
		}
		if !terminal(v.status) {
			v.status, v.details = ssmtypes.CommandInvocationStatusCancelled, "Cancelled"
			if !v.start.IsZero() {
				v.stdout, v.code, v.end = v.run.stdout, 137, time.Now()
			}
		}
	}
	return &ssm.CancelCommandOutput{}, nil
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// stringPrefix is the agent's cut (pluginutil.StringPrefix with its
// "--output truncated--"): a stream of limit bytes or more comes back
// exactly limit bytes long, ending in the mark.
func stringPrefix(s string, limit int) string {
	if len(s) < limit {
		return s
	}
	return s[:limit-len(agentCutMark)] + agentCutMark
}

// truncateOutput is the agent's Details output (iohandler.TruncateOutput)
// for the cases the tests use: everything fits, or stdout alone is cut.
func truncateOutput(stdout, stderr string) string {
	title := ""
	if stderr != "" {
		title = detailsErrTitle
	}
	space := detailsMax - len(title)
	if len(stdout)+len(stderr) < space {
		return stdout + title + stderr
	}
	if len(stdout) <= space/2 {
		return stdout + title + stderr[:space-len("\n---Error truncated----")-len(stdout)] + "\n---Error truncated----"
	}
	return stdout[:space-len(detailsOutCut)-len(stderr)] + detailsOutCut + title + stderr
}

// fakeS3 holds objects by key.
type fakeS3 struct {
	mu      sync.Mutex
	bucket  string
	objects map[string]string
	gets    []string
}

func (f *fakeS3) HeadBucket(_ context.Context, in *s3.HeadBucketInput, _ ...func(*s3.Options)) (*s3.HeadBucketOutput, error) {
	if aws.ToString(in.Bucket) != f.bucket {
		return nil, &s3types.NotFound{}
	}
	return &s3.HeadBucketOutput{BucketRegion: aws.String("us-east-1")}, nil
}

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, aws.ToString(in.Key))
	s, ok := f.objects[aws.ToString(in.Key)]
	if !ok || aws.ToString(in.Bucket) != f.bucket {
		return nil, &s3types.NoSuchKey{}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(strings.NewReader(s))}, nil
}

func fakeDeps(f *fakeSSM, b *fakeS3) Deps {
	return Deps{
		SSM: func(string) (SSMAPI, error) { return f, nil },
		S3:  func(string) (S3API, error) { return b, nil },
	}
}
