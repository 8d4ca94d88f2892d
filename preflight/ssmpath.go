package preflight

import (
	"fmt"
	"net/netip"
	"strings"
)

// The SSM agent's way out: it opens HTTPS (443) connections to the ssm
// and ssmmessages endpoints of its region (ec2messages for Run Command).
// Through an interface VPC endpoint with private DNS on, the service's
// name resolves to the endpoint's interfaces; otherwise to the service's
// public addresses, reached through an internet gateway (with a public
// address of its own) or a NAT gateway. On either way the instance's
// security group must let 443 out, the subnet's network ACL must let it
// out and the replies (the instance's ephemeral ports) back in, and an
// endpoint's security group must let 443 in from the instance (Systems
// Manager User Guide, "Use VPC endpoints"; VPC User Guide, "Network ACLs").

// piece is one thing the agent needs, judged: Pass, Fail (what is missing,
// with its fix) or Unknown (what could not be told, with how to tell).
type piece struct {
	status Status
	what   string // for Pass, how it is met
	fix    string
	ev     []string
	// cause, for a service the instance cannot reach at all, is why, in
	// words that do not name the service: two services failing for the
	// same cause are named once.
	cause string
}

func passPiece(what string, ev ...string) piece { return piece{status: Pass, what: what, ev: ev} }
func failPiece(what, fix string, ev ...string) piece {
	return piece{status: Fail, what: what, fix: fix, ev: ev}
}
func unknownPiece(what, fix string, ev ...string) piece {
	return piece{status: Unknown, what: what, fix: fix, ev: ev}
}

func unknownAPI(prefix string, e *APIError) piece {
	r := unknownFrom(e)
	return unknownPiece(prefix+" could not be checked: "+e.Error(), r.Fix)
}

// instanceEphemeral is the port range the instance's own connections use:
// Linux's default, or Windows'.
func instanceEphemeral(in *Instance) span {
	if strings.Contains(strings.ToLower(in.Platform), "windows") {
		return span{49152, 65535}
	}
	return span{32768, 60999}
}

// serviceHost is the service's public name in the region.
func serviceHost(f *Facts, svc string) string {
	return svc + "." + f.Region + ".amazonaws.com"
}

// agentEndpoint is the VPC's interface endpoint for svc, the one with
// private DNS first; nil when there is none.
func agentEndpoint(f *Facts, svc string) *VPCEndpoint {
	var best *VPCEndpoint
	for i := range f.VPCEndpoints {
		ep := &f.VPCEndpoints[i]
		if serviceOf(ep.Service) != svc || !strings.EqualFold(ep.Type, "Interface") {
			continue
		}
		if best == nil || ep.PrivateDNS && !best.PrivateDNS {
			best = ep
		}
	}
	return best
}

