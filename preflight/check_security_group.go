package preflight

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// peer is the other end of a connection as a rule sees it: an address, or
// only its family when the address is not known (a client behind a NAT).
// A rule's address family is the peer's: an IPv6 range never admits an
// IPv4 client, nor an IPv4 range an IPv6 one.
type peer struct {
	addr  netip.Addr
	known bool
	v6    bool
}

func (p peer) String() string {
	switch {
	case p.known:
		return p.addr.String()
	case p.v6:
		return "an IPv6 client whose address is not known"
	}
	return "an IPv4 client whose address is not known"
}

// family is "IPv4" or "IPv6".
func (p peer) family() string {
	if p.v6 {
		return "IPv6"
	}
	return "IPv4"
}

func newPeer(a netip.Addr, known bool, v6 bool) peer {
	if known {
		a = a.Unmap()
		return peer{addr: a, known: true, v6: a.Is6()}
	}
	return peer{v6: v6}
}

// verdict is a rule's answer for a peer: it admits it, it does not, or it
// might (what would decide is not known).
type verdict int

const (
	admitNo verdict = iota
	admitMaybe
	admitYes
)

// cidrAdmits says whether cidr admits p.
func cidrAdmits(cidr string, p peer) verdict {
	pr, err := netip.ParsePrefix(cidr)
	if err != nil || pr.Addr().Is6() != p.v6 {
		return admitNo
	}
	if p.known {
		if pr.Contains(p.addr) {
			return admitYes
		}
		return admitNo
	}
	if pr.Bits() == 0 {
		return admitYes
	}
	return admitMaybe
}

// membership answers whether the peer is a member of a security group.
type membership func(group string) (verdict, string)

// ruleAdmits judges one rule for tcp port from p: the verdict, what
// admits, and (for admitMaybe) what could not be decided.
func ruleAdmits(r SGRule, port int, p peer, prefixLists map[string][]string, member membership) (verdict, string, string) {
	if !rulePortMatch(r, port) {
		return admitNo, "", ""
	}
	what := fmt.Sprintf("tcp %d-%d", r.FromPort, r.ToPort)
	if proto := strings.ToLower(r.Protocol); proto == "-1" || proto == "all" {
		what = "all traffic"
	}
	best, why, undecided := admitNo, "", ""
	note := func(v verdict, w, u string) {
		if v == admitYes && best != admitYes {
			best, why = admitYes, w
		}
		if v == admitMaybe && best == admitNo {
			best, undecided = admitMaybe, u
		}
	}
	for _, c := range append(append([]string(nil), r.CIDRs...), r.IPv6CIDRs...) {
		note(cidrAdmits(c, p), what+" from "+c, "a rule allows "+what+" from "+c+", and the client's address is not known")
	}
	for _, pl := range r.PrefixLists {
		cidrs, ok := prefixLists[pl]
		if !ok {
			note(admitMaybe, "", "a rule allows "+what+" from prefix list "+pl+", which could not be read")
			continue
		}
		for _, c := range cidrs {
			note(cidrAdmits(c, p), what+" from "+c+" in prefix list "+pl, "a rule allows "+what+" from "+c+" (prefix list "+pl+"), and the client's address is not known")
		}
	}
	for _, g := range r.ForeignGroups {
		note(admitMaybe, "", "a rule allows "+what+" from members of "+g+", a group of another account or across a peering, whose members cannot be looked up from here")
	}
	if member != nil {
		for _, g := range r.Groups {
			v, w := member(g)
			note(v, what+" from members of "+g+" ("+w+")", w)
		}
	}
	return best, why, undecided
}

// sgAllows reports whether rule r surely lets TCP to port in from src, and
// why. With no source known, only a rule open to every IPv4 address
// counts (a ::/0 rule admits no IPv4 client).
func sgAllows(r SGRule, port int, src netip.Addr, known bool, prefixLists map[string][]string) (bool, string) {
	v, why, _ := ruleAdmits(r, port, newPeer(src, known, false), prefixLists, nil)
	return v == admitYes, why
}

