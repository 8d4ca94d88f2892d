// Command ec2ssh is a drop-in ssh for Amazon EC2: it finds the instance you
// mean, connects natively, and when that fails says why and gets you in
// anyway (ec2ssh(1)). This package parses the command line, picks the mode
// and reports an error once; the modes live in reach and fleet.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fleet"
	"github.com/ec2ssh/ec2ssh/reach"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "0.1.0-dev"

// signalGrace is how long ec2ssh lets the context end what it reaches
// (connections closed, the remote side told) after SIGINT, SIGTERM or
// SIGHUP, before it ends anything still blocked with status 255.
const signalGrace = 300 * time.Millisecond

// forkEnv marks the child that carries on after -f sent the parent away;
// its value is the file descriptor to report readiness on.
const forkEnv = "EC2SSH_FORK_FD"

// fleetSignals is set when --all --via run-command runs: then the first
// SIGINT or SIGTERM cancels the command and the engine waits up to
// fleet.CancelWait for the instances to report before it prints the
// summary and ends with 130; SIGHUP (the terminal gone) leaves the command
// running in AWS (fleet.ErrDetach); a second signal leaves at once, 130.
var fleetSignals atomic.Bool

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	ignoreSIGPIPE()
	go func() {
		s := <-sigs
		var cause error = fmt.Errorf("signal %v", s)
		grace, code := signalGrace, 255
		if fleetSignals.Load() {
			grace, code = fleet.CancelWait+2*time.Second, fleet.ExitInterrupted
			if s == syscall.SIGHUP {
				cause = fleet.ErrDetach
			}
		}
		cancel(cause)
		select {
		case <-time.After(grace):
		case <-sigs:
		}
		connect.RunAtExit()
		os.Exit(code)
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	connect.RunAtExit()
	os.Exit(code)
}

// run is ec2ssh from its arguments to its exit status. Every error ends
// here, and is reported once.
func run(ctx context.Context, argv []string, stdin, stdout, stderr *os.File) int {
	keepForkFD()
	args, err := connect.ParseArgs(argv)
	if err != nil {
		return report(stderr, err, false)
	}
	if args.Help {
		fmt.Fprint(stdout, connect.Usage())
		return 0
	}
	if args.Version {
		fmt.Fprintln(stderr, connect.VersionLine(Version))
		return 0
	}
	logw := io.Writer(stderr)
	if args.LogFile != "" {
		f, err := os.OpenFile(args.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return report(stderr, &failure.Error{Kind: failure.Config, Op: "open log file", Target: args.LogFile, Err: err}, args.Quiet)
		}
		defer f.Close()
		logw = f
	}
	for _, w := range args.Warnings {
		fmt.Fprintln(stderr, w)
	}
	if code, done, err := offline(args, stdout); done {
		if err != nil {
			return report(logw, err, args.Quiet)
		}
		return code
	}
	r, err := newRun(argv, args, reach.IO{Stdin: stdin, Stdout: stdout, Stderr: stderr, Log: logw})
	if err == nil && r == nil {
		return 0 // -G printed the configuration
	}
	if err != nil {
		return report(logw, err, args.Quiet)
	}
	code, err := dispatch(ctx, r)
	if err != nil {
		return report(logw, err, args.Quiet)
	}
	return code
}

// offline answers what needs no configuration: a refusal of an option
// combination, --completion, --complete-hosts, -Q. done is false for
// everything else.
func offline(args *connect.Args, stdout *os.File) (code int, done bool, err error) {
	if err := notYet(args); err != nil {
		return 255, true, err
	}
	switch {
	case args.Completion != "":
		fmt.Fprint(stdout, completionScript(args.Completion))
		return 0, true, nil
	case args.CompleteHosts:
		completeHosts(args, stdout)
		return 0, true, nil
	case args.Query != "":
		list, err := connect.Query(args.Query)
		if err != nil {
			return 255, true, err
		}
		for _, a := range list {
			fmt.Fprintln(stdout, a)
		}
		return 0, true, nil
	}
	return 0, false, nil
}