// agentPath judges the instance's way to svc ("ssm", "ssmmessages",
// "ec2messages") on 443.
func agentPath(f *Facts, svc string) piece {
	in := f.Instance
	host := serviceHost(f, svc)
	if f.VPCEndpointsErr != nil {
		return unknownAPI("the way to "+host+" (the VPC's endpoints)", f.VPCEndpointsErr)
	}
	ep := agentEndpoint(f, svc)
	if ep != nil && ep.PrivateDNS {
		switch {
		case f.VPCDNSErr != nil:
			return unknownAPI("whether "+ep.ID+"'s private DNS name resolves (the VPC's DNS attributes)", f.VPCDNSErr)
		case f.VPCDNS != nil && (!f.VPCDNS.Support || !f.VPCDNS.Hostnames):
			attr := "enableDnsHostnames"
			if !f.VPCDNS.Support {
				attr = "enableDnsSupport"
			}
			flag := map[string]string{"enableDnsSupport": "--enable-dns-support", "enableDnsHostnames": "--enable-dns-hostnames"}[attr]
			return failPiece(fmt.Sprintf("%s's private DNS name for %s does not resolve: %s is off in %s", ep.ID, host, attr, in.VPCID),
				fmt.Sprintf(`aws ec2 modify-vpc-attribute --vpc-id %s %s '{"Value":true}' --region %s`, in.VPCID, flag, f.Region))
		case ep.State != "available":
			return failPiece(fmt.Sprintf("%s (%s) is %s, not available", ep.ID, host, ep.State), "wait for it, or look at it: aws ec2 describe-vpc-endpoints --vpc-endpoint-ids "+ep.ID)
		}
		return endpointReach(f, ep, host)
	}
	inet := internetPath(f)
	switch {
	case inet.status == Pass && ep != nil:
		inet.ev = append(inet.ev, ep.ID+" ("+svc+") has private DNS off, so "+host+" resolves to its public addresses")
		return inet
	case inet.status == Pass:
		return inet
	case ep != nil:
		return failPiece(fmt.Sprintf("%s (%s) has private DNS off, so the agent looks up %s's public addresses, and %s", ep.ID, svc, host, inet.what),
			fmt.Sprintf("aws ec2 modify-vpc-endpoint --vpc-endpoint-id %s --private-dns-enabled --region %s", ep.ID, f.Region), inet.ev...)
	case inet.status == Unknown:
		return unknownPiece(fmt.Sprintf("no %s endpoint in %s, and whether the instance reaches the internet could not be told: %s", svc, in.VPCID, inet.what), inet.fix, inet.ev...)
	}
	fix := inet.fix
	if len(f.VPCEndpoints) > 0 || inet.fix == "" {
		// The VPC reaches the other services privately: the missing
		// endpoint is the piece to add.
		fix = createEndpointFix(f, svc)
	}
	p := failPiece(fmt.Sprintf("no way to %s: no %s interface endpoint in %s, and %s", host, svc, in.VPCID, inet.what), fix, inet.ev...)
	if len(f.VPCEndpoints) == 0 {
		p.cause = fmt.Sprintf("no interface endpoints in %s, and %s", in.VPCID, inet.what)
	}
	return p
}

func createEndpointFix(f *Facts, svc string) string {
	in := f.Instance
	return fmt.Sprintf("aws ec2 create-vpc-endpoint --vpc-endpoint-type Interface --vpc-id %s --service-name com.amazonaws.%s.%s --subnet-ids %s --security-group-ids SG_ADMITTING_443 --private-dns-enabled --region %s",
		in.VPCID, f.Region, svc, in.SubnetID, f.Region)
}

// internetPath judges the instance's way to public AWS addresses: the
// subnet's default route, what it leads to, the security group's egress
// and the network ACL.
func internetPath(f *Facts) piece {
	in := f.Instance
	if f.RouteTableErr != nil {
		return unknownAPI("the subnet's route table", f.RouteTableErr)
	}
	rt := f.RouteTable
	if rt == nil {
		return unknownPiece("no route table was found for subnet "+in.SubnetID, "")
	}
	anyAWS := peer{} // a public IPv4 address of AWS's, not known which
	best, found, undecided := routeFor(rt, anyAWS, f.PrefixLists)
	nat := fmt.Sprintf("give the subnet a NAT gateway: aws ec2 create-nat-gateway --subnet-id PUBLIC_SUBNET --allocation-id EIPALLOC --region %s, then aws ec2 create-route --route-table-id %s --destination-cidr-block 0.0.0.0/0 --nat-gateway-id NAT_ID --region %s; or create interface endpoints for ssm and ssmmessages", f.Region, rt.ID, f.Region)
	switch {
	case undecided != nil:
		return unknownPiece(fmt.Sprintf("which route reaches AWS's public addresses depends on them: %s -> %s may apply", undecided.Destination, undecided.Target), "")
	case !found:
		return failPiece(fmt.Sprintf("%s has no route to the internet", rt.ID), nat)
	}
	ev := []string{fmt.Sprintf("route %s -> %s (%s) in %s", best.Destination, best.Target, best.State, rt.ID)}
	if prob, fix, known := routeProblem(f, best, rt.ID); !known {
		return unknownAPI("the route's gateway "+best.Target, f.GatewaysErr)
	} else if prob != "" {
		return failPiece(prob, fix, ev...)
	}
	via := ""
	switch t := best.Target; {
	case strings.HasPrefix(t, "igw-"):
		pub := in.PublicIP
		if p := in.Primary(); p != nil && pub == "" && len(p.PublicIPs) > 0 {
			pub = p.PublicIPs[0]
		}
		if pub == "" {
			return failPiece(fmt.Sprintf("its default route goes to %s, but it has no public address, so nothing comes back", t), nat, ev...)
		}
		via = "internet gateway " + t + " (public address " + pub + ")"
	case strings.HasPrefix(t, "nat-"):
		via = "NAT gateway " + t
	case t == "local":
		return failPiece(rt.ID+" has no route to the internet", nat, ev...)
	default:
		return unknownPiece(fmt.Sprintf("its default route goes to %s, and ec2ssh cannot see whether that reaches the internet", t), "", ev...)
	}
	if p := egressAllows(f, anyAWS, nil); p.status != Pass {
		p.ev = append(ev, p.ev...)
		return p
	}
	if p := subnetACLAllows(f, f.NetworkACL, f.NetworkACLErr, anyAWS, in.SubnetID); p.status != Pass {
		p.ev = append(ev, p.ev...)
		return p
	}
	return passPiece("through "+via, ev...)
}

