package fallback

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2ssh/ec2ssh/failure"
)

// ReadyTimeout bounds the wait for the wrapper's first word: the agent
// starts the terminal at once and reads its output after a second
// (writePump's first wait), so a wrapper silent for this long is not coming.
const ReadyTimeout = 30 * time.Second

// HangupWait is how long a cancelled command waits for its hangup record to
// be on its way before the session is terminated: ec2ssh has 300 ms in all
// after a signal (main's signalGrace).
const HangupWait = 50 * time.Millisecond

// Stream is a command run on an instance over SSM with ssh's promise kept
// (cmdproto.go): stdin byte for byte with its EOF, stdout and stderr apart
// and byte for byte as they are produced, and the exit status.
type Stream struct {
	ch    *Channel
	nonce string
	debug func(format string, a ...any)
}

// StartStream starts command on the instance under
// AWS-StartInteractiveCommand, inside the wrapper (WrapCommand). Errors are
// StartSession's and OpenChannel's.
func (s *SSM) StartStream(ctx context.Context, instanceID, command string) (*Stream, error) {
	nonce := newNonce()
	ep, err := s.start(ctx, &ssm.StartSessionInput{Target: aws.String(instanceID), DocumentName: aws.String(InteractiveDocument),
		Parameters: map[string][]string{"command": {WrapCommand(nonce, command)}}})
	if err != nil {
		return nil, err
	}
	opts := s.options(instanceID, false)
	opts.HandshakeOptional = true
	ch, err := OpenChannel(ctx, s, ep, opts)
	if err != nil {
		return nil, err
	}
	return &Stream{ch: ch, nonce: nonce, debug: s.Debug}, nil
}

func newNonce() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Channel is the stream's data channel.
func (st *Stream) Channel() *Channel { return st.ch }

// MissingToolsError says the instance lacks what the wrapper needs (a
// Windows or macOS shell, a trimmed image); nothing was run.
type MissingToolsError struct{ Tools string }

func (e *MissingToolsError) Error() string {
	return "the instance lacks what ec2ssh's command wrapper needs:" + " " + e.Tools
}

// Run copies stdin to the command and its output to stdout and stderr, and
// returns its exit status. It ends the session before it returns. On
// failure the status is 255, as ssh(1) reports its own failures, and the
// error says why: *MissingToolsError when the wrapper could not run
// (nothing ran; the caller may fall back), Canceled when ctx ended (the
// command's process group was sent SIGHUP), Unknown or the channel's kind
// otherwise. A local stdout that fails (a closed pipe) ends the command the
// same way and returns 255 with no error, as ssh(1) ends quietly.
func (st *Stream) Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	r := &streamRun{st: st, ready: make(chan struct{}), stop: make(chan struct{}), result: make(chan streamResult, 1)}
	r.cond = sync.NewCond(&r.mu)
	go r.readLoop(stdout, stderr)
	go r.inputLoop(stdin)
	timer := time.NewTimer(ReadyTimeout)
	defer timer.Stop()
	var res streamResult
	select {
	case res = <-r.result:
	case <-ctx.Done():
		res = r.cancel(&failure.Error{Kind: failure.Canceled, Msg: "interrupted", Err: context.Cause(ctx)})
	case <-timer.C:
		if !r.isReady() {
			res = r.cancel(&failure.Error{Kind: failure.Unreachable, Msg: fmt.Sprintf("the command did not start on the instance in %v", ReadyTimeout),
				Hint: "the SSM agent may be overloaded; try again"})
			break
		}
		select {
		case res = <-r.result:
		case <-ctx.Done():
			res = r.cancel(&failure.Error{Kind: failure.Canceled, Msg: "interrupted", Err: context.Cause(ctx)})
		}
	}
	r.finish()
	st.ch.abort()
	return res.code, res.err
}

type streamResult struct {
	code int
	err  error
}

