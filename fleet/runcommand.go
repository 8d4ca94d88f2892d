// Package fleet owns running one command on many instances (SPEC.md,
// "The fleet"). This part is the Run Command engine (issue 22): `ec2ssh
// --all FILTER --via run-command -- COMMAND` hands the command to SSM Run
// Command, which delivers it to each instance's agent, paces it
// (MaxConcurrency), stops it (MaxErrors) and keeps every exit status and
// output, so the fleet can be as large as the account's and the run
// survives the client going away. ec2ssh sends it in as few calls as the
// API allows, follows it as the SDKs' waiters do, prints each instance's
// output as it ends, says when SSM cut an output, and cancels on Ctrl-C.
//
// What the caller gives: the instances the filter selected (preflight.List
// or --region all's lists), the filter itself (an exact tag becomes a tag
// target), and a Deps that builds each region's clients. What it gets
// back: the exit status, and an error only when nothing was sent.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// Request is one `--all FILTER --via run-command … -- COMMAND`.
type Request struct {
	Command   string           // the remote command, as ssh sends it (the words joined by spaces)
	Filter    preflight.Filter // what selected the instances
	Parallel  string           // --parallel N or N%: MaxConcurrency; "" for DefaultRunCommandParallel
	MaxErrors string           // --max-errors N or N%: MaxErrors; "" for DefaultMaxErrors
	OutputS3  string           // --output-s3 BUCKET[/PREFIX]; "" for none
	JSON      bool             // one JSON object per instance instead of prefixed lines
	Quiet     bool             // -q: none of ec2ssh's own lines
	// Log writes -v lines (nil: none).
	Log func(format string, a ...any)
}

// Result is one instance's part of the run; --json prints it.
type Result struct {
	ID         string  `json:"id"`
	Name       string  `json:"name,omitempty"`
	Region     string  `json:"region"`
	Status     Outcome `json:"status"`
	Exit       int     `json:"exit"`          // its ResponseCode, or 255 when it did not run
	Ran        bool    `json:"ran"`           // the command started there
	Why        string  `json:"why,omitempty"` // why it did not succeed, when the exit status does not say
	Stdout     string  `json:"stdout"`
	Stderr     string  `json:"stderr"`
	StdoutCut  bool    `json:"stdout_cut,omitempty"` // SSM kept only the first 24,000 characters
	StderrCut  bool    `json:"stderr_cut,omitempty"` // SSM kept only the first 8,000 characters
	CommandID  string  `json:"command_id,omitempty"`
	SSMStatus  string  `json:"ssm_status,omitempty"`
	SSMDetails string  `json:"ssm_status_details,omitempty"`
}

// ErrDetach, as the cause of the context's cancellation, leaves the
// command running in AWS: ec2ssh stops following it and says how to
// (SIGHUP: the terminal went away, and Run Command's point is that the
// run does not need it). Any other cause cancels the command (Ctrl-C).
var ErrDetach = errors.New("ec2ssh stopped following the command; it goes on in AWS")

// Every wait, with its budget and its reason.
const (
	// Polling as the SDKs' waiters poll (ssm.CommandExecutedWaiter: a
	// growing delay with jitter), with a low first delay and ceiling,
	// because the user is reading along: output shows at most pollMax
	// after an instance ends.
	pollFirst  = 500 * time.Millisecond
	pollMax    = 5 * time.Second
	pollGrowth = 1.5
	// CancelWait is how long, after Ctrl-C, ec2ssh waits for the
	// invocations to report their end before it prints the summary.
	CancelWait = 5 * time.Second
	cancelPoll = 500 * time.Millisecond
	// unreachableBudget is how long polling may fail (network gone, the
	// laptop asleep, throttling past the retries) before ec2ssh gives up
	// following; the command goes on in AWS either way.
	unreachableBudget = 2 * time.Minute
	// invocationLag bounds SSM's eventual consistency: an invocation not
	// yet listed, or not yet found by GetCommandInvocation, after
	// SendCommand.
	invocationLag = 30 * time.Second
	// runBudget is the longest a run can take: SendCommand's default
	// delivery timeout (3,600 s) plus AWS-RunShellScript's default
	// executionTimeout (3,600 s); by then SSM has ended every invocation.
	runBudget = 2*time.Hour + 5*time.Minute
	// fetchers is how many calls ec2ssh makes at once per round.
	fetchers = 8
)

