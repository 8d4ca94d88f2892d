package fallback

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The command path's protocol: how a command run over an SSM session keeps
// ssh's promise (stdin byte for byte with its EOF, stdout and stderr apart
// and byte for byte, output as it is produced, the exit status) when the
// agent offers none of it (issue 28; SSM-DATA-CHANNEL.md, last section).
//
// Why a terminal session: of the three shell-type sessions only
// InteractiveCommands and Standard_Stream take input at all, and only on a
// pty; NonInteractiveCommands holds its output until the command ends and
// gives it no stdin. So the command runs under AWS-StartInteractiveCommand,
// inside wrapperScript, a POSIX sh script that takes the pty out of the
// way:
//
//   - `stty raw -echo` makes the pty 8-bit clean in both directions: no
//     echo, no signals from ^C, no CR/NL rewriting, no line editing.
//   - Input (client to instance) is raw bytes in records: "N\n" and N
//     bytes; "0\n" for EOF; "cO\n"/"cE\n" return output credit; "kHUP\n"
//     signals the command's process group. Raw, because nothing on the way
//     in rewrites bytes once the pty is raw, and raw is what keeps upload
//     fast: no encoding, one dd per record.
//   - Output (instance to client) is ASCII frames ":T...;" with stdout and
//     stderr in base64: the agent passes every output byte through
//     processStdoutData, which turns EF BF BD into EF and holds back (and at
//     the end drops) an incomplete UTF-8 sequence, so raw binary cannot
//     survive; ASCII does, untouched. base64 is the densest encoding the
//     images ship (coreutils or busybox on Amazon Linux 2023, Ubuntu and
//     Debian, minimal ones included; od would triple the bytes), and the
//     agent's output path (1 KiB reads, a 1 ms pause) is the bottleneck
//     anyway: 3/4 of it carries payload.
//   - Each output pump keeps two writers queued on the pty, so that one
//     is always ready when the agent has read the other's frame: the pty
//     holds only 20 KiB, and a pump that forked its next writer only then
//     left the agent's reads idle (three quarters of the time on a busy
//     machine). Two writers may reach the pty in either order, so O and E
//     frames carry their number in the stream, and the client puts them
//     back in order.
//   - Each frame reaches the pty in one write(2) (dd iflag=fullblock from a
//     pipe; an acknowledgement's few bytes in one printf, which dash, bash
//     and busybox flush once), and Linux serialises whole writes to a tty,
//     so the two output pumps and the acknowledgements never interleave
//     inside a frame.
//   - The terminal is read with dd, not cat: busybox's cat sends a tty
//     to a pipe with sendfile(2), which on Linux 6 waits for a full
//     buffer.
//   - Flow control both ways, so memory stays bounded on both sides:
//     input records are acknowledged (":A<n>;") only once the command's
//     stdin has taken them, and the client keeps at most InputWindow bytes
//     (and InputRecords records) unacknowledged; the wrapper spools them in
//     files, so control records (credit, signals, EOF) are never stuck
//     behind a command that does not read. Output is sent only against
//     credit: each pump holds OutputCredit frames and gets one back per
//     frame the client has written out.
//   - The command runs under setsid: its own session and process group and
//     no controlling terminal, as under sshd without a pty. A guard sends
//     SIGHUP to that group when the session is torn down, so ^C, SIGTERM
//     and SIGHUP to ec2ssh end the command and its children, as ssh -tt's
//     closed terminal does; then it ends what is left of the wrapper. The
//     guard learns of the teardown from a FIFO that only the wrapper's own
//     shell holds open for writing (opened before the guard starts, so
//     there is no moment when neither is there; the children started after
//     it close it with exec, since a shell keeps a copy of a descriptor a
//     function call's redirection replaces): TerminateSession kills that
//     shell and closes the terminal, and the FIFO's end of file follows, in
//     whichever order the two come. (A signal cannot be relied on: a shell cannot
//     trap one that was ignored when it started, as under an agent started
//     with nohup, and a guard waiting for SIGHUP, as round 2's did, then
//     waits for ever, and so do the wrapper's readers.) The wrapper
//     writes "ok" to the FIFO when the command has ended, before its status
//     goes out and the client may end the session: the command's group is
//     then left alone, as sshd leaves a finished command's children; and
//     "done" when it has finished: without it, the guard ends what is left
//     of the wrapper (its pumps and readers) and removes its files.
//
// A wrapper that finds a tool missing says so (":M") before it runs
// anything, and the caller falls back to the non-interactive path.

