package connect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/failure"
)

// ExitSignal is the status ssh(1) returns when the remote command dies of a
// signal or ends without reporting a status (ssh(1), EXIT STATUS: 255 when
// an error occurred).
const ExitSignal = 255

// Stdio is where a session's streams go.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
	InFile   *os.File // In as a file, to tell whether it is a terminal; may be nil
}

// Session describes what to run on a connection.
type Session struct {
	Command   string // empty: a login shell
	Subsystem bool   // -s: Command names a subsystem
	NullStdin bool   // -n, or StdinNull
	Quiet     bool   // -q: no "Pseudo-terminal will not be allocated" notice

	// Passenger marks a session run for a connection-sharing client: its
	// terminal is the client's (which sets raw mode itself), TermType and
	// Env are what the client sent, and ~. ends this session only.
	Passenger bool
	TermType  string
	Env       []string // NAME=value
	// TTY, for a passenger, is the client's decision about a terminal.
	TTY bool
	// Config, when set, is used in place of the client's (a passenger's
	// escape character and agent forwarding are its own).
	Config *Config
}

// WantTTY reports whether a PTY is requested, following ssh(1): RequestTTY
// force (-tt) always; yes (-t), or auto with no command, when stdin is a
// terminal. The notice to print, if any, is returned too.
func (s *Session) WantTTY(c *Config, stdinIsTTY bool) (bool, string) {
	mode := c.RequestTTY
	want := mode == "yes" || mode == "force" || (mode == "auto" && s.Command == "" && !s.Subsystem)
	if mode == "no" || c.SessionType == "none" {
		return false, ""
	}
	if !stdinIsTTY && mode != "force" {
		if want {
			return false, "Pseudo-terminal will not be allocated because stdin is not a terminal."
		}
		return false, ""
	}
	return want, ""
}

// Run runs s on client with stdio and returns the remote exit status as
// ssh(1) reports it: the command's status, or 255 when it died of a signal
// or the connection failed. A connection that broke is also an error.
func Run(ctx context.Context, client *Client, s *Session, stdio Stdio, log func(string, ...any)) (int, error) {
	c := client.Config
	if s.Config != nil {
		c = s.Config
	}
	if s.Subsystem {
		return runSubsystem(client, s, stdio)
	}
	sess, err := client.NewSession()
	if err != nil {
		return ExitSignal, &failure.Error{Kind: failure.Unknown, Op: "open session on", Target: c.HostName, Err: err}
	}
	defer sess.Close()
	r := &sessionRun{ctx: ctx, client: client, c: c, s: s, sess: sess, stdio: stdio, log: log}
	r.sendEnv()
	if c.ForwardAgent != "no" {
		if err := forwardAgent(client, sess, c); err != nil {
			log("Warning: agent forwarding failed: %v", err)
		}
	}
	if err := r.requestPTY(); err != nil {
		return ExitSignal, err
	}
	r.wireStreams()
	restore, err := r.start()
	if err != nil {
		return ExitSignal, err
	}
	defer restore()
	return r.wait()
}

// sessionRun is one session's state across Run's steps.
type sessionRun struct {
	ctx    context.Context
	client *Client
	c      *Config
	s      *Session
	sess   *ssh.Session
	stdio  Stdio
	log    func(string, ...any)

	stdinTTY bool // stdio.InFile is a terminal
	tty      bool // a PTY was requested
	esc      *escapeFilter
	out      *brokenPipeWatch
	outDone  chan struct{} // closed when a passenger's stdout is written out and ended
}

// sendEnv sends SetEnv, a passenger's environment, and what SendEnv allows
// of ours.
func (r *sessionRun) sendEnv() {
	for _, kv := range r.c.SetEnv {
		if k, v, ok := strings.Cut(kv, "="); ok {
			r.sess.Setenv(k, unquote(v))
		}
	}
	for _, kv := range r.s.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			r.sess.Setenv(k, v)
		}
	}
	if r.s.Passenger {
		return // the client sent what SendEnv allows of its own environment
	}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if slices.ContainsFunc(r.c.SendEnv, func(pat string) bool { return matchPattern(k, pat) }) {
			r.sess.Setenv(k, v)
		}
	}
}

