package preflight

import (
	"fmt"
	"net/netip"
	"strings"
)

// routeFor finds the route the subnet's table uses toward p: the most
// specific one containing its address. For a peer whose address is not
// known only the family's default route is sure to apply; a narrower route
// to public addresses could apply as well, and then the choice is
// undecided (the route is returned as undecided).
func routeFor(rt *RouteTable, p peer, prefixLists map[string][]string) (best Route, found bool, undecided *Route) {
	bestLen := -1
	consider := func(r Route, pr netip.Prefix) {
		if pr.Addr().Is6() != p.v6 {
			return
		}
		switch {
		case p.known && !pr.Contains(p.addr):
			return
		case !p.known && pr.Bits() != 0:
			// A client that dials a public address is on the internet: a
			// route to private or local addresses is not its way back.
			if r.Target == "local" || pr.Addr().IsPrivate() || pr.Addr().IsLoopback() || pr.Addr().IsLinkLocalUnicast() {
				return
			}
			if undecided == nil {
				u := r
				undecided = &u
			}
			return
		}
		if pr.Bits() > bestLen { // longest prefix wins
			best, bestLen = r, pr.Bits()
		}
	}
	for _, r := range rt.Routes {
		if strings.HasPrefix(r.Destination, "pl-") {
			for _, c := range prefixLists[r.Destination] {
				if pr, err := netip.ParsePrefix(c); err == nil {
					consider(r, pr)
				}
			}
			continue
		}
		if pr, err := netip.ParsePrefix(r.Destination); err == nil {
			consider(r, pr)
		}
	}
	return best, bestLen >= 0, undecided
}

