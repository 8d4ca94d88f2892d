// Package preflight owns what ec2ssh learns from AWS and the network about
// an instance, and the checks that judge it (SPEC.md, "Pre-flight checks").
// Gathering (gather.go, resolve.go: the only code here that calls AWS) is
// kept apart from judging (check_*.go: pure functions of Facts), so a check
// can be tested from a JSON snapshot with no network.
package preflight

import (
	"net/netip"
	"time"
)

// Facts is everything the checks judge. Each part that comes from an API
// call has an *APIError beside it; nil data with a nil error means the part
// was not gathered (not applicable).
type Facts struct {
	Region string `json:"region"`
	Port   int    `json:"port"`
	// Address is the address ec2ssh dials (public or private, IPv4 or
	// IPv6): the interface holding it is the one whose groups admit SSH.
	Address string `json:"address,omitempty"`
	// User is the login user ec2ssh would log in as, UserFrom where that
	// name came from ("-l or user@", "ssh_config", "the AMI's default", …).
	User     string `json:"user,omitempty"`
	UserFrom string `json:"user_from,omitempty"`

	Caller    *Caller   `json:"caller,omitempty"`
	CallerErr *APIError `json:"caller_error,omitempty"`

	Instance    *Instance `json:"instance,omitempty"`
	InstanceErr *APIError `json:"instance_error,omitempty"`

	Status    *InstanceStatus `json:"status,omitempty"`
	StatusErr *APIError       `json:"status_error,omitempty"`

	Subnet    *Subnet   `json:"subnet,omitempty"`
	SubnetErr *APIError `json:"subnet_error,omitempty"`
	VPCCIDRs  []string  `json:"vpc_cidrs,omitempty"`

	RouteTable    *RouteTable `json:"route_table,omitempty"`
	RouteTableErr *APIError   `json:"route_table_error,omitempty"`
	// Gateways are the internet and NAT gateways the route table names,
	// as EC2 describes them now: one it no longer describes is Gone.
	Gateways    map[string]Gateway `json:"gateways,omitempty"`
	GatewaysErr *APIError          `json:"gateways_error,omitempty"`
	// VPCDNS is the VPC's DNS attributes: interface endpoints' private
	// names resolve only when both are on.
	VPCDNS    *VPCDNS   `json:"vpc_dns,omitempty"`
	VPCDNSErr *APIError `json:"vpc_dns_error,omitempty"`
	// VPCEndpoints are the VPC's endpoints for the services the SSM agent
	// talks to (ssm, ssmmessages, ec2messages), with their interfaces'
	// addresses; VPCEndpointGroups their security groups; VPCEndpointACLs
	// the network ACLs of their subnets.
	VPCEndpoints         []VPCEndpoint          `json:"vpc_endpoints,omitempty"`
	VPCEndpointsErr      *APIError              `json:"vpc_endpoints_error,omitempty"`
	VPCEndpointGroups    []SecurityGroup        `json:"vpc_endpoint_groups,omitempty"`
	VPCEndpointGroupsErr *APIError              `json:"vpc_endpoint_groups_error,omitempty"`
	VPCEndpointACLs      map[string]*NetworkACL `json:"vpc_endpoint_acls,omitempty"` // by subnet
	VPCEndpointACLsErr   *APIError              `json:"vpc_endpoint_acls_error,omitempty"`

	SecurityGroups    []SecurityGroup `json:"security_groups,omitempty"`
	SecurityGroupsErr *APIError       `json:"security_groups_error,omitempty"`
	// PrefixLists maps a prefix list id (named by a security group rule or
	// a route) to its CIDRs; a list that could not be read is missing from
	// it, and PrefixListsErr says why.
	PrefixLists    map[string][]string `json:"prefix_lists,omitempty"`
	PrefixListsErr *APIError           `json:"prefix_lists_error,omitempty"`

	NetworkACL    *NetworkACL `json:"network_acl,omitempty"`
	NetworkACLErr *APIError   `json:"network_acl_error,omitempty"`

	// Image is the instance's AMI, for its default login user.
	Image    *Image    `json:"image,omitempty"`
	ImageErr *APIError `json:"image_error,omitempty"`

	KeyPair    *KeyPair   `json:"key_pair,omitempty"`
	KeyPairErr *APIError  `json:"key_pair_error,omitempty"`
	LocalKeys  []LocalKey `json:"local_keys,omitempty"`

	Role    *Role     `json:"role,omitempty"`
	RoleErr *APIError `json:"role_error,omitempty"`

	SSM    *SSMAgent `json:"ssm,omitempty"`
	SSMErr *APIError `json:"ssm_error,omitempty"`

	// Endpoints are the EC2 Instance Connect Endpoints of the instance's
	// VPC; EndpointGroups their security groups.
	Endpoints      []InstanceConnectEndpoint `json:"instance_connect_endpoints,omitempty"`
	EndpointsErr   *APIError                 `json:"instance_connect_endpoints_error,omitempty"`
	EndpointGroups []SecurityGroup           `json:"instance_connect_endpoint_groups,omitempty"`
	// EndpointGroupsErr: the endpoints' groups could not be read.
	EndpointGroupsErr *APIError `json:"instance_connect_endpoint_groups_error,omitempty"`
	// ConsoleTail is the end of the instance's console output, read when
	// its status checks fail (a boot that went wrong, seen from outside).
	ConsoleTail []string `json:"console_tail,omitempty"`

	// SourceInterfaces are the network interfaces (in any VPC the caller
	// can see) that hold the source address, with their security groups:
	// whether the source is a member of a group a rule admits.
	SourceInterfaces    []Interface `json:"source_interfaces,omitempty"`
	SourceInterfacesErr *APIError   `json:"source_interfaces_error,omitempty"`
	SourceLookedUp      bool        `json:"source_looked_up,omitempty"`

	Source Source `json:"source"`
	SSHD   *Probe `json:"sshd,omitempty"`

	// Inside is what the instance said about itself (InsideScript), when
	// its SSM agent was online and the look was asked for.
	Inside    *Inside `json:"inside,omitempty"`
	InsideErr string  `json:"inside_error,omitempty"`

	// Timings records how long each part took to gather, for -v.
	Timings map[string]time.Duration `json:"-"`
}

