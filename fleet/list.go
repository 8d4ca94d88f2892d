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

// List is --list [FILTER]: the instances it selects and how each would be
// reached now, as a table or JSON.
func List(ctx context.Context, r *reach.Run) (int, error) {
	args, stdout := r.Args, r.IO.Stdout
	ins, a, err := instances(ctx, r)
	if err != nil {
		return 255, err
	}
	reachOf := reachability(ctx, r, a, ins)
	cache := preflight.DefaultCache()
	var out []listed
	for _, in := range ins {
		out = append(out, listed{Instance: in, Reach: reachOf[in.ID]})
		// What was listed is what will be connected to next: remember
		// running instances by Name (and so complete them, too).
		if addr, err := in.Address(args.Address); err == nil && in.State.Running() && in.Name != "" && !args.NoCache {
			cache.Put(args.Profile, in.Region, in.Name, preflight.Cached{InstanceID: in.ID, Name: in.Name, Address: addr})
		}
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

// reachability judges how each instance would be reached, per region with
// that region's clients.
func reachability(ctx context.Context, r *reach.Run, a lister, ins []*preflight.Instance) map[string]preflight.Reach {
	// A check's budget, not a page's: the list is known, and what these
	// calls do not learn in time is said as unknown (issue 20: a throttled
	// DescribeInstanceInformation held the whole list for 15 s).
	ctx = preflight.WithRole(ctx, preflight.RoleCheck)
	byRegion := map[string][]*preflight.Instance{}
	for _, in := range ins {
		byRegion[in.Region] = append(byRegion[in.Region], in)
	}
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
					return
				}
			}
			got := ra.Reachability(ctx, group, r.Config.Port, r.Args.Address, r.Args.SourceIP)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range got {
				out[k] = v
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
