package preflight

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ProbeWait bounds the SSH port probe.
const ProbeWait = 3 * time.Second

// Request is what to gather facts about.
type Request struct {
	Instance *Instance
	Address  string // the address ec2ssh dials
	Port     int
	SourceIP string // --source-ip / EC2SSH_SOURCE_IP; "" to work it out
	Keys     []KeyMaterial
	NoProbe  bool // the connection itself answers for sshd
	// Inside, when set, looks inside the instance if its SSM agent is
	// online (InsideScript), as User.
	Inside InsideRunner
	User   string
	// UserFromImage: no user was given, so the image's login user is the
	// user. The image is looked up with the other parts (not before them),
	// and the look inside waits for it.
	UserFromImage bool
	// UserFrom says where User came from: UserFromCommandLine,
	// UserFromConfig, UserFromAMI, UserFromLocal (or "" when not known).
	UserFrom string
	// Progress, when set, is told of each part as it is gathered.
	Progress func(part string)
}

// Gather asks AWS and the network everything the checks need, in
// parallel, each call with its own deadline. It never fails as a whole:
// what could not be learnt is recorded as an *APIError beside its part.
func (a *AWS) Gather(ctx context.Context, req Request) *Facts {
	ctx = WithRole(ctx, RoleCheck)
	f := &Facts{Region: a.Region(), Port: req.Port, Instance: req.Instance, Address: req.Address, User: req.User, UserFrom: req.UserFrom}
	f.LocalKeys = Fingerprints(req.Keys)
	in := req.Instance

	var wg sync.WaitGroup
	var mu sync.Mutex
	f.Timings = map[string]time.Duration{}
	do := func(part string, fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			fn()
			mu.Lock()
			f.Timings[part] = time.Since(start)
			mu.Unlock()
		}()
	}
	if !req.NoProbe && req.Address != "" {
		do("sshd probe", func() { f.SSHD = ProbeSSH(ctx, req.Address, req.Port) })
	}
	if credErr := a.Credentials(ctx); credErr != nil {
		f.CallerErr = credErr
		wg.Wait()
		f.Source = source(req, nil)
		return f
	}
	do("caller identity", func() {
		ctx, cancel := callCtx(ctx)
		defer cancel()
		out, err := a.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if f.CallerErr = apiError("sts:GetCallerIdentity", "sts:GetCallerIdentity", err); err == nil {
			f.Caller = &Caller{Account: aws.ToString(out.Account), ARN: aws.ToString(out.Arn)}
		}
	})
	if in == nil {
		wg.Wait()
		f.Source = source(req, nil)
		return f
	}
	do("status checks", func() {
		f.Status, f.StatusErr = a.status(ctx, in.ID)
		if f.Status != nil && (f.Status.System == "impaired" || f.Status.Instance == "impaired") {
			f.ConsoleTail = a.consoleTail(ctx, in.ID, 20)
		}
	})
	do("subnet and VPC", func() { f.Subnet, f.VPCCIDRs, f.SubnetErr = a.subnet(ctx, in) })
	// Each part is looked up whatever another part found: a lookup that
	// fails leaves its own part unknown and nothing else.
	var routePLs map[string][]string
	var routePLErr *APIError
	do("route table and gateways", func() {
		f.RouteTable, f.RouteTableErr = a.routeTable(ctx, in)
		if f.RouteTable != nil {
			f.Gateways, f.GatewaysErr = a.gateways(ctx, f.RouteTable)
			routePLs, routePLErr = a.prefixLists(ctx, routePrefixLists(f.RouteTable))
		}
	})
	do("security groups", func() {
		f.SecurityGroups, f.SecurityGroupsErr = a.securityGroups(ctx, in.GroupIDs())
		f.PrefixLists, f.PrefixListsErr = a.prefixLists(ctx, rulePrefixLists(f.SecurityGroups))
	})
	do("network ACL", func() { f.NetworkACL, f.NetworkACLErr = a.networkACL(ctx, in) })
	imageDone := make(chan struct{})
	if in.ImageID != "" {
		do("image", func() {
			defer close(imageDone)
			f.Image, f.ImageErr = a.image(ctx, in.ImageID)
		})
	} else {
		close(imageDone)
	}
	if in.VPCID != "" {
		do("VPC endpoints", func() { a.vpcEndpoints(ctx, in, f) })
	}
	if in.VPCID != "" {
		do("instance connect endpoints", func() {
			f.Endpoints, f.EndpointsErr = a.InstanceConnectEndpoints(ctx, in.VPCID)
			var ids []string
			for _, ep := range f.Endpoints {
				ids = append(ids, ep.SecurityGroups...)
			}
			if len(ids) > 0 {
				f.EndpointGroups, f.EndpointGroupsErr = a.securityGroups(ctx, dedupe(ids))
			}
		})
	}
	if in.KeyName != "" {
		do("key pair", func() { f.KeyPair, f.KeyPairErr = a.keyPair(ctx, in.KeyName) })
	}
	if in.InstanceProfile != "" {
		do("instance profile", func() { f.Role, f.RoleErr = a.role(ctx, in.InstanceProfile) })
	}
	do("SSM agent", func() {
		f.SSM, f.SSMErr = a.ssmAgent(ctx, in.ID)
		if req.Inside != nil && f.SSM != nil && f.SSM.PingStatus == "Online" && in.State.Running() {
			ireq := req
			if req.UserFromImage {
				<-imageDone // the image part has its own budget
				if u := imageUser(f.Image); u != "" {
					ireq.User = u
				}
			}
			start := time.Now()
			f.Inside, f.InsideErr = a.lookInside(ctx, ireq, in)
			mu.Lock()
			f.Timings["look inside"] = time.Since(start)
			mu.Unlock()
		}
	})
	wg.Wait()
	if u := imageUser(f.Image); req.UserFromImage && u != "" {
		f.User, f.UserFrom = u, UserFromAMI
	}
	for id, cidrs := range routePLs {
		if f.PrefixLists == nil {
			f.PrefixLists = map[string][]string{}
		}
		f.PrefixLists[id] = cidrs
	}
	if f.PrefixListsErr == nil {
		f.PrefixListsErr = routePLErr
	}
	f.Source = source(req, f.VPCCIDRs)
	if referencesGroups(f.SecurityGroups, f.Port) && f.Source.Address != "" {
		f.SourceInterfaces, f.SourceInterfacesErr = a.interfacesHolding(ctx, f.Source.Address)
		f.SourceLookedUp = f.SourceInterfacesErr == nil
	}
	return f
}

