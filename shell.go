package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
)

// runSSMShell is the last rung of the ladder: with sshd down, the command
// (or the login shell) run over SSM as ssh would run it (fallback.Stream:
// stdin, stdout, stderr byte for byte, the exit status), or on a terminal
// when one is wanted (fallback.Terminal). An image without the wrapper's
// tools gets the non-interactive path it had before, said under -v.
func runSSMShell(ctx context.Context, p *plan, command string, wantTTY, nullStdin bool, stdin, stdout, stderr *os.File, notes *notices, quiet bool) int {
	if in := p.t.Instance; in != nil && strings.HasPrefix(in.Platform, "Windows") {
		return report(stderr, failure.Configf("connect with RDP, or start a PowerShell session in the Session Manager console",
			"%s runs Windows (%s): sshd is down and ec2ssh's SSM command path needs a POSIX shell", p.t, in.Platform), quiet)
	}
	api, err := p.side.ssm(ctx)
	if err != nil {
		return report(stderr, err, quiet)
	}
	what := "the login shell over SSM"
	if command != "" {
		what = "the command over SSM"
	}
	notes.say("%s: sshd refuses connections, also from inside the instance; running %s", p.t, what)
	if wantTTY {
		return runSSMTerminal(ctx, api, p, command, stdin, stdout, stderr, quiet)
	}
	var in io.Reader = stdin
	if nullStdin {
		in = nil
	}
	if command == "" {
		// As sshd runs the login shell on input that is not a terminal.
		command = `exec "$0" -l`
	}
	st, err := api.StartStream(ctx, p.t.ID, command)
	if err != nil {
		return report(stderr, err, quiet)
	}
	code, err := st.Run(ctx, in, stdout, stderr)
	var missing *fallback.MissingToolsError
	if errors.As(err, &missing) {
		p.env.Debug("debug1: ec2ssh: %v; running the command non-interactively instead (no stdin, its output when it ends)", err)
		return runSSMNonInteractive(ctx, api, p, command, nullStdin, stdin, stdout, stderr, quiet)
	}
	if ctx.Err() != nil {
		return connect.ExitSignal // as ssh(1) ends when a signal ends it
	}
	if err != nil {
		return report(stderr, err, quiet)
	}
	return code
}

// runSSMTerminal is a -t command or the login shell on a terminal: the
// local terminal raw when there is one, its size sent and followed.
func runSSMTerminal(ctx context.Context, api *fallback.SSM, p *plan, command string, stdin, stdout, stderr *os.File, quiet bool) int {
	tm, err := api.StartTerminal(ctx, p.t.ID, command)
	if err != nil {
		return report(stderr, err, quiet)
	}
	if term.IsTerminal(int(stdin.Fd())) {
		ch := tm.Channel()
		restore, err := connect.RawTerminal(stdin, func(cols, rows int) { ch.Resize(cols, rows) })
		if err != nil {
			return report(stderr, err, quiet)
		}
		defer restore()
		if w, h, err := term.GetSize(int(stdin.Fd())); err == nil {
			go ch.Resize(w, h) // held by the channel until the agent's first frame
		}
	}
	code, err := tm.Run(ctx, stdin, stdout)
	if ctx.Err() != nil {
		return connect.ExitSignal
	}
	if err != nil && failure.KindOf(err) != failure.Unknown {
		return report(stderr, err, quiet)
	}
	return code
}

// runSSMNonInteractive is the path for an image without the wrapper's
// tools: AWS-StartNonInteractiveCommand, whose command gets no stdin (input
// is refused rather than dropped) and whose output comes when it ends.
func runSSMNonInteractive(ctx context.Context, api *fallback.SSM, p *plan, command string, nullStdin bool, stdin, stdout, stderr *os.File, quiet bool) int {
	if !nullStdin {
		if err := refusePendingInput(stdin); err != nil {
			return report(stderr, err, quiet)
		}
	}
	cmd, err := api.StartCommand(ctx, p.t.ID, command)
	if err != nil {
		return report(stderr, err, quiet)
	}
	defer cmd.Close()
	stop := context.AfterFunc(ctx, func() { cmd.Close() })
	defer stop()
	code, err := cmd.Run(stdout, stderr)
	if ctx.Err() != nil {
		return connect.ExitSignal
	}
	if err != nil {
		return report(stderr, err, quiet)
	}
	return code
}
