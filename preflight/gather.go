package preflight

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
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
	// Progress, when set, is told of each part as it is gathered.
	Progress func(part string)
}

// Gather asks AWS and the network everything the checks need, in
// parallel, each call with its own deadline. It never fails as a whole:
// what could not be learnt is recorded as an *APIError beside its part.
func (a *AWS) Gather(ctx context.Context, req Request) *Facts {
	ctx = WithRole(ctx, RoleCheck)
	f := &Facts{Region: a.Region(), Port: req.Port, Instance: req.Instance}
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
	do("route table and gateways", func() {
		f.RouteTable, f.RouteTableErr = a.routeTable(ctx, in)
		if f.RouteTable != nil {
			f.InternetGateways, f.InternetGatewaysErr = a.gateways(ctx, f.RouteTable)
		}
	})
	do("security groups", func() {
		f.SecurityGroups, f.SecurityGroupsErr = a.securityGroups(ctx, in.GroupIDs())
		f.PrefixLists, f.PrefixListsErr = a.prefixLists(ctx, f.SecurityGroups)
	})
	do("network ACL", func() { f.NetworkACL, f.NetworkACLErr = a.networkACL(ctx, in) })
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
			start := time.Now()
			f.Inside, f.InsideErr = a.lookInside(ctx, req, in)
			mu.Lock()
			f.Timings["look inside"] = time.Since(start)
			mu.Unlock()
		}
	})
	wg.Wait()
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

func (a *AWS) gateways(ctx context.Context, rt *RouteTable) (map[string][]string, *APIError) {
	var ids []string
	for _, r := range rt.Routes {
		if strings.HasPrefix(r.Target, "igw-") {
			ids = append(ids, r.Target)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{InternetGatewayIds: ids})
	if err != nil {
		return nil, apiError("ec2:DescribeInternetGateways", "ec2:DescribeInternetGateways", err)
	}
	m := map[string][]string{}
	for _, g := range out.InternetGateways {
		id := aws.ToString(g.InternetGatewayId)
		m[id] = []string{}
		for _, at := range g.Attachments {
			if at.State == ec2types.AttachmentStatusAttached || string(at.State) == "available" {
				m[id] = append(m[id], aws.ToString(at.VpcId))
			}
		}
	}
	return m, nil
}

func sgRule(p ec2types.IpPermission) SGRule {
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
			sg.Ingress = append(sg.Ingress, sgRule(p))
		}
		for _, p := range g.IpPermissionsEgress {
			sg.Egress = append(sg.Egress, sgRule(p))
		}
		groups = append(groups, sg)
	}
	return groups, nil
}

func (a *AWS) prefixLists(ctx context.Context, groups []SecurityGroup) (map[string][]string, *APIError) {
	m := map[string][]string{}
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
				m[pl] = []string{}
				for _, e := range out.Entries {
					m[pl] = append(m[pl], aws.ToString(e.Cidr))
				}
			}
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
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
	n := out.NetworkAcls[0]
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
	return acl, nil
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

// role follows the instance profile to its role and the policies that
// matter for SSM.
func (a *AWS) role(ctx context.Context, profileARN string) (*Role, *APIError) {
	name := profileARN[strings.LastIndex(profileARN, "/")+1:]
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if err != nil {
		return nil, apiError("iam:GetInstanceProfile", "iam:GetInstanceProfile", err)
	}
	r := &Role{Profile: name}
	if out.InstanceProfile == nil || len(out.InstanceProfile.Roles) == 0 {
		return r, nil
	}
	r.Name = aws.ToString(out.InstanceProfile.Roles[0].RoleName)
	att, err := a.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(r.Name)})
	if err != nil {
		return nil, apiError("iam:ListAttachedRolePolicies", "iam:ListAttachedRolePolicies", err)
	}
	for _, p := range att.AttachedPolicies {
		r.Policies = append(r.Policies, aws.ToString(p.PolicyArn))
	}
	inl, err := a.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(r.Name)})
	if err == nil {
		for _, pn := range inl.PolicyNames {
			doc, err := a.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(r.Name), PolicyName: aws.String(pn)})
			if err == nil && grantsSessionManager(aws.ToString(doc.PolicyDocument)) {
				r.InlineSSM = true
			}
		}
	}
	return r, nil
}

// grantsSessionManager reports whether a policy document allows what the
// agent needs to register and carry sessions: ssm:UpdateInstanceInformation
// and the ssmmessages channel actions (or wildcards covering them).
func grantsSessionManager(doc string) bool {
	if d, err := url.QueryUnescape(doc); err == nil {
		doc = d
	}
	var p struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(doc), &p) != nil {
		return false
	}
	type stmt struct {
		Effect string
		Action any
	}
	var stmts []stmt
	if json.Unmarshal(p.Statement, &stmts) != nil {
		var one stmt
		if json.Unmarshal(p.Statement, &one) != nil {
			return false
		}
		stmts = []stmt{one}
	}
	need := map[string]bool{"ssm:updateinstanceinformation": false, "ssmmessages:createcontrolchannel": false, "ssmmessages:opendatachannel": false}
	for _, s := range stmts {
		if s.Effect != "Allow" {
			continue
		}
		var actions []string
		switch v := s.Action.(type) {
		case string:
			actions = []string{v}
		case []any:
			for _, x := range v {
				if str, ok := x.(string); ok {
					actions = append(actions, str)
				}
			}
		}
		for _, act := range actions {
			act = strings.ToLower(act)
			for n := range need {
				svc, _, _ := strings.Cut(n, ":")
				if act == n || act == "*" || act == svc+":*" {
					need[n] = true
				}
			}
		}
	}
	for _, ok := range need {
		if !ok {
			return false
		}
	}
	return true
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
	if a, err := netip.ParseAddr(ip); err == nil {
		for _, c := range vpcCIDRs {
			if p, err := netip.ParsePrefix(c); err == nil && p.Contains(a) {
				s.Private = true
			}
		}
		// Toward a public target the kernel's address is a private one:
		// the instance sees the NAT's public address, which is not known.
		if !s.Private && s.How == "kernel route" && (a.IsPrivate() || a.IsLoopback()) && req.Instance != nil && req.Address == req.Instance.PublicIP {
			s.Address, s.How = "", "unknown (behind NAT; set --source-ip)"
		}
	}
	return s
}
