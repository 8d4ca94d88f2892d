//go:build !windows

package connect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/failure"
)

// MuxSupported reports whether connection sharing works on this platform:
// a master, and passengers handing it their descriptors.
const MuxSupported = true

// descriptorPassing: Unix sockets carry descriptors here (SCM_RIGHTS).
var descriptorPassing = true

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
