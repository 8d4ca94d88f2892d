package main

import (
	"context"

	"github.com/ec2ssh/ec2ssh/reach"
)

// modeDiagnose is --diagnose [--json] DESTINATION: every check; 0 when
// none failed, 1 when some did.
func modeDiagnose(ctx context.Context, r *reach.Run) (int, error) { return reach.Diagnose(ctx, r) }