// egressAllows judges the instance's security groups (of its primary
// interface, which the default route uses) letting tcp 443 out to dst,
// or to members of groups.
func egressAllows(f *Facts, dst peer, groups []string) piece {
	in := f.Instance
	if f.SecurityGroupsErr != nil {
		return unknownAPI("the instance's security groups", f.SecurityGroupsErr)
	}
	ifc := in.Primary()
	if ifc == nil || len(ifc.SecurityGroups) == 0 {
		return unknownPiece("the instance's security groups are not known", "")
	}
	byID := map[string]SecurityGroup{}
	for _, g := range f.SecurityGroups {
		byID[g.ID] = g
	}
	member := func(g string) (verdict, string) {
		if contains(groups, g) {
			return admitYes, "the endpoint is in " + g
		}
		return admitNo, ""
	}
	var maybe string
	for _, gid := range ifc.SecurityGroups {
		g, ok := byID[gid]
		if !ok {
			return unknownPiece("security group "+gid+" was not described", "")
		}
		for _, r := range g.Egress {
			v, _, u := ruleAdmits(r, 443, dst, f.PrefixLists, member)
			if v == admitYes {
				return passPiece(gid + " lets 443 out")
			}
			if v == admitMaybe && maybe == "" {
				maybe = gid + ": " + u
			}
		}
	}
	to := "AWS's public addresses"
	if dst.known {
		to = dst.addr.String()
	}
	if maybe != "" && !dst.known {
		return unknownPiece(fmt.Sprintf("whether %s lets 443 out to %s depends on their addresses (%s)", joinIDs(ifc.SecurityGroups), to, maybe), "")
	}
	if maybe != "" {
		return unknownPiece(fmt.Sprintf("whether %s lets 443 out to %s could not be told (%s)", joinIDs(ifc.SecurityGroups), to, maybe), "")
	}
	cidr := "0.0.0.0/0"
	if dst.known {
		cidr = dst.addr.String() + "/32"
	}
	return failPiece(fmt.Sprintf("%s (on %s) lets nothing out to %s on 443", joinIDs(ifc.SecurityGroups), ifc.ID, to),
		fmt.Sprintf("aws ec2 authorize-security-group-egress --group-id %s --protocol tcp --port 443 --cidr %s --region %s", ifc.SecurityGroups[0], cidr, f.Region))
}