// Run runs req's command on instances through Run Command and returns the
// exit status: the worst instance's (its ResponseCode; 255 when the
// command did not run there), ExitInterrupted after the context was
// cancelled (Ctrl-C: the command is cancelled first). It returns an error,
// and sends nothing, when the request is bad (failure.Config), no instance
// matches (failure.Config), the agents cannot be read or the first
// SendCommand fails (failure.AWSAuth when denied).
func Run(ctx context.Context, req Request, instances []*preflight.Instance, deps Deps, stdout, stderr io.Writer) (int, error) {
	ctx = preflight.WithRole(ctx, preflight.RoleFleet) // each call a fleet's budget, whoever calls
	e := &engine{req: req, deps: deps, rand: rand.Float64, byKey: map[string]*Result{}}
	if err := e.check(); err != nil {
		return ExitNotRun, err
	}
	if len(instances) == 0 {
		return ExitNotRun, failure.Configf("see them with: ec2ssh --list", "no instance matches")
	}
	e.p = &printer{stdout: stdout, stderr: stderr, json: req.JSON, quiet: req.Quiet}
	for _, in := range instances {
		r := &Result{ID: in.ID, Name: in.Name, Region: in.Region}
		e.all = append(e.all, r)
		e.byKey[in.Region+"/"+in.ID] = r
		e.p.width = max(e.p.width, len(failure.Vis(resultLabel(r))))
	}
	if err := e.judge(ctx, instances); err != nil {
		if ctx.Err() != nil {
			e.p.note("interrupted before anything was sent")
			return ExitInterrupted, nil
		}
		return ExitNotRun, err
	}
	if e.runnable == 0 {
		// Nothing can take the command: send nothing, say why of each.
		return e.finish(), nil
	}
	if e.bucket != "" {
		if err := e.checkBucket(ctx); err != nil {
			return ExitNotRun, err
		}
	}
	return e.loop(ctx)
}

// Check refuses a bad --parallel, --max-errors or --output-s3 value
// (failure.Config), so that the caller can before any AWS call.
func (r Request) Check() error { return (&engine{req: r}).check() }

