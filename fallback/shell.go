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
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2ssh/ec2ssh/failure"
)

// The AWS-managed session documents the last rung uses. What the agent
// does with each (amazon-ssm-agent, agent/session/shell; SSM-DATA-CHANNEL.md)
// decides how a command is wrapped:
//   - NonInteractiveCommands (AWS-StartNonInteractiveCommand): the command
//     is split like a shell word list and executed without a shell; stdout
//     and stderr go to one file that is sent only after the command ends;
//     there is no stdin and, without the separateOutputStream property
//     (which the AWS document does not set), no exit status. The look
//     inside uses it (read-only, no input), and so does a command on an
//     image without the command wrapper's tools.
//   - InteractiveCommands (AWS-StartInteractiveCommand): "sh -c COMMAND"
//     on a terminal, with no handshake unless KMS is on: output streams,
//     input works, and nothing else is kept; the command wrapper
//     (cmdproto.go) and the terminal script (command.go) restore the rest.
const (
	CommandDocument     = "AWS-StartNonInteractiveCommand"
	InteractiveDocument = "AWS-StartInteractiveCommand"
)

// Command is a command run on an instance under
// AWS-StartNonInteractiveCommand, with its stdout, stderr and exit status
// kept apart by a small script: no stdin, its output when it ends.
type Command struct {
	*Channel
	marker string
}

// StartCommand runs command on the instance under
// AWS-StartNonInteractiveCommand inside a small sh script that keeps
// stdout and stderr apart and reports the exit status (the agent gives
// neither); the command reads no input, and its output arrives when it
// ends.
func (s *SSM) StartCommand(ctx context.Context, instanceID, command string) (*Command, error) {
	nonce := make([]byte, 8)
	rand.Read(nonce)
	c := &Command{marker: "EC2SSH-RESULT-" + hex.EncodeToString(nonce)}
	in := &ssm.StartSessionInput{Target: aws.String(instanceID), DocumentName: aws.String(CommandDocument),
		Parameters: map[string][]string{"command": {NonInteractiveWrapper(c.marker, command)}}}
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
// status: 255 with an Unknown error when the result never came (the
// session ended first), as ssh(1) reports a remote side that ended
// abnormally.
func (c *Command) Run(stdout, stderr io.Writer) (int, error) {
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
