package preflight

import (
	"fmt"
	"net/netip"
	"strings"
)

// checkEICE judges the way in through an EC2 Instance Connect Endpoint of
// the instance's VPC: one that is ready, whose security group lets it out
// to the instance's port, and which the instance's security groups let in
// (the endpoint's group, or the client's address when the endpoint
// preserves it). An endpoint's own inbound rules are not used by AWS.
func checkEICE(f *Facts) Result {
	in := f.Instance
	if in == nil {
		return Result{Status: Skip, Summary: "not an EC2 instance"}
	}
	if in.VPCID == "" {
		return Result{Status: Skip, Summary: "the instance is not in a VPC"}
	}
	if f.EndpointsErr != nil {
		return unknownFrom(f.EndpointsErr)
	}
	var ready []InstanceConnectEndpoint
	for _, ep := range f.Endpoints {
		if ep.Ready() {
			ready = append(ready, ep)
		}
	}
	if len(f.Endpoints) == 0 {
		return Result{Status: Skip, Summary: "no EC2 Instance Connect Endpoint in " + in.VPCID,
			Fix: fmt.Sprintf("to reach private instances without SSM: aws ec2 create-instance-connect-endpoint --subnet-id %s --region %s", in.SubnetID, f.Region)}
	}
	if len(ready) == 0 {
		return Result{Status: Warn, Summary: fmt.Sprintf("%s in %s is %s, not ready", f.Endpoints[0].ID, in.VPCID, f.Endpoints[0].State)}
	}
	// The path is judged from both sides' security groups: not from
	// groups that could not be read (issue 20: a throttled lookup is no
	// proof that the endpoint cannot reach the port).
	if f.SecurityGroupsErr != nil {
		return unknownFrom(f.SecurityGroupsErr)
	}
	if f.EndpointGroupsErr != nil {
		return unknownFrom(f.EndpointGroupsErr)
	}
	ep := ready[0]
	for _, e := range ready {
		if e.SubnetID == in.SubnetID {
			ep = e
		}
	}
	// A broken endpoint path fails the check only when it is the one way
	// left (port 22 closed to the client and no SSM agent online); else it
	// is a warning about a spare way in.
	broken := Warn
	if checkSecurityGroup(f).Status == Fail && !(f.SSM != nil && f.SSM.PingStatus == "Online") {
		broken = Fail
	}
	groups := map[string]SecurityGroup{}
	for _, g := range f.EndpointGroups {
		groups[g.ID] = g
	}
	ip, _ := netip.ParseAddr(in.PrivateIP)
	instGroups := in.GroupIDs()
	limits := "one hour per tunnel, 20 connections per endpoint"
	// Out of the endpoint.
	out := false
	for _, gid := range ep.SecurityGroups {
		for _, r := range groups[gid].Egress {
			if ok, _ := sgAllows(r, f.Port, ip, true, f.PrefixLists); ok || rulePortMatch(r, f.Port) && intersects(r.Groups, instGroups) {
				out = true
			}
		}
	}
	if !out && len(ep.SecurityGroups) > 0 {
		return Result{Status: broken, Summary: fmt.Sprintf("%s's security group %s lets nothing out to port %d of %s", ep.ID, ep.SecurityGroups[0], f.Port, in.PrivateIP),
			Evidence: []string{ep.ID + " (" + ep.State + ") in " + ep.SubnetID, "groups " + strings.Join(ep.SecurityGroups, ", ")},
			Fix: fmt.Sprintf("aws ec2 authorize-security-group-egress --group-id %s --protocol tcp --port %d --source-group %s --region %s",
				ep.SecurityGroups[0], f.Port, firstOr(instGroups, "sg-INSTANCE"), f.Region)}
	}
	// Into the instance: from the endpoint's group, or from the client's
	// address when the endpoint preserves it.
	src, known := f.Source.Addr()
	in2 := false
	for _, g := range f.SecurityGroups {
		for _, r := range g.Ingress {
			if rulePortMatch(r, f.Port) && intersects(r.Groups, ep.SecurityGroups) {
				in2 = true
			}
			if ep.PreserveClientIP {
				if ok, _ := sgAllows(r, f.Port, src, known, f.PrefixLists); ok {
					in2 = true
				}
			}
		}
	}
	if !in2 {
		return Result{Status: broken, Summary: fmt.Sprintf("the instance's security groups do not admit %s (group %s) on port %d", ep.ID, firstOr(ep.SecurityGroups, "-"), f.Port),
			Fix: fmt.Sprintf("aws ec2 authorize-security-group-ingress --group-id %s --protocol tcp --port %d --source-group %s --region %s",
				firstOr(instGroups, "sg-INSTANCE"), f.Port, firstOr(ep.SecurityGroups, "sg-ENDPOINT"), f.Region)}
	}
	return Result{Status: Pass, Summary: fmt.Sprintf("%s can reach port %d (%s)", ep.ID, f.Port, limits),
		Evidence: []string{ep.ID + " (" + ep.State + ") in " + ep.SubnetID}}
}

func rulePortMatch(r SGRule, port int) bool {
	p := strings.ToLower(r.Protocol)
	return p == "-1" || p == "all" || (p == "tcp" || p == "6") && port >= r.FromPort && port <= r.ToPort
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
