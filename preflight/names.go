package preflight

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Resolution is one rule (SPEC.md, "Destinations"; issue 24), applied to
// what regions answer, whether they answered now or were remembered
// (cache.go), so that a destination resolves the same whatever ran
// before: Lookup and Elsewhere ask, Decide judges.

// Answer is what one region says a destination names: every instance
// there that it names, gone ones included, or Err when the region could
// not be asked.
type Answer struct {
	Region    string
	Instances []*Instance
	Err       error
	// Took is how long asking took: one EC2 API round trip.
	Took time.Duration
}

// live are the instances that are not gone.
func live(ins []*Instance) []*Instance {
	var out []*Instance
	for _, in := range ins {
		if !in.State.Gone() {
			out = append(out, in)
		}
	}
	return out
}

// Lookup asks a's region which instances dest names: by id, by address
// (public or private, IPv4 or IPv6), by EC2 DNS name, or by the Name tag,
// exactly (EC2's tag:Name filter, case-sensitive; a destination's "*" is
// not special to ssh, but EC2 would read it as a wildcard, so it is
// escaped). An id EC2 does not know is an empty answer, not an error.
func (a *AWS) Lookup(ctx context.Context, dest string) Answer {
	start := time.Now()
	ans := Answer{Region: a.Region()}
	var filterSets [][]ec2types.Filter
	var ids []string
	switch ClassifyDest(dest) {
	case DestID:
		ids, filterSets = []string{dest}, [][]ec2types.Filter{nil}
	case DestAddress:
		key := "private-ip-address"
		if addr, _ := netip.ParseAddr(dest); addr.Is6() {
			key = "network-interface.ipv6-addresses.ipv6-address"
		}
		// EC2 ANDs filters, so public and private are asked separately.
		filterSets = [][]ec2types.Filter{{{Name: aws.String(key), Values: []string{dest}}}, {{Name: aws.String("ip-address"), Values: []string{dest}}}}
	case DestEC2DNS:
		filterSets = [][]ec2types.Filter{{{Name: aws.String("dns-name"), Values: []string{dest}}}, {{Name: aws.String("private-dns-name"), Values: []string{dest}}}}
	default:
		filterSets = [][]ec2types.Filter{{{Name: aws.String("tag:Name"), Values: []string{EscapeEC2(dest)}}}}
	}
	var mu sync.Mutex
	found := map[string]*Instance{}
	var firstErr *APIError
	var wg sync.WaitGroup
	for _, filters := range filterSets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ins, err := a.describeInstances(ctx, ids, filters)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			for _, in := range ins {
				in.Region = a.Region()
				found[in.ID] = in
			}
		}()
	}
	wg.Wait()
	ans.Took = time.Since(start)
	if firstErr != nil {
		if firstErr.Code == "InvalidInstanceID.NotFound" || firstErr.Code == "InvalidInstanceID.Malformed" {
			return ans
		}
		ans.Err = firstErr.AsFailure()
		return ans
	}
	for _, in := range found {
		ans.Instances = append(ans.Instances, in)
	}
	sort.Slice(ans.Instances, func(i, j int) bool { return ans.Instances[i].ID < ans.Instances[j].ID })
	return ans
}

