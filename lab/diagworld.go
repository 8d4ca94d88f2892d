package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// The diagnosis world (issue 26): one lab instance per way a diagnosis
// could say "all clear" while SSH cannot work, each beside a healthy twin,
// so that `ec2ssh --diagnose --json` can be held to the right judgement of
// every one. Its instances are named diag-*; DiagCases lists them.
//
// Besides the lab's VPC (which gains interface endpoints for ssm,
// ssmmessages and ec2messages, as a private VPC has them), it has a VPC
// that reaches the internet through NAT gateways, and one VPC per way the
// endpoints can be wrong. Every VPC is 127.0.0.0/16 (AWS lets VPCs
// overlap), so this machine, at 127.0.0.1, is inside each of them.
//
// Public addresses are 198.51.100.x: a route on the lab's loopback sends
// them here from 127.0.0.1, and nftables turns each into its instance's
// private address, as the internet gateway's one-to-one NAT does.

// Agent is what an instance's SSM agent does, as a real one would in that
// instance's place (the lab's SSM stand-in cannot work it out).
type Agent int

const (
	AgentOffline     Agent = iota // never registers (no credentials, no way to ssm, …)
	AgentOnline                   // registered, pings, opens sessions
	AgentUnconnected              // pings Online, but cannot open its control channel (ssmmessages)
)

// DiagCase is one instance of the diagnosis world.
type DiagCase struct {
	Name string
	IP   string
	// PublicIP is its Elastic IP ("" for none): ec2ssh dials it.
	PublicIP string
	// User is the AMI's login user, the one account on the instance.
	User string
	// Agent is what its SSM agent does there, and why.
	Agent Agent
	// Closed: port 22 does not answer the client (its groups, its route,
	// its state make the network drop the packets).
	Closed bool

	vpc, subnet string // where
	sg          string // its group, in its VPC
	nic2        *nic2  // a second interface
	ami         string // key of diagImages; "" for Amazon Linux
	profile     string // key of diagProfiles; "" for none
	state       string // the state the EC2 front shows (pending, stopping, shutting-down)
	impaired    bool   // its status checks fail
	metadataOff bool   // HttpEndpoint disabled
}

type nic2 struct{ ip, sg string }

