package main

import (
	"context"

	"github.com/ec2ssh/ec2ssh/fleet"
	"github.com/ec2ssh/ec2ssh/reach"
)

// modeAll is --all FILTER -- COMMAND: the command on every instance, the
// worst status; with --via run-command, through SSM Run Command, whose
// command a first Ctrl-C cancels (fleetSignals).
func modeAll(ctx context.Context, r *reach.Run) (int, error) {
	if r.Args.RunCommand {
		fleetSignals.Store(true)
	}
	return fleet.All(ctx, r)
}