const (
	// RecordMax is the most stdin bytes one input record carries: each
	// costs the wrapper a dd and a cat, so records are large.
	RecordMax = 64 << 10
	// InputWindow is how many stdin bytes (with their headers) may be on
	// the way to the command unacknowledged: what the wrapper spools on
	// the instance's disk at most. The wrapper takes records off the
	// terminal whatever the command does, so the agent's write to the pty
	// (which, blocked, would stop its whole data channel) waits only while
	// the wrapper forks; the pty (20 KiB on Linux 6) and the pipe behind
	// the wrapper's dd (64 KiB) take the bursts. Upload runs at a window
	// per round trip.
	InputWindow = 256 << 10
	// InputRecords bounds the records in flight: the wrapper spools them
	// in that many slots.
	InputRecords = 64
	// OutputCredit is how many output frames (64 KiB each at most) per
	// stream may be unacknowledged by the client.
	OutputCredit = 4
)

// wrapperScript is the command path's remote half; see above. N (a nonce)
// and C (the command) are set before it. Frames: R ready, O stdout, E
// stderr, A input records taken, X exit status, W the wrapper's own
// complaints, M tools missing, F setup failed.
const wrapperScript = `exec 4>&1
e() { printf '%s' ":$1$2;" | dd bs=262144 iflag=fullblock 2>/dev/null >&4; }
f() { printf ':F%s %s;' "$N" "$(printf '%s' "$1" | base64)"; exit 0; }
m=
for t in stty dd base64 mkfifo mktemp setsid cat; do command -v $t >/dev/null 2>&1 || m="$m $t"; done
[ -n "$m" ] || dd if=/dev/null of=/dev/null iflag=fullblock 2>/dev/null || m=" dd(iflag=fullblock)"
[ -z "$m" ] || { printf ':M%s%s;' "$N" "$m"; exit 0; }
d=$(mktemp -d 2>&1) || f "mktemp -d: $d"
mkfifo "$d/i" "$d/o" "$d/e" "$d/co" "$d/ce" "$d/q" "$d/g" 2>"$d/w" || f "mkfifo: $(cat "$d/w")"
stty raw -echo 2>"$d/w" || f "stty raw -echo: $(cat "$d/w")"
exec 2>>"$d/w" 3<&0 6<>"$d/co" 7<>"$d/ce" 8<>"$d/q"
S=$(getent passwd "$(id -un)" 2>/dev/null | cut -d: -f7)
[ -n "$S" ] && [ -x "$S" ] || S=/bin/sh
unset TERM
cd "${HOME:-/}" 2>/dev/null || cd /
e R "$N"
k=0; while [ $k -lt ` + "CREDIT" + ` ]; do echo >&6; echo >&7; k=$((k+1)); done
p() { i=0; a=; b=
  while read -r _ <&"$2"; do f="$3.$((i % 3))"
    dd bs=65536 count=1 2>/dev/null | base64 >"$f"; [ -s "$f" ] || break
    [ -z "$a" ] || wait "$a"
    { printf ':%s%d ' "$1" "$i"; cat "$f"; printf ';'; } | dd bs=262144 iflag=fullblock 2>/dev/null >&4 &
    a=$b; b=$!; i=$((i+1)); done; wait; }
p O 6 "$d/po" <"$d/o" 3<&- & po=$!
p E 7 "$d/pe" <"$d/e" 3<&- & pe=$!
setsid "$S" -c "$C" <"$d/i" >"$d/o" 2>"$d/e" 3<&- 4>&- 6>&- 7>&- 8>&- & c=$!
exec 9<>"$d/g" 5<"$d/g"
( trap '' HUP TERM; read -r x <&5 || x=; [ "$x" = ok ] || kill -s HUP -- "-$c"
  read -r x <&5 || x=; [ "$x" = done ] || { kill -s TERM 0; rm -rf "$d"; } ) </dev/null >/dev/null 2>&1 3<&- 4>&- 6>&- 7>&- 8>&- 9>&- & g=$!
exec 5<&-
q() { x=0; while read -r s <&8; do
  if [ "$s" = e ]; then exec 5>&-; continue; fi
  [ $x = 1 ] || cat "$d/r$((s % ` + "SLOTS" + `))" >&5 || x=1
  printf ':A%s;' "$s" >&4; done; }
( exec 3<&- 9>&-; q 5>"$d/i" ) &
r() { i=0; while IFS= read -r n; do case $n in
  cO) echo >&6 ;; cE) echo >&7 ;;
  kHUP|kINT|kTERM) kill -s "${n#k}" -- "-$c" 2>/dev/null ;;
  0) echo e >&8 ;;
  ''|*[!0-9]*) break ;;
  *) i=$((i+1)); dd bs="$n" count=1 iflag=fullblock of="$d/r$((i % ` + "SLOTS" + `))" 2>/dev/null; echo $i >&8 ;;
  esac; done; }
( exec 9>&-; dd bs=65536 <&3 2>/dev/null | r ) &
wait "$c"; s=$?; echo ok >&9
wait "$po"; wait "$pe"
[ -s "$d/w" ] && e W "$(base64 <"$d/w")"
e X "$s"
echo done >&9; exec 9>&-; wait "$g"
rm -rf "$d"
trap '' TERM; kill -s TERM 0 2>/dev/null
exit 0
`

