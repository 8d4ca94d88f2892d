package connect

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/ec2ssh/ec2ssh/failure"
)

// The identification exchange (RFC 4253 4.2) as ssh(1)'s
// kex_exchange_identification does it (kex.c): the server may send lines
// of other text before its version line, up to 1024 of them of up to 8192
// bytes each; NUL, or CR not before LF, is refused. x/crypto allows 255
// bytes a line, so ec2ssh reads this part itself (bounded: a hostile
// server's junk costs at most 1024 × 8 KiB read, under the handshake's
// deadline) and says what went wrong in ssh's words.
const (
	maxPreBannerLines = 1024 // SSH_MAX_PRE_BANNER_LINES
	maxBannerLen      = 8192 // SSH_MAX_BANNER_LEN
	xcryptoVersionMax = 253  // x/crypto's 255 bytes, with CR LF
)

// identify sends version (our identification string, without CR LF) and
// reads the server's. It returns the connection to hand x/crypto: its
// reads start at the server's version line, and x/crypto's own write of
// version is taken as already done. Errors are *SSHError of kind NoBanner
// (nothing that looked like SSH), Unreachable (a timeout) or Unknown.
func identify(w *connWatch, version, target string) (*identConn, error) {
	if _, err := w.Write([]byte(version + "\r\n")); err != nil {
		return nil, identError(w, target, err)
	}
	br := bufio.NewReaderSize(w, 4096)
	for n := 0; ; n++ {
		if n >= maxPreBannerLines {
			return nil, identInvalid(w, target, fmt.Sprintf("kex_exchange_identification: No SSH version received in first %d lines from server", maxPreBannerLines))
		}
		line, err := readIdentLine(br)
		if err != nil {
			var bad identLineError
			if errors.As(err, &bad) {
				return nil, identInvalid(w, target, "kex_exchange_identification: "+string(bad))
			}
			return nil, identError(w, target, err)
		}
		if len(line) > 4 && strings.HasPrefix(line, "SSH-") {
			if err := checkVersionLine(line); err != nil {
				return nil, identInvalid(w, target, err.Error())
			}
			if len(line) > xcryptoVersionMax {
				return nil, inWords(&failure.Error{Kind: failure.Algorithms, Op: "ssh handshake with", Target: target,
					Msg:  fmt.Sprintf("%s sent a version line of %d bytes, longer than golang.org/x/crypto/ssh reads (255)", target, len(line)),
					Hint: "OpenSSH's ssh reads such a line; use it for this host"}, errorLines("kex_exchange_identification: banner line too long")...)
			}
			w.setBanner()
			return &identConn{connWatch: w, r: io.MultiReader(strings.NewReader(line+"\r\n"), br), sent: []byte(version + "\r\n"),
				remote: line}, nil
		}
	}
}

// identLineError is a line kex.c refuses, in its words.
type identLineError string

func (e identLineError) Error() string { return string(e) }

// readIdentLine reads one line ending in LF (CR LF), as kex.c reads it.
func readIdentLine(br *bufio.Reader) (string, error) {
	var line []byte
	expectNL := false
	for {
		c, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		switch {
		case c == '\r':
			expectNL = true
			continue
		case c == '\n':
			return string(line), nil
		case c == 0 || expectNL:
			return "", identLineError("banner line contains invalid characters")
		}
		line = append(line, c)
		if len(line) > maxBannerLen {
			return "", identLineError("banner line too long")
		}
	}
}

// checkVersionLine is kex.c's check of "SSH-protoversion-softwareversion".
func checkVersionLine(line string) error {
	proto, software, ok := strings.Cut(line[len("SSH-"):], "-")
	major, minor, dot := strings.Cut(proto, ".")
	maj, err1 := strconv.Atoi(major)
	_, err2 := strconv.Atoi(minor)
	if !ok || !dot || software == "" || err1 != nil || err2 != nil {
		return fmt.Errorf("Bad remote protocol version identification: '%.100s'", line)
	}
	if maj != 2 && proto != "1.99" {
		return fmt.Errorf("Protocol major versions differ: 2 vs. %d", maj)
	}
	return nil
}

