package reach

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
)

// Connection sharing (SPEC.md, "Connection sharing"): ControlMaster,
// ControlPath and ControlPersist as ssh(1) reads them, on top of
// connect's OpenSSH-compatible master and client. The master shares the
// connection the ladder made, whatever carries it (TCP, ProxyJump, SSH over
// SSM), so every later scp, rsync or Ansible task skips the connection and,
// over SSM, the StartSession.

// MuxMasterEnv marks the process ControlPersist started to be the master
// in the background; its value is the descriptor to report readiness on.
const MuxMasterEnv = "EC2SSH_MUX_MASTER_FD"

// Sharing is what this run does about connection sharing.
type Sharing struct {
	Path    string        // the expanded ControlPath; "" for no sharing
	Master  bool          // become a master once connected
	Persist time.Duration // ControlPersist: 0 no, -1 yes, else the idle time
	Child   bool          // this process is the background master
}

// SharingFor reads connection sharing from the configuration.
func SharingFor(r *Run) (Sharing, error) {
	var s Sharing
	cfg := r.Config
	s.Path = connect.ControlPathFor(cfg)
	if s.Path == "" {
		return s, nil
	}
	if !connect.MuxSupported {
		// No master and no passenger here; the path stays for -O, which
		// reaches a master over AF_UNIX.
		r.Env.Debug("debug1: connection sharing needs descriptor passing, which this platform lacks: ControlPath is used for -O only")
		return Sharing{Path: s.Path}, nil
	}
	p, err := connect.ControlPersistTime(cfg)
	if err != nil {
		return s, err
	}
	s.Persist = p
	s.Master = cfg.ControlMaster != "no"
	s.Child = os.Getenv(MuxMasterEnv) != ""
	return s, nil
}

// TryMaster runs the session through an existing master. ok is false when
// there is none (or it should not be used), and the caller connects.
func TryMaster(ctx context.Context, r *Run, sh Sharing, sess *connect.Session, spawned bool) (code int, ok bool, err error) {
	cfg := r.Config
	if sh.Path == "" || sh.Child || !spawned && (cfg.ControlMaster == "yes" || cfg.ControlMaster == "ask") {
		return 0, false, nil
	}
	code, err = connect.MuxClient(ctx, &connect.MuxRequest{Path: sh.Path, Config: cfg, Session: sess, StdioFwd: r.Args.StdioFwd,
		Stdin: r.IO.Stdin, Stdout: r.IO.Stdout, Stderr: r.IO.Stderr, Log: r.Env.Log, Debug: r.Env.Debug})
	if errors.Is(err, connect.ErrNoMaster) {
		return 0, false, nil
	}
	return code, true, err
}

// Control is -O (-O proxy is a session: see TryMaster).
func Control(ctx context.Context, r *Run, sh Sharing) (int, error) {
	if sh.Path == "" {
		return connect.ExitSignal, failure.Configf("give one with -S or ControlPath", "No ControlPath specified for \"-O\" command")
	}
	return connect.MuxClient(ctx, &connect.MuxRequest{Path: sh.Path, Op: r.Args.ControlCmd, Config: r.Config,
		Stdin: r.IO.Stdin, Stdout: r.IO.Stdout, Stderr: r.IO.Stderr, Log: r.Env.Log, Debug: r.Env.Debug})
}

// startMaster starts serving the connection on the control socket; nil
// (with a notice) when the socket cannot be made, as ssh(1) carries on
// without sharing.
func startMaster(ctx context.Context, r *Run, sh Sharing, client *connect.Client) *connect.MuxMaster {
	if sh.Path == "" || !sh.Master {
		return nil
	}
	cfg := r.Config
	m := &connect.MuxMaster{Client: client, Path: sh.Path, Ask: cfg.ControlMaster == "ask" || cfg.ControlMaster == "autoask",
		Prompter: r.Env.Prompter, Log: r.Env.Log, Debug: r.Env.Debug}
	if err := connect.ListenMux(ctx, m); err != nil {
		r.Env.Log("%v", err)
		return nil
	}
	r.Env.Debug("debug1: setting up multiplex master socket %s", sh.Path)
	return m
}

// serveUntilDone keeps a background master (ControlPersist) alive: until
// -O exit, the connection ending, or, with a time, that long without a
// passenger.
func serveUntilDone(ctx context.Context, m *connect.MuxMaster, client *connect.Client, persist time.Duration) int {
	var idle <-chan time.Time
	var timer *time.Timer
	if persist > 0 {
		timer = time.NewTimer(persist)
		idle = timer.C
	}
	closed := waitClosed(client)
	for {
		select {
		case <-ctx.Done():
			return connect.ExitSignal
		case <-m.Terminated():
			m.StopListening()
			return 0
		case <-client.Lost():
			return connect.ExitSignal
		case <-closed:
			return connect.ExitSignal
		case <-m.Idle():
			if timer != nil && m.Active() == 0 {
				timer.Reset(persist)
			}
		case <-idle:
			if m.Active() == 0 {
				m.StopListening()
				return 0
			}
			timer.Reset(persist)
		}
	}
}

func waitClosed(c *connect.Client) <-chan struct{} {
	ch := make(chan struct{})
	go func() { c.Wait(); close(ch) }()
	return ch
}
