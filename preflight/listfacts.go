package preflight

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// What a listing learns of how each instance could be reached, from a few
// calls for the whole list (no per-instance call, no probe): the facts the
// checks of a connection judge, as far as a listing can afford them. The
// judging is not done here: the ladder decides (reach.Predict), from the
// same checks a connection's diagnosis runs.

// Reach is how ec2ssh would get to an instance now: Via is "direct",
// "ssm", "eice", "none", or "unknown" when what decides it could not be
// learnt; Why says what it was judged from.
type Reach struct {
	Via string `json:"via"`
	Why string `json:"why"`
}

// ListRequest is what a listing's facts are for.
type ListRequest struct {
	Port        int
	AddressMode string // --address
	SourceIP    string // --source-ip; "" to work it out per instance
}

// filterBatch bounds the values of one filter or id list in one call
// (EC2 takes at most 200 values in a filter).
const filterBatch = 200

// ListFacts gathers, for the running instances of ins (all in a's
// region), the facts a listing judges reachability from: their security
// groups (and the prefix lists they name, and whether this machine is a
// member of the groups they admit), their subnets' network ACLs,
// their SSM agents' registration, and their VPCs' EC2 Instance Connect
// Endpoints with those endpoints' groups. A call that fails is recorded
// beside its part (…Err), as Gather does: the checks then say unknown.
// Instances that are not running get facts with the instance alone.
func (a *AWS) ListFacts(ctx context.Context, ins []*Instance, req ListRequest) map[string]*Facts {
	out := map[string]*Facts{}
	var running []*Instance
	var ids, groupIDs, subnets, vpcs []string
	for _, in := range ins {
		out[in.ID] = &Facts{Region: a.Region(), Port: req.Port, Instance: in}
		if !in.State.Running() {
			continue
		}
		running = append(running, in)
		ids = append(ids, in.ID)
		groupIDs = append(groupIDs, in.GroupIDs()...)
		if in.SubnetID != "" {
			subnets = append(subnets, in.SubnetID)
		}
		if in.VPCID != "" {
			vpcs = append(vpcs, in.VPCID)
		}
	}
	if len(running) == 0 {
		return out
	}
	var (
		wg                   sync.WaitGroup
		groups               map[string]SecurityGroup
		prefixLists          map[string][]string
		groupsErr, prefixErr *APIError
		acls                 map[string]*NetworkACL
		aclErr               *APIError
		agents               map[string]*SSMAgent
		agentErr             *APIError
		endpoints            []InstanceConnectEndpoint
		endpointGroups       []SecurityGroup
		endpointErr          *APIError
	)
	wg.Add(4)
	go func() {
		defer wg.Done()
		var list []SecurityGroup
		list, groupsErr = a.groupsBatched(ctx, dedupe(groupIDs))
		groups = map[string]SecurityGroup{}
		for _, g := range list {
			groups[g.ID] = g
		}
		if groupsErr == nil {
			prefixLists, prefixErr = a.listPrefixLists(ctx, list)
		}
	}()
	go func() {
		defer wg.Done()
		acls, aclErr = a.subnetACLs(ctx, dedupe(subnets))
	}()
	go func() {
		defer wg.Done()
		agents, agentErr = a.agents(ctx, ids)
	}()
	go func() {
		defer wg.Done()
		endpoints, endpointErr = a.connectEndpointsIn(ctx, dedupe(vpcs))
		var gids []string
		for _, ep := range endpoints {
			gids = append(gids, ep.SecurityGroups...)
		}
		endpointGroups, _ = a.groupsBatched(ctx, dedupe(gids))
	}()
	wg.Wait()
	for _, in := range running {
		f := out[in.ID]
		f.SecurityGroupsErr, f.PrefixLists, f.PrefixListsErr = groupsErr, prefixLists, prefixErr
		for _, id := range in.GroupIDs() {
			if g, ok := groups[id]; ok {
				f.SecurityGroups = append(f.SecurityGroups, g)
			}
		}
		f.NetworkACLErr = aclErr
		if in.SubnetID != "" {
			f.NetworkACL = acls[in.SubnetID]
		}
		f.SSMErr = agentErr
		if agentErr == nil {
			f.SSM = agents[in.ID]
			if f.SSM == nil {
				f.SSM = &SSMAgent{}
			}
		}
		f.EndpointsErr, f.EndpointGroups = endpointErr, endpointGroups
		for _, ep := range endpoints {
			if ep.VPCID == in.VPCID {
				f.Endpoints = append(f.Endpoints, ep)
			}
		}
		addr, _ := in.Address(req.AddressMode)
		f.Source = source(Request{Instance: in, Address: addr, SourceIP: req.SourceIP}, nil)
	}
	// A rule that admits a group's members admits this machine only if its
	// address is on an interface in that group: asked once per address.
	type membership struct {
		ifcs []Interface
		err  *APIError
	}
	looked := map[string]membership{}
	for _, in := range running {
		f := out[in.ID]
		if f.Source.Address == "" || !referencesGroups(f.SecurityGroups, req.Port) {
			continue
		}
		m, ok := looked[f.Source.Address]
		if !ok {
			m.ifcs, m.err = a.interfacesHolding(ctx, f.Source.Address)
			looked[f.Source.Address] = m
		}
		f.SourceInterfaces, f.SourceInterfacesErr, f.SourceLookedUp = m.ifcs, m.err, m.err == nil
	}
	return out
}

