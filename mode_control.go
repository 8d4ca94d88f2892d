package main

import (
	"context"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/reach"
)

// modeControl is -O check|exit|stop|forward|cancel: a request to a master
// (-O proxy is a session, in modeConnect).
func modeControl(ctx context.Context, r *reach.Run) (int, error) {
	sh, err := reach.SharingFor(r)
	if err != nil {
		return connect.ExitSignal, err
	}
	return reach.Control(ctx, r, sh)
}