func (e *engine) check() error {
	var err error
	if e.par, err = ParseSpec("parallel", or(e.req.Parallel, DefaultRunCommandParallel), false); err != nil {
		return err
	}
	if e.maxErr, err = ParseSpec("max-errors", or(e.req.MaxErrors, DefaultMaxErrors), true); err != nil {
		return err
	}
	if e.req.OutputS3 != "" {
		if e.bucket, e.prefix, err = ParseOutputS3(e.req.OutputS3); err != nil {
			return err
		}
	}
	if e.req.Command == "" {
		return failure.Configf("use it as: ec2ssh --all FILTER --via run-command -- COMMAND", "--all needs a command to run")
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type engine struct {
	req         Request
	deps        Deps
	p           *printer
	par, maxErr Spec
	rand        func() float64

	bucket, prefix, bucketRegion string
	s3                           S3API

	regions  []*regionRun
	all      []*Result // every instance, in the listing's order, then any the tag target added
	byKey    map[string]*Result
	runnable int
	commands []string
	mu       sync.Mutex // guards all and byKey while results come in
}

// regionRun is one region's part: its clients, its plan, what is in flight.
type regionRun struct {
	name   string
	ssm    SSMAPI
	plan   plan
	next   int // the next batch to send
	active []*command
	used   int  // MaxConcurrency held by the batches in flight
	errors int  // invocations Failed or Execution Timed Out, as SSM counts errors
	halted bool // --max-errors reached: nothing more is sent
	judged map[string]bool
	docs   map[string]string
}

// command is one SendCommand and what is still awaited of it.
type command struct {
	id      string
	b       batch
	slots   int // its MaxConcurrency, when a batch of ids
	sentAt  time.Time
	want    map[string]bool // instance ids whose end is awaited
	listed  map[string]bool // instance ids SSM has listed
	pending []string        // awaited ids SSM last listed as not yet started
	stray   map[string]bool // not-run instances a tag target reached, not yet ended
	halted  map[string]bool // ids cancelled because --max-errors was reached
	// For a tag target: what ListCommands last said.
	targets, completed int32
	status             ssmtypes.CommandStatus
	done               bool
}

// judge asks each region's SSM which instances are managed nodes with an
// agent online, marks the others not run (saying why), and plans the
// SendCommands for the rest.
func (e *engine) judge(ctx context.Context, instances []*preflight.Instance) error {
	byRegion := map[string][]*preflight.Instance{}
	var order []string
	for _, in := range instances {
		if _, ok := byRegion[in.Region]; !ok {
			order = append(order, in.Region)
		}
		byRegion[in.Region] = append(byRegion[in.Region], in)
	}
	for _, name := range order {
		ins := byRegion[name]
		api, err := e.deps.SSM(name)
		if err != nil {
			return err
		}
		var running []string
		for _, in := range ins {
			if in.State.Running() {
				running = append(running, in.ID)
			}
		}
		agents, err := describeAgents(ctx, api, running)
		if err != nil {
			return err
		}
		r := &regionRun{name: name, ssm: api, judged: map[string]bool{}, docs: map[string]string{}}
		var ids []string
		for _, in := range ins {
			a, known := agents[in.ID]
			if why := notRunWhy(in, a, known); why != "" {
				res := e.byKey[name+"/"+in.ID]
				res.Status, res.Exit, res.Why = NotRun, ExitNotRun, why
				r.judged[in.ID] = true
				if e.req.JSON {
					e.p.result(res, nil)
				}
				continue
			}
			ids = append(ids, in.ID)
			r.docs[in.ID] = document(in, a)
		}
		r.plan = planRegion(e.req.Filter, ids, r.docs, e.par, e.maxErr)
		e.runnable += len(ids)
		e.regions = append(e.regions, r)
	}
	return nil
}

// describeAgents asks DescribeInstanceInformation about ids, 50 at a time
// (its InstanceIds filter's limit): an instance it does not list has no
// agent registered.
func describeAgents(ctx context.Context, api SSMAPI, ids []string) (map[string]agent, error) {
	out := map[string]agent{}
	for start := 0; start < len(ids); start += BatchSize {
		in := &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
			{Key: aws.String("InstanceIds"), Values: ids[start:min(start+BatchSize, len(ids))]}}}
		p := ssm.NewDescribeInstanceInformationPaginator(api, in)
		for p.HasMorePages() {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			page, err := p.NextPage(cctx)
			cancel()
			if err != nil {
				return nil, apiFailure("ssm:DescribeInstanceInformation", "ssm:DescribeInstanceInformation", err)
			}
			for _, i := range page.InstanceInformationList {
				out[aws.ToString(i.InstanceId)] = agent{Ping: i.PingStatus, Platform: i.PlatformType}
			}
		}
	}
	return out, nil
}

// checkBucket makes sure --output-s3's bucket is there before anything is
// sent, and learns its region: the agent writes there, and ec2ssh reads
// there.
func (e *engine) checkBucket(ctx context.Context) error {
	region := e.regions[0].name
	api, err := e.deps.S3(region)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out, err := api.HeadBucket(cctx, &s3.HeadBucketInput{Bucket: aws.String(e.bucket)})
	switch {
	case err != nil && bucketMissing(err):
		return failure.Configf("create it, or name one the instances may write to", "--output-s3: bucket %s does not exist", e.bucket)
	case err != nil:
		return apiFailure("s3:HeadBucket "+e.bucket, "s3:ListBucket on "+e.bucket, err)
	}
	e.bucketRegion = region
	if r := aws.ToString(out.BucketRegion); r != "" && r != region {
		e.bucketRegion = r
		if api, err = e.deps.S3(r); err != nil {
			return err
		}
	}
	e.s3 = api
	return nil
}