// RunCheck runs the one check id over f (a listing judges with a few of
// the checks, not all).
func RunCheck(id CheckID, f *Facts) Result {
	for _, c := range Checks {
		if c.ID == id {
			return runOne(c, f)
		}
	}
	return Result{ID: id, Status: Unknown, Summary: "no such check"}
}

// groupsBatched is securityGroups for any number of ids.
func (a *AWS) groupsBatched(ctx context.Context, ids []string) ([]SecurityGroup, *APIError) {
	var out []SecurityGroup
	for start := 0; start < len(ids); start += filterBatch {
		gs, err := a.securityGroups(ctx, ids[start:min(start+filterBatch, len(ids))])
		if err != nil {
			return out, err
		}
		out = append(out, gs...)
	}
	return out, nil
}

// subnetACLs are the network ACLs of subnets, by subnet.
func (a *AWS) subnetACLs(ctx context.Context, subnets []string) (map[string]*NetworkACL, *APIError) {
	out := map[string]*NetworkACL{}
	for start := 0; start < len(subnets); start += filterBatch {
		batch := subnets[start:min(start+filterBatch, len(subnets))]
		p := ec2.NewDescribeNetworkAclsPaginator(a.EC2, &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{
			{Name: aws.String("association.subnet-id"), Values: batch}}})
		for p.HasMorePages() {
			cctx, cancel := callCtx(ctx)
			page, err := p.NextPage(cctx)
			cancel()
			if err != nil {
				return out, apiError("ec2:DescribeNetworkAcls", "ec2:DescribeNetworkAcls", err)
			}
			for _, n := range page.NetworkAcls {
				acl := listedACL(n)
				for _, as := range n.Associations {
					out[aws.ToString(as.SubnetId)] = acl
				}
			}
		}
	}
	return out, nil
}

// listedACL is a network ACL as the checks read it.
func listedACL(n ec2types.NetworkAcl) *NetworkACL {
	acl := &NetworkACL{ID: aws.ToString(n.NetworkAclId)}
	for _, e := range n.Entries {
		cidr := aws.ToString(e.CidrBlock)
		if cidr == "" {
			cidr = aws.ToString(e.Ipv6CidrBlock)
		}
		entry := ACLEntry{Number: int(aws.ToInt32(e.RuleNumber)), Egress: aws.ToBool(e.Egress), Protocol: aws.ToString(e.Protocol),
			Allow: e.RuleAction == ec2types.RuleActionAllow, CIDR: cidr}
		if e.PortRange != nil {
			entry.FromPort, entry.ToPort = int(aws.ToInt32(e.PortRange.From)), int(aws.ToInt32(e.PortRange.To))
		}
		acl.Entries = append(acl.Entries, entry)
	}
	return acl
}

