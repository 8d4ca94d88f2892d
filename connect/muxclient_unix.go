//go:build !windows

package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/failure"
)

// MuxSupported reports whether connection sharing works on this platform.
const MuxSupported = true

// MuxRequest is what a client asks a master for.
type MuxRequest struct {
	Path     string
	Op       string // "" (a session, or -W), or -O's check, exit, stop, forward, cancel
	Config   *Config
	Session  *Session
	StdioFwd string // -W host:port
	Stdin    *os.File
	Stdout   *os.File
	Stderr   *os.File
	Log      func(string, ...any)
	Debug    func(string, ...any)
}

// ErrNoMaster says no master answered at the ControlPath: the caller
// connects by itself.
var ErrNoMaster = errors.New("no master")

// MuxClient does r through the master at r.Path and returns the exit
// status. ErrNoMaster (for a session or -W only) means there is no master
// to use; a stale socket is removed on the way, as ssh(1) does when it
// may become a master itself.
func MuxClient(ctx context.Context, r *MuxRequest) (int, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: r.Path, Net: "unix"})
	if err != nil {
		if r.Op != "" {
			return ExitSignal, failure.Configf("start a master first, or check ControlPath", "Control socket connect(%s): %v", r.Path, syscallReason(err))
		}
		if errors.Is(err, syscall.ECONNREFUSED) && r.Config.ControlMaster != "no" {
			r.Debug("debug1: Stale control socket %s, unlinking", r.Path)
			os.Remove(r.Path)
		}
		return 0, ErrNoMaster
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := writeMuxPacket(conn, muxHelloMsg()); err != nil {
		return r.fallback(err)
	}
	if err := checkMuxHello(conn); err != nil {
		return r.fallback(err)
	}
	mc := &muxConn{conn: conn}
	switch r.Op {
	case "check":
		pid, err := mc.alive()
		if err != nil {
			return ExitSignal, err
		}
		fmt.Fprintf(r.Stderr, "Master running (pid=%d)\r\n", pid)
		return 0, nil
	case "exit":
		if err := mc.simple(muxCTerminate, "termination"); err != nil && !errors.Is(err, io.EOF) {
			return ExitSignal, err
		}
		if r.Config.LogLevel != "QUIET" {
			fmt.Fprintf(r.Stderr, "Exit request sent.\r\n")
		}
		return 0, nil
	case "stop":
		if err := mc.simple(muxCStopListening, "stop listening"); err != nil {
			return ExitSignal, err
		}
		if r.Config.LogLevel != "QUIET" {
			fmt.Fprintf(r.Stderr, "Stop listening request sent.\r\n")
		}
		return 0, nil
	case "forward", "cancel":
		if err := mc.forwards(r, r.Op == "cancel"); err != nil {
			return ExitSignal, err
		}
		return 0, nil
	case "proxy", "":
		// -O proxy asks for the session through the master without
		// passing descriptors; ec2ssh passes them (the same session,
		// the same result), which every master accepts.
	default:
		return ExitSignal, failure.Configf("use -O check, exit, stop, forward or cancel", "Invalid multiplex command.")
	}

	pid, err := mc.alive()
	if err != nil {
		return r.fallback(err)
	}
	if r.StdioFwd != "" {
		return mc.stdioFwd(r)
	}
	if err := mc.forwards(r, false); err != nil {
		return ExitSignal, err
	}
	return mc.session(ctx, r, pid)
}

// fallback: a master that does not speak the protocol is not used.
func (r *MuxRequest) fallback(err error) (int, error) {
	r.Debug("debug1: mux: %v; connecting without the master", err)
	return 0, ErrNoMaster
}

func syscallReason(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	return err.Error()
}

type muxConn struct {
	conn *net.UnixConn
	rid  uint32
}

// request sends body (after type and request id) and reads the reply.
func (m *muxConn) request(typ uint32, body muxMsg) (uint32, *muxReader, error) {
	rid := m.rid
	m.rid++
	if err := writeMuxPacket(m.conn, append(muxMsg(nil).u32(typ).u32(rid), body...)); err != nil {
		return 0, nil, err
	}
	r, err := readMuxPacket(m.conn)
	if err != nil {
		return 0, nil, err
	}
	t, got := r.u32(), r.u32()
	if r.err == nil && got != rid {
		return 0, nil, fmt.Errorf("out of sequence reply: my id %d theirs %d", rid, got)
	}
	return t, r, r.err
}