// WrapCommand is the command line the agent runs (as sh -c) for command:
// the wrapper with its nonce and the command set first.
func WrapCommand(nonce, command string) string {
	s := strings.NewReplacer("CREDIT", strconv.Itoa(OutputCredit), "SLOTS", strconv.Itoa(InputRecords)).Replace(wrapperScript)
	return "N=" + nonce + "\nC=" + shQuote(command) + "\n" + s
}

// Input records.

// dataRecord is p as one input record (len(p) <= RecordMax, > 0).
func dataRecord(p []byte) []byte {
	b := make([]byte, 0, len(p)+8)
	b = strconv.AppendInt(b, int64(len(p)), 10)
	b = append(b, '\n')
	return append(b, p...)
}

var (
	eofRecord    = []byte("0\n")
	hangupRecord = []byte("kHUP\n")
)

func creditRecord(stream byte) []byte { return []byte{'c', stream, '\n'} }

// Output frames.

// maxAheadFrames bounds the frames of one stream held for reordering: the
// wrapper has two writers per stream.
const maxAheadFrames = 4

// event is one thing the wrapper said.
type event struct {
	kind byte   // 'R' ready, 'O'/'E' data, 'o'/'e' end of an O/E frame, 'A', 'X', 'W', 'M', 'F'
	data []byte // O, E: decoded bytes; W, F: the text; M: the tools
	n    int64  // A: records taken; X: the status
}

// Limits on what the parser keeps: no wrapper says more.
const (
	maxPreamble = 64 << 10 // what may come before the ready frame
	maxText     = 64 << 10 // a W, M or F frame
)

// errGarbled is the parser's failure: the stream is not the wrapper's.
var errGarbled = errors.New("the command's output stream over SSM is garbled")

// frameParser reads the wrapper's output: before the ready frame, whatever
// the terminal shows (searched for ":R", ":M" or ":F" with the nonce); after
// it, frames and nothing else (CR and LF between and inside frames aside).
// It decodes base64 as it arrives, so a frame's bytes are written out
// before its end.
type frameParser struct {
	nonce    string
	ready    bool
	pre      []byte // before ready
	inFrame  bool
	kind     byte
	quad     [4]byte
	nq       int
	padded   bool
	text     []byte // A, X, W; the number of an O or E frame
	numbered bool   // an O or E frame's number has been read
	seq      int64  // the frame's number
	next     [2]int64
	ahead    [2]map[int64][]byte // frames that came before their turn
	aheadBuf []byte              // the frame in progress, when it is ahead
	consumed int64               // bytes fed, for errors
}

