package fleet

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

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
	"github.com/ec2ssh/ec2ssh/reach"
)

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

// DefaultParallel is how many instances --all runs on at once.
const DefaultParallel = 10

// All is --all FILTER -- COMMAND: ec2ssh runs itself once per instance
// (each through its own ladder), at most --parallel at a time. The status
// is the worst of theirs.
func All(ctx context.Context, r *reach.Run) (int, error) {
	args := r.Args
	if args.RunCommand {
		return runCommandAll(ctx, r)
	}
	ins, _, err := instances(ctx, r)
	if err != nil {
		return 255, err
	}
	if len(ins) == 0 {
		return 255, &failure.Error{Kind: failure.Config, Msg: fmt.Sprintf("no instance matches %q", args.Destination),
			Hint: "see them with: ec2ssh --list"}
	}
	input, err := broadcastInput(r, len(ins))
	if err != nil {
		return 255, err
	}
	self, err := r.Program()
	if err != nil {
		return 255, err
	}
	results := fanOut(ctx, r, self, ins, input)
	worst := 0
	for _, res := range results {
		worst = max(worst, res.Exit)
	}
	if args.JSON {
		enc := json.NewEncoder(r.IO.Stdout)
		for _, res := range results {
			enc.Encode(res)
		}
		return worst, nil
	}
	if !args.Quiet {
		fmt.Fprintln(r.IO.Stderr, fleetSummary(results))
	}
	return worst, nil
}

// broadcastInput is what every instance reads: stdin with
// --stdin=broadcast (at most 64 MiB), else nothing; input that only some
// instances would get is refused.
func broadcastInput(r *reach.Run, n int) ([]byte, error) {
	args := r.Args
	switch {
	case args.Stdin == "broadcast":
		input, err := io.ReadAll(io.LimitReader(r.IO.Stdin, 64<<20+1))
		if err != nil || len(input) > 64<<20 {
			return nil, failure.Configf("send at most 64 MiB to every instance, or copy a file with scp", "stdin for --stdin=broadcast is larger than 64 MiB or unreadable")
		}
		return input, nil
	case !args.NullStdin && args.Stdin == "" && stdinHasData(r.IO.Stdin):
		return nil, failure.Configf("pass --stdin=broadcast to send it to every instance, or -n to run without it",
			"stdin would reach only some of %d instances", n)
	}
	return nil, nil
}

// fanOut runs self on each running instance, --parallel at a time, with
// its lines prefixed (or kept for --json).
func fanOut(ctx context.Context, r *reach.Run, self string, ins []*preflight.Instance, input []byte) []fleetResult {
	args := r.Args
	parallel := args.Parallel
	if parallel == 0 {
		parallel = DefaultParallel
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
			cmd := exec.CommandContext(ctx, self, fleetArgv(r.Argv, args, in)...)
			if input != nil {
				cmd.Stdin = bytes.NewReader(input)
			}
			var outBuf, errBuf limited
			if args.JSON {
				cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
			} else {
				p := fmt.Sprintf("%-*s | ", prefixW, failure.Vis(label(in)))
				ow, ew := &prefixer{w: r.IO.Stdout, mu: &outMu, prefix: p}, &prefixer{w: r.IO.Stderr, mu: &outMu, prefix: p}
				cmd.Stdout, cmd.Stderr = ow, io.MultiWriter(ew, &errBuf)
				defer ow.Flush()
				defer ew.Flush()
			}
			results[i].record(cmd.Run(), &errBuf)
			if args.JSON {
				results[i].Stdout, results[i].Stderr = outBuf.String(), errBuf.String()
			}
		}()
	}
	wg.Wait()
	return results
}

// record is how one instance's run ended.
func (res *fleetResult) record(err error, stderr *limited) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.Ran = true
	case errors.As(err, &ee):
		res.Exit = ee.ExitCode()
		res.Ran = res.Exit != 255
		if res.Exit == -1 {
			res.Exit = 255
		}
		if !res.Ran {
			res.Why = lastLine(stderr.String())
		}
	default:
		res.Exit, res.Why = 255, err.Error()
	}
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

// runCommandAll is --all FILTER --via run-command -- COMMAND: the command
// through SSM Run Command (Run).
func runCommandAll(ctx context.Context, r *reach.Run) (int, error) {
	args := r.Args
	req := Request{Command: args.RemoteCommand(), Parallel: args.ParallelSpec, MaxErrors: args.MaxErrors,
		OutputS3: args.OutputS3, JSON: args.JSON, Quiet: args.Quiet}
	if err := req.Check(); err != nil {
		return 255, err
	}
	if !args.NullStdin && stdinHasData(r.IO.Stdin) {
		return 255, failure.Configf("pass -n, or put the input in the command (a here-document)",
			"stdin would reach no instance: Run Command takes no input")
	}
	if args.Verbose > 0 {
		req.Log = func(format string, a ...any) { fmt.Fprintf(r.IO.Stderr, format+"\n", a...) }
	}
	var err error
	if req.Filter, err = preflight.ParseFilter(args.Destination); err != nil {
		return 255, err
	}
	ins, _, err := instances(ctx, r)
	if err != nil {
		return 255, err
	}
	if len(ins) == 0 {
		return 255, &failure.Error{Kind: failure.Config, Msg: fmt.Sprintf("no instance matches %q", args.Destination),
			Hint: "see them with: ec2ssh --list"}
	}
	ctx = preflight.WithRole(ctx, preflight.RoleFleet)
	return Run(ctx, req, ins, NewDeps(ctx, args.Profile), r.IO.Stdout, r.IO.Stderr)
}
