package reach

import (
	"context"
	"errors"
	"io"
	"strings"

	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
)

// ssmShell is the last rung of the ladder: with sshd down, the command
// (or the login shell) run over SSM as ssh would run it (fallback.Stream:
// stdin, stdout, stderr byte for byte, the exit status), or on a terminal
// when one is wanted (fallback.Terminal). An image without the wrapper's
// tools gets the non-interactive path (no stdin, output when it ends),
// said under -v.
func (p *plan) ssmShell(ctx context.Context, command string) (int, error) {
	r := p.run
	if in := p.t.Instance; in != nil && strings.HasPrefix(in.Platform, "Windows") {
		return connect.ExitSignal, failure.Configf("connect with RDP, or start a PowerShell session in the Session Manager console",
			"%s runs Windows (%s): sshd is down and ec2ssh's SSM command path needs a POSIX shell", p.t, in.Platform)
	}
	c, err := p.side.get(ctx)
	if err != nil {
		return connect.ExitSignal, err
	}
	api := c.SSM()
	what := "the login shell over SSM"
	if command != "" {
		what = "the command over SSM"
	}
	p.notes.Say("%s: sshd refuses connections, also from inside the instance; running %s", p.t, what)
	stdin := r.IO.Stdin
	if wantTTY, _ := (&connect.Session{Command: command}).WantTTY(p.cfg, term.IsTerminal(int(stdin.Fd()))); wantTTY {
		return p.ssmTerminal(ctx, api, command)
	}
	var in io.Reader = stdin
	if r.Args.NullStdin {
		in = nil
	}
	if command == "" {
		// As sshd runs the login shell on input that is not a terminal.
		command = `exec "$0" -l`
	}
	st, err := api.StartStream(ctx, p.t.ID, command)
	if err != nil {
		return connect.ExitSignal, err
	}
	code, err := st.Run(ctx, in, r.IO.Stdout, r.IO.Stderr)
	var missing *fallback.MissingToolsError
	if errors.As(err, &missing) {
		r.Env.Debug("debug1: ec2ssh: %v; running the command non-interactively instead (no stdin, its output when it ends)", err)
		return p.ssmNonInteractive(ctx, api, command)
	}
	if ctx.Err() != nil {
		return connect.ExitSignal, nil // as ssh(1) ends when a signal ends it
	}
	if err != nil {
		return connect.ExitSignal, err
	}
	return code, nil
}

// ssmTerminal is a -t command or the login shell on a terminal: the local
// terminal raw when there is one, its size sent and followed.
func (p *plan) ssmTerminal(ctx context.Context, api *fallback.SSM, command string) (int, error) {
	stdin := p.run.IO.Stdin
	tm, err := api.StartTerminal(ctx, p.t.ID, command)
	if err != nil {
		return connect.ExitSignal, err
	}
	if term.IsTerminal(int(stdin.Fd())) {
		ch := tm.Channel()
		restore, err := connect.RawTerminal(stdin, func(cols, rows int) { ch.Resize(cols, rows) })
		if err != nil {
			return connect.ExitSignal, err
		}
		defer restore()
		if w, h, err := term.GetSize(int(stdin.Fd())); err == nil {
			go ch.Resize(w, h) // held by the channel until the agent's first frame
		}
	}
	code, err := tm.Run(ctx, stdin, p.run.IO.Stdout)
	if ctx.Err() != nil {
		return connect.ExitSignal, nil
	}
	if err != nil && failure.KindOf(err) != failure.Unknown {
		return connect.ExitSignal, err
	}
	return code, nil
}

// ssmNonInteractive is the path for an image without the wrapper's tools:
// AWS-StartNonInteractiveCommand, whose command gets no stdin (input is
// refused rather than dropped) and whose output comes when it ends.
func (p *plan) ssmNonInteractive(ctx context.Context, api *fallback.SSM, command string) (int, error) {
	r := p.run
	if !r.Args.NullStdin {
		if err := refusePendingInput(r.IO.Stdin); err != nil {
			return connect.ExitSignal, err
		}
	}
	cmd, err := api.StartCommand(ctx, p.t.ID, command)
	if err != nil {
		return connect.ExitSignal, err
	}
	defer cmd.Close()
	stop := context.AfterFunc(ctx, func() { cmd.Close() })
	defer stop()
	code, err := cmd.Run(r.IO.Stdout, r.IO.Stderr)
	if ctx.Err() != nil {
		return connect.ExitSignal, nil
	}
	if err != nil {
		return connect.ExitSignal, err
	}
	return code, nil
}