// loop sends what the plan allows, polls with a growing delay, prints each
// instance as it ends, and ends with the summary.
func (e *engine) loop(ctx context.Context) (int, error) {
	start := time.Now()
	delay := pollFirst
	contact := time.Now()
	for {
		if ctx.Err() != nil {
			return e.interrupted(ctx), nil
		}
		if err := e.send(ctx); err != nil {
			return ExitNotRun, err
		}
		if e.idle() {
			break
		}
		t := time.NewTimer(time.Duration(float64(delay) * (0.75 + 0.25*e.rand())))
		select {
		case <-ctx.Done():
			t.Stop()
			continue
		case <-t.C:
		}
		delay = min(pollMax, time.Duration(float64(delay)*pollGrowth))
		if e.pollAll(ctx) {
			contact = time.Now()
		} else if ctx.Err() == nil && time.Since(contact) > unreachableBudget {
			e.abandon(fmt.Sprintf("SSM did not answer for %v; the command goes on in AWS", unreachableBudget))
			break
		}
		if time.Since(start) > runBudget {
			e.abandon("no end reported within " + runBudget.String())
			break
		}
	}
	return e.finish(), nil
}

// idle reports whether nothing is in flight and nothing is left to send.
func (e *engine) idle() bool {
	for _, r := range e.regions {
		if len(r.active) > 0 || (!r.halted && r.next < len(r.plan.Batches)) {
			return false
		}
	}
	return true
}

// send makes the SendCommands the plan allows now. An error is returned
// only when the run's first SendCommand fails: nothing was sent at all.
func (e *engine) send(ctx context.Context) error {
	for _, r := range e.regions {
		for !r.halted && r.next < len(r.plan.Batches) {
			b := r.plan.Batches[r.next]
			if b.IDs != nil {
				c := share(r.plan.Slots-r.used, len(r.plan.Batches)-r.next, len(b.IDs))
				if c == 0 {
					break
				}
				b.MaxConcurrency = strconv.Itoa(c)
			}
			r.next++
			c, err := e.sendBatch(ctx, r, b)
			if err != nil {
				if len(e.commands) == 0 {
					return err
				}
				for _, id := range b.IDs {
					e.end(r, id, NotRun, ExitNotRun, "not sent: "+err.Error())
				}
				continue
			}
			r.active = append(r.active, c)
			r.used += c.slots
		}
	}
	return nil
}

func (e *engine) sendBatch(ctx context.Context, r *regionRun, b batch) (*command, error) {
	maxErrors := b.MaxErrors
	if maxErrors == "" {
		maxErrors = strconv.Itoa(max(0, r.plan.ErrorBudget-r.errors))
	}
	in := &ssm.SendCommandInput{
		DocumentName:   aws.String(b.Doc),
		Parameters:     map[string][]string{"commands": {e.req.Command}},
		Comment:        aws.String("ec2ssh --all"),
		MaxConcurrency: aws.String(b.MaxConcurrency),
		MaxErrors:      aws.String(maxErrors),
	}
	c := &command{b: b, want: map[string]bool{}, listed: map[string]bool{}, stray: map[string]bool{}, halted: map[string]bool{}}
	if b.IDs != nil {
		c.slots, _ = strconv.Atoi(b.MaxConcurrency)
		in.InstanceIds = b.IDs
		for _, id := range b.IDs {
			c.want[id] = true
		}
	} else {
		in.Targets = []ssmtypes.Target{{Key: aws.String("tag:" + b.TagKey), Values: []string{b.TagVal}}}
		for id, d := range r.docs {
			if d == b.Doc {
				c.want[id] = true
			}
		}
	}
	if e.bucket != "" {
		in.OutputS3BucketName, in.OutputS3Region = aws.String(e.bucket), aws.String(e.bucketRegion)
		if e.prefix != "" {
			in.OutputS3KeyPrefix = aws.String(e.prefix)
		}
	}
	// The call is made to its end even when Ctrl-C comes during it: a
	// command sent without ec2ssh knowing its id could not be cancelled.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	out, err := r.ssm.SendCommand(sctx, in)
	if err != nil {
		return nil, apiFailure("ssm:SendCommand", "ssm:SendCommand", err)
	}
	c.id = aws.ToString(out.Command.CommandId)
	c.sentAt = time.Now()
	e.commands = append(e.commands, c.id)
	if e.req.Log != nil {
		what := fmt.Sprintf("%d instances", len(b.IDs))
		if b.IDs == nil {
			what = "tag:" + b.TagKey + "=" + b.TagVal
		}
		e.req.Log("debug1: %s: SendCommand %s (%s) to %s, MaxConcurrency %s, MaxErrors %s", r.name, c.id, b.Doc, what, b.MaxConcurrency, maxErrors)
	}
	return c, nil
}

