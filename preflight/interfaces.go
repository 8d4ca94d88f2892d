package preflight

import (
	"net/netip"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// interfaceAddresses records an interface's device index and every address
// it holds: its private addresses, the public ones associated with them,
// its IPv6 addresses.
func interfaceAddresses(ifc *Interface, ni ec2types.InstanceNetworkInterface) {
	if ni.Attachment != nil {
		ifc.DeviceIndex = int(aws.ToInt32(ni.Attachment.DeviceIndex))
	}
	ifc.VPCID = aws.ToString(ni.VpcId)
	add := func(list *[]string, a string) {
		for _, x := range *list {
			if x == a {
				return
			}
		}
		if a != "" {
			*list = append(*list, a)
		}
	}
	add(&ifc.PrivateIPs, aws.ToString(ni.PrivateIpAddress))
	if ni.Association != nil {
		add(&ifc.PublicIPs, aws.ToString(ni.Association.PublicIp))
	}
	for _, p := range ni.PrivateIpAddresses {
		add(&ifc.PrivateIPs, aws.ToString(p.PrivateIpAddress))
		if p.Association != nil {
			add(&ifc.PublicIPs, aws.ToString(p.Association.PublicIp))
		}
	}
	for _, a := range ni.Ipv6Addresses {
		add(&ifc.IPv6, aws.ToString(a.Ipv6Address))
	}
}

// Holds reports whether the interface holds addr (private, public or IPv6).
func (ifc Interface) Holds(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	for _, list := range [][]string{ifc.PrivateIPs, ifc.PublicIPs, ifc.IPv6} {
		for _, x := range list {
			if b, err := netip.ParseAddr(x); err == nil && b == a {
				return true
			}
		}
	}
	return false
}

// Primary is the interface at device index 0 (the first listed when none
// says so), or nil.
func (i *Instance) Primary() *Interface {
	for k := range i.Interfaces {
		if i.Interfaces[k].DeviceIndex == 0 {
			return &i.Interfaces[k]
		}
	}
	if len(i.Interfaces) > 0 {
		return &i.Interfaces[0]
	}
	return nil
}

// Dialled finds the interface that holds addr, the address ec2ssh dials.
// held is false when no interface says it holds it (an instance described
// without addresses per interface, or an address that is not the
// instance's): then the primary interface stands in, as the one the
// instance's own addresses belong to.
func (i *Instance) Dialled(addr string) (ifc *Interface, held bool) {
	for k := range i.Interfaces {
		if i.Interfaces[k].Holds(addr) {
			return &i.Interfaces[k], true
		}
	}
	return i.Primary(), false
}

// IsPublic reports whether addr is one of the instance's public IPv4
// addresses (its own, or one associated with any of its interfaces).
func (i *Instance) IsPublic(addr string) bool {
	if addr == "" {
		return false
	}
	if addr == i.PublicIP {
		return true
	}
	for _, ifc := range i.Interfaces {
		for _, p := range ifc.PublicIPs {
			if p == addr {
				return true
			}
		}
	}
	return false
}