// InstanceConnectEndpoints are vpc's EC2 Instance Connect Endpoints.
func (a *AWS) InstanceConnectEndpoints(ctx context.Context, vpc string) ([]InstanceConnectEndpoint, *APIError) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeInstanceConnectEndpoints(ctx, &ec2.DescribeInstanceConnectEndpointsInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}}})
	if err != nil {
		return nil, apiError("ec2:DescribeInstanceConnectEndpoints", "ec2:DescribeInstanceConnectEndpoints", err)
	}
	var eps []InstanceConnectEndpoint
	for _, e := range out.InstanceConnectEndpoints {
		eps = append(eps, InstanceConnectEndpoint{ID: aws.ToString(e.InstanceConnectEndpointId), DNSName: aws.ToString(e.DnsName),
			VPCID: aws.ToString(e.VpcId), SubnetID: aws.ToString(e.SubnetId), State: string(e.State), SecurityGroups: e.SecurityGroupIds,
			PreserveClientIP: aws.ToBool(e.PreserveClientIp)})
	}
	return eps, nil
}

// consoleTail is the last n lines of the instance's console output (the
// latest, as the console shows it), or nil.
func (a *AWS) consoleTail(ctx context.Context, id string, n int) []string {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if err != nil || out.Output == nil {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i := range lines {
		lines[i] = Sanitize(strings.TrimRight(lines[i], "\r"))
	}
	return lines
}

// referencesGroups reports whether a rule for port admits members of a
// security group: only then does the source's membership matter.
func referencesGroups(groups []SecurityGroup, port int) bool {
	for _, g := range groups {
		for _, r := range g.Ingress {
			proto := strings.ToLower(r.Protocol)
			if len(r.Groups) > 0 && (proto == "-1" || proto == "all" || (port >= r.FromPort && port <= r.ToPort)) {
				return true
			}
		}
	}
	return false
}

// interfacesHolding finds the network interfaces whose private address is
// addr: a security group admits its members by their interfaces.
func (a *AWS) interfacesHolding(ctx context.Context, addr string) ([]Interface, *APIError) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{
		{Name: aws.String("addresses.private-ip-address"), Values: []string{addr}}}})
	if err != nil {
		return nil, apiError("ec2:DescribeNetworkInterfaces", "ec2:DescribeNetworkInterfaces", err)
	}
	var ifcs []Interface
	for _, n := range out.NetworkInterfaces {
		ifc := Interface{ID: aws.ToString(n.NetworkInterfaceId), SubnetID: aws.ToString(n.SubnetId), VPCID: aws.ToString(n.VpcId)}
		for _, g := range n.Groups {
			ifc.SecurityGroups = append(ifc.SecurityGroups, aws.ToString(g.GroupId))
		}
		ifcs = append(ifcs, ifc)
	}
	return ifcs, nil
}

