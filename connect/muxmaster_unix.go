//go:build !windows

package connect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// MuxMaster shares one authenticated connection with the clients that
// connect to its control socket.
type MuxMaster struct {
	Client   *Client
	Path     string
	Ask      bool     // ControlMaster ask/autoask: confirm each session
	Prompter Prompter // for Ask
	Log      func(string, ...any)
	Debug    func(string, ...any)

	ctx     context.Context
	ln      *net.UnixListener
	mu      sync.Mutex
	active  int // sessions and stdio forwardings in progress
	nextID  uint32
	idle    chan struct{} // a passenger ended
	exit    chan struct{} // MUX_C_TERMINATE
	once    sync.Once
	closed  bool
	stopped chan struct{} // closed once the socket is
}

// ListenMux creates the control socket as ssh(1) does: bound under a
// temporary name with mode 0600 and linked into place, so that an
// existing socket is never replaced ("ControlSocket … already exists").
func ListenMux(ctx context.Context, m *MuxMaster) error {
	if err := muxDirTrusted(m.Path); err != nil {
		return fmt.Errorf("ControlPath %s: %v; connection sharing is off", m.Path, err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := m.Path + "." + hex.EncodeToString(rnd[:])
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("ControlSocket %s: %v", m.Path, err)
	}
	ln.SetUnlinkOnClose(false)
	err = os.Link(tmp, m.Path)
	os.Remove(tmp)
	if err != nil {
		ln.Close()
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("ControlSocket %s already exists, disabling multiplexing", m.Path)
		}
		return fmt.Errorf("ControlSocket %s: %v", m.Path, err)
	}
	m.ctx, m.ln = ctx, ln
	m.idle, m.exit, m.stopped = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	unregister := AtExit(func() { os.Remove(m.Path) })
	context.AfterFunc(ctx, func() { m.StopListening(); unregister() })
	go m.serve()
	return nil
}

// StopListening closes the control socket and removes it.
func (m *MuxMaster) StopListening() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	close(m.stopped)
	m.ln.Close()
	// Remove the path only while it is still ours.
	if st, err := os.Stat(m.Path); err == nil && st.Mode()&os.ModeSocket != 0 {
		os.Remove(m.Path)
	}
}

// Stopped is closed once the master no longer listens (-O stop).
func (m *MuxMaster) Stopped() <-chan struct{} { return m.stopped }

// Terminated is closed when a client asks the master to exit (-O exit).
func (m *MuxMaster) Terminated() <-chan struct{} { return m.exit }

// Active is the number of passengers being served.
func (m *MuxMaster) Active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active
}

// WaitIdle returns when no passenger is left, or ctx ends.
func (m *MuxMaster) WaitIdle(ctx context.Context) {
	for m.Active() > 0 {
		select {
		case <-m.idle:
		case <-ctx.Done():
			return
		}
	}
}

// Idle returns a channel that receives each time a passenger ends.
func (m *MuxMaster) Idle() <-chan struct{} { return m.idle }

func (m *MuxMaster) serve() {
	pause := 5 * time.Millisecond
	for {
		conn, err := m.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			m.Log("mux: accept: %v", err)
			time.Sleep(pause)
			pause = min(2*pause, time.Second)
			continue
		}
		pause = 5 * time.Millisecond
		go m.handle(conn)
	}
}

func (m *MuxMaster) debug(format string, a ...any) {
	if m.Debug != nil {
		m.Debug(format, a...)
	}
}

