package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fleet"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// The fleet (SPEC.md, "Fleet"): --list shows the instances a filter
// selects and how each would be reached now; --all runs one command on all
// of them, each through its own best way in, and reports every status.

// fleetInstances lists what args' filter selects, in the configured region
// or, with --region all, in every enabled region.
func fleetInstances(ctx context.Context, args *connect.Args) ([]*preflight.Instance, *preflight.AWS, error) {
	f, err := preflight.ParseFilter(args.Destination)
	if err != nil {
		return nil, nil, err
	}
	region := args.Region
	if region == "all" {
		region = ""
	}
	a, err := preflight.LoadAWS(ctx, args.Profile, region)
	if err != nil {
		return nil, nil, err
	}
	if args.Region != "all" {
		if a.Region() == "" {
			return nil, nil, &failure.Error{Kind: failure.AWSAuth, Msg: "no AWS region is configured",
				Hint: "pass --region REGION (or --region all), set AWS_REGION, or run: aws configure set region REGION"}
		}
		ins, err := a.List(ctx, f)
		return ins, a, err
	}
	if a.Region() == "" {
		// DescribeRegions needs some region to ask.
		if a, err = preflight.LoadAWS(ctx, args.Profile, "us-east-1"); err != nil {
			return nil, nil, err
		}
	}
	regions, err := a.Regions(ctx)
	if err != nil {
		return nil, nil, err
	}
	lists, errs := preflight.InRegions(ctx, args.Profile, regions, func(ctx context.Context, a *preflight.AWS) ([]*preflight.Instance, error) {
		return a.List(ctx, f)
	})
	var all []*preflight.Instance
	for i, l := range lists {
		if errs[i] != nil {
			return nil, nil, fmt.Errorf("%s: %w", regions[i], errs[i])
		}
		all = append(all, l...)
	}
	return all, a, nil
}

type listed struct {
	*preflight.Instance
	Reach preflight.Reach `json:"reach"`
}

