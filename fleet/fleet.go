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
	// ListFacts is what the listing judges reachability from (the ladder
	// decides: reach.Predict).
	ListFacts(ctx context.Context, ins []*preflight.Instance, req preflight.ListRequest) map[string]*preflight.Facts
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
	got, err := find(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	return got.ins, got.home, nil
}

// found is what a listing found.
type found struct {
	ins  []*preflight.Instance
	home lister // the configured region's (us-east-1's when none is, with --region all)
	// regions were all asked, and all answered.
	regions []string
	// every: regions are every enabled region (--region all).
	every  bool
	filter preflight.Filter
}

// find lists what the filter selects: EC2 selects (preflight.List), each
// page with its own budget; on a terminal, a line on stderr says how many
// pages and instances have come so far.
func find(ctx context.Context, r *reach.Run) (*found, error) {
	ctx = preflight.WithRole(ctx, preflight.RoleFleet)
	args := r.Args
	f, err := preflight.ParseFilter(args.Destination)
	if err != nil {
		return nil, err
	}
	if p := newProgress(r); p != nil {
		ctx = preflight.WithPages(ctx, p.page)
		defer p.done()
	}
	region := args.Region
	if region == "all" {
		region = ""
	}
	a, err := open(ctx, r, region)
	if err != nil {
		return nil, err
	}
	if args.Region != "all" {
		if a.Region() == "" {
			return nil, &failure.Error{Kind: failure.AWSAuth, Msg: "no AWS region is configured",
				Hint: "pass --region REGION (or --region all), set AWS_REGION, or run: aws configure set region REGION"}
		}
		ins, err := a.List(ctx, f)
		if err != nil {
			return nil, err
		}
		return &found{ins: ins, home: a, regions: []string{a.Region()}, filter: f}, nil
	}
	if a.Region() == "" {
		// DescribeRegions needs some region to ask.
		if a, err = open(ctx, r, "us-east-1"); err != nil {
			return nil, err
		}
	}
	regions, err := a.Regions(ctx)
	if err != nil {
		return nil, err
	}
	lists, errs := inRegions(ctx, r, regions, func(ctx context.Context, a lister) ([]*preflight.Instance, error) {
		return a.List(ctx, f)
	})
	var all []*preflight.Instance
	for i, l := range lists {
		if errs[i] != nil {
			return nil, fmt.Errorf("%s: %w", regions[i], errs[i])
		}
		all = append(all, l...)
	}
	return &found{ins: all, home: a, regions: regions, every: true, filter: f}, nil
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
