package reach

import (
	"context"
	"net"
	"os"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
)

// Spec is what a connection is for, as the command line and ssh_config
// ask: a command or a login, or no session at all (-N, SessionType none,
// -W), in the foreground or (-f) the background.
type Spec struct {
	Command    string
	NoSession  bool // -N, SessionType none, or -W
	Background bool // -f, ForkAfterAuth
	Share      Sharing
	// Detach tells the parent of a -f child that it may go (and, with no
	// session, leaves stdin, stdout and stderr as ssh(1) does).
	Detach func(noSession bool)
	// MasterReady tells the parent of a ControlPersist master how it fared.
	MasterReady func(listening bool)
}

// SpecFor reads what the connection is for from the command line and
// ssh_config; a command given both ways, or -f with nothing to do, is a
// Config error.
func SpecFor(r *Run) (Spec, error) {
	a, cfg := r.Args, r.Config
	s := Spec{Command: a.RemoteCommand(), Background: a.Background || cfg.ForkAfterAuth,
		NoSession: a.NoCommand || cfg.SessionType == "none" || a.StdioFwd != ""}
	if s.Command != "" && cfg.RemoteCommand != "" {
		return s, failure.Configf("drop RemoteCommand for this run (-o RemoteCommand=none) or the command", "Cannot execute command-line and remote command.")
	}
	if s.Command == "" {
		s.Command = cfg.RemoteCommand
	}
	if s.Background && s.Command == "" && !s.NoSession {
		return s, failure.Configf("give a command, or add -N to only forward ports", "cannot fork into background without a command to execute")
	}
	return s, nil
}

// Session is the session Spec asks for, as connect runs it.
func (s Spec) Session(r *Run) *connect.Session {
	return &connect.Session{Command: s.Command, Subsystem: r.Args.Subsystem, NullStdin: r.Args.NullStdin || s.Background, Quiet: r.Args.Quiet}
}

// Passenger reports whether the session may ride an existing master.
func (s Spec) Passenger(r *Run) bool {
	return !s.Background && !(s.NoSession && r.Args.StdioFwd == "")
}

// Connect climbs the ladder to an authenticated connection (or the SSM
// shell rung) and runs what s asks on it. The status is the remote
// command's; a failure is returned with 255 for main to report.
func Connect(ctx context.Context, r *Run, s Spec) (int, error) {
	r.Env.Prompter = connect.OpenPrompter(r.Config.BatchMode)
	start := time.Now()
	p, err := newPlan(ctx, r, r.Config, false)
	if err != nil {
		return connect.ExitSignal, err
	}
	defer p.finish()
	cfg := r.Config
	p.needsSSH = s.NoSession || r.Args.Subsystem || len(cfg.LocalForwards)+len(cfg.RemoteForwards)+len(cfg.DynamicForwards) > 0 || s.Share.Master
	o, d, err := p.climb(ctx, p.connectRung)
	if d.Step == fallback.SSMShell {
		return p.ssmShell(ctx, s.Command)
	}
	if err != nil {
		return connect.ExitSignal, err
	}
	defer o.creds.Close()
	defer o.client.Close()
	r.Env.Debug("debug1: connected and authenticated in %v", time.Since(start).Round(time.Millisecond))
	return serve(ctx, r, s, o.client)
}

// serve runs on an authenticated connection what s asks: forwards, the
// LocalCommand, a master for later connections, and the session.
func serve(ctx context.Context, r *Run, s Spec, client *connect.Client) (int, error) {
	if err := connect.StartForwards(ctx, client, r.Env.Log); err != nil {
		return connect.ExitSignal, err
	}
	connect.RunLocalCommand(r.Config, r.IO.Stdout, r.IO.Stderr, r.Env.Debug)
	master := startMaster(ctx, r, s.Share, client)
	if s.Share.Child {
		if s.MasterReady != nil {
			s.MasterReady(master != nil)
		}
		if master == nil {
			return 0, nil
		}
		return serveUntilDone(ctx, master, client, s.Share.Persist), nil
	}
	if master != nil && s.Share.Persist != 0 {
		// -f with ControlPersist: this process is already in the
		// background; after its own session it stays the master.
		defer func() {
			if s.Detach != nil {
				s.Detach(true)
			}
			serveUntilDone(ctx, master, client, s.Share.Persist)
		}()
	} else if master != nil {
		// ssh(1) keeps a master until its passengers are done.
		defer master.WaitIdle(ctx)
		defer master.StopListening()
	}
	stdin := r.IO.Stdin
	if s.Background {
		if s.Detach != nil {
			s.Detach(s.NoSession && r.Args.StdioFwd == "")
		}
		stdin = devNull()
	}
	switch {
	case r.Args.StdioFwd != "":
		return stdioForward(client, r.Args.StdioFwd, stdin, r.IO.Stdout)
	case s.NoSession:
		return waitNoSession(ctx, r, client, master)
	}
	return connect.Run(ctx, client, s.Session(r), connect.Stdio{In: stdin, InFile: stdin, Out: r.IO.Stdout, Err: r.IO.Stderr}, r.Env.Log)
}

// waitNoSession is -N: it ends only by a signal, -O exit or stop, or the
// connection ending; ssh(1) exits 255 but for -O.
func waitNoSession(ctx context.Context, r *Run, client *connect.Client, master *connect.MuxMaster) (int, error) {
	var terminated, stopped <-chan struct{}
	if master != nil {
		terminated, stopped = master.Terminated(), master.Stopped()
	}
	select {
	case <-terminated:
		return 0, nil
	case <-stopped:
		// -O stop: no new passengers; ssh(1) ends once the last one has.
		master.WaitIdle(ctx)
		return 0, nil
	case <-ctx.Done():
		r.Env.Log("Killed by %v.", context.Cause(ctx))
	case err := <-client.Lost():
		return connect.ExitSignal, err
	case <-waitClosed(client):
		r.Env.Log("Connection to %s closed by remote host.", r.Config.HostName)
	}
	return connect.ExitSignal, nil
}

// stdioForward is -W: stdin and stdout joined to host:port through the
// server.
func stdioForward(client *connect.Client, target string, stdin, stdout *os.File) (int, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return connect.ExitSignal, failure.Configf("write it as -W host:port", "bad -W target %q", target)
	}
	conn, err := client.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return connect.ExitSignal, &failure.Error{Kind: failure.Unreachable, Op: "open -W channel to", Target: target, Err: err,
			Hint: "the server could not connect there"}
	}
	connect.Splice(stdioConn{stdin, stdout}, conn)
	return 0, nil
}

// stdioConn is stdin and stdout as one stream; CloseWrite closes stdout.
type stdioConn struct {
	in  *os.File
	out *os.File
}

func (s stdioConn) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s stdioConn) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s stdioConn) Close() error                { return nil }
func (s stdioConn) CloseWrite() error           { return s.out.Close() }

func devNull() *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return os.Stdin
	}
	return f
}