// streamRun is one Run: the input window and the goroutines' rendezvous.
type streamRun struct {
	st     *Stream
	ready  chan struct{} // the wrapper has started: input may go
	stop   chan struct{} // the run is over
	result chan streamResult
	once   sync.Once

	mu       sync.Mutex
	cond     *sync.Cond
	inflight int   // stdin bytes (with headers) not yet taken by the command
	sizes    []int // each unacknowledged record's size, in order
	taken    int64 // records the wrapper has acknowledged
	over     bool
}

func (r *streamRun) isReady() bool {
	select {
	case <-r.ready:
		return true
	default:
		return false
	}
}

// done reports the run's result, once.
func (r *streamRun) done(res streamResult) {
	select {
	case r.result <- res:
	default:
	}
	r.finish()
}

func (r *streamRun) finish() {
	r.once.Do(func() {
		close(r.stop)
		r.mu.Lock()
		r.over = true
		r.cond.Broadcast()
		r.mu.Unlock()
	})
}

// cancel tells the wrapper to hang up the command's process group, waiting
// HangupWait at most for the record to leave; terminating the session (the
// caller's next step) makes the wrapper's guard do the same.
func (r *streamRun) cancel(err error) streamResult {
	r.finish()
	if r.isReady() {
		sent := make(chan struct{})
		go func() { r.st.ch.Write(hangupRecord); close(sent) }()
		select {
		case <-sent:
		case <-time.After(HangupWait):
		}
	}
	return streamResult{code: 255, err: err}
}

// readLoop reads the wrapper's frames: output to stdout and stderr (with
// credit returned once written), acknowledgements to the input window, the
// exit status to the result.
func (r *streamRun) readLoop(stdout, stderr io.Writer) {
	p := newFrameParser(r.st.nonce)
	buf := make([]byte, 64<<10)
	var res *streamResult
	emit := func(ev event) error {
		switch ev.kind {
		case 'R':
			close(r.ready)
		case 'O', 'E':
			w := stdout
			if ev.kind == 'E' {
				w = stderr
			}
			if _, err := w.Write(ev.data); err != nil {
				// As ssh(1) ends quietly when its stdout goes away; the
				// command is hung up rather than left writing.
				r.debugf("debug1: ssm: writing the command's output: %v; hanging it up", err)
				r.st.ch.Write(hangupRecord)
				res = &streamResult{code: 255}
				return errStop
			}
		case 'o', 'e':
			if _, err := r.st.ch.Write(creditRecord(ev.kind - ('a' - 'A'))); err != nil {
				return err
			}
		case 'A':
			r.mu.Lock()
			for r.taken < ev.n && len(r.sizes) > 0 {
				r.inflight -= r.sizes[0]
				r.sizes = r.sizes[1:]
				r.taken++
			}
			r.cond.Broadcast()
			r.mu.Unlock()
		case 'W':
			for _, l := range strings.Split(strings.TrimSpace(string(ev.data)), "\n") {
				r.debugf("debug1: ssm: the command wrapper on the instance said: %s", failure.Vis(l))
			}
		case 'X':
			res = &streamResult{code: int(min(max(ev.n, 0), 255))}
			return errStop
		case 'M':
			res = &streamResult{code: 255, err: &MissingToolsError{Tools: failure.Vis(string(ev.data))}}
			return errStop
		case 'F':
			res = &streamResult{code: 255, err: &failure.Error{Kind: failure.Unknown,
				Msg:  "the instance could not set up the command: " + failure.Vis(string(bytes.TrimSpace(ev.data))),
				Hint: "sshd is still down there; the SSM shell (ec2ssh -t HOST) may still work"}}
			return errStop
		}
		return nil
	}
	for {
		n, rerr := r.st.ch.Read(buf)
		if n > 0 {
			if err := p.feed(buf[:n], emit); err != nil {
				if res == nil {
					res = &streamResult{code: 255, err: &failure.Error{Kind: failure.Unknown, Msg: err.Error(), Err: err,
						Hint: "something on the instance wrote to the command's terminal; report it if it repeats"}}
					if !errors.Is(err, errGarbled) {
						res.err = err
					}
				}
				r.done(*res)
				return
			}
		}
		if rerr != nil {
			r.done(r.ended(p, rerr))
			return
		}
	}
}