// DiagCases are the diagnosis world's instances.
var DiagCases = []DiagCase{
	// Security groups, per interface: the dialled address's interface
	// decides; the other interface's group is not pooled in.
	{Name: "diag-nic2-blocked", vpc: "main", subnet: "a", IP: "127.0.1.40", sg: "web", nic2: &nic2{"127.0.1.41", "ssh"}, profile: "core", Agent: AgentOnline, Closed: true},
	{Name: "diag-nic2-open", vpc: "main", subnet: "a", IP: "127.0.1.42", sg: "ssh", nic2: &nic2{"127.0.1.43", "web"}, profile: "core", Agent: AgentOnline},
	// A public address, the client's address not known (behind a NAT):
	// 0.0.0.0/0 admits it, ::/0 alone does not.
	{Name: "diag-public", vpc: "main", subnet: "a", IP: "127.0.1.44", PublicIP: "198.51.100.44", sg: "pubssh", profile: "core", Agent: AgentOnline},
	{Name: "diag-v6only", vpc: "main", subnet: "a", IP: "127.0.1.45", PublicIP: "198.51.100.45", sg: "v6only", profile: "core", Agent: AgentOnline, Closed: true},
	// Routes back to a public client through a deleted, or a detached,
	// internet gateway: blackholes (the agent uses the VPC's endpoints).
	{Name: "diag-igw-gone", vpc: "main", subnet: "f", IP: "127.0.10.10", PublicIP: "198.51.100.10", sg: "pubssh", profile: "core", Agent: AgentOnline, Closed: true},
	{Name: "diag-igw-detached", vpc: "main", subnet: "g", IP: "127.0.11.10", PublicIP: "198.51.100.11", sg: "pubssh", profile: "core", Agent: AgentOnline, Closed: true},
	// Instance states moto cannot hold, and failing status checks: nothing
	// answers, no agent runs.
	{Name: "diag-pending", vpc: "main", subnet: "a", IP: "127.0.1.46", sg: "ssh", profile: "core", state: "pending", Closed: true},
	{Name: "diag-stopping", vpc: "main", subnet: "a", IP: "127.0.1.47", sg: "ssh", profile: "core", state: "stopping", Closed: true},
	{Name: "diag-shutting-down", vpc: "main", subnet: "a", IP: "127.0.1.48", sg: "ssh", profile: "core", state: "shutting-down", Closed: true},
	{Name: "diag-impaired", vpc: "main", subnet: "a", IP: "127.0.1.49", sg: "ssh", profile: "core", impaired: true, Closed: true},
	// Set pending by the test of the wait for a booting instance.
	{Name: "diag-booting", vpc: "main", subnet: "a", IP: "127.0.1.39", sg: "ssh", profile: "core", Agent: AgentOnline},
	// AMI families and their users; the look inside sees the one account.
	{Name: "diag-ubuntu", vpc: "main", subnet: "a", IP: "127.0.1.50", sg: "ssh", ami: "ubuntu", User: "ubuntu", profile: "core", Agent: AgentOnline},
	{Name: "diag-debian", vpc: "main", subnet: "a", IP: "127.0.1.51", sg: "ssh", ami: "debian", User: "admin", profile: "core", Agent: AgentOnline},
	{Name: "diag-rhel", vpc: "main", subnet: "a", IP: "127.0.1.52", sg: "ssh", ami: "rhel", User: "ec2-user", profile: "core", Agent: AgentOnline},
	{Name: "diag-suse", vpc: "main", subnet: "a", IP: "127.0.1.53", sg: "ssh", ami: "suse", User: "ec2-user", profile: "core", Agent: AgentOnline},
	{Name: "diag-rocky", vpc: "main", subnet: "a", IP: "127.0.1.54", sg: "ssh", ami: "rocky", User: "rocky", profile: "core", Agent: AgentOnline},
	{Name: "diag-bitnami", vpc: "main", subnet: "a", IP: "127.0.1.55", sg: "ssh", ami: "bitnami", User: "bitnami", profile: "core", Agent: AgentOnline},
	// No agent: the AMI alone says who logs in.
	{Name: "diag-debian-noagent", vpc: "main", subnet: "a", IP: "127.0.1.56", sg: "ssh", ami: "debian", User: "admin"},
	{Name: "diag-unknown-ami", vpc: "main", subnet: "a", IP: "127.0.1.57", sg: "ssh", ami: "golden", User: "ec2-user"},
	// The instance profile's role, judged by what its policies grant.
	{Name: "diag-role-customer", vpc: "main", subnet: "a", IP: "127.0.1.60", sg: "ssh", profile: "customer", Agent: AgentOnline},
	{Name: "diag-role-wildcards", vpc: "main", subnet: "a", IP: "127.0.1.61", sg: "ssh", profile: "wildcards", Agent: AgentOnline},
	{Name: "diag-role-inline", vpc: "main", subnet: "a", IP: "127.0.1.62", sg: "ssh", profile: "inline", Agent: AgentOnline},
	{Name: "diag-role-notaction", vpc: "main", subnet: "a", IP: "127.0.1.63", sg: "ssh", profile: "notaction", Agent: AgentOnline},
	// Registers (ssm allowed) but its channels are denied: no sessions.
	{Name: "diag-role-deny", vpc: "main", subnet: "a", IP: "127.0.1.64", sg: "ssh", profile: "deny", Agent: AgentUnconnected},
	{Name: "diag-role-register-only", vpc: "main", subnet: "a", IP: "127.0.1.65", sg: "ssh", profile: "register", Agent: AgentUnconnected},
	// No credentials for ssm at all: never registers.
	{Name: "diag-role-none", vpc: "main", subnet: "a", IP: "127.0.1.66", sg: "ssh", profile: "none"},
	// The agent's way out: egress, network ACLs, the metadata service.
	{Name: "diag-sg-egress", vpc: "main", subnet: "a", IP: "127.0.1.67", sg: "noegress", profile: "core"},
	{Name: "diag-nacl-443out", vpc: "main", subnet: "j", IP: "127.0.12.10", sg: "ssh", profile: "core"},
	{Name: "diag-nacl-ephemeral", vpc: "main", subnet: "k", IP: "127.0.13.10", sg: "ssh", profile: "core"},
	{Name: "diag-imds-off", vpc: "main", subnet: "a", IP: "127.0.1.68", sg: "ssh", profile: "core", metadataOff: true},
	// A VPC with no endpoints, out through NAT or internet gateways.
	{Name: "diag-nat-live", vpc: "nat", subnet: "live", IP: "127.0.21.10", sg: "ssh", profile: "core", Agent: AgentOnline},
	{Name: "diag-nat-gone", vpc: "nat", subnet: "gone", IP: "127.0.22.10", sg: "ssh", profile: "core"},
	{Name: "diag-no-route", vpc: "nat", subnet: "none", IP: "127.0.23.10", sg: "ssh", profile: "core"},
	{Name: "diag-igw-nopublic", vpc: "nat", subnet: "igw", IP: "127.0.24.10", sg: "ssh", profile: "core"},
	{Name: "diag-igw-public", vpc: "nat", subnet: "igw", IP: "127.0.24.11", PublicIP: "198.51.100.24", sg: "pubssh", profile: "core", Agent: AgentOnline},
	// VPCs whose endpoints are wrong one way each (the lab's VPC, with all
	// three right, is their twin).
	{Name: "diag-ep-nossm", vpc: "ep-nossm", subnet: "i", IP: "127.0.31.10", sg: "ssh", profile: "core"},
	{Name: "diag-ep-nossmmessages", vpc: "ep-nossmmessages", subnet: "i", IP: "127.0.32.10", sg: "ssh", profile: "core", Agent: AgentUnconnected},
	{Name: "diag-ep-noec2messages", vpc: "ep-noec2messages", subnet: "i", IP: "127.0.33.10", sg: "ssh", profile: "core", Agent: AgentOnline},
	{Name: "diag-ep-nodns", vpc: "ep-nodns", subnet: "i", IP: "127.0.34.10", sg: "ssh", profile: "core"},
	{Name: "diag-ep-sg443", vpc: "ep-sg443", subnet: "i", IP: "127.0.35.10", sg: "ssh", profile: "core"},
}