func streamIndex(kind byte) int {
	if kind == 'E' {
		return 1
	}
	return 0
}

func newFrameParser(nonce string) *frameParser { return &frameParser{nonce: nonce} }

// Preamble is what came before the ready frame (for error messages).
func (p *frameParser) Preamble() []byte { return p.pre }

// feed parses b, calling emit for each event in order. An error from emit
// stops it and is returned; so is errGarbled (wrapped with where).
func (p *frameParser) feed(b []byte, emit func(event) error) error {
	if !p.ready {
		p.pre = append(p.pre, b...)
		ev, rest, ok, err := p.preamble()
		if err != nil || !ok {
			return err
		}
		if err := emit(ev); err != nil {
			return err
		}
		if ev.kind != 'R' {
			return nil
		}
		p.ready = true
		b = rest
		p.consumed = 0
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		p.consumed++
		if !p.inFrame {
			switch c {
			case ':':
				p.inFrame, p.kind, p.nq, p.padded, p.text, p.numbered, p.aheadBuf = true, 0, 0, false, p.text[:0], false, nil
			case '\r', '\n':
			default:
				return p.garbled(c)
			}
			continue
		}
		if p.kind == 0 {
			switch c {
			case 'O', 'E', 'A', 'X', 'W':
				p.kind = c
			default:
				return p.garbled(c)
			}
			continue
		}
		if c == ';' {
			if err := p.end(emit); err != nil {
				return err
			}
			p.inFrame = false
			continue
		}
		switch p.kind {
		case 'O', 'E':
			if !p.numbered {
				switch {
				case c >= '0' && c <= '9' && len(p.text) < 18:
					p.text = append(p.text, c)
					continue
				case c == ' ' && len(p.text) > 0:
					p.seq, _ = strconv.ParseInt(string(p.text), 10, 64)
					p.numbered = true
					st := streamIndex(p.kind)
					if p.seq < p.next[st] || p.seq >= p.next[st]+maxAheadFrames || p.ahead[st][p.seq] != nil {
						return fmt.Errorf("%w: %c frame %d when %d is next", errGarbled, p.kind, p.seq, p.next[st])
					}
					if p.seq > p.next[st] {
						p.aheadBuf = []byte{}
					}
					continue
				}
				return p.garbled(c)
			}
			// Decode what is complete, in one run up to the next byte that
			// is not base64.
			j := i
			for j < len(b) && isBase64(b[j]) {
				j++
			}
			if j == i {
				if c == '\r' || c == '\n' {
					continue
				}
				return p.garbled(c)
			}
			out, err := p.decode(b[i:j])
			if err != nil {
				return err
			}
			p.consumed += int64(j - i - 1)
			i = j - 1
			if p.aheadBuf != nil {
				p.aheadBuf = append(p.aheadBuf, out...)
			} else if len(out) > 0 {
				if err := emit(event{kind: p.kind, data: out}); err != nil {
					return err
				}
			}
		case 'W':
			if c == '\r' || c == '\n' {
				continue
			}
			if !isBase64(c) || len(p.text) >= maxText*4/3 {
				return p.garbled(c)
			}
			p.text = append(p.text, c)
		case 'A', 'X':
			if c < '0' || c > '9' || len(p.text) >= 19 {
				return p.garbled(c)
			}
			p.text = append(p.text, c)
		}
	}
	return nil
}

func (p *frameParser) garbled(c byte) error {
	return fmt.Errorf("%w: byte %q at %d after the wrapper started", errGarbled, c, p.consumed)
}

func isBase64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

