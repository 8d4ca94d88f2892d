package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
	"github.com/ec2ssh/ec2ssh/reach"
)

type listed struct {
	*preflight.Instance
	Reach preflight.Reach `json:"reach"`
}

// List is --list [FILTER]: the instances EC2 selects with the filter and
// how each would be reached now (REACH: the ladder's own choice, judged
// from a few calls for the whole list), as a table or JSON.
func List(ctx context.Context, r *reach.Run) (int, error) {
	args, stdout := r.Args, r.IO.Stdout
	got, err := find(ctx, r)
	if err != nil {
		return 255, err
	}
	ins, a := got.ins, got.home
	reachOf := reachability(ctx, r, a, ins)
	var out []listed
	for _, in := range ins {
		out = append(out, listed{Instance: in, Reach: reachOf[in.ID]})
	}
	if !args.NoCache {
		remember(preflight.DefaultCache(), args.Profile, got)
	}
	if args.JSON {
		if out == nil {
			out = []listed{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return 0, enc.Encode(out)
	}
	writeTable(stdout, out, args.Region == "all" || regionsOf(ins) > 1)
	if len(out) == 0 {
		fmt.Fprintf(r.IO.Stderr, "ec2ssh: no instance matches %q in %s\n", args.Destination, regionText(args.Region, a))
	}
	return 0, nil
}

// remember warms the cache with what the listing means for resolving the
// names it shows, and nothing else (issue 24). Only a listing by Name (a
// Name pattern, or every instance) holds every instance of each name it
// shows in each region it asked; for each such name with a live instance,
// each region's instances of that name are remembered as that region's
// answer (none, for a region that has none), and a listing of every
// enabled region as a sweep. Resolution then decides from them by its own
// rule: an ambiguous name stays ambiguous, the home region wins. (Gone
// instances are not listed; they matter to resolution only when a name
// has no live instance, and such names are not remembered.)
func remember(c *preflight.Cache, profile string, got *found) {
	if !got.filter.Named() {
		return
	}
	byName := map[string]map[string][]*preflight.Instance{}
	for _, in := range got.ins {
		if in.Name == "" {
			continue
		}
		if byName[in.Name] == nil {
			byName[in.Name] = map[string][]*preflight.Instance{}
		}
		byName[in.Name][in.Region] = append(byName[in.Name][in.Region], in)
	}
	swept := got.every
	for name, regions := range byName {
		alive := false
		for _, ins := range regions {
			for _, in := range ins {
				alive = alive || !in.State.Gone()
			}
		}
		if !alive || preflight.ClassifyDest(name) != preflight.DestName {
			continue
		}
		var answers []preflight.Answer
		for _, region := range got.regions {
			answers = append(answers, preflight.Answer{Region: region, Instances: regions[region]})
		}
		c.Remember(profile, name, answers, swept, preflight.LoginUser{})
	}
}

// reachability judges how each instance would be reached, per region with
// that region's clients: the facts a listing can afford, judged by the
// ladder (reach.Predict).
func reachability(ctx context.Context, r *reach.Run, a lister, ins []*preflight.Instance) map[string]preflight.Reach {
	// A check's budget, not a page's: the list is known, and what these
	// calls do not learn in time is said as unknown (issue 20: a throttled
	// DescribeInstanceInformation held the whole list for 15 s).
	ctx = preflight.WithRole(ctx, preflight.RoleCheck)
	byRegion := map[string][]*preflight.Instance{}
	for _, in := range ins {
		byRegion[in.Region] = append(byRegion[in.Region], in)
	}
	req := preflight.ListRequest{Port: r.Config.Port, AddressMode: r.Args.Address, SourceIP: r.Args.SourceIP}
	out := map[string]preflight.Reach{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for region, group := range byRegion {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ra := a
			if region != a.Region() {
				var err error
				if ra, err = open(ctx, r, region); err != nil {
					mu.Lock()
					for _, in := range group {
						out[in.ID] = preflight.Reach{Via: "unknown", Why: err.Error()}
					}
					mu.Unlock()
					return
				}
			}
			facts := ra.ListFacts(ctx, group, req)
			mu.Lock()
			defer mu.Unlock()
			for _, in := range group {
				if f := facts[in.ID]; f != nil && f.Instance != nil {
					out[in.ID] = reach.Predict(r.Args.Fallback, f, r.Args.Address)
				} else {
					out[in.ID] = preflight.Reach{Via: "unknown", Why: "nothing was learnt about it"}
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func regionsOf(ins []*preflight.Instance) int {
	seen := map[string]bool{}
	for _, in := range ins {
		seen[in.Region] = true
	}
	return len(seen)
}

// writeTable writes the listing as a table (with a REGION column when it
// spans regions).
func writeTable(w io.Writer, out []listed, multi bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "NAME\tID\tSTATE\tPUBLIC\tPRIVATE\t"
	if multi {
		head += "REGION\t"
	}
	fmt.Fprintln(tw, head+"REACH\tWHY")
	for _, l := range out {
		name := l.Name
		if name == "" {
			name = "-"
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t", failure.Vis(name), l.ID, l.State, dash(l.PublicIP), dash(l.PrivateIP))
		if multi {
			row += l.Region + "\t"
		}
		fmt.Fprintln(tw, row+l.Reach.Via+"\t"+failure.Vis(l.Reach.Why))
	}
	tw.Flush()
}

func regionText(region string, a lister) string {
	if region == "all" {
		return "any enabled region"
	}
	return a.Region()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