// ended is an invocation that reached a terminal status, to collect.
type ended struct {
	r   *regionRun
	c   *command
	inv ssmtypes.CommandInvocation
}

// pollAll polls every command in flight, collects (and prints) what
// ended, and applies --max-errors. It reports whether SSM answered.
func (e *engine) pollAll(ctx context.Context) bool {
	type job struct {
		r *regionRun
		c *command
	}
	var jobs []job
	for _, r := range e.regions {
		for _, c := range r.active {
			jobs = append(jobs, job{r, c})
		}
	}
	news := make([][]ssmtypes.CommandInvocation, len(jobs))
	oks := make([]bool, len(jobs))
	parallel(len(jobs), func(i int) { news[i], oks[i] = e.poll(ctx, jobs[i].r, jobs[i].c) })
	var done []ended
	answered := len(jobs) == 0
	for i, j := range jobs {
		answered = answered || oks[i]
		for _, inv := range news[i] {
			done = append(done, ended{j.r, j.c, inv})
		}
	}
	parallel(len(done), func(i int) { e.collect(ctx, done[i]) })
	for _, r := range e.regions {
		e.checkErrors(ctx, r)
		var still []*command
		for _, c := range r.active {
			if e.settle(ctx, r, c) {
				r.used -= c.slots
			} else {
				still = append(still, c)
			}
		}
		r.active = still
	}
	return answered
}

// parallel runs f(0..n-1), fetchers at a time.
func parallel(n int, f func(int)) {
	sem := make(chan struct{}, fetchers)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// poll lists a command's invocations (with Details: a short stdout comes
// with them) and returns those newly ended. A tag target's command is
// asked first whether anything ended since (ListCommands' CompletedCount),
// so a quiet round over ten thousand instances costs one call.
func (e *engine) poll(ctx context.Context, r *regionRun, c *command) ([]ssmtypes.CommandInvocation, bool) {
	if c.b.IDs == nil {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := r.ssm.ListCommands(cctx, &ssm.ListCommandsInput{CommandId: aws.String(c.id)})
		cancel()
		if err != nil || len(out.Commands) == 0 {
			return nil, false
		}
		cmd := out.Commands[0]
		quiet := cmd.CompletedCount == c.completed && cmd.Status == c.status && c.targets > 0 && int32(len(c.listed)) >= c.targets
		c.targets, c.completed, c.status = cmd.TargetCount, cmd.CompletedCount, cmd.Status
		if quiet {
			return nil, true
		}
	}
	var news []ssmtypes.CommandInvocation
	var pending []string
	p := ssm.NewListCommandInvocationsPaginator(r.ssm, &ssm.ListCommandInvocationsInput{CommandId: aws.String(c.id), Details: true, MaxResults: aws.Int32(50)})
	for p.HasMorePages() {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		page, err := p.NextPage(cctx)
		cancel()
		if err != nil {
			return news, false
		}
		for _, inv := range page.CommandInvocations {
			id := aws.ToString(inv.InstanceId)
			c.listed[id] = true
			if r.judged[id] {
				// Not run by ec2ssh's judgement, yet the tag target reached it
				// (an agent registered but not online): not waited for;
				// cancelled at the end if SSM still holds it.
				if terminal(inv.Status) {
					delete(c.stray, id)
				} else {
					c.stray[id] = true
				}
				continue
			}
			if c.b.IDs == nil && !c.want[id] && e.lookup(r.name, id) == nil {
				// A managed node with the tag that EC2 did not list (a hybrid
				// node, an instance the listing missed): reported as well.
				c.want[id] = true
				e.add(&Result{ID: id, Name: aws.ToString(inv.InstanceName), Region: r.name})
			}
			if !c.want[id] {
				continue
			}
			switch {
			case terminal(inv.Status):
				delete(c.want, id)
				news = append(news, inv)
			case inv.Status == ssmtypes.CommandInvocationStatusPending || inv.Status == ssmtypes.CommandInvocationStatusDelayed:
				pending = append(pending, id)
			}
		}
	}
	c.pending = pending
	return news, true
}

func (e *engine) lookup(region, id string) *Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byKey[region+"/"+id]
}

