package connect

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// The escape sequences of ssh(1) on a PTY session: the escape character
// (EscapeChar, ~ by default, none to disable) typed at the start of a line
// followed by one of
//
//	.   disconnect          B   send a BREAK       C   command line (forwards;
//	                                               EnableEscapeCommandline yes)
//	^Z  suspend ec2ssh      #   list forwardings   ?   help
//	~   send one escape character
//
// ~R (rekey), ~V/~v (log level) and ~& (background) are ssh features
// x/crypto gives no way to do; they say so rather than send the keys on.

// escapeActions are what the sequences do; the session provides them.
type escapeActions struct {
	disconnect func()
	sendBreak  func()
	suspend    func()                   // stop ec2ssh until it is continued (SIGTSTP)
	command    func(line string) string // runs a ~C line, returns what to show
	readLine   func(prompt string) (string, error)
	list       func() []string
}

// escapeFilter passes keystrokes from r to the remote side and acts on the
// escape sequences in them.
type escapeFilter struct {
	r   io.Reader
	esc byte
	msg io.Writer // the local terminal (raw: lines end in \r\n)
	act escapeActions

	mu           sync.Mutex
	lineStart    bool
	pending      bool // the escape character was typed at a line's start
	out          []byte
	buf          [4096]byte
	disconnected bool
}

func newEscapeFilter(r io.Reader, esc byte, msg io.Writer, act escapeActions) *escapeFilter {
	return &escapeFilter{r: r, esc: esc, msg: msg, act: act, lineStart: true}
}

// Disconnected reports whether ~. ended the session.
func (e *escapeFilter) Disconnected() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.disconnected
}

func (e *escapeFilter) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.Disconnected() {
			return 0, io.EOF
		}
		n, err := e.r.Read(e.buf[:])
		for _, ch := range e.buf[:n] {
			e.key(ch)
		}
		if err != nil && len(e.out) == 0 {
			return 0, err
		}
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

func (e *escapeFilter) say(format string, a ...any) {
	text := strings.ReplaceAll(fmt.Sprintf(format, a...), "\r\n", "\n")
	io.WriteString(e.msg, strings.ReplaceAll(text, "\n", "\r\n"))
}

func (e *escapeFilter) key(ch byte) {
	if !e.pending {
		if e.lineStart && ch == e.esc {
			e.pending = true
			return
		}
		e.out = append(e.out, ch)
		e.lineStart = ch == '\r' || ch == '\n'
		return
	}
	e.pending = false
	name := escName(e.esc)
	switch ch {
	case '.':
		e.say("%s.\n", name)
		e.mu.Lock()
		e.disconnected = true
		e.mu.Unlock()
		e.act.disconnect()
	case 'B':
		e.say("%sB\n", name)
		e.act.sendBreak()
	case 'C':
		if e.act.readLine == nil {
			e.say("commandline disabled\n")
			break
		}
		line, err := e.act.readLine("\nssh> ")
		if err == nil && strings.TrimSpace(line) != "" {
			e.say("%s", e.act.command(strings.TrimSpace(line)))
		}
	case 0x1a: // ^Z
		e.say("%s^Z [suspend ec2ssh]\n", name)
		e.act.suspend()
	case '#':
		e.say("%s#\nThe following connections are open:\n", name)
		for _, l := range e.act.list() {
			e.say("  %s\n", l)
		}
	case '?':
		cmdline := ""
		if e.act.readLine != nil {
			cmdline = " " + name + "C   - open a command line\n"
		}
		e.say("%s?\nSupported escape sequences:\n"+
			" %[2]s.   - terminate connection\n"+
			" %[2]sB   - send a BREAK to the remote system\n"+
			"%[3]s"+
			" %[2]s^Z  - suspend ec2ssh\n"+
			" %[2]s#   - list forwarded connections\n"+
			" %[2]s?   - this message\n"+
			" %[2]s%[2]s   - send the escape character by typing it twice\n"+
			"(Note that escapes are only recognized immediately after newline.)\n", name, name, cmdline)
	case 'R', 'V', 'v', '&':
		e.say("%s%c is not supported by ec2ssh (x/crypto gives no way to do it)\n", name, ch)
	default:
		if ch != e.esc {
			e.out = append(e.out, e.esc)
		}
		e.out = append(e.out, ch)
		e.lineStart = ch == '\r' || ch == '\n'
		return
	}
	e.lineStart = true
}

// escName is how ssh(1) shows the escape character: ~, or ^X for a
// control character.
func escName(c byte) string {
	if c < 0x20 {
		return "^" + string(rune(c+'@'))
	}
	return string(rune(c))
}

// escapeCommand runs a ~C command line: -L, -R, -D to add a forwarding,
// -KL, -KR, -KD to cancel one.
func escapeCommand(fw *Forwarder, line string) string {
	help := "Commands:\n" +
		"      -L[bind_address:]port:host:hostport    Request local forward\n" +
		"      -R[bind_address:]port:host:hostport    Request remote forward\n" +
		"      -D[bind_address:]port                  Request dynamic forward\n" +
		"      -KL[bind_address:]port                 Cancel local forward\n" +
		"      -KR[bind_address:]port                 Cancel remote forward\n" +
		"      -KD[bind_address:]port                 Cancel dynamic forward\n"
	if line == "h" || line == "?" || line == "help" || line == "-h" {
		return help
	}
	cancel := strings.HasPrefix(line, "-K")
	rest := strings.TrimPrefix(line, "-")
	if cancel {
		rest = strings.TrimPrefix(line, "-K")
	}
	if rest == "" || strings.IndexByte("LRD", rest[0]) < 0 {
		return "Invalid command.\n" + help
	}
	kind, spec := rest[0], strings.TrimSpace(rest[1:])
	if cancel {
		// The listening half only: [bind_address:]port or a path.
		f, err := ParseForward('D', spec)
		if err != nil && strings.Contains(spec, "/") {
			f, err = Forward{BindPath: spec}, nil
		}
		if err != nil {
			return "Bad forwarding close specification.\n"
		}
		f.Kind = kind
		if err := fw.Cancel(f); err != nil {
			return fmt.Sprintf("%v\n", err)
		}
		return "Canceled forwarding.\n"
	}
	f, err := ParseForward(kind, spec)
	if err != nil {
		return "Bad forwarding specification.\n"
	}
	if _, err := fw.Add(f); err != nil {
		return fmt.Sprintf("%v\n", err)
	}
	return "Forwarding port.\n"
}
