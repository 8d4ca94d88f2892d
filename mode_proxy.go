package main

import (
	"context"

	"github.com/ec2ssh/ec2ssh/reach"
)

// modeProxy is --proxy HOST PORT, for ProxyCommand: a byte stream to the
// port on stdin and stdout, by whatever way in works.
func modeProxy(ctx context.Context, r *reach.Run) (int, error) { return reach.Proxy(ctx, r) }