// agents are the registered SSM agents among ids, by instance id, asked 50
// at a time (DescribeInstanceInformation's limit for an InstanceIds filter).
func (a *AWS) agents(ctx context.Context, ids []string) (map[string]*SSMAgent, *APIError) {
	out := map[string]*SSMAgent{}
	for start := 0; start < len(ids); start += 50 {
		in := &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
			{Key: aws.String("InstanceIds"), Values: ids[start:min(start+50, len(ids))]}}}
		p := ssm.NewDescribeInstanceInformationPaginator(a.SSM, in)
		for p.HasMorePages() {
			cctx, cancel := callCtx(ctx)
			page, err := p.NextPage(cctx)
			cancel()
			if err != nil {
				return out, apiError("ssm:DescribeInstanceInformation", "ssm:DescribeInstanceInformation", err)
			}
			for _, i := range page.InstanceInformationList {
				out[aws.ToString(i.InstanceId)] = &SSMAgent{Registered: true, PingStatus: string(i.PingStatus)}
			}
		}
	}
	return out, nil
}

// connectEndpointsIn are the EC2 Instance Connect Endpoints of vpcs.
func (a *AWS) connectEndpointsIn(ctx context.Context, vpcs []string) ([]InstanceConnectEndpoint, *APIError) {
	var out []InstanceConnectEndpoint
	for start := 0; start < len(vpcs); start += filterBatch {
		batch := vpcs[start:min(start+filterBatch, len(vpcs))]
		cctx, cancel := callCtx(ctx)
		resp, err := a.EC2.DescribeInstanceConnectEndpoints(cctx, &ec2.DescribeInstanceConnectEndpointsInput{
			Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: batch}}})
		cancel()
		if err != nil {
			return out, apiError("ec2:DescribeInstanceConnectEndpoints", "ec2:DescribeInstanceConnectEndpoints", err)
		}
		for _, e := range resp.InstanceConnectEndpoints {
			out = append(out, InstanceConnectEndpoint{ID: aws.ToString(e.InstanceConnectEndpointId), DNSName: aws.ToString(e.DnsName),
				VPCID: aws.ToString(e.VpcId), SubnetID: aws.ToString(e.SubnetId), State: string(e.State), SecurityGroups: e.SecurityGroupIds,
				PreserveClientIP: aws.ToBool(e.PreserveClientIp)})
		}
	}
	return out, nil
}

// listPrefixLists are the CIDRs of the managed prefix lists the groups'
// inbound rules name, by list.
func (a *AWS) listPrefixLists(ctx context.Context, groups []SecurityGroup) (map[string][]string, *APIError) {
	var m map[string][]string
	for _, g := range groups {
		for _, r := range g.Ingress {
			for _, pl := range r.PrefixLists {
				if _, done := m[pl]; done {
					continue
				}
				cctx, cancel := callCtx(ctx)
				out, err := a.EC2.GetManagedPrefixListEntries(cctx, &ec2.GetManagedPrefixListEntriesInput{PrefixListId: aws.String(pl)})
				cancel()
				if err != nil {
					return m, apiError("ec2:GetManagedPrefixListEntries", "ec2:GetManagedPrefixListEntries", err)
				}
				if m == nil {
					m = map[string][]string{}
				}
				m[pl] = []string{}
				for _, e := range out.Entries {
					m[pl] = append(m[pl], aws.ToString(e.Cidr))
				}
			}
		}
	}
	return m, nil
}
