package main

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

// muxMasterEnv marks the process ControlPersist started to be the master
// in the background; its value is the descriptor to report readiness on.
const muxMasterEnv = "EC2SSH_MUX_MASTER_FD"

// sharing is what this run does about connection sharing.
type sharing struct {
	path    string        // the expanded ControlPath; "" for no sharing
	master  bool          // become a master once connected
	persist time.Duration // ControlPersist: 0 no, -1 yes, else the idle time
	child   bool          // this process is the background master
}

func sharingFor(cfg *connect.Config, env *connect.Env) (sharing, error) {
	var s sharing
	s.path = connect.ControlPathFor(cfg)
	if s.path == "" {
		return s, nil
	}
	if !connect.MuxSupported {
		// No master and no passenger here; the path stays for -O, which
		// reaches a master over AF_UNIX.
		env.Debug("debug1: connection sharing needs descriptor passing, which this platform lacks: ControlPath is used for -O only")
		return sharing{path: s.path}, nil
	}
	p, err := connect.ControlPersistTime(cfg)
	if err != nil {
		return s, err
	}
	s.persist = p
	s.master = cfg.ControlMaster != "no"
	s.child = os.Getenv(muxMasterEnv) != ""
	return s, nil
}

// tryMaster runs the session through an existing master. ok is false when
// there is none (or it should not be used), and the caller connects.
func tryMaster(ctx context.Context, sh sharing, cfg *connect.Config, args *connect.Args, sess *connect.Session,
	stdin, stdout, stderr *os.File, env *connect.Env, spawned bool) (code int, ok bool) {
	if sh.path == "" || sh.child || !spawned && (cfg.ControlMaster == "yes" || cfg.ControlMaster == "ask") {
		return 0, false
	}
	code, err := connect.MuxClient(ctx, &connect.MuxRequest{Path: sh.path, Config: cfg, Session: sess, StdioFwd: args.StdioFwd,
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Log: env.Log, Debug: env.Debug})
	if errors.Is(err, connect.ErrNoMaster) {
		return 0, false
	}
	if err != nil {
		return report(stderr, err, args.Quiet), true
	}
	return code, true
}

// controlCommand is -O (-O proxy is a session: see tryMaster).
func controlCommand(ctx context.Context, sh sharing, cfg *connect.Config, args *connect.Args, stdin, stdout, stderr *os.File, env *connect.Env) int {
	if sh.path == "" {
		return report(stderr, failure.Configf("give one with -S or ControlPath", "No ControlPath specified for \"-O\" command"), args.Quiet)
	}
	code, err := connect.MuxClient(ctx, &connect.MuxRequest{Path: sh.path, Op: args.ControlCmd, Config: cfg,
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Log: env.Log, Debug: env.Debug})
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	return code
}

// startMaster starts serving the connection on the control socket; nil
// (with a notice) when the socket cannot be made, as ssh(1) carries on
// without sharing.
func startMaster(ctx context.Context, sh sharing, client *connect.Client, cfg *connect.Config, env *connect.Env) *connect.MuxMaster {
	if sh.path == "" || !sh.master {
		return nil
	}
	m := &connect.MuxMaster{Client: client, Path: sh.path, Ask: cfg.ControlMaster == "ask" || cfg.ControlMaster == "autoask",
		Prompter: env.Prompter, Log: env.Log, Debug: env.Debug}
	if err := connect.ListenMux(ctx, m); err != nil {
		env.Log("%v", err)
		return nil
	}
	env.Debug("debug1: setting up multiplex master socket %s", sh.path)
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
			return 255
		case <-m.Terminated():
			m.StopListening()
			return 0
		case <-client.Lost():
			return 255
		case <-closed:
			return 255
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