// epVPC is a VPC of endpoints wrong one way.
type epVPC struct {
	key        string
	services   []string // the endpoints it has
	privateDNS bool
	port       int32 // the port its endpoints' group admits
	third      byte  // 127.0.<third>.0/24 for the instance, <third+10> for the endpoints
}

var epVPCs = []epVPC{
	{"ep-nossm", []string{"ssmmessages", "ec2messages"}, true, 443, 31},
	{"ep-nossmmessages", []string{"ssm", "ec2messages"}, true, 443, 32},
	{"ep-noec2messages", []string{"ssm", "ssmmessages"}, true, 443, 33},
	{"ep-nodns", []string{"ssm", "ssmmessages", "ec2messages"}, false, 443, 34},
	{"ep-sg443", []string{"ssm", "ssmmessages", "ec2messages"}, true, 80, 35},
}

// diagImages are the AMIs: moto's own (with their publishers' accounts)
// found by name, or registered by the lab (owned by the lab's account,
// recognised by name).
var diagImages = map[string]struct{ find, register, description string }{
	"ubuntu":  {find: "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04*"},
	"rhel":    {find: "RHEL-7.4*"},
	"suse":    {find: "suse-sles-12-sp3*"},
	"debian":  {register: "debian-12-amd64-20240201-1644", description: "Debian 12 (20240201-1644)"},
	"rocky":   {register: "Rocky-9-EC2-Base-9.3-20231113.0.x86_64", description: "Rocky Linux 9.3 EC2 Base"},
	"bitnami": {register: "bitnami-wordpress-6.4.3-0-r05-linux-debian-12-x86_64-hvm-ebs-nami", description: "Bitnami package for WordPress"},
	"golden":  {register: "golden-image-42", description: "our own image"},
}

