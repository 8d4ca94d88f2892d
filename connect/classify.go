package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/failure"
)

// classifyDial turns an error from opening the TCP (or proxy) connection to
// host:port into a *failure.Error, with ssh's words where ssh has them.
// This is the one place network errors are classified.
func classifyDial(err error, host string, port int) error {
	if err == nil {
		return nil
	}
	var fe *failure.Error
	if errors.As(err, &fe) {
		return err
	}
	target := host + " port " + strconv.Itoa(port)
	e := &failure.Error{Op: "connect to", Target: target, Err: err}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.Canceled):
		e.Kind = failure.Canceled
	case errors.As(err, &dnsErr):
		e.Kind = failure.DNS
		e.Msg = fmt.Sprintf("could not resolve hostname %s: %s", host, dnsErr.Err)
		e.Hint = "check the name, or give an address, an instance id or a Host alias from ~/.ssh/config"
		return inWords(e, errorLines(resolveWords(host, dnsErr))...)
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Kind = failure.Refused
		e.Msg = fmt.Sprintf("connect to %s: connection refused", target)
		e.Hint = fmt.Sprintf("nothing listens on port %d there: is sshd running, and on that port?", port)
		return inWords(e, errorLines(connectWords(host, port, syscall.ECONNREFUSED))...)
	case isTimeout(err), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN):
		e.Kind = failure.Unreachable
		e.Msg = fmt.Sprintf("connect to %s: %s", target, unreachableReason(err))
		e.Hint = "packets are dropped on the way: a firewall, security group or network ACL, or no route to the host"
		return inWords(e, errorLines(connectWords(host, port, err))...)
	case wireMessage(err) != "":
		e.Kind = failure.Unknown
		e.Msg = wireMessage(err)
		e.Hint = "the data was altered on its way: a faulty network path or something in the middle"
	default:
		e.Kind = failure.Unknown
		if why := strerror(err); why != "" {
			return inWords(e, errorLines(connectWords(host, port, err))...)
		}
	}
	return e
}

// wireMessage is ssh(1)'s wording for a packet x/crypto rejected as
// altered in transit ("" for other errors): scripts and people match
// these words.
func wireMessage(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "MAC failure") || strings.Contains(s, "message authentication failed"):
		return "Corrupted MAC on input."
	case strings.Contains(s, "packet too large") || strings.Contains(s, "invalid packet length"):
		return "Bad packet length."
	case strings.Contains(s, "padding"):
		return "padding error: " + s
	}
	return ""
}

func unreachableReason(err error) string {
	switch {
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network is unreachable"
	}
	return "connection timed out"
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// classifyHandshake turns an error from the SSH handshake (version exchange,
// key exchange, host key check, authentication) into a *failure.Error,
// with ssh's words. Errors from ec2ssh's own callbacks arrive already
// classified, through x/crypto's %w wrapping.
func classifyHandshake(err error, w *connWatch, target string) error {
	if err == nil {
		return nil
	}
	var se *SSHError
	if errors.As(err, &se) {
		return se // "ssh: handshake failed:" adds nothing a person needs
	}
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe
	}
	id := remoteID(w.Conn)
	e := &failure.Error{Op: "ssh handshake with", Target: target, Err: err}
	var ane *ssh.AlgorithmNegotiationError
	switch {
	case errors.Is(err, context.Canceled):
		e.Kind = failure.Canceled
	case !w.sawBanner():
		e.Kind = failure.NoBanner
		e.Hint = "the port is open but no SSH server answers there: is it sshd, and is it healthy (MaxStartups, a hung daemon)?"
		if isTimeout(err) {
			e.Msg = fmt.Sprintf("%s accepted the connection but sent no SSH banner in time", target)
			return inWords(e, append(errorLines("Connection timed out during banner exchange"), fatalLine("Connection to "+id+" timed out"))...)
		}
		e.Msg = fmt.Sprintf("%s closed the connection without an SSH banner", target)
		if errors.Is(err, syscall.ECONNRESET) {
			return inWords(e, append(errorLines("kex_exchange_identification: read: Connection reset by peer"), fatalLine("Connection reset by "+id))...)
		}
		return inWords(e, append(errorLines("kex_exchange_identification: Connection closed by remote host"), fatalLine("Connection closed by "+id))...)
	case errors.As(err, &ane):
		e.Kind = failure.Algorithms
		e.Hint = "the server and ec2ssh share no algorithm; the server may be very old or very strictly configured"
		return inWords(e, fatalLine(negotiationWords(id, ane.What, ane.RequestedAlgorithms)))
	case isTimeout(err):
		e.Kind = failure.Unreachable
		e.Msg = fmt.Sprintf("ssh handshake with %s timed out", target)
		e.Hint = "the server stopped answering during the handshake"
		return inWords(e, fatalLine("Connection to "+id+" timed out"))
	case peerEnded(err, w):
		e.Kind = failure.Unknown
		e.Msg = fmt.Sprintf("connection closed by %s during the handshake", target)
		e.Hint = "the server hung up: see its log (journalctl -u ssh) for why"
		if reset(err, w) {
			return inWords(e, fatalLine("Connection reset by "+id))
		}
		return inWords(e, fatalLine("Connection closed by "+id))
	default:
		e.Kind = failure.Unknown
	}
	return e
}

// peerEnded reports whether the server closed or reset the connection.
// What the network said first (a read's EOF before the write that the
// server's reset then failed) decides, not what x/crypto reports, which
// may be its own closing of the connection.
func peerEnded(err error, w *connWatch) bool {
	if pe := w.peerErr(); pe != nil {
		err = pe
	}
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func reset(err error, w *connWatch) bool {
	if pe := w.peerErr(); pe != nil {
		err = pe
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// connWatch is the connection an SSH client runs over, watched: whether
// the server's version line came (to tell a server that never spoke SSH,
// NoBanner, from one that failed later), and the first error reading and
// writing it (to say, as ssh(1) does, how a connection ended: closed by
// the remote host, reset, timed out).
type connWatch struct {
	net.Conn
	mu                sync.Mutex
	banner            bool
	readErr, writeErr error
}

func (w *connWatch) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil {
		w.mu.Lock()
		if w.readErr == nil {
			w.readErr = err
		}
		w.mu.Unlock()
	}
	return n, err
}

func (w *connWatch) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	if err != nil {
		w.mu.Lock()
		if w.writeErr == nil {
			w.writeErr = err
		}
		w.mu.Unlock()
	}
	return n, err
}

func (w *connWatch) setBanner() {
	w.mu.Lock()
	w.banner = true
	w.mu.Unlock()
}

// sawBanner reports whether the server's version line arrived.
func (w *connWatch) sawBanner() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.banner
}

// peerErr is the first error the network gave, reading or writing, other
// than our own closing of the connection (nil if none).
func (w *connWatch) peerErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, err := range []error{w.readErr, w.writeErr} {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	return nil
}