// imageUser is the login user of im's family ("" when not known).
func imageUser(im *Image) string {
	if im == nil {
		return ""
	}
	fam, _ := IdentifyImage(*im)
	return fam.User
}

// InsideTimeout bounds the look inside: a session, the script, its output.
const InsideTimeout = 20 * time.Second

// lookInside runs InsideScript on the instance and reads what it says.
func (a *AWS) lookInside(ctx context.Context, req Request, in *Instance) (*Inside, string) {
	ctx, cancel := context.WithTimeout(ctx, InsideTimeout)
	defer cancel()
	start := time.Now()
	user := req.User
	if user == "" {
		user = "ec2-user"
	}
	out, err := req.Inside.RunScript(ctx, in.ID, InsideScript, user, strconv.Itoa(req.Port))
	if err != nil && len(out) == 0 {
		return nil, err.Error()
	}
	addr := in.PrivateIP
	inside := ParseInside(out, user, req.Port, addr)
	inside.How, inside.Took = req.Inside.How(), time.Since(start)
	return inside, ""
}

func (a *AWS) status(ctx context.Context, id string) (*InstanceStatus, *APIError) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}, IncludeAllInstances: aws.Bool(true)})
	if err != nil {
		return nil, apiError("ec2:DescribeInstanceStatus", "ec2:DescribeInstanceStatus", err)
	}
	if len(out.InstanceStatuses) == 0 {
		return nil, nil
	}
	s := out.InstanceStatuses[0]
	st := &InstanceStatus{System: "not-applicable", Instance: "not-applicable"}
	if s.SystemStatus != nil {
		st.System = string(s.SystemStatus.Status)
	}
	if s.InstanceStatus != nil {
		st.Instance = string(s.InstanceStatus.Status)
	}
	return st, nil
}

func (a *AWS) subnet(ctx context.Context, in *Instance) (*Subnet, []string, *APIError) {
	if in.SubnetID == "" {
		return nil, nil, nil
	}
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{in.SubnetID}})
	if err != nil {
		return nil, nil, apiError("ec2:DescribeSubnets", "ec2:DescribeSubnets", err)
	}
	if len(out.Subnets) == 0 {
		return nil, nil, nil
	}
	s := out.Subnets[0]
	sub := &Subnet{ID: aws.ToString(s.SubnetId), CIDR: aws.ToString(s.CidrBlock), VPCID: aws.ToString(s.VpcId)}
	var cidrs []string
	vpcs, err := a.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{sub.VPCID}})
	if err == nil && len(vpcs.Vpcs) > 0 {
		for _, c := range vpcs.Vpcs[0].CidrBlockAssociationSet {
			cidrs = append(cidrs, aws.ToString(c.CidrBlock))
		}
		if len(cidrs) == 0 {
			cidrs = append(cidrs, aws.ToString(vpcs.Vpcs[0].CidrBlock))
		}
		for _, c := range vpcs.Vpcs[0].Ipv6CidrBlockAssociationSet {
			cidrs = append(cidrs, aws.ToString(c.Ipv6CidrBlock))
		}
	}
	return sub, cidrs, nil
}

// routeTable finds the table in force for the instance's subnet: its
// explicit association, else the VPC's main table.
func (a *AWS) routeTable(ctx context.Context, in *Instance) (*RouteTable, *APIError) {
	if in.SubnetID == "" {
		return nil, nil
	}
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{
		{Name: aws.String("association.subnet-id"), Values: []string{in.SubnetID}}}})
	if err != nil {
		return nil, apiError("ec2:DescribeRouteTables", "ec2:DescribeRouteTables", err)
	}
	main := false
	if len(out.RouteTables) == 0 {
		out, err = a.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{in.VPCID}}, {Name: aws.String("association.main"), Values: []string{"true"}}}})
		if err != nil {
			return nil, apiError("ec2:DescribeRouteTables", "ec2:DescribeRouteTables", err)
		}
		main = true
	}
	if len(out.RouteTables) == 0 {
		return nil, nil
	}
	t := out.RouteTables[0]
	rt := &RouteTable{ID: aws.ToString(t.RouteTableId), Main: main}
	for _, r := range t.Routes {
		dest := aws.ToString(r.DestinationCidrBlock)
		if dest == "" {
			dest = aws.ToString(r.DestinationIpv6CidrBlock)
		}
		if dest == "" {
			dest = aws.ToString(r.DestinationPrefixListId)
		}
		target := "local"
		for _, t := range []*string{r.GatewayId, r.NatGatewayId, r.TransitGatewayId, r.VpcPeeringConnectionId, r.InstanceId, r.NetworkInterfaceId, r.EgressOnlyInternetGatewayId} {
			if v := aws.ToString(t); v != "" {
				target = v
				break
			}
		}
		rt.Routes = append(rt.Routes, Route{Destination: dest, Target: target, State: string(r.State)})
	}
	return rt, nil
}