func (e *engine) add(r *Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, r)
	e.byKey[r.Region+"/"+r.ID] = r
}

// collect turns an ended invocation into its result, fetching what its
// listing did not carry (GetCommandInvocation; the whole stream from S3
// when SSM cut it and --output-s3 was given), and prints it.
func (e *engine) collect(ctx context.Context, d ended) {
	id := aws.ToString(d.inv.InstanceId)
	res := e.lookup(d.r.name, id)
	res.CommandID = d.c.id
	res.SSMStatus, res.SSMDetails = string(d.inv.Status), aws.ToString(d.inv.StatusDetails)
	code, output := -1, ""
	if len(d.inv.CommandPlugins) > 0 {
		code, output = int(d.inv.CommandPlugins[0].ResponseCode), aws.ToString(d.inv.CommandPlugins[0].Output)
	}
	outcome, exit, why := outcomeOf(d.inv.Status, res.SSMDetails, code)
	if outcome == Cancelled && d.c.halted[id] {
		outcome, exit, why = NotRun, ExitNotRun, "--max-errors was reached: cancelled before it started"
	}
	res.Status, res.Exit, res.Why = outcome, exit, why
	res.Ran = outcome == Success || outcome == TimedOut || (outcome == Failed && code >= 0)
	var notes []string
	if outcome != NotRun {
		// Its output is fetched even after Ctrl-C: it ended, and is shown.
		notes = e.output(context.WithoutCancel(ctx), d, res, code, output)
	}
	e.p.result(res, notes)
}

// output fills res's stdout and stderr and returns the notices about them.
func (e *engine) output(ctx context.Context, d ended, res *Result, code int, details string) []string {
	if s, ok := fromDetails(details); ok {
		res.Stdout = s
		return nil
	}
	id := aws.ToString(d.inv.InstanceId)
	var out *ssm.GetCommandInvocationOutput
	var err error
	wait := 250 * time.Millisecond
	for deadline := time.Now().Add(invocationLag); ; {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err = d.r.ssm.GetCommandInvocation(cctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(d.c.id), InstanceId: aws.String(id)})
		cancel()
		if err == nil || !invocationMissing(err) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*time.Second, 2*wait)
	}
	if err != nil {
		return []string{"its output could not be read: " + apiFailure("ssm:GetCommandInvocation", "ssm:GetCommandInvocation", err).Error()}
	}
	if out.ResponseCode != 0 || code < 0 {
		code = int(out.ResponseCode)
	}
	stdout, outCut := cut(aws.ToString(out.StandardOutputContent), APIStdoutMax)
	stderr, errCut := cut(aws.ToString(out.StandardErrorContent), APIStderrMax)
	var notes []string
	for _, s := range []struct {
		name, limit string
		text        *string
		cut         *bool
	}{{"stdout", "24,000", &stdout, &outCut}, {"stderr", "8,000", &stderr, &errCut}} {
		if !*s.cut {
			continue
		}
		if e.s3 == nil {
			notes = append(notes, fmt.Sprintf("%s cut by SSM at %s characters; pass --output-s3 BUCKET[/PREFIX] to read it whole", s.name, s.limit))
			continue
		}
		full, note := e.readS3(ctx, d, s.name)
		if note != "" {
			notes = append(notes, fmt.Sprintf("%s cut by SSM at %s characters, and %s", s.name, s.limit, note))
		}
		if full != nil {
			*s.text, *s.cut = *full, note != ""
		}
	}
	res.Stdout, res.Stderr = stdout, stripAgentTrailer(stderr, code)
	res.StdoutCut, res.StderrCut = outCut, errCut
	return notes
}