// handle speaks the protocol with one client until it goes.
func (m *MuxMaster) handle(conn *net.UnixConn) {
	defer conn.Close()
	// Only the user who owns the master may use it (ssh checks the peer's
	// uid too).
	if cred, err := peerUID(conn); err != nil || (cred != os.Getuid() && cred != 0) {
		m.debug("debug1: mux: refused a client of uid %d", cred)
		return
	}
	if err := writeMuxPacket(conn, muxHelloMsg()); err != nil {
		return
	}
	if err := checkMuxHello(conn); err != nil {
		m.debug("debug1: mux: %v", err)
		return
	}
	for {
		msg, err := readMuxPacket(conn)
		if err != nil {
			return
		}
		typ, rid := msg.u32(), msg.u32()
		if msg.err != nil {
			return
		}
		reply := func(b muxMsg) bool { return writeMuxPacket(conn, b) == nil }
		fail := func(reason string) bool { return reply(muxMsg(nil).u32(muxSFailure).u32(rid).str(reason)) }
		switch typ {
		case muxCAliveCheck:
			if !reply(muxMsg(nil).u32(muxSAlive).u32(rid).u32(uint32(os.Getpid()))) {
				return
			}
		case muxCTerminate:
			if m.Ask && !m.confirm("Terminate shared connection to %s? ") {
				reply(muxMsg(nil).u32(muxSPermissionDenied).u32(rid).str("Permission denied"))
				continue
			}
			reply(muxMsg(nil).u32(muxSOK).u32(rid))
			m.once.Do(func() { close(m.exit) })
			return
		case muxCStopListening:
			m.StopListening()
			if !reply(muxMsg(nil).u32(muxSOK).u32(rid)) {
				return
			}
		case muxCOpenFwd, muxCCloseFwd:
			if r := m.forward(typ, rid, msg); r == nil || !reply(r) {
				return
			}
		case muxCNewSession:
			m.newSession(conn, msg, rid)
			return
		case muxCNewStdioFwd:
			m.stdioFwd(conn, msg, rid)
			return
		default:
			// MUX_C_PROXY included: ec2ssh has no proxy mode.
			if !fail(fmt.Sprintf("unsupported request 0x%08x", typ)) {
				return
			}
		}
	}
}

// forward opens or closes a forwarding for a client (MUX_C_OPEN_FWD,
// MUX_C_CLOSE_FWD) and returns the reply; nil when the message is
// malformed.
func (m *MuxMaster) forward(typ, rid uint32, msg *muxReader) muxMsg {
	failed := func(reason string) muxMsg { return muxMsg(nil).u32(muxSFailure).u32(rid).str(reason) }
	ftype, lhost, lport, chost, cport := msg.u32(), msg.str(), msg.u32(), msg.str(), msg.u32()
	if msg.err != nil {
		return nil
	}
	f, err := muxForward(ftype, lhost, lport, chost, cport)
	if err != nil {
		return failed(err.Error())
	}
	fw := m.Client.Forwarder(m.ctx, m.Log)
	if typ == muxCCloseFwd {
		if err := fw.Cancel(f); err != nil {
			return failed(err.Error())
		}
		return muxMsg(nil).u32(muxSOK).u32(rid)
	}
	port, err := fw.Add(f)
	switch {
	case err != nil:
		return failed(err.Error())
	case port != 0:
		return muxMsg(nil).u32(muxSRemotePort).u32(rid).u32(uint32(port))
	}
	return muxMsg(nil).u32(muxSOK).u32(rid)
}

func (m *MuxMaster) confirm(format string) bool {
	if m.Prompter == nil {
		return false
	}
	ans, err := m.Prompter.Ask(fmt.Sprintf(format, m.Client.Config.HostName), true)
	return err == nil && (strings.EqualFold(strings.TrimSpace(ans), "yes") || strings.EqualFold(strings.TrimSpace(ans), "y"))
}

func (m *MuxMaster) begin() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active++
	m.nextID++
	return m.nextID
}

func (m *MuxMaster) end() {
	m.mu.Lock()
	m.active--
	m.mu.Unlock()
	select {
	case m.idle <- struct{}{}:
	default:
	}
}