// APIError is an AWS call that failed, as the checks need to know it.
type APIError struct {
	Op         string `json:"op"`                // "ec2:DescribeSecurityGroups"
	Code       string `json:"code,omitempty"`    // the service's error code
	Message    string `json:"message,omitempty"` // the service's message
	Denied     bool   `json:"denied,omitempty"`  // an authorization failure
	NoCreds    bool   `json:"no_credentials,omitempty"`
	Permission string `json:"permission,omitempty"` // the IAM action it lacked, when Denied
	// Weather is how the call failed when AWS did not answer plainly
	// (slow, throttled, 5xx, cut, absent); Message then says it in words.
	Weather Weather `json:"weather,omitempty"`
}

func (e *APIError) Error() string {
	if e.Weather != WeatherNone || e.NoCreds {
		return e.Message // already in words, naming the call
	}
	if e.Denied {
		return e.Op + ": access denied (needs " + e.Permission + ")"
	}
	if e.Code != "" {
		return e.Op + ": " + e.Code + ": " + e.Message
	}
	return e.Op + ": " + e.Message
}

// Caller is STS GetCallerIdentity's answer.
type Caller struct {
	Account string `json:"account"`
	ARN     string `json:"arn"`
}

// Instance is the part of DescribeInstances the checks use.
type Instance struct {
	ID              string      `json:"id"`
	Name            string      `json:"name,omitempty"`
	State           State       `json:"state"` // pending, running, stopping, stopped, shutting-down, terminated
	Type            string      `json:"type,omitempty"`
	StateReason     string      `json:"state_reason,omitempty"`
	LaunchTime      time.Time   `json:"launch_time"`
	PublicIP        string      `json:"public_ip,omitempty"`
	PrivateIP       string      `json:"private_ip,omitempty"`
	IPv6            []string    `json:"ipv6,omitempty"`
	PublicDNS       string      `json:"public_dns,omitempty"`
	PrivateDNS      string      `json:"private_dns,omitempty"`
	SubnetID        string      `json:"subnet_id,omitempty"`
	VPCID           string      `json:"vpc_id,omitempty"`
	KeyName         string      `json:"key_name,omitempty"`
	ImageID         string      `json:"image_id,omitempty"`
	ImageName       string      `json:"image_name,omitempty"`
	Platform        string      `json:"platform,omitempty"` // PlatformDetails: "Linux/UNIX", "Windows", …
	InstanceProfile string      `json:"instance_profile,omitempty"`
	Interfaces      []Interface `json:"interfaces,omitempty"`
	// MetadataEndpoint is the instance metadata service's state, "enabled"
	// or "disabled" (HttpEndpoint); "" when EC2 did not say.
	MetadataEndpoint string `json:"metadata_endpoint,omitempty"`
	// Tags are all the instance's tags (Name among them); Region is set
	// by a listing that spans regions.
	Tags   map[string]string `json:"tags,omitempty"`
	Region string            `json:"region,omitempty"`
}