// requestPTY decides on a terminal as ssh(1) does and asks for one with
// our size and TERM.
func (r *sessionRun) requestPTY() error {
	s, stdio := r.s, r.stdio
	r.stdinTTY = stdio.InFile != nil && term.IsTerminal(int(stdio.InFile.Fd()))
	tty, notice := s.WantTTY(r.c, r.stdinTTY)
	if s.Passenger {
		tty, notice = s.TTY, ""
	}
	if notice != "" && !s.Quiet {
		r.log("%s", notice)
	}
	r.tty = tty
	if !tty {
		return nil
	}
	cols, rows := 80, 24
	if r.stdinTTY {
		if w, h, err := term.GetSize(int(stdio.InFile.Fd())); err == nil {
			cols, rows = w, h
		}
	}
	termName := os.Getenv("TERM")
	if s.Passenger {
		termName = s.TermType
	}
	if termName == "" {
		termName = "vt100"
	}
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := r.sess.RequestPty(termName, rows, cols, modes); err != nil {
		return &failure.Error{Kind: failure.Unknown, Op: "request a terminal on", Target: r.c.HostName, Err: err}
	}
	return nil
}

// wireStreams connects stdin (through the escape filter on a terminal,
// or nothing with -n), stdout (watched for a broken pipe) and stderr.
func (r *sessionRun) wireStreams() {
	c, s, stdio := r.c, r.s, r.stdio
	switch {
	case s.NullStdin || c.StdinNull:
		r.sess.Stdin = strings.NewReader("")
	case r.tty && r.stdinTTY && c.EscapeChar != "none" && c.EscapeChar != "":
		r.esc = newEscapeFilter(stdio.In, c.EscapeChar[0], stdio.Err, r.escapeActions())
		r.sess.Stdin = r.esc
	default:
		r.sess.Stdin = stdio.In
	}
	r.out = &brokenPipeWatch{w: stdio.Out, broken: func() { r.sess.Close() }}
	r.sess.Stderr = stdio.Err
	f, isFile := stdio.Out.(*os.File)
	if !s.Passenger || !isFile {
		r.sess.Stdout = r.out
		return
	}
	// A passenger's stdout ends at the channel's EOF, as OpenSSH's mux
	// master ends it: its reader (scp -O, TRAMP, anything whose stdin and
	// stdout are one socket) sees EOF then, not once every copy of the
	// descriptor is gone (issue 25).
	pipe, err := r.sess.StdoutPipe()
	if err != nil {
		r.sess.Stdout = r.out
		return
	}
	r.outDone = make(chan struct{})
	go func() {
		defer close(r.outDone)
		io.Copy(r.out, pipe)
		shutdownWrite(f)
	}()
}

// escapeActions are what ~., ~B, ~^Z, ~# and ~C do in this session.
func (r *sessionRun) escapeActions() escapeActions {
	c, s, stdio, client, sess := r.c, r.s, r.stdio, r.client, r.sess
	fd := int(stdio.InFile.Fd())
	orig, _ := term.GetState(fd)
	// cooked gives the terminal back for a moment and returns what puts
	// it back into raw mode.
	cooked := func() func() {
		if orig == nil {
			return func() {}
		}
		term.Restore(fd, orig)
		return func() {
			term.MakeRaw(fd)
			if w, h, err := term.GetSize(fd); err == nil {
				sess.WindowChange(h, w)
			}
		}
	}
	act := escapeActions{
		disconnect: func() {
			if s.Passenger {
				sess.Close()
			} else {
				client.Close()
			}
		},
		sendBreak: func() { sess.SendRequest("break", false, ssh.Marshal(struct{ Ms uint32 }{1000})) },
		suspend: func() {
			if s.Passenger {
				fmt.Fprintf(stdio.Err, "ec2ssh: ^Z does not suspend a shared session\r\n")
				return
			}
			resume := cooked()
			if err := suspendSelf(); err != nil {
				fmt.Fprintf(stdio.Err, "ec2ssh: cannot suspend: %v\r\n", err)
			}
			resume()
		},
		list: func() []string {
			out := []string{"#0 client-session (the terminal session)"}
			if client.forwarder != nil {
				out = append(out, client.forwarder.List()...)
			}
			return out
		},
		command: func(line string) string {
			// ssh(1) reports these at LogLevel INFO.
			for _, l := range strings.Split(strings.TrimRight(escapeCommand(client.Forwarder(r.ctx, r.log), line), "\n"), "\n") {
				r.log("%s", l)
			}
			return ""
		},
	}
	// ~C is off unless EnableEscapeCommandline is yes (OpenSSH 9.3's
	// default, and Debian's 9.2).
	if v, ok := c.s.get("EnableEscapeCommandline"); ok && !s.Passenger && (strings.EqualFold(v.args[0], "yes") || strings.EqualFold(v.args[0], "true")) {
		act.readLine = func(prompt string) (string, error) {
			resume := cooked()
			defer resume()
			return TTYPrompter{}.Ask(prompt, true)
		}
	}
	return act
}