func (m *muxConn) alive() (int, error) {
	t, r, err := m.request(muxCAliveCheck, nil)
	if err != nil {
		return 0, err
	}
	if t != muxSAlive {
		return 0, fmt.Errorf("master returned error: %s", r.str())
	}
	return int(r.u32()), r.err
}

func (m *muxConn) simple(typ uint32, what string) error {
	t, r, err := m.request(typ, nil)
	if err != nil {
		return err
	}
	switch t {
	case muxSOK:
		return nil
	case muxSPermissionDenied:
		return &failure.Error{Kind: failure.Config, Msg: fmt.Sprintf("Master refused %s request: %s", what, r.str())}
	default:
		return &failure.Error{Kind: failure.Config, Msg: fmt.Sprintf("%s request failed: %s", what, r.str())}
	}
}

// forwards asks the master for (or to cancel) the configuration's
// forwardings; -O forward prints a remote port the server chose.
func (m *muxConn) forwards(r *MuxRequest, cancel bool) error {
	c := r.Config
	for _, set := range []struct {
		kind  byte
		specs []string
	}{{'L', c.LocalForwards}, {'R', c.RemoteForwards}, {'D', c.DynamicForwards}} {
		for _, spec := range set.specs {
			f, err := ParseForward(set.kind, spec)
			if err != nil {
				return err
			}
			ftype, lhost, lport, chost, cport := muxForwardFields(f)
			typ := uint32(muxCOpenFwd)
			if cancel {
				typ = muxCCloseFwd
			}
			t, rep, err := m.request(typ, muxMsg(nil).u32(ftype).str(lhost).u32(lport).str(chost).u32(cport))
			if err != nil {
				return err
			}
			switch t {
			case muxSOK:
			case muxSRemotePort:
				port := rep.u32()
				r.Log("Allocated port %d for remote forward to %s", port, f.targetText())
				if r.Op == "forward" {
					fmt.Fprintf(r.Stdout, "%d\n", port)
				}
			default:
				return &failure.Error{Kind: failure.Config, Msg: "Master refused forwarding request: " + rep.str()}
			}
		}
	}
	return nil
}

// session runs the command as a passenger of the master.
func (m *muxConn) session(ctx context.Context, r *MuxRequest, pid int) (int, error) {
	c, s := r.Config, r.Session
	stdinTTY := term.IsTerminal(int(r.Stdin.Fd()))
	tty, notice := s.WantTTY(c, stdinTTY)
	if notice != "" && !s.Quiet {
		r.Log("%s", notice)
	}
	stdin := r.Stdin
	if s.NullStdin || c.StdinNull {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			return ExitSignal, err
		}
		defer devnull.Close()
		stdin = devnull
	}
	sid, err := m.openSession(newSessionBody(c, s, tty), []*os.File{stdin, r.Stdout, r.Stderr})
	if err != nil {
		return ExitSignal, err
	}
	defer relayWinch(pid)()
	var restore func()
	if tty && stdinTTY {
		restore = rawUntilExit(r.Stdin)
	}
	exit, seen := m.waitExit(sid, restore)
	if ctx.Err() != nil || !seen {
		exit = ExitSignal
	}
	if tty && c.LogLevel != "QUIET" && c.LogLevel != "FATAL" && c.LogLevel != "ERROR" && !s.Quiet {
		fmt.Fprintf(r.Stderr, "Shared connection to %s closed.\r\n", c.HostName)
	}
	return int(exit), nil
}

// newSessionBody is MUX_C_NEW_SESSION's body after its request id
// (PROTOCOL.mux): terminal, agent, subsystem, escape character, TERM, the
// command, and the environment SendEnv and SetEnv give.
func newSessionBody(c *Config, s *Session, tty bool) muxMsg {
	echar := uint32(0xffffffff)
	if c.EscapeChar != "none" && c.EscapeChar != "" {
		echar = uint32(c.EscapeChar[0])
	}
	body := muxMsg(nil).str("").u32(b2u(tty)).u32(0).u32(b2u(c.ForwardAgent != "no")).u32(b2u(s.Subsystem)).
		u32(echar).str(os.Getenv("TERM")).str(s.Command)
	for _, kv := range os.Environ() {
		k, _, _ := cutEnv(kv)
		if slices.ContainsFunc(c.SendEnv, func(pat string) bool { return matchPattern(k, pat) }) {
			body = body.str(kv)
		}
	}
	for _, kv := range c.SetEnv {
		k, v, _ := cutEnv(kv)
		body = body.str(k + "=" + unquote(v))
	}
	return body
}

