package main

import (
	"context"
	"os"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/reach"
)

// modeConnect is ec2ssh as ssh: a session (or forwards) on the
// destination, through a master when one is shared, in the background with
// -f, the master itself with ControlPersist. The process-level parts (a
// fork, a background master) are here; the way in is reach.Connect.
func modeConnect(ctx context.Context, r *reach.Run) (int, error) {
	spec, err := reach.SpecFor(r)
	if err != nil {
		return connect.ExitSignal, err
	}
	if spec.Background && os.Getenv(forkEnv) == "" {
		return forkBackground(r.Argv, r.IO.Stdout, r.IO.Stderr)
	}
	if spec.Share, err = reach.SharingFor(r); err != nil {
		return connect.ExitSignal, err
	}
	if r.Args.ControlCmd == "proxy" {
		r.Env.Debug("debug1: -O proxy: the session goes through the master with its descriptors passed")
		if spec.Share.Path == "" {
			return connect.ExitSignal, failure.Configf("give one with -S or ControlPath", "No ControlPath specified for \"-O\" command")
		}
	}
	passenger := spec.Passenger(r)
	if passenger {
		if code, ok, err := reach.TryMaster(ctx, r, spec.Share, spec.Session(r), false); ok {
			return code, err
		}
	}
	sh := spec.Share
	if sh.Master && sh.Persist != 0 && !sh.Child && !spec.Background {
		// ControlPersist: the master goes to the background and this
		// process becomes its first passenger, as with ssh(1).
		up, code, err := spawnMaster(r.Argv, r.IO.Stderr)
		if err != nil || !up && code != 0 {
			return code, err
		}
		if up && passenger {
			if code, ok, err := reach.TryMaster(ctx, r, sh, spec.Session(r), true); ok {
				return code, err
			}
		}
		if up && !passenger {
			return 0, nil
		}
		spec.Share.Master = false
	}
	keepStderr := r.Args.Verbose > 0 || r.Args.LogFile != ""
	spec.Detach = func(noSession bool) { detach(noSession, keepStderr) }
	spec.MasterReady = func(listening bool) { masterReady(listening, keepStderr) }
	return reach.Connect(ctx, r, spec)
}
