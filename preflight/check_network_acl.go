package preflight

import (
	"fmt"
	"sort"
)

// span is an inclusive port range.
type span struct{ lo, hi int }

// aclVerdict walks entries in rule-number order for one direction and
// returns, for each port of want, whether the first matching rule allows it:
// the ports allowed, the ports denied, and the rules that decided. A peer
// whose address is not known is matched only by rules for its whole
// family (0.0.0.0/0, ::/0); a narrower rule of its family that would be
// reached first makes the verdict depend on the address: undecided names
// that rule.
func aclVerdict(entries []ACLEntry, egress bool, p peer, want span) (allowed, denied []span, deciding []ACLEntry, undecided *ACLEntry) {
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
		switch cidrAdmits(r.CIDR, p) {
		case admitNo:
			continue
		case admitMaybe:
			if rng, ok := aclPorts(r); ok {
				for _, s := range remaining {
					if in, _ := cut(s, rng); len(in) > 0 {
						u := r
						return allowed, denied, deciding, &u
					}
				}
			}
			continue
		}
		rng, ok := aclPorts(r)
		if !ok {
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
	return allowed, denied, deciding, nil
}

// aclPorts is the TCP port range an entry covers; false for a rule of
// another protocol.
func aclPorts(r ACLEntry) (span, bool) {
	switch r.Protocol {
	case "-1", "all":
		return span{0, 65535}, true
	case "6", "tcp":
		return span{r.FromPort, r.ToPort}, true
	}
	return span{}, false
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
	p := dialledPeer(f)
	undecided := func(u *ACLEntry) Result {
		return Result{Status: Unknown, Summary: fmt.Sprintf("%s's verdict depends on the client's address, which is not known (%s)", acl.ID, describeRule(*u)),
			Evidence: []string{describeRule(*u)}, Fix: "tell ec2ssh your public address with --source-ip ADDR"}
	}
	_, inDenied, inRules, u := aclVerdict(acl.Entries, false, p, span{f.Port, f.Port})
	if u != nil {
		return undecided(u)
	}
	if len(inDenied) > 0 {
		ev := []string{}
		num := "(implicit deny)"
		for _, r := range inRules {
			ev = append(ev, describeRule(r))
			num = fmt.Sprint(r.Number)
		}
		if len(inRules) == 0 {
			ev = append(ev, "no inbound rule matches "+p.String())
		}
		cidr := "YOUR_ADDRESS/32"
		if p.known {
			cidr = p.addr.String() + "/32"
			if p.v6 {
				cidr = p.addr.String() + "/128"
			}
		}
		return Result{Status: Fail,
			Summary:  fmt.Sprintf("%s denies tcp %d from %s (rule %s matches first)", acl.ID, f.Port, p, num),
			Evidence: ev,
			Fix: fmt.Sprintf("add an allow numbered below it: aws ec2 create-network-acl-entry --network-acl-id %s --ingress --rule-number N --protocol tcp --port-range From=%d,To=%d --cidr-block %s --rule-action allow --region %s",
				acl.ID, f.Port, f.Port, cidr, f.Region)}
	}
	eph := span{f.Source.EphemeralLow, f.Source.EphemeralHigh}
	if eph.lo <= 0 || eph.hi < eph.lo {
		eph = span{1024, 65535}
	}
	_, outDenied, outRules, u := aclVerdict(acl.Entries, true, p, eph)
	if u != nil {
		return undecided(u)
	}
	ev := []string{fmt.Sprintf("inbound tcp %d from %s allowed", f.Port, p)}
	for _, r := range outRules {
		ev = append(ev, describeRule(r))
	}
	if len(outDenied) > 0 {
		cidr := "YOUR_ADDRESS/32"
		if p.known {
			cidr = p.addr.String() + "/32"
		}
		return Result{Status: Fail,
			Summary:  fmt.Sprintf("%s drops the replies: outbound tcp to %s ports %s is denied (NACLs are stateless)", acl.ID, p, spans(outDenied)),
			Evidence: ev,
			Fix: fmt.Sprintf("allow the replies out: aws ec2 create-network-acl-entry --network-acl-id %s --egress --rule-number N --protocol tcp --port-range From=1024,To=65535 --cidr-block %s --rule-action allow --region %s",
				acl.ID, cidr, f.Region)}
	}
	return Result{Status: Pass, Summary: fmt.Sprintf("%s allows tcp %d in and the replies out", acl.ID, f.Port), Evidence: ev}
}
