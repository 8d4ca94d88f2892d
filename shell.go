package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
)

// sshdDown is the failure that sends ec2ssh to an SSM shell: the port was
// refused inside the SSM tunnel too, so sshd itself is not running.
type sshdDown struct {
	side *ec2Side
	t    *target
	err  error
}

func (d *sshdDown) Error() string { return d.err.Error() }
func (d *sshdDown) Unwrap() error { return d.err }

// runSSMShell is the last rung of the ladder: with sshd down, an SSM shell
// for an interactive login, or the command run through SSM with its stdout,
// stderr and exit status.
func runSSMShell(ctx context.Context, d *sshdDown, command string, wantTTY bool, stdin, stdout, stderr *os.File, quiet bool) int {
	a, err := d.side.client(ctx)
	if err != nil {
		return report(stderr, err, quiet)
	}
	api := fallback.NewSSM(a.Config)
	tty := wantTTY && term.IsTerminal(int(stdin.Fd()))
	if command != "" && !tty {
		if err := refusePendingInput(stdin); err != nil {
			return report(stderr, err, quiet)
		}
	}
	what := "an SSM shell"
	if command != "" {
		what = "the command over SSM"
	}
	if !quiet {
		fmt.Fprintf(stderr, "ec2ssh: %s: sshd refuses connections, also from inside the instance; running %s\n", d.t, what)
	}
	var ch *fallback.Channel
	var cmd *fallback.Command
	if command != "" {
		cmd, err = api.StartCommand(ctx, d.t.ID, command, tty)
		if cmd != nil {
			ch = cmd.Channel
		}
	} else {
		ch, err = api.StartShell(ctx, d.t.ID)
	}
	if err != nil {
		return report(stderr, err, quiet)
	}
	defer ch.Close()
	stop := context.AfterFunc(ctx, func() { ch.Close() })
	defer stop()

	if tty || (command == "" && wantTTY && term.IsTerminal(int(stdin.Fd()))) {
		restore, err := connect.RawTerminal(stdin, func(cols, rows int) { ch.Resize(cols, rows) })
		if err != nil {
			return report(stderr, err, quiet)
		}
		defer restore()
		if w, h, err := term.GetSize(int(stdin.Fd())); err == nil {
			ch.Resize(w, h)
		}
	}
	if cmd != nil {
		code, err := cmd.Run(stdin, stdout, stderr)
		if ctx.Err() != nil {
			return connect.ExitSignal
		}
		if err != nil {
			return report(stderr, err, quiet)
		}
		return code
	}
	go io.Copy(ch, stdin)
	_, copyErr := io.Copy(stdout, ch)
	if ctx.Err() != nil {
		// ssh(1) ends with 255 when a signal ends it.
		return connect.ExitSignal
	}
	if copyErr != nil && failure.KindOf(copyErr) != failure.Unknown {
		return report(stderr, copyErr, quiet)
	}
	return 0
}
