package fallback

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2ssh/ec2ssh/failure"
)

// The AWS-managed session documents the last rung uses. What the agent
// does with each (amazon-ssm-agent, agent/session/shell) decides how a
// command is wrapped:
//   - NonInteractiveCommands (AWS-StartNonInteractiveCommand): the command
//     is split like a shell word list and executed without a shell; stdout
//     and stderr go to one file that is sent only after the command ends;
//     there is no stdin and, without the separateOutputStream property
//     (which the AWS document does not set), no exit status.
//   - InteractiveCommands (AWS-StartInteractiveCommand): "sh -c COMMAND"
//     on a terminal: output streams, input works, stdout and stderr are
//     one, and there is no exit status either.
//   - Standard_Stream (the account's default document): a shell on a
//     terminal.
const (
	CommandDocument     = "AWS-StartNonInteractiveCommand"
	InteractiveDocument = "AWS-StartInteractiveCommand"
)

// StartShell starts an interactive shell session (the account's default
// session document, a Standard_Stream on a terminal).
func (s *SSM) StartShell(ctx context.Context, instanceID string) (*Channel, error) {
	ep, err := s.start(ctx, &ssm.StartSessionInput{Target: aws.String(instanceID)})
	if err != nil {
		return nil, err
	}
	return OpenChannel(ctx, s, ep, s.options(instanceID, false))
}

// Command is a command run on an instance through SSM, with its stdout,
// stderr and exit status kept as ssh(1) keeps them.
type Command struct {
	*Channel
	tty    bool
	marker string
}

// StartCommand runs command on the instance. Without a terminal it runs
// under AWS-StartNonInteractiveCommand inside a small sh script that keeps
// stdout and stderr apart and reports the exit status (the agent gives
// neither); the command reads no input, and its output arrives when it
// ends. With a terminal it runs under AWS-StartInteractiveCommand, whose
// output streams and whose input is the terminal's; the status comes back
// in a private escape sequence that Run takes out of the output.
func (s *SSM) StartCommand(ctx context.Context, instanceID, command string, tty bool) (*Command, error) {
	nonce := make([]byte, 8)
	rand.Read(nonce)
	c := &Command{tty: tty}
	var in *ssm.StartSessionInput
	if tty {
		c.marker = "\x1b]777;ec2ssh-exit;" + hex.EncodeToString(nonce) + ";"
		wrapped := `"${SHELL:-/bin/sh}" -c ` + shQuote(command) + `; printf '\033]777;ec2ssh-exit;%s;%d\007' ` + hex.EncodeToString(nonce) + ` "$?"`
		in = &ssm.StartSessionInput{Target: aws.String(instanceID), DocumentName: aws.String(InteractiveDocument),
			Parameters: map[string][]string{"command": {wrapped}}}
	} else {
		c.marker = "EC2SSH-RESULT-" + hex.EncodeToString(nonce)
		in = &ssm.StartSessionInput{Target: aws.String(instanceID), DocumentName: aws.String(CommandDocument),
			Parameters: map[string][]string{"command": {NonInteractiveWrapper(c.marker, command)}}}
	}
	ep, err := s.start(ctx, in)
	if err != nil {
		return nil, err
	}
	ch, err := OpenChannel(ctx, s, ep, s.options(instanceID, false))
	if err != nil {
		return nil, err
	}
	c.Channel = ch
	return c, nil
}

// nonInteractiveScript runs "$1" with stdout and stderr in two files, then
// prints a header line naming the marker ($0), the status and both sizes,
// and the two files: the agent's one output file then carries both apart.
const nonInteractiveScript = `o=$(mktemp) && e=$(mktemp) || exit 125
"${SHELL:-/bin/sh}" -c "$1" </dev/null >"$o" 2>"$e"
s=$?
printf '%s %d %d %d\n' "$0" "$s" $(($(wc -c <"$o"))) $(($(wc -c <"$e")))
cat "$o" "$e"
rm -f "$o" "$e"`