// openSession sends the new-session request with the descriptors and
// returns the session id the master gives it.
func (m *muxConn) openSession(body muxMsg, fds []*os.File) (uint32, error) {
	rid := m.rid
	m.rid++
	if err := writeMuxPacket(m.conn, append(muxMsg(nil).u32(muxCNewSession).u32(rid), body...)); err != nil {
		return 0, err
	}
	for _, f := range fds {
		if err := sendFD(m.conn, int(f.Fd())); err != nil {
			return 0, fmt.Errorf("send fds failed: %v", err)
		}
	}
	rep, err := readMuxPacket(m.conn)
	if err != nil {
		return 0, fmt.Errorf("read from master failed: %v", err)
	}
	t, got := rep.u32(), rep.u32()
	if rep.err != nil || got != rid {
		return 0, errors.New("out of sequence reply from the master")
	}
	switch t {
	case muxSSessionOpened:
		return rep.u32(), nil
	case muxSPermissionDenied:
		return 0, &failure.Error{Kind: failure.AuthRejected, Msg: "Master refused session request: " + rep.str()}
	default:
		return 0, &failure.Error{Kind: failure.Unknown, Msg: "session request failed: " + rep.str()}
	}
}

// relayWinch passes window changes to the master, which reads the size
// from our terminal, as ssh's mux clients do. The function returned stops.
func relayWinch(pid int) func() {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		for range winch {
			syscall.Kill(pid, syscall.SIGWINCH)
		}
	}()
	return func() { signal.Stop(winch) }
}

// rawUntilExit puts the terminal into raw mode and returns what restores
// it (nil when it could not be made raw); the restore also runs at exit.
func rawUntilExit(f *os.File) func() {
	st, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil
	}
	unregister := AtExit(func() { term.Restore(int(f.Fd()), st) })
	return func() { term.Restore(int(f.Fd()), st); unregister() }
}

// waitExit reads the master's messages until it closes the connection and
// returns the session's exit status, if one came. restore (may be nil)
// runs once: when the master says no terminal could be allocated, or at
// the end.
func (m *muxConn) waitExit(sid uint32, restore func()) (uint32, bool) {
	defer func() {
		if restore != nil {
			restore()
		}
	}()
	exit, seen := uint32(ExitSignal), false
	for {
		msg, err := readMuxPacket(m.conn)
		if err != nil {
			return exit, seen
		}
		switch msg.u32() {
		case muxSTTYAllocFail:
			if msg.u32() == sid && restore != nil {
				restore()
				restore = nil
			}
		case muxSExitMessage:
			if msg.u32() == sid {
				exit, seen = msg.u32(), true
			}
		}
	}
}

// stdioFwd is -W through the master.
func (m *muxConn) stdioFwd(r *MuxRequest) (int, error) {
	host, portText, err := net.SplitHostPort(r.StdioFwd)
	if err != nil {
		return ExitSignal, failure.Configf("write it as -W host:port", "bad -W target %q", r.StdioFwd)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return ExitSignal, failure.Configf("write it as -W host:port", "bad -W port %q", portText)
	}
	rid := m.rid
	m.rid++
	if err := writeMuxPacket(m.conn, muxMsg(nil).u32(muxCNewStdioFwd).u32(rid).str("").str(host).u32(uint32(port))); err != nil {
		return ExitSignal, err
	}
	for _, f := range []*os.File{r.Stdin, r.Stdout} {
		if err := sendFD(m.conn, int(f.Fd())); err != nil {
			return ExitSignal, err
		}
	}
	rep, err := readMuxPacket(m.conn)
	if err != nil {
		return ExitSignal, err
	}
	if t, _ := rep.u32(), rep.u32(); t != muxSSessionOpened {
		return ExitSignal, &failure.Error{Kind: failure.Unreachable, Msg: "Stdio forwarding request failed: " + rep.str()}
	}
	var b [1]byte
	m.conn.Read(b[:]) // until the master closes: the forwarding is over
	return 0, nil
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func cutEnv(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}
