package main

import (
	"context"

	"github.com/ec2ssh/ec2ssh/fleet"
	"github.com/ec2ssh/ec2ssh/reach"
)

// modeAll is --all FILTER -- COMMAND: the command on every instance, the
// worst status.
func modeAll(ctx context.Context, r *reach.Run) (int, error) { return fleet.All(ctx, r) }
