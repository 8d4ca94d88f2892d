package main

import (
	"context"

	"github.com/ec2ssh/ec2ssh/reach"
)

// modeSerial is --serial INSTANCE: the EC2 serial console.
func modeSerial(ctx context.Context, r *reach.Run) (int, error) { return reach.Serial(ctx, r) }