// readS3 reads a whole stream the agent wrote to --output-s3's bucket.
// It returns the text (nil when there is none to show) and a note when the
// text is not the whole stream.
func (e *engine) readS3(ctx context.Context, d ended, stream string) (*string, string) {
	key := s3Key(e.prefix, d.c.id, aws.ToString(d.inv.InstanceId), d.c.b.Doc, stream)
	where := "s3://" + e.bucket + "/" + key
	cctx, cancel := context.WithTimeout(ctx, 5*callTimeout)
	defer cancel()
	out, err := e.s3.GetObject(cctx, &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		if objectMissing(err) {
			return nil, "the agent did not write it to " + where + " (does the instance profile allow s3:PutObject there?)"
		}
		return nil, "reading " + where + " failed: " + apiFailure("s3:GetObject", "s3:GetObject on "+e.bucket, err).Error()
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, s3ReadMax+1))
	if err != nil {
		return nil, "reading " + where + " failed: " + err.Error()
	}
	s := string(b)
	if len(b) > s3ReadMax {
		s = s[:s3ReadMax]
		return &s, fmt.Sprintf("ec2ssh shows its first %d MiB; the whole stream is at %s", s3ReadMax>>20, where)
	}
	return &s, ""
}

// checkErrors applies --max-errors across a region's batches (a tag
// target's single command has SSM apply it): once the errors pass the
// budget, nothing more is sent, and what has not started is cancelled.
func (e *engine) checkErrors(ctx context.Context, r *regionRun) {
	errs := 0
	for _, res := range e.regionResults(r.name) {
		if res.CommandID != "" && (res.Status == Failed || res.Status == TimedOut) {
			errs++
		}
	}
	r.errors = errs
	if r.halted || len(r.plan.Batches) < 2 || errs <= r.plan.ErrorBudget {
		return
	}
	r.halted = true
	e.p.note("%s: --max-errors %s reached (%d errors): nothing more is sent there", r.name, e.maxErr, errs)
	for _, b := range r.plan.Batches[r.next:] {
		for _, id := range b.IDs {
			e.end(r, id, NotRun, ExitNotRun, "--max-errors was reached: not sent")
		}
	}
	for _, c := range r.active {
		if len(c.pending) == 0 {
			continue
		}
		for _, id := range c.pending {
			c.halted[id] = true
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := r.ssm.CancelCommand(cctx, &ssm.CancelCommandInput{CommandId: aws.String(c.id), InstanceIds: c.pending})
		cancel()
		if err != nil {
			e.p.note("%s: could not cancel what had not started of %s: %v", r.name, c.id, apiFailure("ssm:CancelCommand", "ssm:CancelCommand", err))
		}
	}
}

func (e *engine) regionResults(region string) []*Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*Result
	for _, r := range e.all {
		if r.Region == region {
			out = append(out, r)
		}
	}
	return out
}