// newSession runs a passenger session with the client's descriptors.
func (m *MuxMaster) newSession(conn *net.UnixConn, msg *muxReader, rid uint32) {
	_ = msg.str() // reserved
	tty, _, agentFwd, subsystem := msg.u32() != 0, msg.u32() != 0, msg.u32() != 0, msg.u32() != 0
	echar := msg.u32()
	termType, command := msg.str(), msg.str()
	var env []string
	for msg.err == nil && len(msg.b) > 0 {
		if e := msg.str(); strings.Contains(e, "=") {
			env = append(env, e)
		}
	}
	if msg.err != nil {
		return
	}
	fds, err := recvFDs(conn, 3)
	if err != nil {
		m.debug("debug1: mux: receiving the session's descriptors: %v", err)
		return
	}
	restore := nonblockingStdio(fds)
	stdin, stdout, stderr := os.NewFile(uintptr(fds[0]), "mux-stdin"), os.NewFile(uintptr(fds[1]), "mux-stdout"), os.NewFile(uintptr(fds[2]), "mux-stderr")
	defer stdin.Close()
	defer stdout.Close()
	defer stderr.Close()
	defer restore() // before the descriptors close
	if m.Ask && !m.confirm("Allow shared connection to %s? ") {
		writeMuxPacket(conn, muxMsg(nil).u32(muxSPermissionDenied).u32(rid).str("Permission denied"))
		return
	}
	sid := m.begin()
	defer m.end()
	if writeMuxPacket(conn, muxMsg(nil).u32(muxSSessionOpened).u32(rid).u32(sid)) != nil {
		return
	}

	c := *m.Client.Config
	c.SetEnv, c.SendEnv = nil, nil
	c.EscapeChar = "none"
	if echar != 0xffffffff && echar < 256 {
		c.EscapeChar = string(rune(byte(echar)))
	}
	if !agentFwd {
		c.ForwardAgent = "no"
	}
	s := &Session{Command: command, Subsystem: subsystem, Passenger: true, TTY: tty, TermType: termType, Env: env, Quiet: true, Config: &c}

	// The client going away (killed, ^C) ends its session.
	ctx, cancel := context.WithCancel(m.ctx)
	defer cancel()
	go func() {
		var b [1]byte
		conn.Read(b[:])
		cancel()
	}()
	logw := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\r\n", a...) }
	status, err := Run(ctx, m.Client, s, Stdio{In: stdin, InFile: stdin, Out: stdout, Err: stderr}, logw)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "ec2ssh: error: %v\r\n", err)
	}
	writeMuxPacket(conn, muxMsg(nil).u32(muxSExitMessage).u32(sid).u32(uint32(status)))
}

// stdioFwd is -W through the master.
func (m *MuxMaster) stdioFwd(conn *net.UnixConn, msg *muxReader, rid uint32) {
	_ = msg.str() // reserved
	host, port := msg.str(), msg.u32()
	if msg.err != nil {
		return
	}
	fds, err := recvFDs(conn, 2)
	if err != nil {
		return
	}
	in, out := os.NewFile(uintptr(fds[0]), "mux-stdin"), os.NewFile(uintptr(fds[1]), "mux-stdout")
	defer in.Close()
	defer out.Close()
	if m.Ask && !m.confirm("Allow forward to %s? ") {
		writeMuxPacket(conn, muxMsg(nil).u32(muxSPermissionDenied).u32(rid).str("Permission denied"))
		return
	}
	ch, err := m.Client.Dial("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		writeMuxPacket(conn, muxMsg(nil).u32(muxSFailure).u32(rid).str(err.Error()))
		return
	}
	sid := m.begin()
	defer m.end()
	writeMuxPacket(conn, muxMsg(nil).u32(muxSSessionOpened).u32(rid).u32(sid))
	go func() {
		var b [1]byte
		conn.Read(b[:])
		ch.Close()
	}()
	Splice(stdioFiles{in, out}, ch)
}

// stdioFiles is a passenger's stdin and stdout as one stream.
type stdioFiles struct{ in, out *os.File }

func (s stdioFiles) Read(b []byte) (int, error)  { return s.in.Read(b) }
func (s stdioFiles) Write(b []byte) (int, error) { return s.out.Write(b) }
func (s stdioFiles) CloseWrite() error           { return s.out.Close() }
func (s stdioFiles) Close() error                { s.in.Close(); return s.out.Close() }

// recvFDs receives n descriptors, each sent with one byte (mm_send_fd).
func recvFDs(conn *net.UnixConn, n int) ([]int, error) {
	var fds []int
	for len(fds) < n {
		buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4*n))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			closeFDs(fds)
			return nil, err
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			closeFDs(fds)
			return nil, err
		}
		got := 0
		for _, cm := range msgs {
			rights, err := unix.ParseUnixRights(&cm)
			if err == nil {
				fds = append(fds, rights...)
				got += len(rights)
			}
		}
		if got == 0 {
			closeFDs(fds)
			return nil, errors.New("no descriptor was passed")
		}
	}
	for _, fd := range fds {
		unix.CloseOnExec(fd)
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// sendFD passes fd with one byte, as OpenSSH's mm_send_fd does.
func sendFD(conn *net.UnixConn, fd int) error {
	_, _, err := conn.WriteMsgUnix([]byte{0}, unix.UnixRights(fd), nil)
	return err
}

// peerUID is the uid of the process at the other end of conn.
func peerUID(conn *net.UnixConn) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid := -1
	var cerr error
	raw.Control(func(fd uintptr) { uid, cerr = getPeerUID(int(fd)) })
	return uid, cerr
}