// routeProblem says what is wrong with a route's target, from the route's
// state and what EC2 says of the gateway now: the summary and fix, or
// ok. known is false when the gateway could not be looked up.
func routeProblem(f *Facts, r Route, rtID string) (problem, fix string, known bool) {
	in := f.Instance
	gw, described := f.Gateways[r.Target]
	replace := fmt.Sprintf("aws ec2 replace-route --route-table-id %s --destination-cidr-block %s --gateway-id IGW_ID --region %s", rtID, r.Destination, f.Region)
	switch {
	case described && gw.Gone:
		what := "internet gateway"
		if gw.Kind == "nat" {
			what = "NAT gateway"
			replace = fmt.Sprintf("aws ec2 replace-route --route-table-id %s --destination-cidr-block %s --nat-gateway-id NAT_ID --region %s", rtID, r.Destination, f.Region)
		}
		return fmt.Sprintf("the route %s -> %s is a blackhole: that %s no longer exists", r.Destination, r.Target, what),
			"point the route at a live gateway: " + replace, true
	case described && gw.Kind == "internet" && !contains(gw.VPCs, in.VPCID):
		return fmt.Sprintf("the route %s -> %s is a blackhole: %s is not attached to %s", r.Destination, r.Target, r.Target, in.VPCID),
			fmt.Sprintf("attach it: aws ec2 attach-internet-gateway --internet-gateway-id %s --vpc-id %s --region %s", r.Target, in.VPCID, f.Region), true
	case described && gw.Kind == "nat" && gw.State != "available":
		return fmt.Sprintf("the route %s -> %s leads to a NAT gateway that is %s", r.Destination, r.Target, gw.State),
			fmt.Sprintf("create a NAT gateway and point the route at it: aws ec2 create-nat-gateway --subnet-id PUBLIC_SUBNET --allocation-id EIPALLOC --region %s; %s",
				f.Region, strings.Replace(replace, "--gateway-id IGW_ID", "--nat-gateway-id NAT_ID", 1)), true
	case r.State == "blackhole":
		return fmt.Sprintf("the route %s -> %s is a blackhole (its target was deleted or detached)", r.Destination, r.Target),
			"point the route at a live target: " + replace, true
	case !described && (strings.HasPrefix(r.Target, "igw-") || strings.HasPrefix(r.Target, "nat-")) && f.GatewaysErr != nil:
		return "", "", false
	}
	return "", "", true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func checkNetworkPath(f *Facts) Result {
	in := f.Instance
	if in == nil || !in.State.Running() {
		return Result{Status: Skip, Summary: "the instance is not running"}
	}
	addr := f.Address
	if addr == "" {
		addr, _ = in.Address("")
	}
	// An IPv6 address is reached from the internet as it is: like a
	// public address, unless the client is inside the VPC.
	dst, _ := netip.ParseAddr(addr)
	v6 := dst.Unmap().Is6()
	public := in.IsPublic(addr) || v6
	if f.Source.Private && (!public || v6) {
		return Result{Status: Pass, Summary: f.Source.side() + ": the private address " + addr + " is used",
			Evidence: []string{"source " + f.Source.Address + " (" + f.Source.How + ")", "VPC " + in.VPCID + " " + strings.Join(f.VPCCIDRs, " ")}}
	}
	if f.SubnetErr != nil && !public {
		// Whether the source is inside the VPC is its CIDRs' to say: not
		// learnt, the private address may well answer (unknown, not fail).
		return unknownFrom(f.SubnetErr)
	}
	if f.RouteTableErr != nil {
		return unknownFrom(f.RouteTableErr)
	}
	rt := f.RouteTable
	if rt == nil {
		return Result{Status: Unknown, Summary: "no route table was found for subnet " + in.SubnetID}
	}
	which := "its own route table " + rt.ID
	if rt.Main {
		which = "the VPC's main route table " + rt.ID
	}
	p := dialledPeer(f)
	best, found, undecided := routeFor(rt, p, f.PrefixLists)
	internet := fmt.Sprintf("aws ec2 create-route --route-table-id %s --destination-cidr-block 0.0.0.0/0 --gateway-id IGW_ID --region %s", rt.ID, f.Region)
	if p.v6 {
		internet = strings.Replace(internet, "--destination-cidr-block 0.0.0.0/0", "--destination-ipv6-cidr-block ::/0", 1)
	}
	if undecided != nil {
		return Result{Status: Unknown, Summary: fmt.Sprintf("the route back to the client depends on its address, which is not known: %s -> %s may apply", undecided.Destination, undecided.Target),
			Evidence: []string{which}, Fix: "tell ec2ssh your public address with --source-ip ADDR"}
	}
	if !public {
		// A private address dialled from outside the VPC: the replies must
		// go back the way the client came (a VPN, a peering, a transit
		// gateway), never to the internet.
		if !found {
			return Result{Status: Fail, Summary: fmt.Sprintf("subnet %s has no route back to %s: %s has none that contains it", in.SubnetID, p, which),
				Evidence: []string{which}, Fix: "connect from inside the VPC (a bastion with -J), over SSM (--fallback=ssm), or add a route to your network"}
		}
		ev := []string{which, fmt.Sprintf("route %s -> %s (%s)", best.Destination, best.Target, best.State)}
		if prob, fix, known := routeProblem(f, best, rt.ID); !known {
			return unknownFrom(f.GatewaysErr)
		} else if prob != "" {
			return Result{Status: Fail, Summary: prob, Evidence: ev, Fix: fix}
		}
		if strings.HasPrefix(best.Target, "igw-") || strings.HasPrefix(best.Target, "nat-") || best.Target == "local" {
			summary := fmt.Sprintf("%s and the replies to it leave through %s, so the private address %s does not answer", f.Source.side(), best.Target, addr)
			if in.PublicIP == "" && len(in.IPv6) == 0 {
				summary = in.ID + " has no public address, and " + summary
			}
			return Result{Status: Fail, Summary: summary, Evidence: ev,
				Fix: fmt.Sprintf("connect from inside the VPC (VPN, bastion with -J), use SSM (--fallback=ssm), or give it an Elastic IP: aws ec2 allocate-address --region %s, then aws ec2 associate-address --instance-id %s --allocation-id eipalloc-…", f.Region, in.ID)}
		}
		return Result{Status: Pass, Summary: fmt.Sprintf("the replies to %s go back through %s", p, best.Target), Evidence: ev}
	}
	if !found {
		return Result{Status: Fail, Summary: "subnet " + in.SubnetID + " has no route back to the source: " + which + " has no default route",
			Evidence: []string{which}, Fix: "add a default route to the VPC's internet gateway: " + internet}
	}
	ev := []string{which, fmt.Sprintf("route %s -> %s (%s)", best.Destination, best.Target, best.State)}
	prob, fix, known := routeProblem(f, best, rt.ID)
	switch {
	case !known:
		r := unknownFrom(f.GatewaysErr)
		r.Summary = "the route back goes to " + best.Target + ", which " + r.Summary
		r.Evidence = append(ev, r.Evidence...)
		return r
	case prob != "":
		return Result{Status: Fail, Summary: prob, Evidence: ev, Fix: fix}
	case !strings.HasPrefix(best.Target, "igw-"):
		what := "an internet gateway"
		if strings.HasPrefix(best.Target, "eigw-") {
			what = "an internet gateway (an egress-only one lets no connection in)"
		}
		return Result{Status: Fail, Summary: fmt.Sprintf("traffic to the source leaves through %s, not %s, so the public address does not answer", best.Target, what),
			Evidence: ev, Fix: "send it to the VPC's internet gateway: " + strings.Replace(internet, "create-route", "replace-route", 1)}
	}
	return Result{Status: Pass, Summary: "public address " + addr + " is routed through " + best.Target, Evidence: ev}
}
