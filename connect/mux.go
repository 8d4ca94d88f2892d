package connect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Connection sharing (ControlMaster, ControlPath, ControlPersist), speaking
// OpenSSH's multiplexing protocol (PROTOCOL.mux, version 4) on a Unix
// socket: an ec2ssh master serves ec2ssh and OpenSSH clients alike, and an
// ec2ssh client can ride an OpenSSH master. Sessions are "passengers": the
// client passes its stdin, stdout and stderr over the socket (SCM_RIGHTS)
// and waits for the exit status. Proxy mode (-O proxy) is not offered.
// Where there is no descriptor passing (Windows) sharing is off.

const (
	muxVersion = 4

	muxHello          = 0x00000001
	muxCNewSession    = 0x10000002
	muxCAliveCheck    = 0x10000004
	muxCTerminate     = 0x10000005
	muxCOpenFwd       = 0x10000006
	muxCCloseFwd      = 0x10000007
	muxCNewStdioFwd   = 0x10000008
	muxCStopListening = 0x10000009
	muxCProxy         = 0x1000000f

	muxSOK               = 0x80000001
	muxSPermissionDenied = 0x80000002
	muxSFailure          = 0x80000003
	muxSExitMessage      = 0x80000004
	muxSAlive            = 0x80000005
	muxSSessionOpened    = 0x80000006
	muxSRemotePort       = 0x80000007
	muxSTTYAllocFail     = 0x80000008

	muxFwdLocal   = 1
	muxFwdRemote  = 2
	muxFwdDynamic = 3

	// muxPortIsPath in a forward request's port says the host is a Unix
	// socket's path.
	muxPortIsPath = 0xfffffffe

	// muxMaxPacket bounds what a peer on the socket can make us allocate.
	muxMaxPacket = 256 << 10
)

// muxMsg builds one message body.
type muxMsg []byte

func (m muxMsg) u32(v uint32) muxMsg { return binary.BigEndian.AppendUint32(m, v) }
func (m muxMsg) str(s string) muxMsg { return append(m.u32(uint32(len(s))), s...) }

// muxReader takes a message body apart; the first short read sets err.
type muxReader struct {
	b   []byte
	err error
}

func (r *muxReader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errors.New("short message")
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *muxReader) str() string {
	n := r.u32()
	if r.err != nil || uint64(n) > uint64(len(r.b)) {
		r.err = errors.New("short message")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// writeMuxPacket writes a length-prefixed message.
func writeMuxPacket(w io.Writer, body muxMsg) error {
	_, err := w.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
	return err
}

// readMuxPacket reads one message, never past it (descriptors passed
// after it must stay unread).
func readMuxPacket(r io.Reader) (*muxReader, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > muxMaxPacket {
		return nil, fmt.Errorf("mux message of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return &muxReader{b: b}, nil
}

func muxHelloMsg() muxMsg { return muxMsg(nil).u32(muxHello).u32(muxVersion) }

// checkMuxHello reads the peer's hello.
func checkMuxHello(r io.Reader) error {
	m, err := readMuxPacket(r)
	if err != nil {
		return err
	}
	if t := m.u32(); t != muxHello {
		return fmt.Errorf("expected HELLO, got 0x%08x", t)
	}
	if v := m.u32(); m.err == nil && v != muxVersion {
		return fmt.Errorf("Unsupported multiplexing protocol version %d (expected %d)", v, muxVersion)
	}
	return m.err
}

// ControlPathFor expands c's ControlPath, or returns "" when there is none.
func ControlPathFor(c *Config) string {
	if c.ControlPath == "" || strings.EqualFold(c.ControlPath, "none") {
		return ""
	}
	p, err := expandDollar(ExpandPath(c.ControlPath))
	if err != nil {
		return ""
	}
	return expandTokens(p, c.tokens())
}

// ControlPersistTime is ControlPersist as a duration: 0 for no, -1 for yes
// (until told to exit), else the idle time after which the master ends.
func ControlPersistTime(c *Config) (time.Duration, error) {
	switch v := strings.ToLower(c.ControlPersist); v {
	case "", "no", "false":
		return 0, nil
	case "yes", "true":
		return -1, nil
	default:
		d, err := parseSeconds(v)
		if err != nil {
			return 0, badValue("ControlPersist", v, "yes, no or a time")
		}
		if d == 0 {
			return -1, nil // "ControlPersist 0" is yes
		}
		return d, nil
	}
}

// muxDirTrusted refuses a ControlPath whose directory other users can
// write to (unless, as /tmp, it has the sticky bit): they could put their
// own socket there and receive our sessions' terminals.
func muxDirTrusted(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if m := st.Mode(); m&0o022 != 0 && m&os.ModeSticky == 0 {
		return fmt.Errorf("%s is writable by other users (mode %s)", dir, strconv.FormatUint(uint64(m.Perm()), 8))
	}
	return nil
}

// muxForward converts a forward request's fields.
func muxForward(ftype uint32, lhost string, lport uint32, chost string, cport uint32) (Forward, error) {
	f := Forward{}
	switch ftype {
	case muxFwdLocal:
		f.Kind = 'L'
	case muxFwdRemote:
		f.Kind = 'R'
	case muxFwdDynamic:
		f.Kind = 'D'
	default:
		return f, fmt.Errorf("unknown forwarding type %d", ftype)
	}
	if lport == muxPortIsPath {
		f.BindPath = lhost
	} else if lport > 65535 {
		return f, fmt.Errorf("bad listen port %d", lport)
	} else {
		f.BindHost, f.BindPort = lhost, int(lport)
		if f.BindHost == "*" {
			f.BindHost = "*"
		}
	}
	if cport == muxPortIsPath {
		f.TargetPath = chost
	} else if cport > 65535 {
		return f, fmt.Errorf("bad connect port %d", cport)
	} else if f.Kind != 'D' {
		f.TargetHost, f.TargetPort = chost, int(cport)
	}
	return f, nil
}

// muxForwardFields is the request form of f.
func muxForwardFields(f Forward) (ftype uint32, lhost string, lport uint32, chost string, cport uint32) {
	ftype = map[byte]uint32{'L': muxFwdLocal, 'R': muxFwdRemote, 'D': muxFwdDynamic}[f.Kind]
	if f.Kind == 'R' && f.Dynamic() {
		ftype = muxFwdRemote
	}
	lhost, lport = f.BindHost, uint32(f.BindPort)
	if f.BindPath != "" {
		lhost, lport = f.BindPath, muxPortIsPath
	}
	chost, cport = f.TargetHost, uint32(f.TargetPort)
	if f.TargetPath != "" {
		chost, cport = f.TargetPath, muxPortIsPath
	}
	return
}