// InstanceConnectEndpoint is an EC2 Instance Connect Endpoint.
type InstanceConnectEndpoint struct {
	ID               string   `json:"id"`
	DNSName          string   `json:"dns_name"`
	VPCID            string   `json:"vpc_id"`
	SubnetID         string   `json:"subnet_id"`
	State            string   `json:"state"`
	SecurityGroups   []string `json:"security_groups,omitempty"`
	PreserveClientIP bool     `json:"preserve_client_ip"`
}

// Interface is one network interface, its addresses and its security
// groups. AWS applies an interface's groups to the traffic of that
// interface alone.
type Interface struct {
	ID             string   `json:"id"`
	SubnetID       string   `json:"subnet_id,omitempty"`
	VPCID          string   `json:"vpc_id,omitempty"`
	SecurityGroups []string `json:"security_groups"`
	DeviceIndex    int      `json:"device_index"`
	PrivateIPs     []string `json:"private_ips,omitempty"`
	PublicIPs      []string `json:"public_ips,omitempty"`
	IPv6           []string `json:"ipv6,omitempty"`
}

// GroupIDs returns the security groups of all the instance's interfaces.
func (i *Instance) GroupIDs() []string {
	var ids []string
	seen := map[string]bool{}
	for _, ifc := range i.Interfaces {
		for _, g := range ifc.SecurityGroups {
			if !seen[g] {
				seen[g] = true
				ids = append(ids, g)
			}
		}
	}
	return ids
}

// InstanceStatus is DescribeInstanceStatus's answer: "ok", "impaired",
// "initializing", "insufficient-data", "not-applicable".
type InstanceStatus struct {
	System   string `json:"system"`
	Instance string `json:"instance"`
}

// Subnet is the instance's subnet.
type Subnet struct {
	ID    string `json:"id"`
	CIDR  string `json:"cidr"`
	VPCID string `json:"vpc_id"`
}

// RouteTable is the table in force for the subnet (explicit or main).
type RouteTable struct {
	ID     string  `json:"id"`
	Main   bool    `json:"main"` // true when the subnet has no association of its own
	Routes []Route `json:"routes"`
}

// Route is one route; Target is the gateway, NAT, instance, … id.
type Route struct {
	Destination string `json:"destination"` // CIDR or prefix list id
	Target      string `json:"target"`
	State       string `json:"state"` // active, blackhole
}

// Gateway is an internet or NAT gateway a route names, as EC2 describes
// it now.
type Gateway struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // "internet", "nat"
	// Gone: EC2 no longer describes it (deleted), though a route names it.
	Gone bool `json:"gone,omitempty"`
	// State is a NAT gateway's state (pending, available, deleting,
	// deleted, failed).
	State string `json:"state,omitempty"`
	// VPCs are the VPCs an internet gateway is attached to.
	VPCs     []string `json:"vpcs,omitempty"`
	SubnetID string   `json:"subnet_id,omitempty"` // a NAT gateway's subnet
}

// VPCDNS is a VPC's DNS attributes.
type VPCDNS struct {
	Support   bool `json:"support"`   // enableDnsSupport
	Hostnames bool `json:"hostnames"` // enableDnsHostnames
}

// VPCEndpoint is one VPC endpoint of a service the SSM agent uses.
type VPCEndpoint struct {
	ID         string              `json:"id"`
	Service    string              `json:"service"` // com.amazonaws.REGION.ssm
	Type       string              `json:"type"`    // Interface, Gateway
	State      string              `json:"state"`   // available, pending, …
	PrivateDNS bool                `json:"private_dns"`
	SubnetIDs  []string            `json:"subnet_ids,omitempty"`
	Groups     []string            `json:"groups,omitempty"`
	Interfaces []EndpointInterface `json:"interfaces,omitempty"`
	// InterfacesErr: its interfaces' addresses could not be read.
	InterfacesErr *APIError `json:"interfaces_error,omitempty"`
}

// EndpointInterface is one network interface of an interface endpoint.
type EndpointInterface struct {
	ID       string `json:"id"`
	SubnetID string `json:"subnet_id"`
	IP       string `json:"ip"`
}

// Image is the instance's AMI as DescribeImages tells it.
type Image struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Owner       string `json:"owner,omitempty"`       // account id
	OwnerAlias  string `json:"owner_alias,omitempty"` // "amazon", "aws-marketplace"
	Platform    string `json:"platform,omitempty"`    // "windows", or "" for Linux/UNIX
}

// SecurityGroup is a group's inbound rules.
type SecurityGroup struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Ingress []SGRule `json:"ingress"`
	Egress  []SGRule `json:"egress,omitempty"`
}

