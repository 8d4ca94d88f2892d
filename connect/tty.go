package connect

import (
	"bufio"
	"errors"
	"os"
	"strings"

	"golang.org/x/term"
)

// Prompter asks a person a question on the terminal.
type Prompter interface {
	// Ask writes question and reads one line; echo false hides what is typed.
	Ask(question string, echo bool) (string, error)
}

// TTYPrompter asks on /dev/tty, as ssh(1) does, so that prompts work while
// stdin and stdout carry data.
type TTYPrompter struct{}

// OpenPrompter returns a Prompter on the controlling terminal, or nil when
// there is none or batch mode forbids asking.
func OpenPrompter(batch bool) Prompter {
	if batch {
		return nil
	}
	in, out, err := openTTY()
	if err != nil {
		return nil
	}
	closeTTY(in, out)
	return TTYPrompter{}
}

func (TTYPrompter) Ask(question string, echo bool) (string, error) {
	in, out, err := openTTY()
	if err != nil {
		return "", err
	}
	defer closeTTY(in, out)
	if _, err := out.WriteString(question); err != nil {
		return "", err
	}
	if !echo {
		if st, err := term.GetState(int(in.Fd())); err == nil {
			defer AtExit(func() { term.Restore(int(in.Fd()), st) })()
		}
		b, err := term.ReadPassword(int(in.Fd()))
		out.WriteString("\n")
		return string(b), err
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, os.ErrClosed)) && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
