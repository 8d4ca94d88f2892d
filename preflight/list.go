package preflight

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Finding instances across a fleet (SPEC.md, "Fleet"): a filter, the
// regions to look in, and how ec2ssh would reach each instance now, from
// checks that cost a few calls for the whole list (no per-instance probe).

// Filter selects instances: a glob on the Name tag ("web-*"), a tag
// ("tag:Env=prod", the value a glob too), an instance id, or "" for all.
type Filter struct {
	NameGlob string
	TagKey   string
	TagGlob  string
	ID       string
}

// ParseFilter reads a --list or --all filter.
func ParseFilter(s string) (Filter, error) {
	switch {
	case s == "" || s == "*":
		return Filter{}, nil
	case strings.HasPrefix(s, "tag:"):
		k, v, ok := strings.Cut(s[4:], "=")
		if !ok || k == "" {
			return Filter{}, failure.Configf("write it as tag:Key=Value (the value may use * and ?)", "bad filter %q", s)
		}
		if _, err := path.Match(v, ""); err != nil {
			return Filter{}, failure.Configf("use * and ? in the value", "bad pattern in filter %q", s)
		}
		return Filter{TagKey: k, TagGlob: v}, nil
	case ClassifyDest(s) == DestID:
		return Filter{ID: s}, nil
	}
	if _, err := path.Match(s, ""); err != nil {
		return Filter{}, failure.Configf("use * and ? in a name pattern", "bad name pattern %q", s)
	}
	return Filter{NameGlob: s}, nil
}

// Matches applies f to an instance (EC2's own filter is coarser: its
// wildcards are applied again here).
func (f Filter) Matches(in *Instance) bool {
	switch {
	case f.ID != "":
		return in.ID == f.ID
	case f.TagKey != "":
		v, ok := in.Tags[f.TagKey]
		m, _ := path.Match(f.TagGlob, v)
		return ok && m
	case f.NameGlob != "":
		m, _ := path.Match(f.NameGlob, in.Name)
		return m
	}
	return true
}

func (f Filter) ec2Filters() ([]string, []ec2types.Filter) {
	switch {
	case f.ID != "":
		return []string{f.ID}, nil
	case f.TagKey != "":
		return nil, []ec2types.Filter{{Name: aws.String("tag:" + f.TagKey), Values: []string{f.TagGlob}}}
	case f.NameGlob != "":
		return nil, []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{f.NameGlob}}}
	}
	return nil, nil
}