// errStop ends readLoop's parsing with the result already set.
var errStop = errors.New("stop")

// ended is the result of a session that ended before the exit status.
func (r *streamRun) ended(p *frameParser, err error) streamResult {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return streamResult{code: 255, err: fe}
	}
	if !r.isReady() {
		msg := "the SSM session ended before the command started"
		if pre := strings.TrimSpace(string(p.Preamble())); pre != "" {
			msg += ": " + failure.Vis(pre)
		}
		return streamResult{code: 255, err: &failure.Error{Kind: failure.Unknown, Msg: msg,
			Hint: "the SSM agent could not start the command; ec2ssh --diagnose shows the instance's state"}}
	}
	return streamResult{code: 255, err: &failure.Error{Kind: failure.Unknown, Msg: "the SSM session ended before the command's exit status",
		Hint: "the instance, its agent or the session was stopped"}}
}

func (r *streamRun) debugf(format string, a ...any) {
	if r.st.debug != nil {
		r.st.debug(format, a...)
	}
}

// inputLoop sends stdin in records within the window, then its EOF.
func (r *streamRun) inputLoop(stdin io.Reader) {
	select {
	case <-r.ready:
	case <-r.stop:
		return
	}
	if stdin == nil {
		r.st.ch.Write(eofRecord)
		return
	}
	buf := make([]byte, RecordMax)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			rec := dataRecord(buf[:n])
			r.mu.Lock()
			for !r.over && (r.inflight+len(rec) > InputWindow || len(r.sizes) >= InputRecords) {
				r.cond.Wait()
			}
			if r.over {
				r.mu.Unlock()
				return
			}
			r.sizes = append(r.sizes, len(rec))
			r.inflight += len(rec)
			r.mu.Unlock()
			if _, werr := r.st.ch.Write(rec); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				r.debugf("debug1: ssm: reading stdin: %v; sending EOF", err)
			}
			select {
			case <-r.stop:
			default:
				r.st.ch.Write(eofRecord)
			}
			return
		}
	}
}

// Terminal is a session on a terminal: a command (-t) or the login shell,
// run under AWS-StartInteractiveCommand so that its exit status comes back
// in a private escape sequence the agent passes through (ASCII survives its
// rewriting). Input is the user's terminal, held by the channel until the
// agent's first frame (no handshake unless KMS is on).
type Terminal struct {
	ch    *Channel
	nonce string
}

// terminalScript runs C with the login user's shell, or that shell as a
// login shell when C is empty, and reports its status; N and C are set
// before it. The first sequence is output the agent sends after its first
// second, so that held input can go.
const terminalScript = `printf '\033]777;ec2ssh-ready;%s\007' "$N"
S=$(getent passwd "$(id -un)" 2>/dev/null | cut -d: -f7)
[ -n "$S" ] && [ -x "$S" ] || S=/bin/sh
cd "${HOME:-/}" 2>/dev/null
if [ -n "$C" ]; then "$S" -c "$C"; else "$S" -l; fi
printf '\033]777;ec2ssh-exit;%s;%d\007' "$N" "$?"
`

// StartTerminal starts command (the login shell when it is "") on a
// terminal on the instance.
func (s *SSM) StartTerminal(ctx context.Context, instanceID, command string) (*Terminal, error) {
	nonce := newNonce()
	ep, err := s.start(ctx, &ssm.StartSessionInput{Target: aws.String(instanceID), DocumentName: aws.String(InteractiveDocument),
		Parameters: map[string][]string{"command": {"N=" + nonce + "\nC=" + shQuote(command) + "\n" + terminalScript}}})
	if err != nil {
		return nil, err
	}
	opts := s.options(instanceID, false)
	opts.HandshakeOptional = true
	ch, err := OpenChannel(ctx, s, ep, opts)
	if err != nil {
		return nil, err
	}
	return &Terminal{ch: ch, nonce: nonce}, nil
}

// Channel is the terminal's data channel (for Resize).
func (t *Terminal) Channel() *Channel { return t.ch }