// gateways describes the internet and NAT gateways the routes name. They
// are asked for by filter, not by id: a deleted gateway is then missing
// from the answer (Gone) rather than failing the whole call.
func (a *AWS) gateways(ctx context.Context, rt *RouteTable) (map[string]Gateway, *APIError) {
	var igws, nats []string
	for _, r := range rt.Routes {
		switch {
		case strings.HasPrefix(r.Target, "igw-"):
			igws = append(igws, r.Target)
		case strings.HasPrefix(r.Target, "nat-"):
			nats = append(nats, r.Target)
		}
	}
	if len(igws)+len(nats) == 0 {
		return nil, nil
	}
	m := map[string]Gateway{}
	var firstErr *APIError
	if len(igws) > 0 {
		cctx, cancel := callCtx(ctx)
		out, err := a.EC2.DescribeInternetGateways(cctx, &ec2.DescribeInternetGatewaysInput{Filters: []ec2types.Filter{
			{Name: aws.String("internet-gateway-id"), Values: dedupe(igws)}}})
		cancel()
		if err != nil {
			firstErr = apiError("ec2:DescribeInternetGateways", "ec2:DescribeInternetGateways", err)
		} else {
			for _, id := range igws {
				m[id] = Gateway{ID: id, Kind: "internet", Gone: true}
			}
			for _, g := range out.InternetGateways {
				gw := Gateway{ID: aws.ToString(g.InternetGatewayId), Kind: "internet"}
				for _, at := range g.Attachments {
					if at.State == ec2types.AttachmentStatusAttached || string(at.State) == "available" {
						gw.VPCs = append(gw.VPCs, aws.ToString(at.VpcId))
					}
				}
				m[gw.ID] = gw
			}
		}
	}
	if len(nats) > 0 {
		cctx, cancel := callCtx(ctx)
		out, err := a.EC2.DescribeNatGateways(cctx, &ec2.DescribeNatGatewaysInput{Filter: []ec2types.Filter{
			{Name: aws.String("nat-gateway-id"), Values: dedupe(nats)}}})
		cancel()
		if err != nil {
			if firstErr == nil {
				firstErr = apiError("ec2:DescribeNatGateways", "ec2:DescribeNatGateways", err)
			}
		} else {
			for _, id := range nats {
				m[id] = Gateway{ID: id, Kind: "nat", Gone: true}
			}
			for _, g := range out.NatGateways {
				gw := Gateway{ID: aws.ToString(g.NatGatewayId), Kind: "nat", State: string(g.State), SubnetID: aws.ToString(g.SubnetId)}
				m[gw.ID] = gw
			}
		}
	}
	return m, firstErr
}

// routePrefixLists are the prefix lists routes send traffic to.
func routePrefixLists(rt *RouteTable) []string {
	var ids []string
	for _, r := range rt.Routes {
		if strings.HasPrefix(r.Destination, "pl-") {
			ids = append(ids, r.Destination)
		}
	}
	return dedupe(ids)
}

// rulePrefixLists are the prefix lists the groups' rules (in and out) name.
func rulePrefixLists(groups []SecurityGroup) []string {
	var ids []string
	for _, g := range groups {
		for _, r := range append(append([]SGRule(nil), g.Ingress...), g.Egress...) {
			ids = append(ids, r.PrefixLists...)
		}
	}
	return dedupe(ids)
}

// sgRule converts a permission. A group it names that belongs to another
// account, or is reached across a peering, goes to ForeignGroups: its
// members' interfaces cannot be looked up from this account.
func sgRule(p ec2types.IpPermission, owner string) SGRule {
	r := SGRule{Protocol: aws.ToString(p.IpProtocol), FromPort: int(aws.ToInt32(p.FromPort)), ToPort: int(aws.ToInt32(p.ToPort))}
	for _, x := range p.IpRanges {
		r.CIDRs = append(r.CIDRs, aws.ToString(x.CidrIp))
	}
	for _, x := range p.Ipv6Ranges {
		r.IPv6CIDRs = append(r.IPv6CIDRs, aws.ToString(x.CidrIpv6))
	}
	for _, x := range p.PrefixListIds {
		r.PrefixLists = append(r.PrefixLists, aws.ToString(x.PrefixListId))
	}
	for _, x := range p.UserIdGroupPairs {
		if u := aws.ToString(x.UserId); u != "" && owner != "" && u != owner || aws.ToString(x.VpcPeeringConnectionId) != "" {
			r.ForeignGroups = append(r.ForeignGroups, aws.ToString(x.GroupId))
			continue
		}
		r.Groups = append(r.Groups, aws.ToString(x.GroupId))
	}
	return r
}