// runList is --list [FILTER].
func runList(ctx context.Context, args *connect.Args, cfg *connect.Config, stdout, stderr *os.File) int {
	ins, a, err := fleetInstances(ctx, args)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	// Reachability is judged per region, with that region's clients.
	byRegion := map[string][]*preflight.Instance{}
	for _, in := range ins {
		byRegion[in.Region] = append(byRegion[in.Region], in)
	}
	reach := map[string]preflight.Reach{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for region, group := range byRegion {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ra := a
			if region != a.Region() {
				if ra, err = preflight.LoadAWS(ctx, args.Profile, region); err != nil {
					return
				}
			}
			r := ra.Reachability(ctx, group, cfg.Port, args.Address, args.SourceIP)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range r {
				reach[k] = v
			}
		}()
	}
	wg.Wait()
	cache := preflight.DefaultCache()
	var out []listed
	for _, in := range ins {
		out = append(out, listed{Instance: in, Reach: reach[in.ID]})
		// What was listed is what will be connected to next: remember
		// running instances by Name (and so complete them, too).
		if addr, err := in.Address(args.Address); err == nil && in.State.Running() && in.Name != "" && !args.NoCache {
			cache.Put(args.Profile, in.Region, in.Name, preflight.Cached{InstanceID: in.ID, Name: in.Name, Address: addr})
		}
	}
	if args.JSON {
		if out == nil {
			out = []listed{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return 0
	}
	multi := len(byRegion) > 1 || args.Region == "all"
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	head := "NAME\tID\tSTATE\tPUBLIC\tPRIVATE\t"
	if multi {
		head += "REGION\t"
	}
	fmt.Fprintln(tw, head+"REACH\tWHY")
	for _, l := range out {
		name := l.Name
		if name == "" {
			name = "-"
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t", failure.Vis(name), l.ID, l.State, dash(l.PublicIP), dash(l.PrivateIP))
		if multi {
			row += l.Region + "\t"
		}
		fmt.Fprintln(tw, row+l.Reach.Via+"\t"+failure.Vis(l.Reach.Why))
	}
	tw.Flush()
	if len(out) == 0 {
		fmt.Fprintf(stderr, "ec2ssh: no instance matches %q in %s\n", args.Destination, regionText(args, a))
	}
	return 0
}

func regionText(args *connect.Args, a *preflight.AWS) string {
	if args.Region == "all" {
		return "any enabled region"
	}
	return a.Region()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fleetResult is one instance's outcome under --all.
type fleetResult struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Region string `json:"region"`
	Exit   int    `json:"exit"`
	Ran    bool   `json:"ran"`              // the command ran (its exit status is Exit)
	Why    string `json:"why,omitempty"`    // why it did not run
	Stdout string `json:"stdout,omitempty"` // with --json
	Stderr string `json:"stderr,omitempty"` // with --json
}

// fleetOutputLimit bounds what --json keeps of each instance's output.
const fleetOutputLimit = 1 << 20

// runAll is --all FILTER -- COMMAND: ec2ssh runs itself once per instance
// (each through its own ladder), at most --parallel at a time.
func runAll(ctx context.Context, argv []string, args *connect.Args, cfg *connect.Config, stdin, stdout, stderr *os.File) int {
	if args.RunCommand {
		return runAllRunCommand(ctx, args, stdin, stdout, stderr)
	}
	ins, _, err := fleetInstances(ctx, args)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	if len(ins) == 0 {
		return report(stderr, &failure.Error{Kind: failure.Config, Msg: fmt.Sprintf("no instance matches %q", args.Destination),
			Hint: "see them with: ec2ssh --list"}, args.Quiet)
	}
	var input []byte
	switch {
	case args.Stdin == "broadcast":
		input, err = io.ReadAll(io.LimitReader(stdin, 64<<20+1))
		if err != nil || len(input) > 64<<20 {
			return report(stderr, failure.Configf("send at most 64 MiB to every instance, or copy a file with scp", "stdin for --stdin=broadcast is larger than 64 MiB or unreadable"), args.Quiet)
		}
	case !args.NullStdin && args.Stdin == "" && stdinHasData(stdin):
		return report(stderr, failure.Configf("pass --stdin=broadcast to send it to every instance, or -n to run without it",
			"stdin would reach only some of %d instances", len(ins)), args.Quiet)
	}
	self, err := os.Executable()
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	parallel := args.Parallel
	if parallel == 0 {
		parallel = 10
	}
	prefixW := 0
	for _, in := range ins {
		prefixW = max(prefixW, len(label(in)))
	}
	var outMu sync.Mutex
	results := make([]fleetResult, len(ins))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, in := range ins {
		results[i] = fleetResult{ID: in.ID, Name: in.Name, Region: in.Region}
		if !in.State.Running() {
			results[i].Exit, results[i].Why = 255, "the instance is "+string(in.State)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := &results[i]
			cmd := exec.CommandContext(ctx, self, fleetArgv(argv, args, in)...)
			if input != nil {
				cmd.Stdin = bytes.NewReader(input)
			}
			var outBuf, errBuf limited
			if args.JSON {
				cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
			} else {
				p := fmt.Sprintf("%-*s | ", prefixW, failure.Vis(label(in)))
				ow, ew := &prefixer{w: stdout, mu: &outMu, prefix: p}, &prefixer{w: stderr, mu: &outMu, prefix: p}
				cmd.Stdout, cmd.Stderr = ow, io.MultiWriter(ew, &errBuf)
				defer ow.Flush()
				defer ew.Flush()
			}
			err := cmd.Run()
			var ee *exec.ExitError
			switch {
			case err == nil:
				r.Ran = true
			case errors.As(err, &ee):
				r.Exit = ee.ExitCode()
				r.Ran = r.Exit != 255
				if r.Exit == -1 {
					r.Exit = 255
				}
				if !r.Ran {
					r.Why = lastLine(errBuf.String())
				}
			default:
				r.Exit, r.Why = 255, err.Error()
			}
			if args.JSON {
				r.Stdout, r.Stderr = outBuf.String(), errBuf.String()
			}
		}()
	}
	wg.Wait()
	worst := 0
	for _, r := range results {
		worst = max(worst, r.Exit)
	}
	if args.JSON {
		enc := json.NewEncoder(stdout)
		for _, r := range results {
			enc.Encode(r)
		}
		return worst
	}
	if !args.Quiet {
		fmt.Fprintln(stderr, fleetSummary(results))
	}
	return worst
}

// runAllRunCommand is --all FILTER --via run-command -- COMMAND (issue 22):
// the instances listed as for --all, the command handed to the fleet
// package's Run Command engine. From here on, SIGINT cancels the command
// and lets the engine wait for the instances to report, and SIGHUP leaves
// it running in AWS (main.go, fleetSignals).
func runAllRunCommand(ctx context.Context, args *connect.Args, stdin, stdout, stderr *os.File) int {
	req := fleet.Request{Command: args.RemoteCommand(), Parallel: args.ParallelSpec, MaxErrors: args.MaxErrors,
		OutputS3: args.OutputS3, JSON: args.JSON, Quiet: args.Quiet}
	if err := req.Check(); err != nil {
		return report(stderr, err, args.Quiet)
	}
	if !args.NullStdin && stdinHasData(stdin) {
		return report(stderr, failure.Configf("pass -n, or put the input in the command (a here-document)",
			"stdin would reach no instance: Run Command takes no input"), args.Quiet)
	}
	if args.Verbose > 0 {
		req.Log = func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	}
	req.Filter, _ = preflight.ParseFilter(args.Destination) // fleetInstances refuses a bad one
	ins, _, err := fleetInstances(ctx, args)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	if len(ins) == 0 {
		return report(stderr, &failure.Error{Kind: failure.Config, Msg: fmt.Sprintf("no instance matches %q", args.Destination),
			Hint: "see them with: ec2ssh --list"}, args.Quiet)
	}
	fleetSignals.Store(true)
	code, err := fleet.Run(ctx, req, ins, fleet.NewDeps(ctx, args.Profile), stdout, stderr)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	return code
}

func label(in *preflight.Instance) string {
	if in.Name != "" {
		return in.Name
	}
	return in.ID
}

// fleetSummary says who failed and why, in one line, then one per failure.
func fleetSummary(rs []fleetResult) string {
	counts := map[int]int{}
	var bad []string
	notRun := 0
	for _, r := range rs {
		name := r.Name
		if name == "" {
			name = r.ID
		}
		switch {
		case !r.Ran:
			notRun++
			why := r.Why
			if why == "" {
				why = "the connection failed (exit 255)"
			}
			bad = append(bad, fmt.Sprintf("  %s (%s): not run: %s", failure.Vis(name), r.ID, failure.Vis(why)))
		default:
			counts[r.Exit]++
			if r.Exit != 0 {
				bad = append(bad, fmt.Sprintf("  %s (%s): exit %d", failure.Vis(name), r.ID, r.Exit))
			}
		}
	}
	var parts []string
	var codes []int
	for c := range counts {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d exit %d", counts[c], c))
	}
	if notRun > 0 {
		parts = append(parts, fmt.Sprintf("%d not run", notRun))
	}
	s := fmt.Sprintf("ec2ssh: %d instances: %s", len(rs), strings.Join(parts, ", "))
	if len(bad) > 0 {
		s += "\n" + strings.Join(bad, "\n")
	}
	return s
}

// fleetArgv is argv for one instance: the fleet's own options dropped,
// the filter replaced by the instance id, its region pinned, no terminal.
func fleetArgv(argv []string, args *connect.Args, in *preflight.Instance) []string {
	out := []string{"--region", in.Region, "-T"}
	if args.Stdin != "broadcast" {
		out = append(out, "-n")
	}
	skipNext := false
	for i, a := range argv {
		switch {
		case skipNext:
			skipNext = false
		case i == args.DestIndex:
			out = append(out, in.ID)
		case a == "--all" || a == "--json" || a == "--list":
		case a == "--parallel" || a == "--stdin" || a == "--region":
			skipNext = true
		case strings.HasPrefix(a, "--parallel=") || strings.HasPrefix(a, "--stdin=") || strings.HasPrefix(a, "--region="):
		default:
			out = append(out, a)
		}
	}
	return out
}

// stdinHasData: a pipe, or a file with something in it.
func stdinHasData(f *os.File) bool {
	st, err := f.Stat()
	if err != nil {
		return false
	}
	return st.Mode()&os.ModeNamedPipe != 0 || st.Mode().IsRegular() && st.Size() > 0 || st.Mode()&os.ModeSocket != 0
}

// prefixer writes whole lines to w, each after prefix.
type prefixer struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix string
	buf    []byte
}

func (p *prefixer) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.mu.Lock()
		io.WriteString(p.w, p.prefix)
		p.w.Write(p.buf[:i+1])
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// Flush writes a last line that had no newline.
func (p *prefixer) Flush() {
	if len(p.buf) > 0 {
		p.Write([]byte("\n"))
	}
}

// limited keeps the first fleetOutputLimit bytes.
type limited struct{ bytes.Buffer }

func (l *limited) Write(b []byte) (int, error) {
	if room := fleetOutputLimit - l.Len(); room > 0 {
		l.Buffer.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

func lastLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	last := ""
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" && !strings.HasPrefix(t, "ec2ssh: hint:") {
			last = strings.TrimPrefix(t, "ec2ssh: error: ")
		}
	}
	return last
}