// subnetACLAllows judges a subnet's network ACL for the agent's
// connections to dst: 443 out, and the replies to the instance's
// ephemeral ports back in.
func subnetACLAllows(f *Facts, acl *NetworkACL, aclErr *APIError, dst peer, subnet string) piece {
	if aclErr != nil {
		return unknownAPI("the network ACL of "+subnet, aclErr)
	}
	if acl == nil {
		return unknownPiece("no network ACL was found for subnet "+subnet, "")
	}
	eph := instanceEphemeral(f.Instance)
	to := "AWS's public addresses"
	cidr := "0.0.0.0/0"
	if dst.known {
		to, cidr = dst.addr.String(), dst.addr.String()+"/32"
	}
	_, denied, rules, u := aclVerdict(acl.Entries, true, dst, span{443, 443})
	if u != nil {
		return unknownPiece(fmt.Sprintf("whether %s lets 443 out depends on the address (%s)", acl.ID, describeRule(*u)), "")
	}
	if len(denied) > 0 {
		return failPiece(fmt.Sprintf("%s denies tcp 443 out to %s (%s)", acl.ID, to, firstRule(rules, "the implicit deny")),
			fmt.Sprintf("aws ec2 create-network-acl-entry --network-acl-id %s --egress --rule-number N --protocol tcp --port-range From=443,To=443 --cidr-block %s --rule-action allow --region %s (numbered below the deny)",
				acl.ID, cidr, f.Region))
	}
	_, denied, rules, u = aclVerdict(acl.Entries, false, dst, eph)
	if u != nil {
		return unknownPiece(fmt.Sprintf("whether %s lets the replies in depends on the address (%s)", acl.ID, describeRule(*u)), "")
	}
	if len(denied) > 0 {
		return failPiece(fmt.Sprintf("%s drops the replies from %s: inbound tcp %s is denied (%s; network ACLs are stateless)", acl.ID, to, spans(denied), firstRule(rules, "the implicit deny")),
			fmt.Sprintf("aws ec2 create-network-acl-entry --network-acl-id %s --ingress --rule-number N --protocol tcp --port-range From=%d,To=%d --cidr-block %s --rule-action allow --region %s (numbered below the deny)",
				acl.ID, eph.lo, eph.hi, cidr, f.Region))
	}
	return passPiece(acl.ID + " lets 443 out and the replies in")
}

func firstRule(rules []ACLEntry, none string) string {
	for _, r := range rules {
		if !r.Allow {
			return describeRule(r)
		}
	}
	return none
}

// endpointReach judges the way from the instance to each interface of an
// interface endpoint: the instance's egress, the network ACLs on both
// sides when they are in different subnets, the endpoint's security group.
func endpointReach(f *Facts, ep *VPCEndpoint, host string) piece {
	in := f.Instance
	if ep.InterfacesErr != nil {
		return unknownAPI(ep.ID+"'s network interfaces", ep.InterfacesErr)
	}
	if len(ep.Interfaces) == 0 {
		return failPiece(ep.ID+" ("+host+") has no network interface in any subnet",
			fmt.Sprintf("aws ec2 modify-vpc-endpoint --vpc-endpoint-id %s --add-subnet-ids %s --region %s", ep.ID, in.SubnetID, f.Region))
	}
	self, err := netip.ParseAddr(in.PrivateIP)
	if err != nil {
		return unknownPiece("the instance's private address is not known", "")
	}
	me := newPeer(self, true, false)
	var ev []string
	for _, ifc := range ep.Interfaces {
		ip, err := netip.ParseAddr(ifc.IP)
		if err != nil {
			return unknownPiece(fmt.Sprintf("the address of %s's interface %s is not known", ep.ID, ifc.ID), "")
		}
		dst := newPeer(ip, true, false)
		if p := egressAllows(f, dst, ep.Groups); p.status != Pass {
			p.what = "toward " + ep.ID + " (" + host + "): " + p.what
			return p
		}
		if ifc.SubnetID != in.SubnetID {
			if p := subnetACLAllows(f, f.NetworkACL, f.NetworkACLErr, dst, in.SubnetID); p.status != Pass {
				p.what = "toward " + ep.ID + " (" + host + "): " + p.what
				return p
			}
			if p := endpointSubnetACL(f, ifc, me); p.status != Pass {
				p.what = "toward " + ep.ID + " (" + host + "): " + p.what
				return p
			}
		}
		if p := endpointAdmits(f, ep, me); p.status != Pass {
			return p
		}
		ev = append(ev, fmt.Sprintf("%s's interface %s at %s is reachable on 443", ep.ID, ifc.ID, ifc.IP))
	}
	return passPiece("through interface endpoint "+ep.ID+" (private DNS)", ev...)
}