// dialledPeer is the client as the dialled address's interface sees it:
// the source when known, else only the dialled address's family.
func dialledPeer(f *Facts) peer {
	src, known := f.Source.Addr()
	dst, err := netip.ParseAddr(f.Address)
	return newPeer(src, known, err == nil && dst.Unmap().Is6())
}

// sourceMembership answers membership from the interfaces found holding
// the source address.
func sourceMembership(f *Facts) membership {
	return func(g string) (verdict, string) {
		switch {
		case f.SourceInterfacesErr != nil:
			return admitMaybe, "membership could not be looked up: " + f.SourceInterfacesErr.Error()
		case !f.SourceLookedUp:
			return admitMaybe, "the interfaces holding the source address were not looked up"
		}
		for _, ifc := range f.SourceInterfaces {
			for _, sg := range ifc.SecurityGroups {
				if sg == g {
					return admitYes, ifc.ID + " holds " + f.Source.Address + " and is in " + g
				}
			}
		}
		return admitNo, "the source is not a member"
	}
}

func checkSecurityGroup(f *Facts) Result {
	in := f.Instance
	if in == nil {
		return Result{Status: Skip, Summary: "not an EC2 instance"}
	}
	if f.SecurityGroupsErr != nil {
		return unknownFrom(f.SecurityGroupsErr)
	}
	ifc, held := in.Dialled(f.Address)
	if ifc == nil || len(ifc.SecurityGroups) == 0 {
		return Result{Status: Unknown, Summary: "no security groups were found on " + in.ID}
	}
	// AWS applies an interface's groups to that interface's traffic alone:
	// the groups of the interface holding the address dialled decide.
	byID := map[string]SecurityGroup{}
	for _, g := range f.SecurityGroups {
		byID[g.ID] = g
	}
	where := ifc.ID + " (the interface holding " + f.Address + ")"
	if !held {
		where = ifc.ID + " (the primary interface)"
	}
	ev := []string{fmt.Sprintf("%s is in %s", where, joinIDs(ifc.SecurityGroups))}
	p := dialledPeer(f)
	member := sourceMembership(f)
	var refs, maybes []string
	refGroups := map[string]string{} // referenced group -> the group whose rule names it
	for _, gid := range ifc.SecurityGroups {
		g, ok := byID[gid]
		if !ok {
			return Result{Status: Unknown, Summary: fmt.Sprintf("security group %s of %s was not described", gid, ifc.ID), Evidence: ev}
		}
		for _, r := range g.Ingress {
			v, why, undecided := ruleAdmits(r, f.Port, p, f.PrefixLists, member)
			switch v {
			case admitYes:
				return Result{Status: Pass, Summary: fmt.Sprintf("%s allows %s", g.ID, why),
					Evidence: append(ev, g.ID+" ("+g.Name+"): "+why)}
			case admitMaybe:
				maybes = append(maybes, g.ID+": "+undecided)
			}
			if len(r.Groups) > 0 && rulePortMatch(r, f.Port) {
				refs = append(refs, fmt.Sprintf("%s allows port %d from members of %s", g.ID, f.Port, joinIDs(r.Groups)))
				for _, ref := range r.Groups {
					refGroups[ref] = g.ID
				}
			}
		}
	}
	ids := ifc.SecurityGroups
	if len(maybes) > 0 {
		r := Result{Status: Unknown, Evidence: append(ev, maybes...)}
		r.Summary = fmt.Sprintf("whether %s admits %s on port %d cannot be told: %s", joinIDs(ids), p, f.Port, maybes[0])
		switch {
		case f.SourceInterfacesErr != nil && len(refs) > 0:
			r.Summary = fmt.Sprintf("port %d is allowed only to members of a security group, and membership could not be checked: %s", f.Port, f.SourceInterfacesErr.Error())
			r.Fix = unknownFrom(f.SourceInterfacesErr).Fix
		case strings.Contains(maybes[0], "could not be read") && f.PrefixListsErr != nil:
			r.Fix = unknownFrom(f.PrefixListsErr).Fix
		case !p.known && len(refs) == 0:
			r.Fix = "tell ec2ssh your public address with --source-ip ADDR (or EC2SSH_SOURCE_IP)"
		case !p.known:
			r.Fix = "tell ec2ssh your address with --source-ip ADDR (or EC2SSH_SOURCE_IP)"
		}
		if p.known && len(refs) > 0 && !f.SourceLookedUp && f.SourceInterfacesErr == nil {
			return Result{Status: Warn, Summary: fmt.Sprintf("no rule allows %s by address; only by security group membership", p),
				Evidence: append(ev, refs...), Fix: "connect from an instance in that group (ProxyJump), or add a rule for your address"}
		}
		return r
	}
	ev = append(ev, otherInterfaces(f, ifc, p)...)
	if !p.known {
		return Result{Status: Fail,
			Summary:  fmt.Sprintf("port %d is closed to every %s client: no rule of %s admits one (%s)", f.Port, p.family(), joinIDs(ids), familyHint(p)),
			Evidence: ev,
			Fix: fmt.Sprintf("aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port %d --cidr YOUR_ADDRESS/32 --region %s",
				ids[0], f.Port, f.Region)}
	}
	src := p.addr
	cidr := src.String() + "/32"
	if src.Is6() {
		cidr = src.String() + "/128"
	}
	if len(refs) > 0 {
		ev = append(ev, refs...)
		for _, sifc := range f.SourceInterfaces {
			ev = append(ev, fmt.Sprintf("%s holds %s and is in %s", sifc.ID, src, joinIDs(sifc.SecurityGroups)))
		}
		var names []string
		for g := range refGroups {
			names = append(names, g)
		}
		sort.Strings(names)
		why := "no network interface in AWS holds that address (" + f.Source.side() + ")"
		if len(f.SourceInterfaces) > 0 {
			why = "its interface is in none of them (" + f.Source.side() + ")"
		}
		return Result{Status: Fail,
			Summary:  fmt.Sprintf("port %d is allowed only from members of %s, and the source %s is not one: %s", f.Port, joinIDs(names), src, why),
			Evidence: append(ev, "looked up the interfaces holding "+src.String()+" (ec2:DescribeNetworkInterfaces)"),
			Fix: fmt.Sprintf("connect through an instance in %s (ec2ssh -J BASTION …), or allow your address: aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port %d --cidr %s --region %s",
				names[0], ids[0], f.Port, cidr, f.Region)}
	}
	opt := "--cidr " + cidr
	if src.Is6() {
		opt = "--ip-permissions IpProtocol=tcp,FromPort=" + fmt.Sprint(f.Port) + ",ToPort=" + fmt.Sprint(f.Port) + ",Ipv6Ranges=[{CidrIpv6=" + cidr + "}]"
	}
	return Result{Status: Fail,
		Summary:  fmt.Sprintf("port %d blocked by %s on %s (no rule for %s)", f.Port, joinIDs(ids), ifc.ID, cidr),
		Evidence: append(ev, fmt.Sprintf("%d %s checked, none allows tcp %d from %s", len(ids), plural(len(ids), "group", "groups"), f.Port, src)),
		Fix: fmt.Sprintf("aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port %d %s --region %s",
			ids[0], f.Port, opt, f.Region)}
}

// familyHint says what the groups admit of the other family, when that is
// why the client is refused.
func familyHint(p peer) string {
	if p.v6 {
		return "IPv4 rules admit no IPv6 client"
	}
	return "IPv6 rules, ::/0 among them, admit no IPv4 client"
}

// otherInterfaces names groups on the instance's other interfaces that
// would admit the client: they do not apply to the address dialled.
func otherInterfaces(f *Facts, dialled *Interface, p peer) []string {
	byID := map[string]SecurityGroup{}
	for _, g := range f.SecurityGroups {
		byID[g.ID] = g
	}
	var ev []string
	for _, ifc := range f.Instance.Interfaces {
		if ifc.ID == dialled.ID {
			continue
		}
		for _, gid := range ifc.SecurityGroups {
			for _, r := range byID[gid].Ingress {
				if v, why, _ := ruleAdmits(r, f.Port, p, f.PrefixLists, nil); v == admitYes {
					ev = append(ev, fmt.Sprintf("%s on %s allows %s, but an interface's groups apply to that interface's addresses only", gid, ifc.ID, why))
				}
			}
		}
	}
	return ev
}