// NonInteractiveWrapper is the command line the agent is given for
// command: words it splits (as a shell would, with quotes) and executes
// without a shell.
func NonInteractiveWrapper(marker, command string) string {
	return "sh -c " + shQuote(nonInteractiveScript) + " " + shQuote(marker) + " " + shQuote(command)
}

// shQuote quotes s for a POSIX shell (and for the agent's word splitting,
// which follows the same rules): in single quotes, with each quote in s
// written as quote, backslash, quote, quote.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Run copies the command's output to stdout and stderr and returns its exit
// status. With a terminal, stdin is copied to the command as it is typed.
// A status that never came (the session ended first) is 255, as ssh(1)
// reports a remote side that ended abnormally.
func (c *Command) Run(stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if c.tty {
		go io.Copy(c.Channel, stdin)
		f := &exitFilter{w: stdout, marker: []byte(c.marker)}
		_, err := io.Copy(f, c.Channel)
		f.flush()
		if f.found {
			return f.code, nil
		}
		return 255, sessionEnd(err)
	}
	r := bufio.NewReaderSize(c.Channel, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if rest, ok := bytes.CutPrefix(line, []byte(c.marker+" ")); ok {
			var code int
			var nout, nerr int64
			if _, perr := fmt.Sscanf(string(rest), "%d %d %d\n", &code, &nout, &nerr); perr != nil {
				return 255, &failure.Error{Kind: failure.Unknown, Msg: "the command's result over SSM was garbled: " + perr.Error()}
			}
			if _, err := io.CopyN(stdout, r, nout); err != nil {
				return 255, &failure.Error{Kind: failure.Unknown, Msg: "the command's stdout over SSM was cut short", Err: err}
			}
			if _, err := io.CopyN(stderr, r, nerr); err != nil {
				return 255, &failure.Error{Kind: failure.Unknown, Msg: "the command's stderr over SSM was cut short", Err: err}
			}
			if code < 0 || code > 255 {
				code = 255
			}
			return code, nil
		}
		// What comes before the result is the wrapper's own complaint
		// (no mktemp, a full /tmp): the user should see it.
		stderr.Write(line)
		if err != nil {
			return 255, &failure.Error{Kind: failure.Unknown, Msg: "the SSM session ended without the command's result",
				Err: err, Hint: "the command could not be started on the instance (see above); sshd itself is still down"}
		}
	}
}

func sessionEnd(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// exitFilter passes a terminal's output through, taking out the escape
// sequence that reports the exit status.
type exitFilter struct {
	w      io.Writer
	marker []byte
	held   []byte
	found  bool
	code   int
}

func (f *exitFilter) Write(p []byte) (int, error) {
	buf := append(f.held, p...)
	f.held = nil
	for {
		i := bytes.Index(buf, f.marker)
		if i < 0 {
			break
		}
		end := bytes.IndexByte(buf[i+len(f.marker):], '\a')
		if end < 0 {
			break // the rest of the sequence is still to come
		}
		if n, err := strconv.Atoi(string(buf[i+len(f.marker) : i+len(f.marker)+end])); err == nil {
			f.found, f.code = true, min(max(n, 0), 255)
		}
		if _, err := f.w.Write(buf[:i]); err != nil {
			return len(p), err
		}
		buf = buf[i+len(f.marker)+end+1:]
	}
	// Hold back what could be the start of a marker.
	keep := 0
	for k := min(len(buf), len(f.marker)+4); k > 0; k-- {
		if bytes.HasPrefix(f.marker, buf[len(buf)-k:]) || bytes.HasPrefix(buf[len(buf)-k:], f.marker) {
			keep = k
			break
		}
	}
	if i := bytes.Index(buf, f.marker); i >= 0 {
		keep = len(buf) - i
	}
	if _, err := f.w.Write(buf[:len(buf)-keep]); err != nil {
		return len(p), err
	}
	f.held = append([]byte(nil), buf[len(buf)-keep:]...)
	return len(p), nil
}

func (f *exitFilter) flush() {
	if len(f.held) > 0 {
		f.w.Write(f.held)
		f.held = nil
	}
}
