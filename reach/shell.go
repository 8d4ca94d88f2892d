package reach

import (
	"context"
	"io"

	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
)

// ssmShell is the last rung of the ladder: with sshd down, an SSM shell
// for an interactive login, or the command run through SSM with its stdout,
// stderr and exit status.
func (p *plan) ssmShell(ctx context.Context, command string) (int, error) {
	r := p.run
	stdin, stdout, stderr := r.IO.Stdin, r.IO.Stdout, r.IO.Stderr
	c, err := p.side.get(ctx)
	if err != nil {
		return connect.ExitSignal, err
	}
	api := c.SSM()
	isTTY := term.IsTerminal(int(stdin.Fd()))
	wantTTY, _ := (&connect.Session{Command: command}).WantTTY(p.cfg, isTTY)
	tty := wantTTY && isTTY
	if command != "" && !tty {
		if err := refusePendingInput(stdin); err != nil {
			return connect.ExitSignal, err
		}
	}
	what := "an SSM shell"
	if command != "" {
		what = "the command over SSM"
	}
	p.notes.Say("%s: sshd refuses connections, also from inside the instance; running %s", p.t, what)
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
		return connect.ExitSignal, err
	}
	defer ch.Close()
	stop := context.AfterFunc(ctx, func() { ch.Close() })
	defer stop()

	if tty || (command == "" && wantTTY && isTTY) {
		restore, err := connect.RawTerminal(stdin, func(cols, rows int) { ch.Resize(cols, rows) })
		if err != nil {
			return connect.ExitSignal, err
		}
		defer restore()
		if w, h, err := term.GetSize(int(stdin.Fd())); err == nil {
			ch.Resize(w, h)
		}
	}
	if cmd != nil {
		code, err := cmd.Run(stdin, stdout, stderr)
		if ctx.Err() != nil {
			return connect.ExitSignal, nil // ssh(1): 255 when a signal ends it
		}
		if err != nil {
			return connect.ExitSignal, err
		}
		return code, nil
	}
	go io.Copy(ch, stdin)
	_, copyErr := io.Copy(stdout, ch)
	if ctx.Err() != nil {
		return connect.ExitSignal, nil
	}
	if copyErr != nil && failure.KindOf(copyErr) != failure.Unknown {
		return connect.ExitSignal, copyErr
	}
	return 0, nil
}