// List returns the instances f selects in a's region, terminated ones
// left out, sorted by name then id.
func (a *AWS) List(ctx context.Context, f Filter) ([]*Instance, error) {
	ids, filters := f.ec2Filters()
	ins, err := a.describeInstances(ctx, ids, filters)
	if err != nil {
		if err.Code == "InvalidInstanceID.NotFound" || err.Code == "InvalidInstanceID.Malformed" {
			return nil, nil
		}
		return nil, err.AsFailure()
	}
	var out []*Instance
	for _, in := range ins {
		if in.State == StateTerminated || !f.Matches(in) {
			continue
		}
		in.Region = a.Region()
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
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

// Reach is how ec2ssh would get to an instance now.
type Reach struct {
	Via string `json:"via"` // "direct", "ssm", "none"
	Why string `json:"why"`
}

// Reachability judges every instance from one DescribeSecurityGroups and
// one DescribeInstanceInformation call (per 50 instances): whether its
// security groups admit port 22 from this machine, whether its SSM agent
// is online. Network ACLs, routes and sshd are left to a connection's own
// checks.
func (a *AWS) Reachability(ctx context.Context, ins []*Instance, port int, addressMode, sourceIP string) map[string]Reach {
	out := map[string]Reach{}
	var groupIDs, running []string
	for _, in := range ins {
		if !in.State.Running() {
			out[in.ID] = Reach{Via: "none", Why: "the instance is " + string(in.State)}
			continue
		}
		running = append(running, in.ID)
		for _, ifc := range in.Interfaces {
			groupIDs = append(groupIDs, ifc.SecurityGroups...)
		}
	}
	if len(running) == 0 {
		return out
	}
	groups := map[string]SecurityGroup{}
	var sgErr *APIError
	online := map[string]bool{}
	var ssmErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		gs, err := a.securityGroups(ctx, dedupe(groupIDs))
		sgErr = err
		for _, g := range gs {
			groups[g.ID] = g
		}
	}()
	go func() {
		defer wg.Done()
		online, ssmErr = a.onlineAgents(ctx, running)
	}()
	wg.Wait()
	for _, in := range ins {
		if !in.State.Running() {
			continue
		}
		addr, aerr := in.Address(addressMode)
		direct, why := false, ""
		switch {
		case aerr != nil:
			why = "no address to dial"
		case sgErr != nil && sgErr.Weather != WeatherNone:
			why = "security groups unknown (" + sgErr.Error() + ")"
		case sgErr != nil:
			why = "security groups unreadable (" + sgErr.Code + ")"
		default:
			src, known := sourceFor(addr, sourceIP)
			for _, ifc := range in.Interfaces {
				for _, gid := range ifc.SecurityGroups {
					for _, r := range groups[gid].Ingress {
						if ok, w := sgAllows(r, port, src, known, nil); ok && !direct {
							direct, why = true, gid+" allows "+w
						}
					}
				}
			}
			if !direct {
				why = fmt.Sprintf("no security group rule admits port %d from %s", port, srcText(src, known))
			}
		}
		switch {
		case direct:
			out[in.ID] = Reach{Via: "direct", Why: why}
		case online[in.ID]:
			out[in.ID] = Reach{Via: "ssm", Why: why + "; the SSM agent is online"}
		case ssmErr != nil:
			out[in.ID] = Reach{Via: "none", Why: why + "; SSM unknown (" + ssmErr.Error() + ")"}
		default:
			out[in.ID] = Reach{Via: "none", Why: why + ", and no SSM agent is online"}
		}
	}
	return out
}

func srcText(src netip.Addr, known bool) string {
	if !known {
		return "here (this machine's public address is not known)"
	}
	return src.String()
}

// sourceFor is the address the instance would see: --source-ip, the
// EC2SSH_SOURCE_IP variable, or the kernel's choice toward addr when that
// is not behind a NAT.
func sourceFor(addr, flag string) (netip.Addr, bool) {
	for _, s := range []string{flag, os.Getenv("EC2SSH_SOURCE_IP")} {
		if a, err := netip.ParseAddr(s); err == nil {
			return a, true
		}
	}
	conn, err := net.Dial("udp", net.JoinHostPort(addr, "22"))
	if err != nil {
		return netip.Addr{}, false
	}
	defer conn.Close()
	local, _ := netip.AddrFromSlice(conn.LocalAddr().(*net.UDPAddr).IP)
	local = local.Unmap()
	target, err := netip.ParseAddr(addr)
	if err == nil && target.IsPrivate() == local.IsPrivate() || local.IsLoopback() {
		return local, true
	}
	return netip.Addr{}, false
}

func (a *AWS) onlineAgents(ctx context.Context, ids []string) (map[string]bool, error) {
	online := map[string]bool{}
	for start := 0; start < len(ids); start += 50 {
		batch := ids[start:min(start+50, len(ids))]
		cctx, cancel := callCtx(ctx)
		out, err := a.SSM.DescribeInstanceInformation(cctx, &ssm.DescribeInstanceInformationInput{
			Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: batch}}})
		cancel()
		if err != nil {
			return online, apiError("ssm:DescribeInstanceInformation", "ssm:DescribeInstanceInformation", err)
		}
		for _, i := range out.InstanceInformationList {
			if i.PingStatus == ssmtypes.PingStatusOnline {
				online[aws.ToString(i.InstanceId)] = true
			}
		}
	}
	return online, nil
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