// EscapeEC2 makes s a filter value that matches s alone: "*", "?" and "\"
// escaped with a backslash, as EC2 reads filter values.
func EscapeEC2(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '*' || r == '?' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Elsewhere asks every other enabled region of the account which instances
// dest names, RegionParallelism at a time, each with adaptive retries. A
// region that could not be asked has Err set in its answer; the error is
// DescribeRegions', when the regions themselves could not be listed.
func (a *AWS) Elsewhere(ctx context.Context, dest string) ([]Answer, error) {
	regions, err := a.Regions(ctx)
	if err != nil {
		return nil, err
	}
	others := slices.DeleteFunc(regions, func(r string) bool { return r == a.Region() })
	got, errs := InRegions(ctx, a.opts, others, func(ctx context.Context, ra *AWS) (Answer, error) {
		return ra.Lookup(ctx, dest), nil
	})
	for i := range got {
		got[i].Region = others[i]
		if errs[i] != nil {
			got[i].Err = errs[i]
		}
	}
	return got, nil
}

// Decide is resolution's rule. home is the home region's answer (the
// configured region, or --region's); others are every other enabled
// region's, nil when they were not asked; pinned says --region was given.
//
//   - A home region that could not be asked is its error.
//   - An id names the instance wherever it is found (ids are unique); the
//     home region first, then the others.
//   - An address or an EC2 DNS name is looked up in the home region only.
//   - A Name names the live (not terminated, not shutting down) instances
//     that carry it: one in the home region is the answer; several are an
//     error listing them (failure.Config), never a silent pick. Only when
//     the home region has none, and no --region pins it, are the other
//     regions asked: then one live instance among them is the answer,
//     several are the same error, and a region that could not be asked is
//     an error naming it and how to choose (--region, the instance id),
//     since it may hold the name too.
//   - With no live instance anywhere asked, gone ones answer (so that a
//     connection can say the instance is terminated), the home region's
//     first.
//
// It returns the instance and its region, (nil, "") when dest names no
// instance, or more=true when the answer depends on the other regions and
// others is nil.
func Decide(dest string, home Answer, others []Answer, pinned bool) (in *Instance, region string, more bool, err error) {
	if home.Err != nil {
		return nil, "", false, home.Err
	}
	kind := ClassifyDest(dest)
	sweeps := !pinned && (kind == DestID || kind == DestName)
	if kind == DestID {
		if len(home.Instances) > 0 {
			return home.Instances[0], home.Region, false, nil
		}
		if !sweeps {
			return nil, "", false, nil
		}
		if others == nil {
			return nil, "", true, nil
		}
		for _, o := range others {
			if o.Err == nil && len(o.Instances) > 0 {
				return o.Instances[0], o.Region, false, nil
			}
		}
		if failed := failedRegions(others); len(failed) > 0 {
			return nil, "", false, unaskedError(dest, home.Region, others, failed, nil)
		}
		return nil, "", false, nil
	}
	if l := live(home.Instances); len(l) > 0 {
		return pick(dest, l)
	}
	if !sweeps {
		return pick(dest, home.Instances)
	}
	if others == nil {
		return nil, "", true, nil
	}
	var found, gone []*Instance
	for _, o := range others {
		found = append(found, live(o.Instances)...)
	}
	if failed := failedRegions(others); len(failed) > 0 {
		return nil, "", false, unaskedError(dest, home.Region, others, failed, found)
	}
	if len(found) > 0 {
		return pick(dest, found)
	}
	gone = append(gone, home.Instances...)
	if len(gone) == 0 {
		for _, o := range others {
			gone = append(gone, o.Instances...)
		}
	}
	return pick(dest, gone)
}

func failedRegions(answers []Answer) []Answer {
	var out []Answer
	for _, a := range answers {
		if a.Err != nil {
			out = append(out, a)
		}
	}
	return out
}

// pick is the one instance of cands, or the error that lists them.
func pick(dest string, cands []*Instance) (*Instance, string, bool, error) {
	switch len(cands) {
	case 0:
		return nil, "", false, nil
	case 1:
		return cands[0], cands[0].Region, false, nil
	}
	return nil, "", false, ambiguous(dest, cands)
}

// ambiguous is the error for a name several instances carry: each with
// its id, state, address, launch time (and region, when they span
// several), oldest first.
func ambiguous(dest string, cands []*Instance) error {
	cands = slices.Clone(cands)
	sort.Slice(cands, func(i, j int) bool {
		if !cands[i].LaunchTime.Equal(cands[j].LaunchTime) {
			return cands[i].LaunchTime.Before(cands[j].LaunchTime)
		}
		return cands[i].ID < cands[j].ID
	})
	regions := map[string]bool{}
	for _, in := range cands {
		regions[in.Region] = true
	}
	var lines []string
	for _, in := range cands {
		addr := in.PublicIP
		if addr == "" {
			addr = in.PrivateIP
		}
		line := fmt.Sprintf("%s  %-10s %-15s launched %s", in.ID, in.State, addr, in.LaunchTime.UTC().Format(time.RFC3339))
		if len(regions) > 1 {
			line += "  in " + in.Region
		}
		lines = append(lines, line)
	}
	msg := fmt.Sprintf("%d instances are named %q:\n  %s", len(cands), Sanitize(dest), strings.Join(lines, "\n  "))
	hint := "connect by instance id instead, e.g. ec2ssh " + cands[0].ID
	if len(regions) > 1 {
		msg = fmt.Sprintf("%d instances in %d regions are named %q:\n  %s", len(cands), len(regions), Sanitize(dest), strings.Join(lines, "\n  "))
		hint = fmt.Sprintf("connect by instance id (e.g. ec2ssh %s), or choose the region with --region %s", cands[0].ID, cands[0].Region)
	}
	return &failure.Error{Kind: failure.Config, Msg: msg, Hint: hint}
}

// unaskedError is the answer when some regions could not be asked: they
// may hold dest too, so no answer is given silently. found are the live
// instances the regions that answered have (nil for an id).
func unaskedError(dest, home string, others, failed []Answer, found []*Instance) error {
	var names []string
	for _, f := range failed {
		names = append(names, f.Region+" ("+oneLine(f.Err)+")")
	}
	unasked := fmt.Sprintf("%d %s could not be asked: %s", len(failed), plural(len(failed), "region", "regions"), strings.Join(names, ", "))
	e := &failure.Error{Kind: failure.KindOf(failed[0].Err), Err: failed[0].Err}
	if e.Kind == failure.Unknown {
		e.Kind = failure.Unreachable
	}
	switch {
	case len(found) == 1:
		in := found[0]
		e.Msg = fmt.Sprintf("%s is %s in %s, but %s, and it may be named there too", Sanitize(dest), in.ID, in.Region, unasked)
		e.Hint = fmt.Sprintf("choose it with --region %s or by its id (ec2ssh %s), or look there with --region %s", in.Region, in.ID, failed[0].Region)
	case len(found) > 1:
		e.Msg = fmt.Sprintf("%s names %d instances in the regions that answered, and %s", Sanitize(dest), len(found), unasked)
		e.Hint = fmt.Sprintf("connect by instance id (see them with: ec2ssh --list --region all %s), or choose the region with --region", Sanitize(dest))
	default:
		e.Msg = fmt.Sprintf("%s is not in %s or the %d other regions that answered, but %s", Sanitize(dest), home, len(others)-len(failed), unasked)
		e.Hint = fmt.Sprintf("look there with --region %s, or connect by instance id", failed[0].Region)
		if ClassifyDest(dest) == DestID {
			e.Hint = fmt.Sprintf("name its region: --region %s", failed[0].Region)
		}
	}
	return e
}

// oneLine is err's message cut to its first line.
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
