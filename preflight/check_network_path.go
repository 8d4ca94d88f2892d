package preflight

import (
	"fmt"
	"net/netip"
	"strings"
)

func checkNetworkPath(f *Facts) Result {
	in := f.Instance
	if in == nil || !in.State.Running() {
		return Result{Status: Skip, Summary: "the instance is not running"}
	}
	if f.Source.Private {
		return Result{Status: Pass, Summary: "the source " + f.Source.Address + " is inside the VPC: the private address " + in.PrivateIP + " is used",
			Evidence: []string{"source " + f.Source.Address + " (" + f.Source.How + ")", "VPC " + in.VPCID + " " + strings.Join(f.VPCCIDRs, " ")}}
	}
	if in.PublicIP == "" && len(in.IPv6) == 0 {
		return Result{Status: Fail, Summary: in.ID + " has no public address, and the source is outside its VPC",
			Evidence: []string{"private " + in.PrivateIP + " only", "subnet " + in.SubnetID},
			Fix:      fmt.Sprintf("connect from inside the VPC (VPN, bastion with -J), use SSM (--fallback=ssm), or give it an Elastic IP: aws ec2 allocate-address --region %s, then aws ec2 associate-address --instance-id %s --allocation-id eipalloc-…", f.Region, in.ID)}
	}
	if f.RouteTableErr != nil || f.InternetGatewaysErr != nil {
		return unknownFrom(firstErr(f.RouteTableErr, f.InternetGatewaysErr))
	}
	rt := f.RouteTable
	if rt == nil {
		return Result{Status: Unknown, Summary: "no route table was found for subnet " + in.SubnetID}
	}
	src, ok := f.Source.Addr()
	best, bestLen := Route{}, -1
	for _, r := range rt.Routes {
		p, err := netip.ParsePrefix(r.Destination)
		if err != nil {
			continue
		}
		if ok && !p.Contains(src) || !ok && p.Bits() != 0 {
			continue
		}
		if p.Bits() > bestLen { // longest prefix wins
			best, bestLen = r, p.Bits()
		}
	}
	which := "its own route table " + rt.ID
	if rt.Main {
		which = "the VPC's main route table " + rt.ID
	}
	fix := fmt.Sprintf("add a default route to the VPC's internet gateway: aws ec2 create-route --route-table-id %s --destination-cidr-block 0.0.0.0/0 --gateway-id igw-… --region %s", rt.ID, f.Region)
	if bestLen < 0 {
		return Result{Status: Fail, Summary: "subnet " + in.SubnetID + " has no route back to the source: " + which + " has no default route",
			Evidence: []string{which}, Fix: fix}
	}
	ev := []string{which, fmt.Sprintf("route %s -> %s (%s)", best.Destination, best.Target, best.State)}
	if !strings.HasPrefix(best.Target, "igw-") {
		return Result{Status: Fail, Summary: fmt.Sprintf("traffic to the source leaves through %s, not an internet gateway, so the public address does not answer", best.Target),
			Evidence: ev, Fix: fix}
	}
	if best.State == "blackhole" {
		return Result{Status: Fail, Summary: "the route to " + best.Target + " is a blackhole (the gateway was deleted or detached)", Evidence: ev, Fix: fix}
	}
	if vpcs, known := f.InternetGateways[best.Target]; known {
		attached := false
		for _, v := range vpcs {
			attached = attached || v == in.VPCID
		}
		if !attached {
			return Result{Status: Fail, Summary: best.Target + " is not attached to " + in.VPCID, Evidence: ev,
				Fix: fmt.Sprintf("attach it: aws ec2 attach-internet-gateway --internet-gateway-id %s --vpc-id %s --region %s", best.Target, in.VPCID, f.Region)}
		}
	}
	return Result{Status: Pass, Summary: "public address " + in.PublicIP + " is routed through " + best.Target, Evidence: ev}
}
