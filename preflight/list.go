package preflight

import (
	"context"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Finding instances across a fleet (SPEC.md, "Fleet"): a filter, the
// regions to look in, and how ec2ssh would reach each instance now, from
// checks that cost a few calls for the whole list (no per-instance probe).

// List returns the instances f selects in a's region, as EC2 selects
// them (EC2Filters: terminated ones left out), sorted by name then id.
// Each page of the answer has its own budget (RoleFleet, when ctx says so)
// and is told to ctx's page listener (WithPages). Its error is the call's,
// as a failure.Error.
func (a *AWS) List(ctx context.Context, f Filter) ([]*Instance, error) {
	ids, filters := f.EC2Filters()
	ins, err := a.describeInstances(ctx, ids, filters)
	if err != nil {
		if err.Code == "InvalidInstanceID.NotFound" || err.Code == "InvalidInstanceID.Malformed" {
			return nil, nil
		}
		return nil, err.AsFailure()
	}
	for _, in := range ins {
		in.Region = a.Region()
	}
	sort.Slice(ins, func(i, j int) bool {
		if ins[i].Name != ins[j].Name {
			return ins[i].Name < ins[j].Name
		}
		return ins[i].ID < ins[j].ID
	})
	return ins, nil
}

// Regions are the account's enabled regions.
func (a *AWS) Regions(ctx context.Context) ([]string, error) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return nil, apiError("ec2:DescribeRegions", "ec2:DescribeRegions", err).AsFailure()
	}
	var rs []string
	for _, r := range out.Regions {
		rs = append(rs, aws.ToString(r.RegionName))
	}
	sort.Strings(rs)
	return rs, nil
}

// RegionParallelism bounds the regions asked at once.
const RegionParallelism = 8

// InRegions runs fn with a client for each region, at most
// RegionParallelism at a time, and returns the results in regions' order.
// Each region's clients are base's, in that region, with adaptive retries.
func InRegions[T any](ctx context.Context, base Options, regions []string, fn func(context.Context, *AWS) (T, error)) ([]T, []error) {
	out, errs := make([]T, len(regions)), make([]error, len(regions))
	sem := make(chan struct{}, RegionParallelism)
	var wg sync.WaitGroup
	for i, r := range regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			o := base
			o.Region, o.Adaptive = r, true
			a, err := Load(ctx, o)
			if err != nil {
				errs[i] = err
				return
			}
			out[i], errs[i] = fn(ctx, a)
		}()
	}
	wg.Wait()
	return out, errs
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
