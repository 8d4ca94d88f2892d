package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The names world (issue 24): a generated fleet of more than a thousand
// instances in three regions, for listing and resolving at scale. Names
// with slashes and spaces, case variants, names shared by an
// auto-scaling group's instances, names shared across regions, brackets,
// stars and backslashes in names; tag values with wildcard characters in
// them. Instances have no sshd (listing needs none), but for a few
// resolution samples. Each instance's reachability is set by the world
// (its security group, its SSM agent, stopped or not), so the listing's
// REACH has a known answer.

// NamesRegions are the world's regions: the lab's two and a third.
var NamesRegions = []string{Region, FarRegion, "ap-southeast-2"}

// Generated is one instance of the names world.
type Generated struct {
	ID, Region, Name, IP string
	Tags                 map[string]string
	Stopped              bool
	// Reach is how a connection would get in, by construction: "direct"
	// (port 22 open to the lab), "ssm" (closed, agent online), "none"
	// (closed, no agent; or stopped).
	Reach string
	SSHD  *SSHD // resolution samples only
	// sample: it gets an sshd (at its fixed address)
	sample bool
}

// NamesWorld is the generated fleet.
type NamesWorld struct {
	Instances []*Generated
	// Samples are the resolution samples by Name (several for a name
	// several instances carry).
	Samples map[string][]*Generated
}

// group is instances made by one RunInstances: count of them, one Name.
type group struct {
	name    string
	count   int
	tags    map[string]string
	open    bool // port 22 open to the lab
	online  bool // SSM agent online
	stopped bool
	sample  string // a resolution sample: its fixed address (it gets an sshd)
}

// notes are tag values with EC2's wildcard characters in them.
var notes = []string{"50*off", "what?", `back\slash`, "[x]", "a/b c", "plain"}

// namesPlan is each region's groups.
func namesPlan(ri int) []group {
	scale := []float64{1, 0.75, 0.55}[ri]
	n := func(k int) int { return max(1, int(float64(k)*scale)) }
	envs := []string{"prod", "preview", "staging"}
	var gs []group
	add := func(g group) {
		if g.tags == nil {
			g.tags = map[string]string{}
		}
		g.tags["World"] = "names"
		gs = append(gs, g)
	}
	// Auto-scaling groups: one Name, many instances.
	for i := range n(14) {
		add(group{name: fmt.Sprintf("asg-%02d", i), count: 10 + i%13, tags: map[string]string{"Env": envs[i%3], "Team": "ops/asg"},
			open: i%3 != 0, online: i%2 == 0})
	}
	for i := range n(120) {
		// Single instances; the same names in every region.
		add(group{name: fmt.Sprintf("web-%03d", i), count: 1, tags: map[string]string{"Env": envs[i%3], "Note": notes[i%len(notes)]},
			open: i%3 != 1, online: i%4 == 0, stopped: i%17 == 5})
		if i%5 == 0 {
			add(group{name: fmt.Sprintf("team/%s/api", []string{"alpha", "beta", "gamma", "delta"}[i%4]) + fmt.Sprint(i), count: 1 + i%2,
				tags: map[string]string{"Team": "a/b", "Env": envs[(i+1)%3]}, open: true})
		}
	}
	for i := range n(20) {
		add(group{name: fmt.Sprintf("db server %d", i), count: 1, tags: map[string]string{"Env": "prod", "Note": "db*"}, online: true})
		add(group{name: fmt.Sprintf("Cache-%02d", i), count: 2, tags: map[string]string{"Env": "Prod"}, open: true})
		add(group{name: fmt.Sprintf("cache-%02d", i), count: 1, tags: map[string]string{"Env": "prod"}})
	}
	for i := range 4 {
		add(group{name: fmt.Sprintf("web[%d]", i), count: 1, open: true})
		add(group{name: fmt.Sprintf("web%d", i), count: 1, open: true})
		add(group{name: fmt.Sprintf("star*name-%d", i), count: 1})
		add(group{name: fmt.Sprintf(`back\slash-%d`, i), count: 1})
	}
	// Resolution samples, each with an sshd at a fixed address.
	switch ri {
	case 0:
		add(group{name: "shared-name", count: 1, open: true, sample: "127.64.8.10"})
		add(group{name: "twin-name", count: 2, open: true})
		add(group{name: "gone-name", count: 1, open: true, sample: "-terminate"})
	case 1:
		add(group{name: "shared-name", count: 1, open: true, sample: "127.65.8.10"})
		add(group{name: "far-name", count: 1, open: true, sample: "127.65.8.11"})
		add(group{name: "split-twin", count: 1, open: true})
	case 2:
		add(group{name: "split-twin", count: 1, open: true})
		add(group{name: "gone-name", count: 1, open: true, sample: "127.66.8.10"})
	}
	return gs
}

