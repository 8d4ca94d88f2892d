package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"golang.org/x/term"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "0.1.0-dev"

// forkEnv marks the child that carries on after -f sent the parent away;
// its value is the file descriptor to report readiness on.
const forkEnv = "EC2SSH_FORK_FD"

// run is ec2ssh from its arguments to its exit status.
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
		logFile = f
		defer func() { logFile = nil }()
	}
	for _, w := range args.Warnings {
		fmt.Fprintln(stderr, w)
	}
	if err := notYet(args); err != nil {
		return report(stderr, err, args.Quiet)
	}
	if args.Completion != "" {
		fmt.Fprint(stdout, completionScript(args.Completion))
		return 0
	}
	if args.CompleteHosts {
		completeHosts(args, stdout)
		return 0
	}
	if args.Query != "" {
		list, err := connect.Query(args.Query)
		if err != nil {
			return report(stderr, err, args.Quiet)
		}
		for _, a := range list {
			fmt.Fprintln(stdout, a)
		}
		return 0
	}

	cfg, err := connect.ResolveConfig(args)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	if args.Quiet {
		cfg.LogLevel = "QUIET"
	} else if args.Verbose > 0 {
		cfg.LogLevel = "DEBUG" + strconv.Itoa(min(args.Verbose, 3))
	}
	env := &connect.Env{
		Args: args,
		Log: func(format string, a ...any) {
			if cfg.LogLevel != "QUIET" && cfg.LogLevel != "FATAL" && cfg.LogLevel != "ERROR" {
				fmt.Fprintf(logw, format+"\r\n", a...)
			}
		},
		Debug: func(format string, a ...any) {
			if strings.HasPrefix(cfg.LogLevel, "DEBUG") {
				fmt.Fprintf(logw, format+"\r\n", a...)
			}
		},
		Banner: func(text string) {
			fmt.Fprint(stderr, text)
		},
	}
	if args.PrintConfig {
		cfg.Print(stdout)
		return 0
	}
	if err := cfg.Supported(); err != nil {
		return report(stderr, err, args.Quiet)
	}
	for _, k := range cfg.Ignored {
		env.Debug("debug1: ec2ssh does not act on: %s", k)
	}
	if args.List {
		return runList(ctx, args, cfg, stdout, stderr)
	}
	if args.Serial {
		env.Prompter = connect.OpenPrompter(cfg.BatchMode)
		return runSerial(ctx, args, cfg, env, stdin, stdout, stderr)
	}
	if args.All {
		return runAll(ctx, argv, args, cfg, stdin, stdout, stderr)
	}
	if args.Diagnose {
		return runDiagnose(ctx, args, cfg, env, stdout, stderr)
	}
	notes := newNotices(logw, cfg)
	if args.Proxy {
		return proxy(ctx, args, cfg, stdin, stdout, stderr, env, notes)
	}

	command := args.RemoteCommand()
	if command != "" && cfg.RemoteCommand != "" {
		return report(stderr, failure.Configf("drop RemoteCommand for this run (-o RemoteCommand=none) or the command", "Cannot execute command-line and remote command."), args.Quiet)
	}
	if command == "" {
		command = cfg.RemoteCommand
	}
	noSession := args.NoCommand || cfg.SessionType == "none" || args.StdioFwd != ""
	background := args.Background || cfg.ForkAfterAuth
	if background && command == "" && !noSession {
		return report(stderr, failure.Configf("give a command, or add -N to only forward ports", "cannot fork into background without a command to execute"), args.Quiet)
	}
	if background && os.Getenv(forkEnv) == "" {
		return forkBackground(argv, stdout, stderr)
	}

	sh, err := sharingFor(cfg, env)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	if args.ControlCmd == "proxy" {
		env.Debug("debug1: -O proxy: the session goes through the master with its descriptors passed")
		if sh.path == "" {
			return report(stderr, failure.Configf("give one with -S or ControlPath", "No ControlPath specified for \"-O\" command"), args.Quiet)
		}
	} else if args.ControlCmd != "" {
		return controlCommand(ctx, sh, cfg, args, stdin, stdout, stderr, env)
	}
	sess := &connect.Session{Command: command, Subsystem: args.Subsystem,
		NullStdin: args.NullStdin || background, Quiet: args.Quiet}
	passenger := !background && !(noSession && args.StdioFwd == "")
	if passenger {
		if code, ok := tryMaster(ctx, sh, cfg, args, sess, stdin, stdout, stderr, env, false); ok {
			return code
		}
	}
	if sh.master && sh.persist != 0 && !sh.child && !background {
		// ControlPersist: the master goes to the background and this
		// process becomes its first passenger, as with ssh(1).
		up, code := spawnMaster(argv, stderr)
		if !up && code != 0 {
			return code
		}
		if up && passenger {
			if code, ok := tryMaster(ctx, sh, cfg, args, sess, stdin, stdout, stderr, env, true); ok {
				return code
			}
		}
		if up && !passenger {
			return 0
		}
		sh.master = false
	}

	env.Prompter = connect.OpenPrompter(cfg.BatchMode)
	start := time.Now()
	p, err := newPlan(ctx, args, cfg, env, notes, false)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	defer p.finish()
	// A master shares an SSH connection: the SSM shell rung cannot be one.
	p.needsSSH = noSession || args.Subsystem || len(cfg.LocalForwards)+len(cfg.RemoteForwards)+len(cfg.DynamicForwards) > 0 || sh.master
	v, step, err := p.run(ctx, p.connectRung)
	if step == fallback.SSMShell {
		wantTTY, _ := (&connect.Session{Command: command}).WantTTY(cfg, isTerminal(stdin))
		return runSSMShell(ctx, p, command, wantTTY, stdin, stdout, stderr, notes, args.Quiet)
	}
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	client, creds := v.(connected).client, v.(connected).creds
	defer creds.Close()
	defer client.Close()
	env.Debug("debug1: connected and authenticated in %v", time.Since(start).Round(time.Millisecond))

	if err := connect.StartForwards(ctx, client, env.Log); err != nil {
		return report(stderr, err, args.Quiet)
	}
	connect.RunLocalCommand(cfg, stdout, stderr, env.Debug)
	master := startMaster(ctx, sh, client, cfg, env)
	if sh.child {
		masterReady(master != nil, args.Verbose > 0 || args.LogFile != "")
		if master == nil {
			return 0
		}
		return serveUntilDone(ctx, master, client, sh.persist)
	}
	if master != nil && sh.persist != 0 {
		// -f with ControlPersist: this process is already in the
		// background; after its own session it stays the master.
		defer func() {
			detach(true, args.Verbose > 0 || args.LogFile != "")
			serveUntilDone(ctx, master, client, sh.persist)
		}()
	} else if master != nil {
		// ssh(1) keeps a master until its passengers are done.
		defer master.WaitIdle(ctx)
		defer master.StopListening()
	}
	if background {
		detach(noSession && args.StdioFwd == "", args.Verbose > 0 || args.LogFile != "")
		stdin = devNull()
	}

	switch {
	case args.StdioFwd != "":
		return stdioForward(client, args.StdioFwd, stdin, stdout, stderr, args.Quiet)
	case noSession:
		// -N ends only by a signal or the connection ending; ssh(1) exits
		// 255 either way.
		var terminated, stopped <-chan struct{}
		if master != nil {
			terminated, stopped = master.Terminated(), master.Stopped()
		}
		select {
		case <-terminated:
			return 0
		case <-stopped:
			// -O stop: no new passengers; ssh(1) ends once the last one has.
			master.WaitIdle(ctx)
			return 0
		case <-ctx.Done():
			env.Log("Killed by %v.", context.Cause(ctx))
		case err := <-client.Lost():
			return report(stderr, err, args.Quiet)
		case <-waitClosed(client):
			env.Log("Connection to %s closed by remote host.", cfg.HostName)
		}
		return 255
	}
	status, err := connect.Run(ctx, client, sess, connect.Stdio{In: stdin, InFile: stdin, Out: stdout, Err: stderr}, env.Log)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	return status
}