// identInvalid: the server's identification is not SSH's.
func identInvalid(w *connWatch, target, why string) error {
	return inWords(&failure.Error{Kind: failure.NoBanner, Op: "ssh handshake with", Target: target,
		Msg:  fmt.Sprintf("%s did not identify as an SSH server: %s", target, strings.TrimPrefix(why, "kex_exchange_identification: ")),
		Hint: "the port is open but what answers there is not a working SSH server"},
		append(errorLines(why), fatalLine("banner exchange: Connection to "+remoteID(w.Conn)+": invalid format"))...)
}

// BannerError is the failure of a connection that ended (err) before the
// server sent its first line, in ssh's words: for callers that wait for
// sshd's banner themselves (a race between transports). target names the
// destination in ec2ssh's summary.
// Its kind is NoBanner, as any connection that never showed one.
func BannerError(conn net.Conn, target string, err error) error {
	e := identError(&connWatch{Conn: conn}, target, err)
	var fe *failure.Error
	if errors.As(e, &fe) {
		fe.Kind = failure.NoBanner
		if fe.Msg == "" {
			fe.Msg = target + " closed the connection without an SSH banner"
		}
	}
	return e
}

// identError: the connection failed before the server's version line.
func identError(w *connWatch, target string, err error) error {
	if inner := (*failure.Error)(nil); errors.As(err, &inner) {
		// The transport said why it ended (an SSM port session the agent
		// closed, a tunnel refused): its kind decides what comes next.
		return err
	}
	id := remoteID(w.Conn)
	fe := &failure.Error{Kind: failure.NoBanner, Op: "ssh handshake with", Target: target, Err: err,
		Hint: "the port is open but no SSH server answers there: is it sshd, and is it healthy (MaxStartups, a hung daemon)?"}
	switch {
	case isTimeout(err):
		fe.Msg = fmt.Sprintf("%s accepted the connection but sent no SSH banner in time", target)
		return inWords(fe, append(errorLines("Connection timed out during banner exchange"), fatalLine("Connection to "+id+" timed out"))...)
	case errors.Is(err, io.EOF):
		fe.Msg = fmt.Sprintf("%s closed the connection without an SSH banner", target)
		return inWords(fe, append(errorLines("kex_exchange_identification: Connection closed by remote host"), fatalLine("Connection closed by "+id))...)
	case errors.Is(err, syscall.ECONNRESET):
		fe.Msg = fmt.Sprintf("%s reset the connection without an SSH banner", target)
		return inWords(fe, append(errorLines("kex_exchange_identification: read: Connection reset by peer"), fatalLine("Connection reset by "+id))...)
	case errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrClosedPipe):
		// Our identification could not be written: the other end had
		// already gone (an SSM port session the agent ended at once).
		fe.Msg = fmt.Sprintf("%s closed the connection without an SSH banner", target)
		return inWords(fe, append(errorLines("kex_exchange_identification: write: Broken pipe"), fatalLine("banner exchange: Connection to "+id+": Broken pipe"))...)
	}
	fe.Kind = failure.Unknown
	if why := strerror(err); why != "" {
		return inWords(fe, fatalLine("banner exchange: Connection to "+id+": "+why))
	}
	return fe
}

// identConn is the connection x/crypto runs on after identify.
type identConn struct {
	*connWatch
	r    io.Reader
	mu   sync.Mutex
	sent []byte // our identification, already written; nil once x/crypto has "written" it

	remote string // the server's version line
}

// remoteVersion is ssh -v's "Remote protocol version 2.0, remote software
// version OpenSSH_9.2p1 Debian-2" (ssh-copy-id reads the software version
// to tell NetScreen and dropbear from the rest).
func (c *identConn) remoteVersion() string {
	proto, software, _ := strings.Cut(strings.TrimPrefix(c.remote, "SSH-"), "-")
	return fmt.Sprintf("Remote protocol version %s, remote software version %s", proto, software)
}

func (c *identConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *identConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.sent != nil && bytes.Equal(p, c.sent) {
		c.sent = nil
		c.mu.Unlock()
		return len(p), nil
	}
	c.sent = nil
	c.mu.Unlock()
	return c.connWatch.Write(p)
}
