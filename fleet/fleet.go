// Package fleet is ec2ssh on many instances (SPEC.md, "The fleet"):
// --list shows the instances a filter selects and how each would be
// reached now; --all runs one command on all of them, each through its own
// best way in (or through SSM Run Command), and reports every status.
package fleet

import (
	"context"
	"fmt"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
	"github.com/ec2ssh/ec2ssh/reach"
)

// lister is what listing a fleet asks of AWS in one region.
type lister interface {
	Region() string
	List(ctx context.Context, f preflight.Filter) ([]*preflight.Instance, error)
	Regions(ctx context.Context) ([]string, error)
	Reachability(ctx context.Context, ins []*preflight.Instance, port int, addressMode, sourceIP string) map[string]preflight.Reach
}

// open is the run's AWS in region, as a lister.
func open(ctx context.Context, r *reach.Run, region string) (lister, error) {
	c, err := r.OpenFleet(ctx, region)
	if err != nil {
		return nil, err
	}
	l, ok := c.(lister)
	if !ok {
		return nil, fmt.Errorf("this AWS client cannot list instances")
	}
	return l, nil
}

// instances lists what the filter selects, in the configured region or,
// with --region all, in every enabled region.
func instances(ctx context.Context, r *reach.Run) ([]*preflight.Instance, lister, error) {
	ctx = preflight.WithRole(ctx, preflight.RoleFleet)
	args := r.Args
	f, err := preflight.ParseFilter(args.Destination)
	if err != nil {
		return nil, nil, err
	}
	region := args.Region
	if region == "all" {
		region = ""
	}
	a, err := open(ctx, r, region)
	if err != nil {
		return nil, nil, err
	}
	if args.Region != "all" {
		if a.Region() == "" {
			return nil, nil, &failure.Error{Kind: failure.AWSAuth, Msg: "no AWS region is configured",
				Hint: "pass --region REGION (or --region all), set AWS_REGION, or run: aws configure set region REGION"}
		}
		ins, err := a.List(ctx, f)
		return ins, a, err
	}
	if a.Region() == "" {
		// DescribeRegions needs some region to ask.
		if a, err = open(ctx, r, "us-east-1"); err != nil {
			return nil, nil, err
		}
	}
	regions, err := a.Regions(ctx)
	if err != nil {
		return nil, nil, err
	}
	lists, errs := inRegions(ctx, r, regions, func(ctx context.Context, a lister) ([]*preflight.Instance, error) {
		return a.List(ctx, f)
	})
	var all []*preflight.Instance
	for i, l := range lists {
		if errs[i] != nil {
			return nil, nil, fmt.Errorf("%s: %w", regions[i], errs[i])
		}
		all = append(all, l...)
	}
	return all, a, nil
}

// inRegions runs fn in each region, at most preflight.RegionParallelism at
// a time, and returns the results in regions' order.
func inRegions[T any](ctx context.Context, r *reach.Run, regions []string, fn func(context.Context, lister) (T, error)) ([]T, []error) {
	out, errs := make([]T, len(regions)), make([]error, len(regions))
	sem := make(chan struct{}, preflight.RegionParallelism)
	done := make(chan struct{})
	for i, region := range regions {
		go func() {
			defer func() { done <- struct{}{} }()
			sem <- struct{}{}
			defer func() { <-sem }()
			a, err := open(ctx, r, region)
			if err != nil {
				errs[i] = err
				return
			}
			out[i], errs[i] = fn(ctx, a)
		}()
	}
	for range regions {
		<-done
	}
	return out, errs
}