// decode takes base64 characters of an O or E frame and returns the bytes
// of every complete quad.
func (p *frameParser) decode(s []byte) ([]byte, error) {
	out := make([]byte, 0, len(s)*3/4+3)
	var dst [3]byte
	for _, c := range s {
		if p.padded {
			return nil, fmt.Errorf("%w: base64 after its padding at %d", errGarbled, p.consumed)
		}
		p.quad[p.nq] = c
		p.nq++
		if p.nq < 4 {
			continue
		}
		n, err := base64.StdEncoding.Decode(dst[:], p.quad[:])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errGarbled, err)
		}
		out = append(out, dst[:n]...)
		p.padded = n < 3
		p.nq = 0
	}
	return out, nil
}

// end completes the frame in progress.
func (p *frameParser) end(emit func(event) error) error {
	switch p.kind {
	case 0:
		return p.garbled(';')
	case 'O', 'E':
		if p.nq != 0 || !p.numbered {
			return fmt.Errorf("%w: a frame ends inside a base64 quad, or before its number, at %d", errGarbled, p.consumed)
		}
		st := streamIndex(p.kind)
		if p.aheadBuf != nil {
			if p.ahead[st] == nil {
				p.ahead[st] = map[int64][]byte{}
			}
			p.ahead[st][p.seq] = p.aheadBuf
			p.aheadBuf = nil
			return nil
		}
		end := p.kind + ('a' - 'A')
		if err := emit(event{kind: end}); err != nil {
			return err
		}
		// Its successors that came first go now, in order.
		for p.next[st]++; ; p.next[st]++ {
			b, ok := p.ahead[st][p.next[st]]
			if !ok {
				return nil
			}
			delete(p.ahead[st], p.next[st])
			if len(b) > 0 {
				if err := emit(event{kind: p.kind, data: b}); err != nil {
					return err
				}
			}
			if err := emit(event{kind: end}); err != nil {
				return err
			}
		}
	case 'W':
		b, err := base64.StdEncoding.DecodeString(string(p.text))
		if err != nil {
			return fmt.Errorf("%w: %v", errGarbled, err)
		}
		return emit(event{kind: 'W', data: b})
	case 'A', 'X':
		n, err := strconv.ParseInt(string(p.text), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %q in an %c frame", errGarbled, p.text, p.kind)
		}
		return emit(event{kind: p.kind, n: n})
	}
	return nil
}

// preamble looks for the wrapper's first frame in what came before it.
// ok is false while none is complete.
func (p *frameParser) preamble() (ev event, rest []byte, ok bool, err error) {
	for _, k := range []byte{'R', 'M', 'F'} {
		start := bytes.Index(p.pre, []byte(":"+string(k)+p.nonce))
		if start < 0 {
			continue
		}
		body := p.pre[start+2+len(p.nonce):]
		end := bytes.IndexByte(body, ';')
		if end < 0 {
			if len(body) > maxText*2 {
				return event{}, nil, false, fmt.Errorf("%w: an unending %c frame", errGarbled, k)
			}
			return event{}, nil, false, nil
		}
		text := bytes.TrimSpace(body[:end])
		rest = body[end+1:]
		p.pre = p.pre[:start]
		switch k {
		case 'R':
			if len(text) != 0 {
				return event{}, nil, false, fmt.Errorf("%w: a ready frame with %q", errGarbled, text)
			}
			return event{kind: 'R'}, rest, true, nil
		case 'M':
			return event{kind: 'M', data: text}, nil, true, nil
		case 'F':
			msg, derr := base64.StdEncoding.DecodeString(string(bytes.Map(dropSpace, text)))
			if derr != nil {
				msg = text
			}
			return event{kind: 'F', data: msg}, nil, true, nil
		}
	}
	if len(p.pre) > maxPreamble {
		return event{}, nil, false, fmt.Errorf("%w: %d bytes and no sign of the wrapper", errGarbled, len(p.pre))
	}
	return event{}, nil, false, nil
}

func dropSpace(r rune) rune {
	if r == '\r' || r == '\n' || r == ' ' {
		return -1
	}
	return r
}
