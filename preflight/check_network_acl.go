package preflight

import (
	"fmt"
	"net/netip"
	"sort"
)

// span is an inclusive port range.
type span struct{ lo, hi int }

// aclVerdict walks entries in rule-number order for one direction and
// returns, for each port of want, whether the first matching rule allows it:
// the ports allowed, the ports denied, and the rules that decided.
func aclVerdict(entries []ACLEntry, egress bool, peer netip.Addr, want span) (allowed, denied []span, deciding []ACLEntry) {
	rules := make([]ACLEntry, 0, len(entries))
	for _, e := range entries {
		if e.Egress == egress {
			rules = append(rules, e)
		}
	}
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Number < rules[j].Number })
	remaining := []span{want}
	for _, r := range rules {
		if len(remaining) == 0 {
			break
		}
		p, err := netip.ParsePrefix(r.CIDR)
		if err != nil || !p.Contains(peer) {
			continue
		}
		var rng span
		switch r.Protocol {
		case "-1", "all":
			rng = span{0, 65535}
		case "6", "tcp":
			rng = span{r.FromPort, r.ToPort}
		default:
			continue
		}
		var hit, rest []span
		for _, s := range remaining {
			in, out := cut(s, rng)
			hit = append(hit, in...)
			rest = append(rest, out...)
		}
		if len(hit) == 0 {
			continue
		}
		deciding = append(deciding, r)
		if r.Allow {
			allowed = append(allowed, hit...)
		} else {
			denied = append(denied, hit...)
		}
		remaining = rest
	}
	// What no rule matched falls to the implicit deny.
	denied = append(denied, remaining...)
	return allowed, denied, deciding
}

// cut splits s into the part inside r and the parts outside.
func cut(s, r span) (in, out []span) {
	lo, hi := max(s.lo, r.lo), min(s.hi, r.hi)
	if lo > hi {
		return nil, []span{s}
	}
	in = []span{{lo, hi}}
	if s.lo < lo {
		out = append(out, span{s.lo, lo - 1})
	}
	if hi < s.hi {
		out = append(out, span{hi + 1, s.hi})
	}
	return in, out
}

func describeRule(e ACLEntry) string {
	action := "deny"
	if e.Allow {
		action = "allow"
	}
	dir := "inbound"
	if e.Egress {
		dir = "outbound"
	}
	ports := fmt.Sprintf("%d-%d", e.FromPort, e.ToPort)
	proto := "tcp"
	if e.Protocol == "-1" || e.Protocol == "all" {
		proto, ports = "all", "all"
	}
	num := fmt.Sprint(e.Number)
	if e.Number == 32767 {
		num = "*"
	}
	return fmt.Sprintf("%s rule %s: %s %s %s %s", dir, num, action, proto, ports, e.CIDR)
}

func spans(ss []span) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		if s.lo == s.hi {
			out += fmt.Sprint(s.lo)
		} else {
			out += fmt.Sprintf("%d-%d", s.lo, s.hi)
		}
	}
	return out
}

func checkNetworkACL(f *Facts) Result {
	if f.Instance == nil {
		return Result{Status: Skip, Summary: "not an EC2 instance"}
	}
	if f.NetworkACLErr != nil {
		return unknownFrom(f.NetworkACLErr)
	}
	acl := f.NetworkACL
	if acl == nil {
		return Result{Status: Unknown, Summary: "no network ACL was found for subnet " + f.Instance.SubnetID}
	}
	src, known := f.Source.Addr()
	if !known {
		return Result{Status: Unknown, Summary: "the source address is not known", Fix: "tell ec2ssh your public address with --source-ip ADDR"}
	}
	_, inDenied, inRules := aclVerdict(acl.Entries, false, src, span{f.Port, f.Port})
	if len(inDenied) > 0 {
		ev := []string{}
		num := "(implicit deny)"
		for _, r := range inRules {
			ev = append(ev, describeRule(r))
			num = fmt.Sprint(r.Number)
		}
		if len(inRules) == 0 {
			ev = append(ev, "no inbound rule matches "+src.String())
		}
		return Result{Status: Fail,
			Summary:  fmt.Sprintf("%s denies tcp %d from %s (rule %s matches first)", acl.ID, f.Port, src, num),
			Evidence: ev,
			Fix: fmt.Sprintf("add an allow numbered below it: aws ec2 create-network-acl-entry --network-acl-id %s --ingress --rule-number N --protocol tcp --port-range From=%d,To=%d --cidr-block %s/32 --rule-action allow --region %s",
				acl.ID, f.Port, f.Port, src, f.Region)}
	}
	eph := span{f.Source.EphemeralLow, f.Source.EphemeralHigh}
	if eph.lo <= 0 || eph.hi < eph.lo {
		eph = span{1024, 65535}
	}
	_, outDenied, outRules := aclVerdict(acl.Entries, true, src, eph)
	ev := []string{fmt.Sprintf("inbound tcp %d from %s allowed", f.Port, src)}
	for _, r := range outRules {
		ev = append(ev, describeRule(r))
	}
	if len(outDenied) > 0 {
		return Result{Status: Fail,
			Summary:  fmt.Sprintf("%s drops the replies: outbound tcp to %s ports %s is denied (NACLs are stateless)", acl.ID, src, spans(outDenied)),
			Evidence: ev,
			Fix: fmt.Sprintf("allow the replies out: aws ec2 create-network-acl-entry --network-acl-id %s --egress --rule-number N --protocol tcp --port-range From=1024,To=65535 --cidr-block %s/32 --rule-action allow --region %s",
				acl.ID, src, f.Region)}
	}
	return Result{Status: Pass, Summary: fmt.Sprintf("%s allows tcp %d in and the replies out", acl.ID, f.Port), Evidence: ev}
}