// newRun resolves the configuration and what every mode shares. It
// returns nil, nil when -G has printed the configuration.
func newRun(argv []string, args *connect.Args, io reach.IO) (*reach.Run, error) {
	cfg, err := connect.ResolveConfig(args)
	if err != nil {
		return nil, err
	}
	if args.Quiet {
		cfg.LogLevel = "QUIET"
	} else if args.Verbose > 0 {
		cfg.LogLevel = "DEBUG" + strconv.Itoa(min(args.Verbose, 3))
	}
	if args.PrintConfig {
		cfg.Print(io.Stdout)
		return nil, nil
	}
	if err := cfg.Supported(); err != nil {
		return nil, err
	}
	env := &connect.Env{
		Args: args,
		Log: func(format string, a ...any) {
			if cfg.LogLevel != "QUIET" && cfg.LogLevel != "FATAL" && cfg.LogLevel != "ERROR" {
				fmt.Fprintf(io.Log, format+"\r\n", a...)
			}
		},
		Debug: func(format string, a ...any) {
			if strings.HasPrefix(cfg.LogLevel, "DEBUG") {
				fmt.Fprintf(io.Log, format+"\r\n", a...)
			}
		},
		Banner: func(text string) { fmt.Fprint(io.Stderr, text) },
	}
	for _, k := range cfg.Ignored {
		env.Debug("debug1: ec2ssh does not act on: %s", k)
	}
	return &reach.Run{Argv: argv, Args: args, Config: cfg, Env: env, IO: io, Notes: reach.NewNotices(io.Log, cfg)}, nil
}

// dispatch runs the mode the command line asks for.
func dispatch(ctx context.Context, r *reach.Run) (int, error) {
	a := r.Args
	switch {
	case a.List:
		return modeList(ctx, r)
	case a.Serial:
		return modeSerial(ctx, r)
	case a.All:
		return modeAll(ctx, r)
	case a.Diagnose:
		return modeDiagnose(ctx, r)
	case a.Proxy:
		return modeProxy(ctx, r)
	case a.ControlCmd != "" && a.ControlCmd != "proxy":
		return modeControl(ctx, r)
	}
	return modeConnect(ctx, r)
}

// notYet refuses ec2ssh options used where they mean nothing, rather than
// ignoring them.
func notYet(a *connect.Args) error {
	switch {
	case a.JSON && !a.Diagnose && !a.List && !a.All:
		return failure.Configf("use it as: ec2ssh --diagnose --json DESTINATION (or with --list, --all)", "--json goes with --diagnose, --list or --all")
	case (a.Parallel != 0 || a.Stdin != "") && !a.All:
		return failure.Configf("use it as: ec2ssh --all FILTER -- COMMAND", "--parallel and --stdin go with --all")
	case a.Region == "all" && !a.List && !a.All:
		return failure.Configf("name one region, or use --list or --all", "--region all goes with --list or --all")
	case a.Syslog:
		return failure.Configf("log to a file with -E instead", "option -y (logging to syslog) is not supported by ec2ssh")
	}
	return nil
}

// report is the one place an error becomes "ec2ssh: error:" and
// "ec2ssh: hint:" lines; it returns ssh(1)'s status for its own failures.
// With -q only mistakes in the command line or the configuration are said,
// as ssh -q says nothing about a connection that failed.
func report(w io.Writer, err error, quiet bool) int {
	if quiet && failure.KindOf(err) != failure.Config {
		return connect.ExitSignal
	}
	msg := err.Error()
	var fe *failure.Error
	if errors.As(err, &fe) && fe.Kind == failure.Canceled {
		msg = "interrupted"
	}
	if lines := connect.SSHLines(err); lines != nil {
		// ssh's own words, which callers parse; ec2ssh's hint follows.
		for _, l := range lines {
			fmt.Fprintf(w, "%s\r\n", l)
		}
	} else {
		fmt.Fprintf(w, "ec2ssh: error: %s\n", msg)
	}
	if hint := failure.HintOf(err); hint != "" && !quiet {
		fmt.Fprintf(w, "ec2ssh: hint: %s\n", hint)
	}
	return connect.ExitSignal
}