// SGRule is one IpPermission: a protocol, a port range, and its sources.
type SGRule struct {
	Protocol    string   `json:"protocol"` // "tcp", "udp", "icmp", "-1", or a number
	FromPort    int      `json:"from_port"`
	ToPort      int      `json:"to_port"`
	CIDRs       []string `json:"cidrs,omitempty"`
	IPv6CIDRs   []string `json:"ipv6_cidrs,omitempty"`
	PrefixLists []string `json:"prefix_lists,omitempty"`
	Groups      []string `json:"groups,omitempty"` // referenced security groups
	// ForeignGroups are referenced groups of another account or across a
	// VPC peering: who is in them cannot be looked up from here.
	ForeignGroups []string `json:"foreign_groups,omitempty"`
}

// NetworkACL is the subnet's NACL.
type NetworkACL struct {
	ID      string     `json:"id"`
	Entries []ACLEntry `json:"entries"`
}

// ACLEntry is one NACL rule.
type ACLEntry struct {
	Number   int    `json:"number"`
	Egress   bool   `json:"egress"`
	Protocol string `json:"protocol"` // "-1", "6", "17", …
	Allow    bool   `json:"allow"`
	CIDR     string `json:"cidr"`
	FromPort int    `json:"from_port"` // 0/0 with protocol -1 means all
	ToPort   int    `json:"to_port"`
}

// KeyPair is the instance's key pair as EC2 records it.
type KeyPair struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	Type        string `json:"type"` // rsa, ed25519
}

// LocalKey is a key ec2ssh could offer, with the fingerprints EC2 could
// have recorded for it.
type LocalKey struct {
	Source       string   `json:"source"` // file path, or "agent"
	Type         string   `json:"type"`
	Fingerprints []string `json:"fingerprints"`
}

// Role is the instance profile's role and the policies in force for it:
// what the SSM agent may do is judged from their documents.
type Role struct {
	Profile  string   `json:"profile"`
	Name     string   `json:"name,omitempty"`
	Policies []string `json:"policies,omitempty"` // attached managed policy ARNs
	// Documents are every policy of the role: its attached managed
	// policies, its inline policies and its permissions boundary.
	Documents []PolicyDoc `json:"documents,omitempty"`
}

// PolicyDoc is one policy of the role and its document (JSON), or why it
// could not be read.
type PolicyDoc struct {
	Name     string    `json:"name"` // the ARN, or an inline policy's name
	Kind     string    `json:"kind"` // PolicyAWSManaged, PolicyCustomerManaged, PolicyInline, PolicyBoundary
	Document string    `json:"document,omitempty"`
	Err      *APIError `json:"error,omitempty"`
}

// The kinds of PolicyDoc.
const (
	PolicyAWSManaged      = "aws-managed"
	PolicyCustomerManaged = "customer-managed"
	PolicyInline          = "inline"
	PolicyBoundary        = "boundary"
)

// SSMAgent is DescribeInstanceInformation's answer for the instance.
type SSMAgent struct {
	Registered   bool      `json:"registered"`
	PingStatus   string    `json:"ping_status,omitempty"` // Online, ConnectionLost, Inactive
	LastPing     time.Time `json:"last_ping,omitempty"`
	AgentVersion string    `json:"agent_version,omitempty"`
}

// Source is the address SSH connections come from, as the instance sees it.
type Source struct {
	Address string `json:"address,omitempty"` // empty: not known
	Private bool   `json:"private"`           // inside the VPC, so no public address is needed
	How     string `json:"how,omitempty"`     // "kernel route", "--source-ip", …
	// Ephemeral is the client's ephemeral port range, for NACL egress.
	EphemeralLow  int `json:"ephemeral_low"`
	EphemeralHigh int `json:"ephemeral_high"`
}

// side phrases which side of the instance's VPC the source is on, in the
// words every check uses (issue 21: network-path and security-group said
// inside and outside of the same client): inside when Private, decided
// once in gather (an address in the VPC's CIDRs dialling a private
// address), else outside: "the source 10.0.1.7 is inside the VPC".
func (s Source) side() string {
	who := "the source"
	if s.Address != "" {
		who += " " + s.Address
	}
	if s.Private {
		return who + " is inside the VPC"
	}
	return who + " is outside the VPC"
}

// Addr returns the source address parsed, or false when unknown.
func (s Source) Addr() (netip.Addr, bool) {
	a, err := netip.ParseAddr(s.Address)
	return a, err == nil
}

// Probe is what the SSH port answered.
type Probe struct {
	Address string      `json:"address"`
	Port    int         `json:"port"`
	Result  ProbeResult `json:"result"`
	Banner  string      `json:"banner,omitempty"`
	Detail  string      `json:"detail,omitempty"`
}
