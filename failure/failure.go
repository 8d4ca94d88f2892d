// Package failure owns the closed set of ways an ec2ssh connection can fail
// (SPEC.md, "Connecting, and the fallback ladder") and the error type that
// carries one. It depends on the standard library only, so that connect,
// preflight and fallback can all classify into it and main can map it to a
// message and an exit status in one place.
package failure

import (
	"errors"
	"fmt"
)

// Kind is one way a connection can fail. The set is closed: decisions switch
// on Kind with a default that does not fall back, and a test ranges over
// Kinds so that adding one forces every decision to be revisited.
type Kind int

const (
	Unknown        Kind = iota // not classified; never falls back
	DNS                        // the host name does not resolve
	Refused                    // TCP connection refused: nothing listens on the port
	Unreachable                // no answer: a timeout, dropped packets, no route
	NoBanner                   // TCP connected but no SSH-2.0 banner arrived
	HostKeyUnknown             // the host key is not in known_hosts and may not be added
	HostKeyChanged             // the host key differs from the one in known_hosts
	AuthRejected               // the server refused every credential offered
	Algorithms                 // no common key exchange, cipher, MAC or host key algorithm
	AWSAuth                    // AWS credentials missing, expired or denied
	InstanceState              // the instance is not running
	Config                     // bad command line, ssh_config or destination
	Canceled                   // the user or a deadline stopped it
	// SessionEnded: an SSM port session ended before the port sent a byte.
	// The agent's basic port session (AWS-StartSSHSession) ends so, with
	// no ConnectToPortError, when its dial to the port is refused; a
	// server that hangs up at once looks the same. Only a look inside the
	// instance tells which (fallback.Next's LookInside).
	SessionEnded
)

// Kinds lists every Kind, for tests that must cover them all.
var Kinds = []Kind{Unknown, DNS, Refused, Unreachable, NoBanner, HostKeyUnknown,
	HostKeyChanged, AuthRejected, Algorithms, AWSAuth, InstanceState, Config, Canceled, SessionEnded}

var names = map[Kind]string{
	Unknown:        "Unknown",
	DNS:            "DNS",
	Refused:        "Refused",
	Unreachable:    "Unreachable",
	NoBanner:       "NoBanner",
	HostKeyUnknown: "HostKeyUnknown",
	HostKeyChanged: "HostKeyChanged",
	AuthRejected:   "AuthRejected",
	Algorithms:     "Algorithms",
	AWSAuth:        "AWSAuth",
	InstanceState:  "InstanceState",
	Config:         "Config",
	Canceled:       "Canceled",
	SessionEnded:   "SessionEnded",
}

func (k Kind) String() string {
	if s, ok := names[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a classified failure: what was being done (Op) to which target,
// why (Err), and a one-line Hint a person can act on.
type Error struct {
	Kind   Kind
	Op     string // "dial", "handshake", "authenticate", "parse options", …
	Target string // host:port, instance id, file name; may be empty
	Err    error  // the cause; may be nil when Msg says it all
	Msg    string // the one-line summary; derived from Op, Target and Err when empty
	Hint   string // what to do about it; may be empty
}

func (e *Error) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	s := e.Op
	if e.Target != "" {
		s += " " + e.Target
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or Unknown.
func KindOf(err error) Kind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return Unknown
}

// HintOf returns the hint of the first *Error in err's chain that has one.
func HintOf(err error) string {
	for err != nil {
		var fe *Error
		if !errors.As(err, &fe) {
			return ""
		}
		if fe.Hint != "" {
			return fe.Hint
		}
		err = fe.Err
	}
	return ""
}

// New returns an *Error of kind k with the message and hint given.
func New(k Kind, msg, hint string) *Error {
	return &Error{Kind: k, Msg: msg, Hint: hint}
}

// Configf returns a Config error with a formatted message; the usual answer
// to bad command lines, ssh_config values and destinations.
func Configf(hint, format string, args ...any) *Error {
	return &Error{Kind: Config, Msg: fmt.Sprintf(format, args...), Hint: hint}
}
