package connect

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ec2ssh/ec2ssh/failure"
)

// ssh(1)'s words. Tools that run ssh read its stderr: ssh-copy-id looks
// for "Permission denied", Ansible's ssh plugin for "Could not resolve
// hostname", "Connection refused", "Connection timed out" and the like to
// call a host unreachable, people and scripts for "Host key verification
// failed." and the changed-host-key warning (issue 25). A failure ssh
// reports in such words carries them, exactly as openssh-portable 9.2
// prints them (sshconnect.c, sshconnect2.c, kex.c, packet.c, clientloop.c);
// ec2ssh's own summary and hint stay on the *failure.Error beneath, for
// the lines that follow.

// SSHError is a failure ssh(1) reports in words callers parse: its lines
// are ssh's stderr lines for it, each at the log level ssh prints it at;
// Err is the classified failure (Kind, summary, hint).
type SSHError struct {
	lines []sshLine
	shown logLevel // the LogLevel in force; lines above it are not printed
	Err   *failure.Error
}

func (e *SSHError) Error() string { return e.Err.Error() }
func (e *SSHError) Unwrap() error { return e.Err }

// logLevel orders ssh's log levels (log.c); a line is printed when its
// level is at most the LogLevel in force.
type logLevel int

const (
	levelAlways logLevel = iota // printed even under -q (quit_message)
	levelQuiet
	levelFatal
	levelError
	levelInfo
	levelAll = 99 // no LogLevel known: every line
)

// parseLogLevel reads LogLevel as ssh_config(5) spells it.
func parseLogLevel(s string) logLevel {
	switch strings.ToUpper(s) {
	case "QUIET":
		return levelQuiet
	case "FATAL":
		return levelFatal
	case "ERROR":
		return levelError
	case "":
		return levelAll
	}
	return levelInfo // INFO, VERBOSE, DEBUG*
}

// sshLine is one line ssh prints, and the level it prints it at.
type sshLine struct {
	level logLevel
	text  string
}

// errorLines are lines ssh prints with error(), fatalLine one it dies
// with (fatal, sshpkt_fatal), infoLine one it prints with logit().
func errorLines(texts ...string) []sshLine {
	out := make([]sshLine, len(texts))
	for i, t := range texts {
		out[i] = sshLine{levelError, t}
	}
	return out
}

func fatalLine(text string) sshLine { return sshLine{levelFatal, text} }
func infoLine(text string) sshLine  { return sshLine{levelInfo, text} }

// SSHLines returns ssh's stderr lines for err that the LogLevel in force
// shows: nil when err has no words of ssh's, empty when it has but the
// level hides them all (ssh prints nothing then).
func SSHLines(err error) []string {
	var se *SSHError
	if !errors.As(err, &se) {
		return nil
	}
	out := []string{}
	for _, l := range se.lines {
		if l.level <= se.shown {
			out = append(out, l.text)
		}
	}
	return out
}

// inWords attaches ssh's lines to a classified failure.
func inWords(fe *failure.Error, lines ...sshLine) *SSHError {
	return &SSHError{lines: lines, shown: levelAll, Err: fe}
}

// atLogLevel records the LogLevel in force on err's words, if it has any.
func atLogLevel(err error, level string) error {
	var se *SSHError
	if errors.As(err, &se) {
		se.shown = parseLogLevel(level)
	}
	return err
}

// progname is ssh's __progname: the name it was run as.
func progname() string {
	if len(os.Args) == 0 {
		return "ssh"
	}
	return strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
}

// remoteID is sshpkt_fmt_connection_id: "ADDRESS port PORT", or what ssh
// says of a connection that is not a socket (a ProxyCommand's pipes).
func remoteID(conn net.Conn) string {
	if conn != nil {
		if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			return a.IP.String() + " port " + strconv.Itoa(a.Port)
		}
	}
	return "UNKNOWN port 65535"
}

// strerror is the C library's text for the errno in err ("" if none).
func strerror(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		if isTimeout(err) {
			return "Connection timed out"
		}
		return ""
	}
	// Go's texts are strerror's, lower-cased.
	s := errno.Error()
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// connectWords is ssh_connect_direct's line for a TCP connect that failed.
func connectWords(host string, port int, err error) string {
	why := strerror(err)
	if why == "" {
		why = "failure"
	}
	return fmt.Sprintf("ssh: connect to host %s port %d: %s", host, port, why)
}

// resolveWords is ssh's line for a name that does not resolve, with
// gai_strerror's text for what the resolver said.
func resolveWords(host string, dnsErr *net.DNSError) string {
	why := "Temporary failure in name resolution"
	if dnsErr.IsNotFound {
		why = "Name or service not known"
	}
	return fmt.Sprintf("%s: Could not resolve hostname %s: %s", progname(), strings.ToLower(host), why)
}

// negotiationWords is sshpkt_fatal's line for algorithms that do not meet.
func negotiationWords(id, what string, theirs []string) string {
	kind := "no matching cipher found"
	switch {
	case what == "key exchange":
		kind = "no matching key exchange method found"
	case what == "host key":
		kind = "no matching host key type found"
	case strings.HasSuffix(what, "MAC"):
		kind = "no matching MAC found"
	case strings.HasSuffix(what, "compression"):
		kind = "no matching compression method found"
	}
	return fmt.Sprintf("Unable to negotiate with %s: %s. Their offer: %s", id, kind, strings.Join(theirs, ","))
}

// Host key verification ends with this line, whatever went wrong before.
const hostKeyFailed = "Host key verification failed."

// changedKeyWords is the warning ssh prints (with error()) for a changed
// host key (warn_changed_key and check_host_key's HOST_CHANGED case).
func changedKeyWords(name, keyType, fp, file string, w knownHost) []string {
	return []string{
		"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
		"@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
		"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
		"IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
		"Someone could be eavesdropping on you right now (man-in-the-middle attack)!",
		"It is also possible that a host key has just been changed.",
		"The fingerprint for the " + keyType + " key sent by the remote host is\n" + fp + ".",
		"Please contact your system administrator.",
		"Add correct host key in " + file + " to get rid of this message.",
		fmt.Sprintf("Offending %s key in %s:%d", keyName(w.key), w.file, w.line),
		"  remove with:",
		fmt.Sprintf("  ssh-keygen -f \"%s\" -R \"%s\"", w.file, name),
	}
}

// revokedKeyWords is check_host_key's HOST_REVOKED warning.
func revokedKeyWords(name, keyType string) []string {
	return []string{
		"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
		"@       WARNING: REVOKED HOST KEY DETECTED!               @",
		"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
		"The " + keyType + " host key for " + name + " is marked as revoked.",
		"This could mean that a stolen key is being used to",
		"impersonate this host.",
	}
}