// start starts the command or shell and puts our terminal into raw mode
// when the session has one; the function returned undoes that.
func (r *sessionRun) start() (func(), error) {
	var err error
	if r.s.Command != "" {
		err = r.sess.Start(r.s.Command)
	} else {
		err = r.sess.Shell()
	}
	if err != nil {
		return nil, &failure.Error{Kind: failure.Unknown, Op: "start the remote command on", Target: r.c.HostName, Err: err}
	}
	resize := func(cols, rows int) { r.sess.WindowChange(rows, cols) }
	switch {
	case r.tty && r.stdinTTY && r.s.Passenger:
		// The client owns its terminal's mode; sizes are read from it when
		// the client relays SIGWINCH here.
		return watchResize(r.stdio.InFile, resize), nil
	case r.tty && r.stdinTTY:
		return RawTerminal(r.stdio.InFile, resize)
	}
	return func() {}, nil
}

// wait waits for the session, the connection's loss or ctx, and says how
// the session ended as ssh(1) does.
func (r *sessionRun) wait() (int, error) {
	c, s := r.c, r.s
	done := make(chan error, 1)
	go func() { done <- r.sess.Wait() }()
	var waitErr error
	select {
	case waitErr = <-done:
	case lost := <-r.client.Lost():
		return ExitSignal, lost
	case <-r.ctx.Done():
		if s.Passenger {
			r.sess.Close() // a passenger gone ends its session, not the master's connection
		} else {
			r.client.Close()
		}
		<-done
		return ExitSignal, &failure.Error{Kind: failure.Canceled, Msg: "interrupted", Err: context.Cause(r.ctx)}
	}
	if r.outDone != nil {
		// Everything the channel sent is written before the status goes
		// back; a reader that stopped reading ends with the session's
		// context (the passenger gone).
		select {
		case <-r.outDone:
		case <-r.ctx.Done():
		}
	}
	if waitErr != nil {
		// The keepalive says so before it closes the connection.
		select {
		case lost := <-r.client.Lost():
			return ExitSignal, lost
		default:
		}
		if ended, err := r.connectionEnded(); ended {
			return ExitSignal, err
		}
	}
	if r.esc != nil && r.esc.Disconnected() {
		// ~. : ssh(1) ends with 255.
		if !s.Passenger {
			r.log("Connection to %s closed.", c.HostName)
		}
		return ExitSignal, nil
	}
	if r.out.isBroken() {
		// Whoever read stdout went away (… | head -1): the session is
		// closed and, as in ssh(1), the status is 255.
		return ExitSignal, nil
	}
	if r.tty && c.LogLevel != "QUIET" && !s.Quiet && !s.Passenger {
		defer r.log("Connection to %s closed.", c.HostName)
	}
	return exitStatus(waitErr, c.HostName)
}

// connectionEnded says, in ssh's words, how the connection under a session
// that ended without its status was lost (clientloop.c): the server closed
// it ("Connection to HOST closed by remote host.", printed whatever the log
// level, as ssh's quit_message is), or it broke (reset, timed out), where
// ssh's last act, telling the server it disconnects, fails with "Broken
// pipe". It reports false when the connection is still there.
func (r *sessionRun) connectionEnded() (bool, error) {
	if r.client.watch == nil || r.s.Passenger {
		return false, nil
	}
	err := r.client.watch.peerErr()
	host := r.c.HostName
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, io.EOF):
		fmt.Fprintf(r.stdio.Err, "Connection to %s closed by remote host.\r\n", host)
		if r.tty && r.c.LogLevel != "QUIET" && r.c.LogLevel != "FATAL" && r.c.LogLevel != "ERROR" && !r.s.Quiet {
			fmt.Fprintf(r.stdio.Err, "Connection to %s closed.\r\n", host)
		}
		return true, nil
	}
	return true, atLogLevel(inWords(&failure.Error{Kind: failure.Unreachable, Msg: fmt.Sprintf("the connection to %s broke: %v", host, err), Err: err,
		Hint: "the connection was reset or timed out on the way: the network, a firewall's idle timeout, or the server going away"},
		fatalLine("client_loop: send disconnect: Broken pipe")), r.c.LogLevel)
}