// diagProfiles are instance profiles and what their roles are given:
// managed policies (AWS's), customer-managed policy documents, inline
// policy documents.
var diagProfiles = map[string]struct {
	managed          []string
	customer, inline map[string]string
}{
	"core":      {managed: []string{"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}},
	"customer":  {customer: map[string]string{"lab-diag-everything": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`}},
	"wildcards": {customer: map[string]string{"lab-diag-wildcards": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:Update*","ssmmessages:*","ec2messages:*"],"Resource":"*"}]}`}},
	"inline": {inline: map[string]string{"agent": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:UpdateInstanceInformation",` +
		`"ssmmessages:CreateControlChannel","ssmmessages:CreateDataChannel","ssmmessages:OpenControlChannel","ssmmessages:OpenDataChannel"],"Resource":"*"}]}`}},
	"notaction": {customer: map[string]string{"lab-diag-notiam": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}`}},
	"deny": {managed: []string{"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"},
		inline: map[string]string{"no-sessions": `{"Version":"2012-10-17","Statement":[{"Sid":"NoSessions","Effect":"Deny","Action":"ssmmessages:*","Resource":"*"}]}`}},
	"register": {inline: map[string]string{"register": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:UpdateInstanceInformation","Resource":"*"}]}`}},
	"none":     {customer: map[string]string{"lab-diag-s3": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`}},
}

// diagBase is what the lab's own build made that the diagnosis world uses.
type diagBase struct {
	vpc     string
	subnets map[string]string
	sgs     map[string]string
	ami     string
	pub     string // the local ED25519 key's public line
	eic     string // the AuthorizedKeysCommand
}

// diagVPC is one VPC of the diagnosis world: its subnets and groups.
type diagVPC struct {
	id      string
	subnets map[string]string
	sgs     map[string]string
}

// Diagnosis builds the diagnosis world, once, the first time a test asks
// for it (it takes some 15 s that the lab's other tests need not wait):
// its AWS resources in moto, its instances' sshd, an SSM stand-in of its
// own for their agents (the SSM front sends their calls there), the
// nftables rules for its groups and routes.
func (w *World) Diagnosis(ctx context.Context) error {
	w.diagOnce.Do(func() {
		cfg := w.awsConfig()
		d := &diagBuilder{w: w, e: ec2.NewFromConfig(cfg), im: iam.NewFromConfig(cfg), b: w.diagBase,
			online: map[string]bool{}, addrs: map[string]string{}, views: map[string]*View{}, made: map[string]*Instance{}}
		w.diagErr = d.build(ctx)
	})
	return w.diagErr
}

// DiagInstance is the diagnosis world's instance named name (Diagnosis
// must have been called), or nil.
func (w *World) DiagInstance(name string) *Instance { return w.diag[name] }

type diagBuilder struct {
	w    *World
	e    *ec2.Client
	im   *iam.Client
	b    diagBase
	vpcs map[string]*diagVPC
	eni  map[string][]string // endpoint -> the lab's interfaces for it
	// What the world's own SSM stand-in gets: its instances' agents.
	online map[string]bool
	addrs  map[string]string
	views  map[string]*View
	made   map[string]*Instance // by name
}

func (d *diagBuilder) build(ctx context.Context) error {
	nft, err := d.resources(ctx)
	if err != nil {
		return err
	}
	w := d.w
	port, err := FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	if w.diagSSM, err = StartSSM(SSMOptions{Port: port, Online: d.online, Addrs: d.addrs, Views: d.views}); err != nil {
		return err
	}
	w.diag = d.made
	w.over.mu.Lock()
	for id := range d.addrs {
		w.over.diagIDs[id] = true
	}
	w.over.diagPort = port
	w.over.mu.Unlock()
	if len(nft) == 0 {
		return nil
	}
	return Nft(strings.Join(nft, "\n") + "\n")
}

func (d *diagBuilder) resources(ctx context.Context) ([]string, error) {
	e := d.e
	d.vpcs, d.eni = map[string]*diagVPC{}, map[string][]string{}
	main := &diagVPC{id: d.b.vpc, subnets: map[string]string{}, sgs: map[string]string{}}
	for k, v := range d.b.subnets {
		main.subnets[k] = v
	}
	for k, v := range d.b.sgs {
		main.sgs[k] = v
	}
	d.vpcs["main"] = main
	if err := d.dnsHostnames(ctx, main.id); err != nil {
		return nil, err
	}
	// The lab's VPC: its instances reach SSM through interface endpoints
	// in subnet v, as instances without public addresses do.
	if err := d.subnet(ctx, main, "v", "127.0.9.0/24"); err != nil {
		return nil, err
	}
	vpce, err := d.group(ctx, main, "vpce", 443, "127.0.0.0/16")
	if err != nil {
		return nil, err
	}
	if err := d.endpoints(ctx, main, "v", vpce, []string{"ssm", "ssmmessages", "ec2messages"}, true, "127.0.9.1"); err != nil {
		return nil, err
	}
	for key, spec := range map[string]struct {
		port int32
		cidr string
		v6   bool
	}{"pubssh": {22, "0.0.0.0/0", false}, "v6only": {22, "::/0", true}} {
		if err := d.groupAny(ctx, main, key, spec.port, spec.cidr, spec.v6); err != nil {
			return nil, err
		}
	}
	// A group that lets 22 in but nothing out on 443.
	if _, err := d.group(ctx, main, "noegress", 22, "127.0.0.0/8"); err != nil {
		return nil, err
	}
	if _, err := e.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(main.sgs["noegress"]), IpPermissions: []ec2types.IpPermission{
		{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
		return nil, fmt.Errorf("revoke noegress's egress: %w", err)
	}
	if _, err := e.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(main.sgs["noegress"]), IpPermissions: []ec2types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
		return nil, fmt.Errorf("noegress's egress: %w", err)
	}
	// Subnets f and g route the internet to a gateway that was deleted, or
	// one attached to no VPC. AWS wants the gateway attached to add the
	// route; moto does not ask, so the lab skips the attach-and-detach.
	for key, cidr := range map[string]string{"f": "127.0.10.0/24", "g": "127.0.11.0/24", "j": "127.0.12.0/24", "k": "127.0.13.0/24"} {
		if err := d.subnet(ctx, main, key, cidr); err != nil {
			return nil, err
		}
	}
	for key, del := range map[string]bool{"f": true, "g": false} {
		igw, err := e.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
		if err != nil {
			return nil, err
		}
		if err := d.routeTable(ctx, main, key, "0.0.0.0/0", igw.InternetGateway.InternetGatewayId, nil); err != nil {
			return nil, err
		}
		if del {
			if _, err := e.DeleteInternetGateway(ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId}); err != nil {
				return nil, fmt.Errorf("delete the gateway: %w", err)
			}
		}
	}
	// Subnet j's ACL denies 443 out; subnet k's lets only 22 in (the
	// agent's replies, to its ephemeral ports, are dropped).
	if err := d.w.nacl(ctx, main.id, aws.String(main.subnets["j"]), []ec2.CreateNetworkAclEntryInput{
		{RuleNumber: aws.Int32(50), Egress: aws.Bool(true), Protocol: aws.String("6"), RuleAction: ec2types.RuleActionDeny, CidrBlock: aws.String("0.0.0.0/0"), PortRange: &ec2types.PortRange{From: aws.Int32(443), To: aws.Int32(443)}},
		{RuleNumber: aws.Int32(100), Egress: aws.Bool(true), Protocol: aws.String("-1"), RuleAction: ec2types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0")},
		{RuleNumber: aws.Int32(100), Protocol: aws.String("-1"), RuleAction: ec2types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0")},
	}); err != nil {
		return nil, err
	}
	if err := d.w.nacl(ctx, main.id, aws.String(main.subnets["k"]), []ec2.CreateNetworkAclEntryInput{
		{RuleNumber: aws.Int32(100), Protocol: aws.String("6"), RuleAction: ec2types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0"), PortRange: &ec2types.PortRange{From: aws.Int32(22), To: aws.Int32(22)}},
		{RuleNumber: aws.Int32(100), Egress: aws.Bool(true), Protocol: aws.String("-1"), RuleAction: ec2types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0")},
	}); err != nil {
		return nil, err
	}
	if err := d.natVPC(ctx); err != nil {
		return nil, err
	}
	for _, ev := range epVPCs {
		if err := d.endpointVPC(ctx, ev); err != nil {
			return nil, err
		}
	}
	images, err := d.images(ctx)
	if err != nil {
		return nil, err
	}
	profiles, err := d.profiles(ctx)
	if err != nil {
		return nil, err
	}
	d.w.over.mu.Lock()
	for id, enis := range d.eni {
		d.w.over.endpointENI[id] = enis
	}
	d.w.over.mu.Unlock()
	return d.instances(ctx, images, profiles)
}

func (d *diagBuilder) dnsHostnames(ctx context.Context, vpc string) error {
	_, err := d.e.ModifyVpcAttribute(ctx, &ec2.ModifyVpcAttributeInput{VpcId: aws.String(vpc), EnableDnsHostnames: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}})
	return err
}

func (d *diagBuilder) newVPC(ctx context.Context, key string) (*diagVPC, error) {
	v, err := d.e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("127.0.0.0/16")})
	if err != nil {
		return nil, fmt.Errorf("create vpc %s: %w", key, err)
	}
	dv := &diagVPC{id: aws.ToString(v.Vpc.VpcId), subnets: map[string]string{}, sgs: map[string]string{}}
	d.vpcs[key] = dv
	if err := d.dnsHostnames(ctx, dv.id); err != nil {
		return nil, err
	}
	_, err = d.group(ctx, dv, "ssh", 22, "127.0.0.0/8")
	return dv, err
}

func (d *diagBuilder) subnet(ctx context.Context, v *diagVPC, key, cidr string) error {
	s, err := d.e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(v.id), CidrBlock: aws.String(cidr)})
	if err != nil {
		return fmt.Errorf("create subnet %s: %w", cidr, err)
	}
	v.subnets[key] = aws.ToString(s.Subnet.SubnetId)
	return nil
}

// group makes a security group admitting tcp port from cidr.
func (d *diagBuilder) group(ctx context.Context, v *diagVPC, key string, port int32, cidr string) (string, error) {
	err := d.groupAny(ctx, v, key, port, cidr, false)
	return v.sgs[key], err
}

func (d *diagBuilder) groupAny(ctx context.Context, v *diagVPC, key string, port int32, cidr string, v6 bool) error {
	g, err := d.e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("lab-diag-" + key), Description: aws.String("lab " + key), VpcId: aws.String(v.id)})
	if err != nil {
		return fmt.Errorf("create security group %s: %w", key, err)
	}
	perm := ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
	if v6 {
		perm.Ipv6Ranges = []ec2types.Ipv6Range{{CidrIpv6: aws.String(cidr)}}
	} else {
		perm.IpRanges = []ec2types.IpRange{{CidrIp: aws.String(cidr)}}
	}
	if _, err := d.e.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: []ec2types.IpPermission{perm}}); err != nil {
		return err
	}
	v.sgs[key] = aws.ToString(g.GroupId)
	return nil
}

// endpoints makes interface endpoints for services in subnet, and their
// network interfaces as AWS makes them: in the subnet, at ipPrefix+N, in
// the endpoint's group.
func (d *diagBuilder) endpoints(ctx context.Context, v *diagVPC, subnet, sg string, services []string, privateDNS bool, ipPrefix string) error {
	for i, svc := range services {
		ep, err := d.e.CreateVpcEndpoint(ctx, &ec2.CreateVpcEndpointInput{VpcId: aws.String(v.id), VpcEndpointType: ec2types.VpcEndpointTypeInterface,
			ServiceName: aws.String("com.amazonaws." + Region + "." + svc), SubnetIds: []string{v.subnets[subnet]}, SecurityGroupIds: []string{sg},
			PrivateDnsEnabled: aws.Bool(privateDNS)})
		if err != nil {
			return fmt.Errorf("create the %s endpoint: %w", svc, err)
		}
		id := aws.ToString(ep.VpcEndpoint.VpcEndpointId)
		eni, err := d.e.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(v.subnets[subnet]),
			PrivateIpAddress: aws.String(fmt.Sprintf("%s%d", ipPrefix, i+1)), Groups: []string{sg}, Description: aws.String("VPC Endpoint Interface " + id)})
		if err != nil {
			return fmt.Errorf("the %s endpoint's interface: %w", svc, err)
		}
		d.eni[id] = []string{aws.ToString(eni.NetworkInterface.NetworkInterfaceId)}
	}
	return nil
}

// routeTable gives subnet a table of its own with one route to a gateway
// (igw) or a NAT gateway (nat).
func (d *diagBuilder) routeTable(ctx context.Context, v *diagVPC, subnet, dest string, igw, nat *string) error {
	rt, err := d.e.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: aws.String(v.id)})
	if err != nil {
		return err
	}
	if _, err := d.e.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTable.RouteTableId, SubnetId: aws.String(v.subnets[subnet])}); err != nil {
		return err
	}
	_, err = d.e.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt.RouteTable.RouteTableId, DestinationCidrBlock: aws.String(dest), GatewayId: igw, NatGatewayId: nat})
	return err
}

// natVPC is a VPC with no endpoints: a public subnet with an internet
// gateway and two NAT gateways (one then deleted), and private subnets
// routed through each, through none, and to the internet gateway.
func (d *diagBuilder) natVPC(ctx context.Context) error {
	e := d.e
	v, err := d.newVPC(ctx, "nat")
	if err != nil {
		return err
	}
	if err := d.groupAny(ctx, v, "pubssh", 22, "0.0.0.0/0", false); err != nil {
		return err
	}
	igw, err := e.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
	if err != nil {
		return err
	}
	if _, err := e.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: aws.String(v.id)}); err != nil {
		return err
	}
	for key, cidr := range map[string]string{"pub": "127.0.20.0/24", "live": "127.0.21.0/24", "gone": "127.0.22.0/24", "none": "127.0.23.0/24", "igw": "127.0.24.0/24"} {
		if err := d.subnet(ctx, v, key, cidr); err != nil {
			return err
		}
	}
	if err := d.routeTable(ctx, v, "pub", "0.0.0.0/0", igw.InternetGateway.InternetGatewayId, nil); err != nil {
		return err
	}
	if err := d.routeTable(ctx, v, "igw", "0.0.0.0/0", igw.InternetGateway.InternetGatewayId, nil); err != nil {
		return err
	}
	for key, addr := range map[string]string{"live": "198.51.100.200", "gone": "198.51.100.201"} {
		eip, err := e.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc, Address: aws.String(addr)})
		if err != nil {
			return fmt.Errorf("allocate %s: %w", addr, err)
		}
		nat, err := e.CreateNatGateway(ctx, &ec2.CreateNatGatewayInput{SubnetId: aws.String(v.subnets["pub"]), AllocationId: eip.AllocationId})
		if err != nil {
			return fmt.Errorf("create a NAT gateway: %w", err)
		}
		if err := d.routeTable(ctx, v, key, "0.0.0.0/0", nil, nat.NatGateway.NatGatewayId); err != nil {
			return err
		}
		if key == "gone" {
			if _, err := e.DeleteNatGateway(ctx, &ec2.DeleteNatGatewayInput{NatGatewayId: nat.NatGateway.NatGatewayId}); err != nil {
				return fmt.Errorf("delete the NAT gateway: %w", err)
			}
		}
	}
	return nil
}

func (d *diagBuilder) endpointVPC(ctx context.Context, ev epVPC) error {
	v, err := d.newVPC(ctx, ev.key)
	if err != nil {
		return err
	}
	if err := d.subnet(ctx, v, "i", fmt.Sprintf("127.0.%d.0/24", ev.third)); err != nil {
		return err
	}
	if err := d.subnet(ctx, v, "e", fmt.Sprintf("127.0.%d.0/24", ev.third+10)); err != nil {
		return err
	}
	sg, err := d.group(ctx, v, "vpce", ev.port, "127.0.0.0/16")
	if err != nil {
		return err
	}
	return d.endpoints(ctx, v, "e", sg, ev.services, ev.privateDNS, fmt.Sprintf("127.0.%d.1", ev.third+10))
}

func (d *diagBuilder) images(ctx context.Context) (map[string]string, error) {
	out := map[string]string{"": d.b.ami}
	for key, im := range diagImages {
		if im.find != "" {
			found, err := d.e.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{im.find}}}})
			if err != nil || len(found.Images) == 0 {
				return nil, fmt.Errorf("no %s image in moto: %v", im.find, err)
			}
			out[key] = aws.ToString(found.Images[0].ImageId)
			continue
		}
		reg, err := d.e.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String(im.register), Description: aws.String(im.description)})
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", im.register, err)
		}
		out[key] = aws.ToString(reg.ImageId)
	}
	return out, nil
}

func (d *diagBuilder) profiles(ctx context.Context) (map[string]string, error) {
	im := d.im
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	out := map[string]string{}
	keys := make([]string, 0, len(diagProfiles))
	for k := range diagProfiles {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		p := diagProfiles[key]
		role, name := "lab-diag-role-"+key, "lab-diag-"+key
		if _, err := im.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
			return nil, fmt.Errorf("create role %s: %w", role, err)
		}
		arns := append([]string(nil), p.managed...)
		for pn, doc := range p.customer {
			pol, err := im.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(pn), PolicyDocument: aws.String(doc)})
			if err != nil {
				return nil, fmt.Errorf("create policy %s: %w", pn, err)
			}
			arns = append(arns, aws.ToString(pol.Policy.Arn))
		}
		for _, arn := range arns {
			if _, err := im.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(role), PolicyArn: aws.String(arn)}); err != nil {
				return nil, fmt.Errorf("attach %s: %w", arn, err)
			}
		}
		for pn, doc := range p.inline {
			if _, err := im.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(pn), PolicyDocument: aws.String(doc)}); err != nil {
				return nil, fmt.Errorf("put %s: %w", pn, err)
			}
		}
		if _, err := im.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(name)}); err != nil {
			return nil, err
		}
		if _, err := im.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(role)}); err != nil {
			return nil, err
		}
		out[key] = name
	}
	return out, nil
}

// labUsers are the login users the diagnosis world's AMIs use; each
// instance sees only its own among them.
var labUsers = []string{"ec2-user", "ubuntu", "admin", "rocky", "bitnami"}

func (d *diagBuilder) instances(ctx context.Context, images, profiles map[string]string) ([]string, error) {
	e, w := d.e, d.w
	for _, u := range labUsers {
		if err := ensureUser(u); err != nil {
			return nil, err
		}
	}
	hostPasswd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return nil, err
	}
	var nft, nat []string
	type started struct {
		c      DiagCase
		li     *Instance
		layout *Layout
	}
	var todo []started
	for _, c := range DiagCases {
		if c.User == "" {
			c.User = LoginUser
		}
		v := d.vpcs[c.vpc]
		in := &ec2.RunInstancesInput{ImageId: aws.String(images[c.ami]), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: ec2types.InstanceTypeT3Micro,
			KeyName: aws.String("lab-ed25519"), SubnetId: aws.String(v.subnets[c.subnet]), PrivateIpAddress: aws.String(c.IP), SecurityGroupIds: []string{v.sgs[c.sg]},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(c.Name)}}}}}
		if c.profile != "" {
			in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Name: aws.String(profiles[c.profile])}
		}
		out, err := e.RunInstances(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("run instance %s: %w", c.Name, err)
		}
		id := aws.ToString(out.Instances[0].InstanceId)
		if c.metadataOff {
			if _, err := e.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), HttpEndpoint: ec2types.InstanceMetadataEndpointStateDisabled}); err != nil {
				return nil, fmt.Errorf("%s: metadata off: %w", c.Name, err)
			}
		}
		if c.nic2 != nil {
			eni, err := e.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(v.subnets[c.subnet]), PrivateIpAddress: aws.String(c.nic2.ip), Groups: []string{v.sgs[c.nic2.sg]}})
			if err != nil {
				return nil, fmt.Errorf("%s: second interface: %w", c.Name, err)
			}
			if _, err := e.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: eni.NetworkInterface.NetworkInterfaceId, InstanceId: aws.String(id), DeviceIndex: aws.Int32(1)}); err != nil {
				return nil, fmt.Errorf("%s: attach the second interface: %w", c.Name, err)
			}
		}
		if c.PublicIP != "" {
			eip, err := e.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc, Address: aws.String(c.PublicIP)})
			if err != nil {
				return nil, fmt.Errorf("%s: allocate %s: %w", c.Name, c.PublicIP, err)
			}
			if _, err := e.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: eip.AllocationId, InstanceId: aws.String(id)}); err != nil {
				return nil, fmt.Errorf("%s: associate %s: %w", c.Name, c.PublicIP, err)
			}
			nat = append(nat, fmt.Sprintf("add rule ip lab-nat out ip daddr %s tcp dport 22 dnat to %s", c.PublicIP, c.IP))
		}
		w.over.mu.Lock()
		if c.state != "" {
			w.over.states[id] = instanceState{name: c.state}
		}
		if c.impaired {
			w.over.impaired[id] = true
		}
		if c.Agent == AgentUnconnected {
			w.over.unconnected[id] = true
		}
		w.over.mu.Unlock()
		d.online[id] = c.Agent != AgentOffline
		d.addrs[id] = c.IP
		if c.Closed {
			// Not from the instance itself: the agent's own connection
			// to its sshd is local, and no group or route applies to it.
			nft = append(nft, fmt.Sprintf("add rule netdev lab-aws in ip saddr != %s ip daddr %s tcp dport 22 drop", c.IP, c.IP))
		}
		li := &Instance{Name: c.Name, ID: id, IP: c.IP}
		root := filepath.Join(w.root, c.Name+"-"+c.IP)
		layout := &Layout{Root: root, User: c.User}
		// The instance's own accounts: the host's, less the lab's login
		// users other than its own.
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			return nil, err
		}
		var passwd []string
		for _, l := range strings.Split(strings.TrimRight(string(hostPasswd), "\n"), "\n") {
			name, _, _ := strings.Cut(l, ":")
			if name == c.User || !contains(labUsers, name) {
				passwd = append(passwd, l)
			}
		}
		if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte(strings.Join(passwd, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
		todo = append(todo, started{c, li, layout})
		d.made[c.Name] = li
	}
	// sshd starts side by side: each makes a host key and waits for its
	// banner.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 8)
	for _, s := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			extra := []string{"AllowUsers " + s.c.User, "AuthorizedKeysCommand " + d.b.eic + " " + s.li.ID + " %u", "AuthorizedKeysCommandUser nobody"}
			sd, err := StartSSHD(filepath.Join(w.Dir, "sshd-"+s.c.IP), SSHDOptions{Addr: s.c.IP, Port: 22, AuthorizedKeys: []string{d.b.pub}, Extra: extra, Instance: s.layout})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", s.c.Name, err)
				}
				return
			}
			view := s.layout.View()
			view.Binds["/etc/passwd"] = filepath.Join(s.layout.Root, "etc", "passwd")
			d.views[s.li.ID] = view
			w.sshdMu.Lock()
			w.sshds = append(w.sshds, sd)
			w.sshdMu.Unlock()
			s.li.SSHD = sd
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	// Public addresses: the loopback takes them from 127.0.0.1 (the
	// client is "behind a NAT", its public address not known), and each
	// becomes its instance's private address.
	if out, err := exec.Command("ip", "route", "replace", "198.51.100.0/24", "dev", "lo", "src", "127.0.0.1").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip route: %v: %s", err, out)
	}
	if err := Nft("add table ip lab-nat\nadd chain ip lab-nat out { type nat hook output priority -100; }\n" + strings.Join(nat, "\n") + "\n"); err != nil {
		return nil, err
	}
	return nft, nil
}