func (a *AWS) securityGroups(ctx context.Context, ids []string) ([]SecurityGroup, *APIError) {
	if len(ids) == 0 {
		return nil, nil
	}
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: ids})
	if err != nil {
		return nil, apiError("ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroups", err)
	}
	var groups []SecurityGroup
	for _, g := range out.SecurityGroups {
		sg := SecurityGroup{ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName)}
		for _, p := range g.IpPermissions {
			sg.Ingress = append(sg.Ingress, sgRule(p, aws.ToString(g.OwnerId)))
		}
		for _, p := range g.IpPermissionsEgress {
			sg.Egress = append(sg.Egress, sgRule(p, aws.ToString(g.OwnerId)))
		}
		groups = append(groups, sg)
	}
	return groups, nil
}

// prefixLists reads each list's CIDRs. A list that cannot be read is left
// out of the map (a rule or route naming it cannot be judged) and the
// first such error returned; the others are still read.
func (a *AWS) prefixLists(ctx context.Context, ids []string) (map[string][]string, *APIError) {
	if len(ids) == 0 {
		return nil, nil
	}
	m := map[string][]string{}
	var firstErr *APIError
	for _, pl := range ids {
		cctx, cancel := callCtx(ctx)
		p := ec2.NewGetManagedPrefixListEntriesPaginator(a.EC2, &ec2.GetManagedPrefixListEntriesInput{PrefixListId: aws.String(pl)})
		cidrs := []string{}
		var err error
		for p.HasMorePages() {
			var out *ec2.GetManagedPrefixListEntriesOutput
			if out, err = p.NextPage(cctx); err != nil {
				break
			}
			for _, e := range out.Entries {
				cidrs = append(cidrs, aws.ToString(e.Cidr))
			}
		}
		cancel()
		if err != nil {
			if firstErr == nil {
				firstErr = apiError("ec2:GetManagedPrefixListEntries", "ec2:GetManagedPrefixListEntries", err)
			}
			continue
		}
		m[pl] = cidrs
	}
	return m, firstErr
}

func (a *AWS) networkACL(ctx context.Context, in *Instance) (*NetworkACL, *APIError) {
	if in.SubnetID == "" {
		return nil, nil
	}
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{
		{Name: aws.String("association.subnet-id"), Values: []string{in.SubnetID}}}})
	if err != nil {
		return nil, apiError("ec2:DescribeNetworkAcls", "ec2:DescribeNetworkAcls", err)
	}
	if len(out.NetworkAcls) == 0 {
		return nil, nil
	}
	return convertACL(out.NetworkAcls[0]), nil
}

func convertACL(n ec2types.NetworkAcl) *NetworkACL {
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

// image describes the instance's AMI. An AMI EC2 no longer describes
// (deregistered, or private to another account) is nil with no error.
func (a *AWS) image(ctx context.Context, id string) (*Image, *APIError) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		e := apiError("ec2:DescribeImages", "ec2:DescribeImages", err)
		if e.Code == "InvalidAMIID.NotFound" || e.Code == "InvalidAMIID.Unavailable" {
			return nil, nil
		}
		return nil, e
	}
	if len(out.Images) == 0 {
		return nil, nil
	}
	im := out.Images[0]
	return &Image{ID: aws.ToString(im.ImageId), Name: aws.ToString(im.Name), Description: aws.ToString(im.Description),
		Owner: aws.ToString(im.OwnerId), OwnerAlias: aws.ToString(im.ImageOwnerAlias), Platform: string(im.Platform)}, nil
}

// agentServices are the services whose VPC endpoints the SSM agent uses.
var agentServices = []string{"ssm", "ssmmessages", "ec2messages"}

// serviceOf is the short name of an endpoint's service
// (com.amazonaws.us-east-1.ssmmessages: ssmmessages).
func serviceOf(name string) string { return name[strings.LastIndexByte(name, '.')+1:] }

