package main

import (
	"context"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
)

// runSSMShell is the last rung of the ladder: with sshd down, an SSM shell
// for an interactive login, or the command run through SSM with its stdout,
// stderr and exit status.
func runSSMShell(ctx context.Context, p *plan, command string, wantTTY bool, stdin, stdout, stderr *os.File, notes *notices, quiet bool) int {
	api, err := p.side.ssm(ctx)
	if err != nil {
		return report(stderr, err, quiet)
	}
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
	notes.say("%s: sshd refuses connections, also from inside the instance; running %s", p.t, what)
	var ch *fallback.Channel
	var cmd *fallback.Command
	if command != "" {
		cmd, err = api.StartCommand(ctx, p.t.ID, command, tty)
		if cmd != nil {
			ch = cmd.Channel
		}
	} else {
		ch, err = api.StartShell(ctx, p.t.ID)
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
