package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// names: --list at fleet size against the AWS CLI (issue 24), over the
// names world (more than a thousand instances in three regions): the same
// selection (EC2's filters, terminated instances asked away), pages and
// calls counted by a proxy in front of the EC2 front, wall time as the
// median of alternated runs. ec2ssh's calls include what REACH needs
// (security groups, network ACLs, endpoints; SSM's calls go elsewhere and
// are not counted); the CLI's are DescribeInstances alone.
func (e *env) names(say func(row)) error {
	pub, err := os.ReadFile(e.w.ED25519Key + ".pub")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	_, err = e.w.BuildNames(ctx, string(pub))
	cancel()
	if err != nil {
		return fmt.Errorf("the names world: %w", err)
	}
	wx, err := lab.StartRegionWeather(fmt.Sprintf("http://127.0.0.1:%d", lab.EC2FrontPort))
	if err != nil {
		return err
	}
	defer wx.Stop()
	environ := append(append([]string(nil), e.environ...), "AWS_ENDPOINT_URL_EC2="+wx.URL())
	states := "Name=instance-state-name,Values=pending,running,shutting-down,stopping,stopped"
	// counted runs f and says how many DescribeInstances pages and EC2
	// calls it made.
	counted := func(f func() time.Duration) (time.Duration, int, int) {
		p0, c0 := wx.Calls("DescribeInstances", ""), wx.Calls("", "")
		d := f()
		return d, wx.Calls("DescribeInstances", "") - p0, wx.Calls("", "") - c0
	}
	timed := func(name string, args ...string) func() time.Duration {
		return func() time.Duration { d, _ := e.timeInEnv(environ, "", name, args...); return d }
	}
	compare := func(what string, n int, ours, theirs func() time.Duration) {
		var od, td []time.Duration
		var op, oc, tp, tc int
		for range 3 {
			d, p, c := counted(ours)
			od, op, oc = append(od, d), p, c
			d, p, c = counted(theirs)
			td, tp, tc = append(td, d), p, c
		}
		r := ratioRow(fmt.Sprintf("%s (%d instances)", what, n), od, td, 0, false)
		r.ours += fmt.Sprintf(", %d pages, %d EC2 calls", op, oc)
		r.theirs += fmt.Sprintf(", %d pages, %d calls", tp, tc)
		say(r)
	}
	// count is how many instances ec2ssh lists with args.
	count := func(args ...string) int {
		out, _ := e.output(e.bin, append([]string{"-F", e.cfg, "--no-cache", "--list", "--json"}, args...)...)
		var got []struct{ ID string }
		json.Unmarshal([]byte(out), &got)
		return len(got)
	}
	home := count("--region", lab.Region)
	compare("--list --json, one region, no filter: ec2ssh vs aws ec2 describe-instances", home,
		timed(e.bin, "-F", e.cfg, "--no-cache", "--list", "--json", "--region", lab.Region),
		timed("aws", "ec2", "describe-instances", "--region", lab.Region, "--filters", states, "--output", "json"))
	loop := fmt.Sprintf(`for r in $(aws ec2 describe-regions --region %s --query 'Regions[].RegionName' --output text); do aws ec2 describe-instances --region $r --filters 'Name=tag:Name,Values=web-*' %s --output json >/dev/null || exit 1; done`,
		lab.Region, states)
	compare("--list --region all 'web-*': ec2ssh vs the AWS CLI region by region", count("--region", "all", "web-*"),
		timed(e.bin, "-F", e.cfg, "--no-cache", "--list", "--json", "--region", "all", "web-*"),
		timed("sh", "-c", loop))
	// Slow pages: each DescribeInstances answers a second late. Both finish.
	wx.Delay("DescribeInstances", time.Second)
	compare("--list, one region, every page 1 s late: ec2ssh vs aws ec2 describe-instances", home,
		timed(e.bin, "-F", e.cfg, "--no-cache", "--list", "--json", "--region", lab.Region),
		timed("aws", "ec2", "describe-instances", "--region", lab.Region, "--filters", states, "--output", "json"))
	wx.Delay("DescribeInstances", 0)
	return nil
}