// vpcEndpoints gathers the instance's VPC's endpoints for the services the
// SSM agent talks to, the addresses of their interfaces, their security
// groups, the network ACLs of their subnets and the VPC's DNS attributes:
// whether the agent can reach each service privately.
func (a *AWS) vpcEndpoints(ctx context.Context, in *Instance, f *Facts) {
	cctx, cancel := callCtx(ctx)
	p := ec2.NewDescribeVpcEndpointsPaginator(a.EC2, &ec2.DescribeVpcEndpointsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{in.VPCID}}}})
	var eps []VPCEndpoint
	for p.HasMorePages() {
		page, err := p.NextPage(cctx)
		if err != nil {
			cancel()
			f.VPCEndpointsErr = apiError("ec2:DescribeVpcEndpoints", "ec2:DescribeVpcEndpoints", err)
			return
		}
		for _, e := range page.VpcEndpoints {
			if aws.ToString(e.VpcId) != in.VPCID || !slices.Contains(agentServices, serviceOf(aws.ToString(e.ServiceName))) {
				continue
			}
			ep := VPCEndpoint{ID: aws.ToString(e.VpcEndpointId), Service: aws.ToString(e.ServiceName), Type: string(e.VpcEndpointType),
				State: strings.ToLower(string(e.State)), PrivateDNS: aws.ToBool(e.PrivateDnsEnabled), SubnetIDs: e.SubnetIds}
			for _, g := range e.Groups {
				ep.Groups = append(ep.Groups, aws.ToString(g.GroupId))
			}
			for _, id := range e.NetworkInterfaceIds {
				ep.Interfaces = append(ep.Interfaces, EndpointInterface{ID: id})
			}
			eps = append(eps, ep)
		}
	}
	cancel()
	f.VPCEndpoints = eps
	if len(eps) == 0 {
		return
	}
	var enis, groups, subnets []string
	dns := false
	for _, ep := range eps {
		for _, ifc := range ep.Interfaces {
			enis = append(enis, ifc.ID)
		}
		groups = append(groups, ep.Groups...)
		subnets = append(subnets, ep.SubnetIDs...)
		dns = dns || ep.PrivateDNS
	}
	if len(enis) > 0 {
		cctx, cancel := callCtx(ctx)
		out, err := a.EC2.DescribeNetworkInterfaces(cctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: dedupe(enis)})
		cancel()
		found := map[string]EndpointInterface{}
		if err == nil {
			for _, n := range out.NetworkInterfaces {
				id := aws.ToString(n.NetworkInterfaceId)
				found[id] = EndpointInterface{ID: id, SubnetID: aws.ToString(n.SubnetId), IP: aws.ToString(n.PrivateIpAddress)}
			}
		}
		for i := range f.VPCEndpoints {
			ep := &f.VPCEndpoints[i]
			if err != nil {
				ep.InterfacesErr = apiError("ec2:DescribeNetworkInterfaces", "ec2:DescribeNetworkInterfaces", err)
				continue
			}
			for k, ifc := range ep.Interfaces {
				if got, ok := found[ifc.ID]; ok {
					ep.Interfaces[k] = got
				}
			}
		}
	}
	if len(groups) > 0 {
		f.VPCEndpointGroups, f.VPCEndpointGroupsErr = a.securityGroups(ctx, dedupe(groups))
	}
	var others []string
	for _, s := range dedupe(subnets) {
		if s != in.SubnetID {
			others = append(others, s)
		}
	}
	if len(others) > 0 {
		cctx, cancel := callCtx(ctx)
		out, err := a.EC2.DescribeNetworkAcls(cctx, &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{
			{Name: aws.String("association.subnet-id"), Values: others}}})
		cancel()
		if err != nil {
			f.VPCEndpointACLsErr = apiError("ec2:DescribeNetworkAcls", "ec2:DescribeNetworkAcls", err)
		} else {
			f.VPCEndpointACLs = map[string]*NetworkACL{}
			for _, n := range out.NetworkAcls {
				for _, as := range n.Associations {
					if s := aws.ToString(as.SubnetId); slices.Contains(others, s) {
						f.VPCEndpointACLs[s] = convertACL(n)
					}
				}
			}
		}
	}
	if dns {
		f.VPCDNS, f.VPCDNSErr = a.vpcDNS(ctx, in.VPCID)
	}
}

func (a *AWS) vpcDNS(ctx context.Context, vpc string) (*VPCDNS, *APIError) {
	d := &VPCDNS{}
	for _, attr := range []ec2types.VpcAttributeName{ec2types.VpcAttributeNameEnableDnsSupport, ec2types.VpcAttributeNameEnableDnsHostnames} {
		cctx, cancel := callCtx(ctx)
		out, err := a.EC2.DescribeVpcAttribute(cctx, &ec2.DescribeVpcAttributeInput{VpcId: aws.String(vpc), Attribute: attr})
		cancel()
		if err != nil {
			return nil, apiError("ec2:DescribeVpcAttribute", "ec2:DescribeVpcAttribute", err)
		}
		if out.EnableDnsSupport != nil {
			d.Support = aws.ToBool(out.EnableDnsSupport.Value)
		}
		if out.EnableDnsHostnames != nil {
			d.Hostnames = aws.ToBool(out.EnableDnsHostnames.Value)
		}
	}
	return d, nil
}