// endpointSubnetACL judges the endpoint's subnet's network ACL: 443 in
// from the instance, the replies out to its ephemeral ports.
func endpointSubnetACL(f *Facts, ifc EndpointInterface, me peer) piece {
	if f.VPCEndpointACLsErr != nil {
		return unknownAPI("the network ACL of "+ifc.SubnetID, f.VPCEndpointACLsErr)
	}
	acl := f.VPCEndpointACLs[ifc.SubnetID]
	if acl == nil {
		return unknownPiece("no network ACL was found for the endpoint's subnet "+ifc.SubnetID, "")
	}
	cidr := me.addr.String() + "/32"
	_, denied, rules, _ := aclVerdict(acl.Entries, false, me, span{443, 443})
	if len(denied) > 0 {
		return failPiece(fmt.Sprintf("%s (the endpoint's subnet) denies tcp 443 in from %s (%s)", acl.ID, me, firstRule(rules, "the implicit deny")),
			fmt.Sprintf("aws ec2 create-network-acl-entry --network-acl-id %s --ingress --rule-number N --protocol tcp --port-range From=443,To=443 --cidr-block %s --rule-action allow --region %s", acl.ID, cidr, f.Region))
	}
	eph := instanceEphemeral(f.Instance)
	_, denied, rules, _ = aclVerdict(acl.Entries, true, me, eph)
	if len(denied) > 0 {
		return failPiece(fmt.Sprintf("%s (the endpoint's subnet) drops the replies to %s: outbound tcp %s is denied (%s)", acl.ID, me, spans(denied), firstRule(rules, "the implicit deny")),
			fmt.Sprintf("aws ec2 create-network-acl-entry --network-acl-id %s --egress --rule-number N --protocol tcp --port-range From=%d,To=%d --cidr-block %s --rule-action allow --region %s", acl.ID, eph.lo, eph.hi, cidr, f.Region))
	}
	return passPiece(acl.ID + " lets the instance in on 443")
}

// endpointAdmits judges the endpoint's security groups letting 443 in from
// the instance: its address, or a group it is in.
func endpointAdmits(f *Facts, ep *VPCEndpoint, me peer) piece {
	in := f.Instance
	if len(ep.Groups) == 0 {
		return unknownPiece(ep.ID+"'s security groups are not known", "")
	}
	if f.VPCEndpointGroupsErr != nil {
		return unknownAPI(ep.ID+"'s security groups", f.VPCEndpointGroupsErr)
	}
	byID := map[string]SecurityGroup{}
	for _, g := range f.VPCEndpointGroups {
		byID[g.ID] = g
	}
	mine := in.GroupIDs()
	member := func(g string) (verdict, string) {
		if contains(mine, g) {
			return admitYes, "the instance is in " + g
		}
		return admitNo, ""
	}
	for _, gid := range ep.Groups {
		g, ok := byID[gid]
		if !ok {
			return unknownPiece("security group "+gid+" of "+ep.ID+" was not described", "")
		}
		for _, r := range g.Ingress {
			if v, _, _ := ruleAdmits(r, 443, me, f.PrefixLists, member); v == admitYes {
				return passPiece(gid + " admits 443 from the instance")
			}
		}
	}
	return failPiece(fmt.Sprintf("%s's security group %s does not admit tcp 443 from the instance (%s)", ep.ID, joinIDs(ep.Groups), me),
		fmt.Sprintf("aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port 443 --source-group %s --region %s",
			ep.Groups[0], firstOr(mine, "sg-INSTANCE"), f.Region))
}
