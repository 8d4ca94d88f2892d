package main

import (
	"context"

	"github.com/ec2ssh/ec2ssh/fleet"
	"github.com/ec2ssh/ec2ssh/reach"
)

// modeList is --list [FILTER]: the instances and how each would be reached.
func modeList(ctx context.Context, r *reach.Run) (int, error) { return fleet.List(ctx, r) }