func (a *AWS) keyPair(ctx context.Context, name string) (*KeyPair, *APIError) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}})
	if err != nil {
		return nil, apiError("ec2:DescribeKeyPairs", "ec2:DescribeKeyPairs", err)
	}
	if len(out.KeyPairs) == 0 {
		return nil, &APIError{Op: "ec2:DescribeKeyPairs", Code: "InvalidKeyPair.NotFound", Message: "no key pair " + name}
	}
	k := out.KeyPairs[0]
	return &KeyPair{Name: aws.ToString(k.KeyName), Fingerprint: aws.ToString(k.KeyFingerprint), Type: string(k.KeyType)}, nil
}

// role follows the instance profile to its role and reads every policy in
// force for it: the attached managed policies (AWS's and the account's),
// the inline policies and the permissions boundary. A policy that cannot
// be read is recorded with its error, so the judgement knows what it did
// not see.
func (a *AWS) role(ctx context.Context, profileARN string) (*Role, *APIError) {
	name := profileARN[strings.LastIndex(profileARN, "/")+1:]
	cctx, cancel := callCtx(ctx)
	out, err := a.IAM.GetInstanceProfile(cctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	cancel()
	if err != nil {
		return nil, apiError("iam:GetInstanceProfile", "iam:GetInstanceProfile", err)
	}
	r := &Role{Profile: name}
	if out.InstanceProfile == nil || len(out.InstanceProfile.Roles) == 0 {
		return r, nil
	}
	r.Name = aws.ToString(out.InstanceProfile.Roles[0].RoleName)
	var docs []func() PolicyDoc
	cctx, cancel = callCtx(ctx)
	role, err := a.IAM.GetRole(cctx, &iam.GetRoleInput{RoleName: aws.String(r.Name)})
	cancel()
	switch {
	case err != nil:
		r.Documents = append(r.Documents, PolicyDoc{Name: "the role's permissions boundary", Kind: PolicyBoundary,
			Err: apiError("iam:GetRole", "iam:GetRole", err)})
	case role.Role != nil && role.Role.PermissionsBoundary != nil:
		arn := aws.ToString(role.Role.PermissionsBoundary.PermissionsBoundaryArn)
		docs = append(docs, func() PolicyDoc { return a.managedPolicy(ctx, arn, PolicyBoundary) })
	}
	att := iam.NewListAttachedRolePoliciesPaginator(a.IAM, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(r.Name)})
	for att.HasMorePages() {
		cctx, cancel := callCtx(ctx)
		page, err := att.NextPage(cctx)
		cancel()
		if err != nil {
			r.Documents = append(r.Documents, PolicyDoc{Name: "the role's attached policies", Kind: PolicyCustomerManaged,
				Err: apiError("iam:ListAttachedRolePolicies", "iam:ListAttachedRolePolicies", err)})
			break
		}
		for _, p := range page.AttachedPolicies {
			arn := aws.ToString(p.PolicyArn)
			r.Policies = append(r.Policies, arn)
			kind := PolicyCustomerManaged
			if strings.Contains(arn, ":iam::aws:policy/") {
				kind = PolicyAWSManaged
			}
			docs = append(docs, func() PolicyDoc { return a.managedPolicy(ctx, arn, kind) })
		}
	}
	inl := iam.NewListRolePoliciesPaginator(a.IAM, &iam.ListRolePoliciesInput{RoleName: aws.String(r.Name)})
	for inl.HasMorePages() {
		cctx, cancel := callCtx(ctx)
		page, err := inl.NextPage(cctx)
		cancel()
		if err != nil {
			r.Documents = append(r.Documents, PolicyDoc{Name: "the role's inline policies", Kind: PolicyInline,
				Err: apiError("iam:ListRolePolicies", "iam:ListRolePolicies", err)})
			break
		}
		for _, pn := range page.PolicyNames {
			docs = append(docs, func() PolicyDoc {
				d := PolicyDoc{Name: pn, Kind: PolicyInline}
				cctx, cancel := callCtx(ctx)
				defer cancel()
				out, err := a.IAM.GetRolePolicy(cctx, &iam.GetRolePolicyInput{RoleName: aws.String(r.Name), PolicyName: aws.String(pn)})
				if err != nil {
					d.Err = apiError("iam:GetRolePolicy", "iam:GetRolePolicy", err)
				} else {
					d.Document = decodePolicy(aws.ToString(out.PolicyDocument))
				}
				return d
			})
		}
	}
	// The documents are read side by side, a few at a time.
	got := make([]PolicyDoc, len(docs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, read := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			got[i] = read()
		}()
	}
	wg.Wait()
	r.Documents = append(r.Documents, got...)
	return r, nil
}

