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
// host:port into a *failure.Error. This is the one place network errors are
// classified.
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
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Kind = failure.Refused
		e.Msg = fmt.Sprintf("connect to %s: connection refused", target)
		e.Hint = fmt.Sprintf("nothing listens on port %d there: is sshd running, and on that port?", port)
	case isTimeout(err), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN):
		e.Kind = failure.Unreachable
		e.Msg = fmt.Sprintf("connect to %s: %s", target, unreachableReason(err))
		e.Hint = "packets are dropped on the way: a firewall, security group or network ACL, or no route to the host"
	case wireMessage(err) != "":
		e.Kind = failure.Unknown
		e.Msg = wireMessage(err)
		e.Hint = "the data was altered on its way: a faulty network path or something in the middle"
	default:
		e.Kind = failure.Unknown
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
// key exchange, host key check, authentication) into a *failure.Error.
// Errors from ec2ssh's own callbacks arrive already classified, through
// x/crypto's %w wrapping.
func classifyHandshake(err error, w *bannerWatch, target string) error {
	if err == nil {
		return nil
	}
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe // "ssh: handshake failed:" adds nothing a person needs
	}
	e := &failure.Error{Op: "ssh handshake with", Target: target, Err: err}
	var ane *ssh.AlgorithmNegotiationError
	switch {
	case errors.Is(err, context.Canceled):
		e.Kind = failure.Canceled
	case !w.sawBanner():
		e.Kind = failure.NoBanner
		if isTimeout(err) {
			e.Msg = fmt.Sprintf("%s accepted the connection but sent no SSH banner in time", target)
		} else {
			e.Msg = fmt.Sprintf("%s closed the connection without an SSH banner", target)
		}
		e.Hint = "the port is open but no SSH server answers there: is it sshd, and is it healthy (MaxStartups, a hung daemon)?"
	case errors.As(err, &ane):
		e.Kind = failure.Algorithms
		e.Hint = "the server and ec2ssh share no algorithm; the server may be very old or very strictly configured"
	case isTimeout(err):
		e.Kind = failure.Unreachable
		e.Msg = fmt.Sprintf("ssh handshake with %s timed out", target)
		e.Hint = "the server stopped answering during the handshake"
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		e.Kind = failure.Unknown
		e.Msg = fmt.Sprintf("connection closed by %s during the handshake", target)
		e.Hint = "the server hung up: see its log (journalctl -u ssh) for why"
	default:
		e.Kind = failure.Unknown
	}
	return e
}

// bannerWatch remembers the first bytes a connection read, to tell a server
// that never sent "SSH-" (NoBanner) from one that failed later.
type bannerWatch struct {
	net.Conn
	mu    sync.Mutex
	first []byte
}

func (w *bannerWatch) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 {
		w.mu.Lock()
		if len(w.first) < 4 {
			w.first = append(w.first, p[:min(n, 4-len(w.first))]...)
		}
		w.mu.Unlock()
	}
	return n, err
}

// sawBanner reports whether the server's first bytes were "SSH-". RFC 4253
// allows lines before the version line; a server that sends them and then
// fails is rare enough to be reported as NoBanner.
func (w *bannerWatch) sawBanner() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.first) == "SSH-"
}