// BuildNames makes the names world in moto (every region of
// NamesRegions, each in a VPC of its own), marks its agents online in the
// SSM stand-in, and starts an sshd for each resolution sample, accepting
// pub for root.
func (w *World) BuildNames(ctx context.Context, pub string) (*NamesWorld, error) {
	nw := &NamesWorld{Samples: map[string][]*Generated{}}
	var mu sync.Mutex
	errs := make([]error, len(NamesRegions))
	var wg sync.WaitGroup
	for ri, region := range NamesRegions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := w.buildNamesRegion(ctx, ri, region)
			if err != nil {
				errs[ri] = fmt.Errorf("%s: %w", region, err)
				return
			}
			mu.Lock()
			nw.Instances = append(nw.Instances, got...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(nw.Instances, func(i, j int) bool { return nw.Instances[i].ID < nw.Instances[j].ID })
	for _, g := range nw.Instances {
		if g.Reach == "ssm" {
			w.ssm.SetOnline(g.ID, true)
		}
		if g.sample {
			sd, err := StartSSHD(filepath.Join(w.Dir, "sshd-"+g.IP), SSHDOptions{Addr: g.IP, Port: 22, AuthorizedKeys: []string{pub}})
			if err != nil {
				return nil, err
			}
			w.sshds = append(w.sshds, sd)
			g.SSHD = sd
		}
		switch g.Name {
		case "shared-name", "twin-name", "gone-name", "far-name", "split-twin":
			nw.Samples[g.Name] = append(nw.Samples[g.Name], g)
		}
	}
	return nw, nil
}

func (w *World) buildNamesRegion(ctx context.Context, ri int, region string) ([]*Generated, error) {
	cfg := w.awsConfig()
	cfg.Region = region
	e := ec2.NewFromConfig(cfg)
	vpc, err := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(fmt.Sprintf("127.%d.0.0/16", 64+ri))})
	if err != nil {
		return nil, fmt.Errorf("create vpc: %w", err)
	}
	bulk, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("127.%d.0.0/21", 64+ri))})
	if err != nil {
		return nil, fmt.Errorf("create subnet: %w", err)
	}
	samples, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("127.%d.8.0/24", 64+ri))})
	if err != nil {
		return nil, fmt.Errorf("create subnet: %w", err)
	}
	sgs := map[bool]*string{}
	for open, perm := range map[bool]ec2types.IpPermission{
		true:  {IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("127.0.0.0/8")}}},
		false: {IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
	} {
		g, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(fmt.Sprintf("names-%v", open)),
			Description: aws.String("names world"), VpcId: vpc.Vpc.VpcId})
		if err != nil {
			return nil, fmt.Errorf("create security group: %w", err)
		}
		if _, err := e.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: []ec2types.IpPermission{perm}}); err != nil {
			return nil, err
		}
		sgs[open] = g.GroupId
	}
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"amzn*"}}}})
	if err != nil || len(imgs.Images) == 0 {
		return nil, fmt.Errorf("no Amazon Linux image: %v", err)
	}
	ami := imgs.Images[0].ImageId
	var out []*Generated
	var stop, terminate []string
	for _, g := range namesPlan(ri) {
		tags := []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(g.name)}}
		keys := make([]string, 0, len(g.tags))
		for k := range g.tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(g.tags[k])})
		}
		in := &ec2.RunInstancesInput{ImageId: ami, MinCount: aws.Int32(int32(g.count)), MaxCount: aws.Int32(int32(g.count)),
			InstanceType: ec2types.InstanceTypeT3Micro, SubnetId: bulk.Subnet.SubnetId, SecurityGroupIds: []string{*sgs[g.open]},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}}}
		if g.sample != "" && g.sample != "-terminate" {
			in.SubnetId, in.PrivateIpAddress = samples.Subnet.SubnetId, aws.String(g.sample)
		}
		got, err := e.RunInstances(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", g.name, err)
		}
		for _, inst := range got.Instances {
			gen := &Generated{ID: aws.ToString(inst.InstanceId), Region: region, Name: g.name, IP: aws.ToString(inst.PrivateIpAddress),
				Tags: map[string]string{"Name": g.name}, Stopped: g.stopped, sample: g.sample != "" && g.sample != "-terminate"}
			for k, v := range g.tags {
				gen.Tags[k] = v
			}
			switch {
			case g.stopped:
				gen.Reach = "none"
				stop = append(stop, gen.ID)
			case g.open:
				gen.Reach = "direct"
			case g.online:
				gen.Reach = "ssm"
			default:
				gen.Reach = "none"
			}
			if g.sample == "-terminate" {
				gen.Reach = "gone"
				terminate = append(terminate, gen.ID)
			}
			out = append(out, gen)
		}
	}
	for start := 0; start < len(stop); start += 100 {
		if _, err := e.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: stop[start:min(start+100, len(stop))]}); err != nil {
			return nil, fmt.Errorf("stop: %w", err)
		}
	}
	if len(terminate) > 0 {
		if _, err := e.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: terminate}); err != nil {
			return nil, fmt.Errorf("terminate: %w", err)
		}
	}
	return out, nil
}

// NamesWorldSize is how many instances namesPlan makes (for tests that
// want to know before building).
func NamesWorldSize() int {
	n := 0
	for ri := range NamesRegions {
		for _, g := range namesPlan(ri) {
			n += g.count
		}
	}
	return n
}