// managedPolicy reads a managed policy's default version. When it cannot
// be read and AWS publishes it (knownPolicies), the published document
// stands in, said so by its error being kept beside it.
func (a *AWS) managedPolicy(ctx context.Context, arn, kind string) PolicyDoc {
	d := PolicyDoc{Name: arn, Kind: kind}
	cctx, cancel := callCtx(ctx)
	defer cancel()
	p, err := a.IAM.GetPolicy(cctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if err == nil && p.Policy != nil {
		var v *iam.GetPolicyVersionOutput
		v, err = a.IAM.GetPolicyVersion(cctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: p.Policy.DefaultVersionId})
		if err == nil && v.PolicyVersion != nil {
			d.Document = decodePolicy(aws.ToString(v.PolicyVersion.Document))
			return d
		}
		if err == nil {
			err = errors.New("no policy version")
		}
		d.Err = apiError("iam:GetPolicyVersion", "iam:GetPolicyVersion", err)
	} else {
		if err == nil {
			err = errors.New("no policy")
		}
		d.Err = apiError("iam:GetPolicy", "iam:GetPolicy", err)
	}
	if doc, ok := knownPolicies[arn]; ok {
		d.Document, d.Err = doc, nil
	}
	return d
}

// decodePolicy undoes IAM's URL encoding of policy documents.
func decodePolicy(doc string) string {
	if d, err := url.QueryUnescape(doc); err == nil {
		return d
	}
	return doc
}

// AgentOnline reports whether id's SSM agent is registered and Online;
// known is false when DescribeInstanceInformation could not be asked.
func (a *AWS) AgentOnline(ctx context.Context, id string) (online, known bool) {
	ag, err := a.ssmAgent(ctx, id)
	if err != nil {
		return false, false
	}
	return ag.Registered && ag.PingStatus == "Online", true
}

func (a *AWS) ssmAgent(ctx context.Context, id string) (*SSMAgent, *APIError) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.SSM.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}}})
	if err != nil {
		return nil, apiError("ssm:DescribeInstanceInformation", "ssm:DescribeInstanceInformation", err)
	}
	if len(out.InstanceInformationList) == 0 {
		return &SSMAgent{Registered: false}, nil
	}
	info := out.InstanceInformationList[0]
	return &SSMAgent{Registered: true, PingStatus: string(info.PingStatus), LastPing: aws.ToTime(info.LastPingDateTime),
		AgentVersion: aws.ToString(info.AgentVersion)}, nil
}

// ProbeSSH connects to the SSH port and reads the banner.
func ProbeSSH(ctx context.Context, addr string, port int) *Probe {
	p := &Probe{Address: addr, Port: port}
	ctx, cancel := context.WithTimeout(ctx, ProbeWait)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	switch {
	case err == nil:
	case errors.Is(err, syscall.ECONNREFUSED):
		p.Result = ProbeRefused
		return p
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		p.Result, p.Detail = ProbeUnreachable, err.Error()
		return p
	default:
		p.Result, p.Detail = ProbeTimeout, "no answer within "+ProbeWait.String()
		return p
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH-") {
		p.Result = ProbeNoBanner
		if err != nil {
			p.Detail = err.Error()
		}
		return p
	}
	p.Result, p.Banner = ProbeOpen, strings.TrimSpace(line)
	return p
}

// source works out the address the instance sees connections come from.
func source(req Request, vpcCIDRs []string) Source {
	s := Source{EphemeralLow: 32768, EphemeralHigh: 60999}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, e1 := strconv.Atoi(f[0])
			hi, e2 := strconv.Atoi(f[1])
			if e1 == nil && e2 == nil {
				s.EphemeralLow, s.EphemeralHigh = lo, hi
			}
		}
	}
	ip := req.SourceIP
	if ip == "" {
		ip = os.Getenv("EC2SSH_SOURCE_IP")
		s.How = "EC2SSH_SOURCE_IP"
	} else {
		s.How = "--source-ip"
	}
	if ip == "" && req.Address != "" {
		// The kernel's choice of local address toward the target; no packet
		// is sent for a UDP "connection".
		if conn, err := net.Dial("udp", net.JoinHostPort(req.Address, "22")); err == nil {
			ip = conn.LocalAddr().(*net.UDPAddr).IP.String()
			conn.Close()
			s.How = "kernel route"
		}
	}
	s.Address = ip
	// Packets to a public address come in through the internet gateway,
	// whatever the client's own address: only toward a private address is
	// a client inside the VPC seen as itself.
	public := req.Instance != nil && req.Instance.IsPublic(req.Address)
	if a, err := netip.ParseAddr(ip); err == nil {
		for _, c := range vpcCIDRs {
			if p, err := netip.ParsePrefix(c); err == nil && p.Contains(a) && !public {
				s.Private = true
			}
		}
		// Toward a public target the kernel's address is a private one:
		// the instance sees the NAT's public address, which is not known.
		if public && s.How == "kernel route" && (a.IsPrivate() || a.IsLoopback()) {
			s.Address, s.How = "", "unknown (behind NAT; set --source-ip)"
		}
	}
	return s
}