// settle reports whether a command is over: every awaited instance ended,
// and for a tag target SSM has listed all it targeted (or the command
// ended). Awaited instances SSM never listed are then not run; a tag
// target's invocations on instances ec2ssh judged not runnable are
// cancelled, so no command runs there later without the user watching.
func (e *engine) settle(ctx context.Context, r *regionRun, c *command) bool {
	lagged := time.Since(c.sentAt) > invocationLag
	if c.b.IDs != nil {
		if len(c.want) > 0 {
			if !lagged {
				return false
			}
			for id := range c.want {
				if !c.listed[id] {
					delete(c.want, id)
					e.end(r, id, NotRun, ExitNotRun, "SSM lists no invocation for it")
				}
			}
			if len(c.want) > 0 {
				return false
			}
		}
		return true
	}
	allListed := c.targets > 0 && int32(len(c.listed)) >= c.targets
	over := c.status == ssmtypes.CommandStatusSuccess || c.status == ssmtypes.CommandStatusFailed ||
		c.status == ssmtypes.CommandStatusTimedOut || c.status == ssmtypes.CommandStatusCancelled
	for id := range c.want {
		if c.listed[id] {
			return false
		}
	}
	if len(c.want) > 0 && !allListed && !over && !lagged {
		return false
	}
	for id := range c.want {
		delete(c.want, id)
		e.end(r, id, NotRun, ExitNotRun, "the tag target did not reach it (SSM does not see its tag)")
	}
	if len(c.stray) > 0 && !over {
		ids := make([]string, 0, len(c.stray))
		for id := range c.stray {
			ids = append(ids, id)
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		r.ssm.CancelCommand(cctx, &ssm.CancelCommandInput{CommandId: aws.String(c.id), InstanceIds: ids})
		cancel()
	}
	return true
}

// end records an instance's result that no invocation gave, and prints it.
func (e *engine) end(r *regionRun, id string, o Outcome, exit int, why string) {
	res := e.lookup(r.name, id)
	if res == nil || res.Status != "" {
		return
	}
	res.Status, res.Exit, res.Why = o, exit, why
	if e.req.JSON {
		e.p.result(res, nil)
	}
}

// abandon stops following: what has not ended is recorded as such.
func (e *engine) abandon(why string) {
	e.p.note("%s", why)
	for _, r := range e.regions {
		for _, b := range r.plan.Batches[r.next:] {
			for _, id := range b.IDs {
				e.end(r, id, NotRun, ExitNotRun, "not sent: "+why)
			}
		}
		r.next = len(r.plan.Batches)
		for _, c := range r.active {
			for id := range c.want {
				e.end(r, id, NotRun, ExitNotRun, "no end reported: "+why)
			}
		}
		r.active = nil
	}
}

// interrupted is Ctrl-C after something was sent: cancel every command in
// flight, wait up to CancelWait for the invocations to report their end
// (printing them), and end with the summary and ExitInterrupted. With
// ErrDetach as the cause, nothing is cancelled: ec2ssh says how to follow
// the command and leaves.
func (e *engine) interrupted(ctx context.Context) int {
	if errors.Is(context.Cause(ctx), ErrDetach) {
		for _, r := range e.regions {
			for _, c := range r.active {
				e.p.note("%s: Run Command %s goes on; follow it with: aws ssm list-command-invocations --region %s --command-id %s --details", r.name, c.id, r.name, c.id)
			}
		}
		return ExitNotRun
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CancelWait)
	defer cancel()
	e.p.note("interrupted: cancelling the command (waiting up to %v for the instances to report)", CancelWait)
	for _, r := range e.regions {
		for _, b := range r.plan.Batches[r.next:] {
			for _, id := range b.IDs {
				e.end(r, id, NotRun, ExitNotRun, "interrupted before it was sent")
			}
		}
		r.next, r.halted = len(r.plan.Batches), true
		for _, c := range r.active {
			cctx, ccancel := context.WithTimeout(wctx, callTimeout)
			_, err := r.ssm.CancelCommand(cctx, &ssm.CancelCommandInput{CommandId: aws.String(c.id)})
			ccancel()
			if err != nil {
				e.p.note("%s: cancel %s: %v", r.name, c.id, apiFailure("ssm:CancelCommand", "ssm:CancelCommand", err))
			}
		}
	}
	for !e.idle() && wctx.Err() == nil {
		select {
		case <-wctx.Done():
		case <-time.After(cancelPoll):
			e.pollAll(wctx)
		}
	}
	for _, r := range e.regions {
		for _, c := range r.active {
			for id := range c.want {
				e.end(r, id, Cancelled, ExitInterrupted, fmt.Sprintf("cancel sent; SSM had not reported its end within %v", CancelWait))
			}
		}
	}
	e.finish()
	return ExitInterrupted
}

// finish prints the summary (not with --json: every instance has had its
// object) and returns the worst exit status.
func (e *engine) finish() int {
	e.mu.Lock()
	rs := append([]*Result(nil), e.all...)
	e.mu.Unlock()
	for _, r := range rs {
		if r.Status == "" {
			r.Status, r.Exit, r.Why = NotRun, ExitNotRun, "no end reported"
			if e.req.JSON {
				e.p.result(r, nil)
			}
		}
	}
	if !e.req.JSON {
		e.p.note("%s", summary(rs, e.commands))
	}
	return worst(rs)
}
