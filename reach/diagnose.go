package reach

import (
	"context"
	"os"

	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// Diagnose is --diagnose: every check, as a table or JSON. The status is 0
// when the chosen way in should work, 1 when some check failed, 2 when none
// failed but one that matters could not decide; an error (255) when it
// could not run.
func Diagnose(ctx context.Context, r *Run) (int, error) {
	s := newSide(r)
	s.cache = nil // a diagnosis looks afresh
	cfg := r.Config
	creds, err := connect.LoadCredentials(cfg, nil, r.Env.Debug)
	if err != nil {
		return connect.ExitSignal, err
	}
	defer creds.Close()
	if !s.configured() && preflight.ClassifyDest(cfg.HostName) != preflight.DestID {
		// Without AWS there is only the port to look at; say so.
		r.Env.Log("ec2ssh: no AWS credentials are configured: only the SSH port can be checked")
	}
	// The image's login user (when none was given) is looked up beside the
	// checks, not before them: only the look inside waits for it.
	t, err := s.locate(ctx, cfg.HostName, s.configured(), resolveOpts{})
	if err != nil {
		return connect.ExitSignal, err
	}
	facts, t, err := s.gather(ctx, cfg.HostName, t, cfg, creds, gatherOpts{probe: true, inside: true, userFromImage: !cfg.UserSet})
	if err != nil {
		return connect.ExitSignal, err
	}
	addr := cfg.HostName
	if t != nil {
		addr = t.Address
	}
	rep := preflight.NewReport(facts, addr)
	switch r.Args.Fallback {
	case connect.ModeSSM:
		rep.Choose(preflight.PathSSM)
	case connect.ModeEICE:
		rep.Choose(preflight.PathEICE)
	}
	if t == nil {
		r.Env.Log("ec2ssh: %s is not an EC2 instance in %s: the instance checks are skipped", preflight.Sanitize(cfg.HostName), rep.Target.Region)
	}
	if r.Args.JSON {
		if err := rep.WriteJSON(r.IO.Stdout); err != nil {
			return connect.ExitSignal, err
		}
	} else {
		rep.WriteTable(r.IO.Stdout, term.IsTerminal(int(r.IO.Stdout.Fd())) && os.Getenv("NO_COLOR") == "")
	}
	return rep.ExitStatus(), nil
}

// insideRunner runs the look inside (preflight.InsideScript) as a
// non-interactive SSM command: one StartSession and the output streamed
// back, faster than Run Command's SendCommand and polling, and it needs
// only the permissions the SSM rungs need anyway.
type insideRunner struct{ ssm *fallback.SSM }

func (r *insideRunner) How() string {
	return "an SSM session running " + fallback.CommandDocument + ", read-only"
}

func (r *insideRunner) RunScript(ctx context.Context, instanceID, script string, args ...string) ([]byte, error) {
	command := "sh -c " + fallback.ShellQuote(script) + " ec2ssh-inside"
	for _, a := range args {
		command += " " + fallback.ShellQuote(a)
	}
	cmd, err := r.ssm.StartCommand(ctx, instanceID, command)
	if err != nil {
		return nil, err
	}
	defer cmd.Close()
	stop := context.AfterFunc(ctx, func() { cmd.Close() })
	defer stop()
	var out, errb limitedBuffer
	out.max, errb.max = 1<<20, 64<<10
	_, err = cmd.Run(&out, &errb)
	return out.b, err
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
