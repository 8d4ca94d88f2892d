package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"syscall"

	"github.com/ec2ssh/ec2ssh/failure"
)

// The client side of OpenSSH's multiplexing protocol (PROTOCOL.mux) over
// the control socket: AF_UNIX, which Windows 10 and later have too. The
// control commands (-O check, exit, stop, forward, cancel) are messages
// only and work everywhere; a shared session or -W passes the passenger's
// descriptors (SCM_RIGHTS), which only Unix can (muxclient_unix.go).

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
	if (r.Op == "" || r.Op == "proxy") && !descriptorPassing {
		// A passenger hands its descriptors to the master, which Windows
		// cannot do: the session is made without it (sharing is an
		// optimisation), as -v says.
		r.Debug("debug1: mux: a shared session needs descriptor passing, which this platform lacks; connecting without the master")
		return 0, ErrNoMaster
	}
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