// brokenPipeWatch passes writes to w and, the first time w reports a
// broken pipe, calls broken (which closes the session).
type brokenPipeWatch struct {
	w      io.Writer
	broken func()
	once   sync.Once
	flag   atomic.Bool
}

func (b *brokenPipeWatch) Write(p []byte) (int, error) {
	n, err := b.w.Write(p)
	if err != nil && errors.Is(err, syscall.EPIPE) {
		b.flag.Store(true)
		b.once.Do(b.broken)
	}
	return n, err
}

func (b *brokenPipeWatch) isBroken() bool { return b.flag.Load() }

// exitStatus maps x/crypto's Wait result onto ssh(1)'s exit status.
func exitStatus(err error, host string) (int, error) {
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ee.Signal() != "" {
			// ssh(1) returns 255 and says nothing when the remote side was
			// killed by a signal.
			return ExitSignal, nil
		}
		return ee.ExitStatus(), nil
	case errors.As(err, &missing):
		return ExitSignal, nil
	}
	if m := wireMessage(err); m != "" {
		return ExitSignal, &failure.Error{Kind: failure.Unknown, Msg: m, Hint: "the data was altered on its way: a faulty network path or something in the middle"}
	}
	return ExitSignal, &failure.Error{Kind: failure.Unknown, Msg: fmt.Sprintf("connection to %s closed: %v", host, err),
		Hint: "the connection broke before the remote command finished"}
}

func forwardAgent(client *Client, sess *ssh.Session, c *Config) error {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if c.ForwardAgent != "yes" {
		sock = ExpandPath(c.ForwardAgent)
		if strings.HasPrefix(c.ForwardAgent, "$") {
			sock = os.Getenv(c.ForwardAgent[1:])
		}
	}
	if sock == "" {
		return errors.New("no agent (SSH_AUTH_SOCK is not set)")
	}
	if err := agent.ForwardToRemote(client.Client, sock); err != nil {
		return err
	}
	return agent.RequestAgentForwarding(sess)
}

// runSubsystem is -s: x/crypto's Session does not wire its streams for a
// subsystem request, so the channel is driven here directly.
func runSubsystem(client *Client, s *Session, stdio Stdio) (int, error) {
	c := client.Config
	ch, reqs, err := client.OpenChannel("session", nil)
	if err != nil {
		return ExitSignal, &failure.Error{Kind: failure.Unknown, Op: "open session on", Target: c.HostName, Err: err}
	}
	defer ch.Close()
	status := make(chan int, 1)
	go func() {
		code := ExitSignal
		for r := range reqs {
			if r.Type == "exit-status" && len(r.Payload) >= 4 {
				code = int(binary.BigEndian.Uint32(r.Payload))
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
		status <- code
	}()
	ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{s.Command}))
	if err == nil && !ok {
		err = fmt.Errorf("the server refused subsystem %q", s.Command)
	}
	if err != nil {
		return ExitSignal, &failure.Error{Kind: failure.Unknown, Op: "start subsystem on", Target: c.HostName, Err: err}
	}
	if !s.NullStdin && !c.StdinNull {
		go func() {
			io.Copy(ch, stdio.In)
			ch.CloseWrite()
		}()
	} else {
		ch.CloseWrite()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); io.Copy(stdio.Err, ch.Stderr()) }()
	io.Copy(stdio.Out, ch)
	wg.Wait()
	ch.Close()
	return <-status, nil
}

// RunLocalCommand runs LocalCommand (with PermitLocalCommand yes) once the
// connection is up, as ssh(1) does: through the user's shell, with its
// tokens expanded, its output on ec2ssh's own.
func RunLocalCommand(c *Config, stdout, stderr io.Writer, debug func(string, ...any)) {
	if c.LocalCommand == "" {
		return
	}
	cmdline := expandTokens(c.LocalCommand, c.tokens())
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	debug("debug1: Executing command: '%s'", cmdline)
	cmd := exec.Command(shell, "-c", cmdline)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		debug("debug1: LocalCommand: %v", err)
	}
}