// Run copies stdin to the terminal and the terminal to stdout until the
// session ends, and returns the exit status: 255 when none came (the
// session was ended), as ssh(1) reports a remote side that ended
// abnormally. It ends the session before it returns; ctx ending it returns
// Canceled.
func (t *Terminal) Run(ctx context.Context, stdin io.Reader, stdout io.Writer) (int, error) {
	defer t.ch.abort()
	stop := context.AfterFunc(ctx, func() { t.ch.abort() })
	defer stop()
	f := &markFilter{w: stdout, nonce: t.nonce, started: make(chan struct{})}
	// The script's first sequence comes a second after the start; a
	// terminal silent for ReadyTimeout is not coming (and the input held
	// for it would wait for ever).
	var late atomic.Bool
	timer := time.AfterFunc(ReadyTimeout, func() {
		select {
		case <-f.started:
		default:
			late.Store(true)
			t.ch.abort()
		}
	})
	defer timer.Stop()
	go io.Copy(t.ch, stdin)
	_, err := io.Copy(f, t.ch)
	f.flush()
	switch {
	case ctx.Err() != nil:
		return 255, &failure.Error{Kind: failure.Canceled, Msg: "interrupted", Err: context.Cause(ctx)}
	case f.found:
		return f.code, nil
	case late.Load():
		return 255, &failure.Error{Kind: failure.Unreachable, Msg: fmt.Sprintf("the terminal did not start on the instance in %v", ReadyTimeout),
			Hint: "the SSM agent may be overloaded; try again"}
	}
	return 255, sessionEnd(err)
}

// markFilter passes a terminal's output through, taking out the wrapper's
// two private sequences (OSC 777 ec2ssh-ready and ec2ssh-exit with the
// nonce) and reading the status from the second.
type markFilter struct {
	w       io.Writer
	nonce   string
	held    []byte
	found   bool
	code    int
	started chan struct{} // closed at the first output
}

const markPrefix = "\x1b]777;ec2ssh-"

// maxMark bounds a sequence: longer, it is not the wrapper's.
const maxMark = 96

func (f *markFilter) Write(p []byte) (int, error) {
	if f.started != nil && len(p) > 0 {
		select {
		case <-f.started:
		default:
			close(f.started)
		}
	}
	buf := append(f.held, p...)
	f.held = nil
	var out []byte
	for len(buf) > 0 {
		i := bytes.Index(buf, []byte(markPrefix))
		if i < 0 {
			// Hold back what could begin one.
			keep := 0
			for k := min(len(buf), len(markPrefix)-1); k > 0; k-- {
				if bytes.HasPrefix([]byte(markPrefix), buf[len(buf)-k:]) {
					keep = k
					break
				}
			}
			out = append(out, buf[:len(buf)-keep]...)
			f.held = append(f.held, buf[len(buf)-keep:]...)
			break
		}
		out = append(out, buf[:i]...)
		rest := buf[i+len(markPrefix):]
		end := bytes.IndexByte(rest, '\a')
		if end < 0 && len(rest) < maxMark {
			f.held = append(f.held, buf[i:]...)
			break
		}
		if end < 0 || end > maxMark || !f.mark(string(rest[:end])) {
			// Not the wrapper's: pass it on.
			out = append(out, buf[i:i+len(markPrefix)]...)
			buf = rest
			continue
		}
		buf = rest[end+1:]
	}
	if len(out) > 0 {
		if _, err := f.w.Write(out); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// mark reads "ready;NONCE" or "exit;NONCE;N"; false when it is neither.
func (f *markFilter) mark(s string) bool {
	if s == "ready;"+f.nonce {
		return true
	}
	if code, ok := strings.CutPrefix(s, "exit;"+f.nonce+";"); ok {
		if n, err := strconv.Atoi(code); err == nil {
			f.found, f.code = true, min(max(n, 0), 255)
			return true
		}
	}
	return false
}

func (f *markFilter) flush() {
	if len(f.held) > 0 {
		f.w.Write(f.held)
		f.held = nil
	}
}