// notYet refuses ec2ssh options whose feature has not landed, rather than
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

func waitClosed(c *connect.Client) <-chan struct{} {
	ch := make(chan struct{})
	go func() { c.Wait(); close(ch) }()
	return ch
}

// stdioForward is -W: stdin and stdout joined to host:port through the
// server.
func stdioForward(client *connect.Client, target string, stdin, stdout, stderr *os.File, quiet bool) int {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return report(stderr, failure.Configf("write it as -W host:port", "bad -W target %q", target), quiet)
	}
	conn, err := client.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return report(stderr, &failure.Error{Kind: failure.Unreachable, Op: "open -W channel to", Target: target, Err: err,
			Hint: "the server could not connect there"}, quiet)
	}
	connect.Splice(stdioConn{stdin, stdout}, conn)
	return 0
}

// stdioConn is stdin and stdout as one stream; CloseWrite closes stdout.
type stdioConn struct {
	in  *os.File
	out *os.File
}

func (s stdioConn) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s stdioConn) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s stdioConn) Close() error                { return nil }
func (s stdioConn) CloseWrite() error           { return s.out.Close() }

// proxy is --proxy HOST PORT: a byte stream between stdin/stdout and the
// port, for ProxyCommand. stdout carries nothing else. It ends when the
// port's side ends, when ssh (the reader of stdout) goes away, or on a
// signal (ssh sends SIGHUP to its ProxyCommand when it exits). End of
// input alone does not end it: the server may still be sending, and over
// SSM a half-close is not something the agent can pass on.
func proxy(ctx context.Context, args *connect.Args, cfg *connect.Config, stdin, stdout, stderr *os.File, env *connect.Env, notes *notices) int {
	port, _ := strconv.Atoi(args.ProxyPort)
	c := *cfg
	c.Port = port
	c.ProxyCommand, c.ProxyJump = "", ""
	p, err := newPlan(ctx, args, &c, env, notes, true)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	defer p.finish()
	v, _, err := p.run(ctx, p.streamRung)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	conn := v.(net.Conn)
	defer conn.Close()
	gone := make(chan struct{})
	go watchHangup(stdout, func() { close(gone) })
	go func() {
		io.Copy(conn, stdin)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	// The copy to stdout runs apart: a signal or ssh going away must end
	// ec2ssh even while a write to a stdout nobody reads is blocked.
	r := &errReader{r: conn}
	copied := make(chan struct{})
	go func() { io.Copy(stdout, r); close(copied) }()
	select {
	case <-copied:
		if r.err != nil && !errors.Is(r.err, io.EOF) && !errors.Is(r.err, net.ErrClosed) {
			return report(stderr, r.err, args.Quiet)
		}
		return 0
	case <-gone:
		return 0 // ssh, which reads stdout, has gone: nothing is left to carry
	case <-ctx.Done():
		return connect.ExitSignal // ssh(1): 255 when a signal ends it
	}
}

// errReader remembers why reading ended.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func devNull() *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return os.Stdin
	}
	return f
}
