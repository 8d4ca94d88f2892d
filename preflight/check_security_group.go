package preflight

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// sgAllows reports whether rule r lets TCP to port in from src, and why.
// With no source known, only rules open to everyone count.
func sgAllows(r SGRule, port int, src netip.Addr, known bool, prefixLists map[string][]string) (bool, string) {
	proto := strings.ToLower(r.Protocol)
	if proto != "-1" && proto != "tcp" && proto != "6" && proto != "all" {
		return false, ""
	}
	if proto != "-1" && proto != "all" && (port < r.FromPort || port > r.ToPort) {
		return false, ""
	}
	what := fmt.Sprintf("tcp %d-%d", r.FromPort, r.ToPort)
	if proto == "-1" || proto == "all" {
		what = "all traffic"
	}
	match := func(cidr string) bool {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return false
		}
		if !known {
			return p.Bits() == 0
		}
		return p.Contains(src)
	}
	for _, c := range append(append([]string(nil), r.CIDRs...), r.IPv6CIDRs...) {
		if match(c) {
			return true, what + " from " + c
		}
	}
	for _, pl := range r.PrefixLists {
		for _, c := range prefixLists[pl] {
			if match(c) {
				return true, what + " from " + c + " in prefix list " + pl
			}
		}
	}
	return false, ""
}

func checkSecurityGroup(f *Facts) Result {
	in := f.Instance
	if in == nil {
		return Result{Status: Skip, Summary: "not an EC2 instance"}
	}
	if f.SecurityGroupsErr != nil {
		return unknownFrom(f.SecurityGroupsErr)
	}
	src, known := f.Source.Addr()
	var ids, refs []string
	refGroups := map[string]string{} // referenced group -> the group whose rule names it
	for _, g := range f.SecurityGroups {
		ids = append(ids, g.ID)
		for _, r := range g.Ingress {
			if ok, why := sgAllows(r, f.Port, src, known, f.PrefixLists); ok {
				return Result{Status: Pass, Summary: fmt.Sprintf("%s allows %s", g.ID, why), Evidence: []string{g.ID + " (" + g.Name + "): " + why}}
			}
			proto := strings.ToLower(r.Protocol)
			if len(r.Groups) > 0 && (proto == "-1" || proto == "all" || ((proto == "tcp" || proto == "6") && f.Port >= r.FromPort && f.Port <= r.ToPort)) {
				refs = append(refs, fmt.Sprintf("%s allows port %d from members of %s", g.ID, f.Port, joinIDs(r.Groups)))
				for _, ref := range r.Groups {
					refGroups[ref] = g.ID
				}
			}
		}
	}
	if len(ids) == 0 {
		return Result{Status: Unknown, Summary: "no security groups were found on " + in.ID}
	}
	if len(f.PrefixLists) == 0 && f.PrefixListsErr != nil {
		return unknownFrom(f.PrefixListsErr)
	}
	if !known {
		return Result{Status: Unknown, Summary: fmt.Sprintf("the source address is not known and no rule in %s is open to everyone on port %d", joinIDs(ids), f.Port),
			Evidence: refs, Fix: "tell ec2ssh your public address with --source-ip ADDR (or EC2SSH_SOURCE_IP)"}
	}
	cidr := src.String() + "/32"
	if src.Is6() {
		cidr = src.String() + "/128"
	}
	if len(refs) > 0 {
		if f.SourceInterfacesErr != nil {
			r := unknownFrom(f.SourceInterfacesErr)
			r.Summary = "port " + fmt.Sprint(f.Port) + " is allowed only to members of a security group, and membership " + r.Summary
			r.Evidence = append(refs, r.Evidence...)
			return r
		}
		if !f.SourceLookedUp {
			return Result{Status: Warn, Summary: fmt.Sprintf("no rule allows %s by address; only by security group membership", src),
				Evidence: refs, Fix: "connect from an instance in that group (ProxyJump), or add a rule for your address"}
		}
		ev := append([]string(nil), refs...)
		for _, ifc := range f.SourceInterfaces {
			for _, g := range ifc.SecurityGroups {
				if by, ok := refGroups[g]; ok {
					return Result{Status: Pass, Summary: fmt.Sprintf("%s allows port %d from members of %s, and the source %s (%s) is one", by, f.Port, g, src, ifc.ID),
						Evidence: append(ev, fmt.Sprintf("%s holds %s and is in %s", ifc.ID, src, joinIDs(ifc.SecurityGroups)))}
				}
			}
			ev = append(ev, fmt.Sprintf("%s holds %s and is in %s", ifc.ID, src, joinIDs(ifc.SecurityGroups)))
		}
		var names []string
		for g := range refGroups {
			names = append(names, g)
		}
		sort.Strings(names)
		why := "no network interface in AWS holds that address (it is outside the VPC)"
		if len(f.SourceInterfaces) > 0 {
			why = "its interface is in none of them"
		}
		return Result{Status: Fail,
			Summary:  fmt.Sprintf("port %d is allowed only from members of %s, and the source %s is not one: %s", f.Port, joinIDs(names), src, why),
			Evidence: append(ev, "looked up the interfaces holding "+src.String()+" (ec2:DescribeNetworkInterfaces)"),
			Fix: fmt.Sprintf("connect through an instance in %s (ec2ssh -J BASTION …), or allow your address: aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port %d --cidr %s --region %s",
				names[0], ids[0], f.Port, cidr, f.Region)}
	}
	opt := "--cidr"
	if src.Is6() {
		opt = "--ip-permissions IpProtocol=tcp,FromPort=" + fmt.Sprint(f.Port) + ",ToPort=" + fmt.Sprint(f.Port) + ",Ipv6Ranges=[{CidrIpv6=" + cidr + "}] #"
	}
	return Result{Status: Fail,
		Summary:  fmt.Sprintf("port %d blocked by %s (no rule for %s)", f.Port, joinIDs(ids), cidr),
		Evidence: []string{fmt.Sprintf("%d %s checked, none allows tcp %d from %s", len(ids), plural(len(ids), "group", "groups"), f.Port, src)},
		Fix: fmt.Sprintf("aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port %d %s %s --region %s",
			ids[0], f.Port, opt, cidr, f.Region)}
}
