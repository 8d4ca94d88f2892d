package lab

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// Region is the lab's AWS region.
const Region = "us-east-1"

// MotoPort is where moto_server listens on the lab's loopback.
const MotoPort = 5000

// World is a small AWS account in moto's emulator, with real sshd
// processes at the instances' private addresses (127.0.x.y, in a VPC of
// 127.0.0.0/16) and nftables rules that make the network do what the
// security groups and network ACLs say. It must run inside a lab network
// namespace (see Reexec).
type World struct {
	Dir       string
	MotoURL   string
	Instances map[string]*Instance // by Name tag
	Twins     []string             // ids of the two instances named "twin"
	// Keys: the local keys (IdentityFile) and one that is not local.
	ED25519Key, RSAKey, OtherKey string
	moto                         *exec.Cmd
	ssm                          *ssmStandIn
	eice                         *eiceStandIn
	serial                       *serialStandIn
	root                         string           // LabRoot/<pid>: the instances' files
	views                        map[string]*View // instance id -> its view
	sshds                        []*SSHD
	ec2                          *ec2.Client
	// over holds what the fronts say where moto and the SSM stand-in
	// cannot (front.go); ssmFront is the front before the stand-in.
	over     *overrides
	ssmFront *http.Server
	// The diagnosis world (diagworld.go), built by the first test that
	// asks for it: what it needs of the lab's own build, and what it made.
	diagBase diagBase
	diagOnce sync.Once
	diagErr  error
	diag     map[string]*Instance
	diagSSM  *ssmStandIn
	sshdMu   sync.Mutex    // guards sshds, which the diagnosis world adds to
	weather  *Weathers     // the stand-ins' weather (weather.go)
	front    *weatherFront // in front of moto
}

// Instance is one lab instance.
type Instance struct {
	Name, ID, IP string
	SSHD         *SSHD  // nil when its sshd is stopped
	Region       string // "" for the lab's Region
}

// AWSEnv is the environment that points the AWS SDK (and ec2ssh) at the
// lab: moto for EC2, IAM and STS (through the front that gives them
// weather), fixed fake credentials.
func (w *World) AWSEnv() []string {
	return []string{
		fmt.Sprintf("AWS_ENDPOINT_URL=http://127.0.0.1:%d", MotoFrontPort),
		fmt.Sprintf("AWS_ENDPOINT_URL_SSM=http://127.0.0.1:%d", SSMFrontPort),
		fmt.Sprintf("AWS_ENDPOINT_URL_EC2_INSTANCE_CONNECT=http://127.0.0.1:%d", SSMPort),
		fmt.Sprintf("AWS_ENDPOINT_URL_EC2=http://127.0.0.1:%d", EC2FrontPort),
		// The tunnel service's certificate, as a company's CA would be added.
		"SSL_CERT_FILE=" + filepath.Join(w.Dir, "eice-ca.pem"),
		"AWS_ACCESS_KEY_ID=AKIALABLABLABLABLAB0",
		"AWS_SECRET_ACCESS_KEY=lab-secret-not-a-real-one",
		"AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// StartWorld starts moto and builds the world under dir.
func StartWorld(ctx context.Context, dir string) (*World, error) {
	if !InNetns() {
		return nil, fmt.Errorf("the EC2 lab runs only inside its own network namespace")
	}
	for _, tool := range []string{"moto_server", "nft", SSHDPath} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found (moto_server comes with the machine's Python; nft: apt-get install nftables)", tool)
		}
	}
	w := &World{Dir: dir, MotoURL: fmt.Sprintf("http://127.0.0.1:%d", MotoPort), Instances: map[string]*Instance{}, weather: &Weathers{}}
	if err := w.startMoto(); err != nil {
		return nil, err
	}
	var err error
	if w.front, err = startWeatherFront(MotoFrontPort, w.MotoURL, w.weather); err != nil {
		w.Stop()
		return nil, err
	}
	if err := w.build(ctx); err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

func (w *World) startMoto() error {
	log, err := os.Create(filepath.Join(w.Dir, "moto.log"))
	if err != nil {
		return err
	}
	w.moto = exec.Command("moto_server", "-H", "127.0.0.1", "-p", fmt.Sprint(MotoPort))
	w.moto.Env = append(os.Environ(), "MOTO_IAM_LOAD_MANAGED_POLICIES=true")
	w.moto.Stdout, w.moto.Stderr = log, log
	if err := w.moto.Start(); err != nil {
		return fmt.Errorf("start moto_server: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(w.MotoURL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("moto_server did not answer on %s: %v", w.MotoURL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends moto and every sshd.
func (w *World) Stop() {
	w.sshdMu.Lock()
	for _, s := range w.sshds {
		s.Stop()
	}
	w.sshdMu.Unlock()
	if w.diagSSM != nil {
		w.diagSSM.stop()
	}
	if w.ssm != nil {
		w.ssm.stop()
	}
	if w.eice != nil {
		w.eice.stop()
	}
	if w.serial != nil {
		w.serial.stop()
	}
	if w.ssmFront != nil {
		w.ssmFront.Close()
	}
	if w.front != nil {
		w.front.stop()
	}
	if w.moto != nil && w.moto.Process != nil {
		w.moto.Process.Kill()
		w.moto.Wait()
	}
	if w.root != "" {
		os.RemoveAll(w.root)
	}
}

type spec struct {
	name, subnet, ip, key, sg string
	profile, sshd, stopped    bool
	dropIn, dropOut           bool
	// What is wrong inside the instance, where AWS's configuration does
	// not show it.
	hostFirewall bool     // a host firewall rule drops port 22
	badConfig    []string // sshd_config lines that keep sshd from starting
	badModes     bool     // authorized_keys writable by others, StrictModes yes
	// fleet tags the instance Fleet=lab: ten of them, for --list and --all.
	fleet bool
	// onlyFrom: port 22 answers only this address (an EC2 Instance Connect
	// Endpoint's) and the instance itself; "-" for nobody else at all.
	onlyFrom string
}

var specs = []spec{
	{name: "healthy", subnet: "a", ip: "127.0.1.10", key: "lab-ed25519", sg: "ssh", profile: true, sshd: true, fleet: true},
	{name: "sg-no-22", subnet: "a", ip: "127.0.1.11", key: "lab-ed25519", sg: "web", profile: true, sshd: true, dropIn: true, fleet: true},
	{name: "sg-other-net", subnet: "a", ip: "127.0.1.12", key: "lab-ed25519", sg: "othernet", profile: true, sshd: true, dropIn: true},
	{name: "sg-range", subnet: "a", ip: "127.0.1.13", key: "lab-ed25519", sg: "range", profile: true, sshd: true, fleet: true},
	{name: "wrong-key", subnet: "a", ip: "127.0.1.14", key: "lab-other", sg: "ssh", profile: true, sshd: true, fleet: true},
	{name: "sshd-stopped", subnet: "a", ip: "127.0.1.15", key: "lab-ed25519", sg: "ssh", profile: true, fleet: true},
	{name: "stopped", subnet: "a", ip: "127.0.1.16", key: "lab-ed25519", sg: "ssh", profile: true, stopped: true, dropIn: true, fleet: true},
	{name: "no-profile", subnet: "a", ip: "127.0.1.17", key: "lab-ed25519", sg: "ssh", sshd: true, fleet: true},
	{name: "imported-rsa", subnet: "a", ip: "127.0.1.18", key: "lab-rsa", sg: "ssh", profile: true, sshd: true, fleet: true},
	{name: "twin", subnet: "a", ip: "127.0.1.19", key: "lab-ed25519", sg: "ssh", profile: true, sshd: true},
	{name: "twin", subnet: "a", ip: "127.0.1.20", key: "lab-ed25519", sg: "ssh", profile: true, sshd: true},
	{name: "nacl-deny", subnet: "b", ip: "127.0.2.10", key: "lab-ed25519", sg: "ssh", profile: true, sshd: true, dropIn: true},
	{name: "nacl-egress", subnet: "c", ip: "127.0.3.10", key: "lab-ed25519", sg: "ssh", profile: true, sshd: true, dropOut: true, fleet: true},
	{name: "host-firewall", subnet: "a", ip: "127.0.1.21", key: "lab-ed25519", sg: "ssh", profile: true, sshd: true, hostFirewall: true, fleet: true},
	{name: "sg-source-group", subnet: "a", ip: "127.0.1.22", key: "lab-ed25519", sg: "srcgroup", profile: true, sshd: true, dropIn: true},
	{name: "sshd-badconfig", subnet: "a", ip: "127.0.1.23", key: "lab-ed25519", sg: "ssh", profile: true, sshd: true, badConfig: []string{"Frobnicate yes"}},
	{name: "bad-modes", subnet: "a", ip: "127.0.1.24", key: "lab-ed25519", sg: "ssh", profile: true, sshd: true, badModes: true},
	// Private instances with no SSM agent, reachable only through an EC2
	// Instance Connect Endpoint; the second endpoint's group lets nothing out.
	{name: "eice-only", subnet: "d", ip: "127.0.5.10", key: "lab-ed25519", sg: "fromeice", sshd: true, onlyFrom: "127.0.5.2"},
	{name: "eice-noegress", subnet: "e", ip: "127.0.6.10", key: "lab-ed25519", sg: "fromeice2", sshd: true, onlyFrom: "-"},
}

// LabRoot is where the instances' own files live (Layout): not under /tmp,
// whose mode sshd's StrictModes refuses on the way to a user's keys.
const LabRoot = "/var/lib/ec2ssh-lab"

// LoginUser is the lab AMI's default user (Amazon Linux: ec2-user).
const LoginUser = "ec2-user"

func (w *World) build(ctx context.Context) error {
	cfg := w.awsConfig()
	e := ec2.NewFromConfig(cfg)
	w.ec2 = e
	w.over = newOverrides(e)
	im := iam.NewFromConfig(cfg)

	// Keys: two local (ED25519, RSA), one that is not.
	w.ED25519Key, w.RSAKey, w.OtherKey = filepath.Join(w.Dir, "id_ed25519"), filepath.Join(w.Dir, "id_rsa"), filepath.Join(w.Dir, "other_ed25519")
	for path, typ := range map[string]string{w.ED25519Key: "ed25519", w.RSAKey: "rsa", w.OtherKey: "ed25519"} {
		if err := Keygen(path, typ, ""); err != nil {
			return err
		}
	}
	pubs := map[string]string{}
	for name, path := range map[string]string{"lab-ed25519": w.ED25519Key, "lab-rsa": w.RSAKey, "lab-other": w.OtherKey} {
		pub, err := os.ReadFile(path + ".pub")
		if err != nil {
			return err
		}
		pubs[name] = string(pub)
		if _, err := e.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String(name), PublicKeyMaterial: pub}); err != nil {
			return fmt.Errorf("import key pair %s: %w", name, err)
		}
	}
	if err := ensureUser(LoginUser); err != nil {
		return err
	}

	vpc, err := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("127.0.0.0/16")})
	if err != nil {
		return fmt.Errorf("create vpc: %w", err)
	}
	vpcID := vpc.Vpc.VpcId
	igw, err := e.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
	if err != nil {
		return err
	}
	if _, err := e.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: vpcID}); err != nil {
		return err
	}
	rts, err := e.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{*vpcID}}, {Name: aws.String("association.main"), Values: []string{"true"}}}})
	if err != nil || len(rts.RouteTables) == 0 {
		return fmt.Errorf("main route table: %v", err)
	}
	if _, err := e.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rts.RouteTables[0].RouteTableId,
		DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: igw.InternetGateway.InternetGatewayId}); err != nil {
		return err
	}

	subnets := map[string]*string{}
	for key, cidr := range map[string]string{"a": "127.0.1.0/24", "b": "127.0.2.0/24", "c": "127.0.3.0/24", "d": "127.0.5.0/24", "e": "127.0.6.0/24"} {
		s, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpcID, CidrBlock: aws.String(cidr)})
		if err != nil {
			return fmt.Errorf("create subnet %s: %w", cidr, err)
		}
		subnets[key] = s.Subnet.SubnetId
	}
	// Subnet b: a deny for 22 numbered before the allow. Subnet c: ingress
	// open, egress only to 443, so the replies to the client are dropped.
	if err := w.nacl(ctx, *vpcID, subnets["b"], []ec2.CreateNetworkAclEntryInput{
		{RuleNumber: aws.Int32(50), Protocol: aws.String("6"), RuleAction: ec2types.RuleActionDeny, CidrBlock: aws.String("0.0.0.0/0"), PortRange: &ec2types.PortRange{From: aws.Int32(22), To: aws.Int32(22)}},
		{RuleNumber: aws.Int32(100), Protocol: aws.String("-1"), RuleAction: ec2types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0")},
		{RuleNumber: aws.Int32(100), Egress: aws.Bool(true), Protocol: aws.String("-1"), RuleAction: ec2types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0")},
	}); err != nil {
		return err
	}
	if err := w.nacl(ctx, *vpcID, subnets["c"], []ec2.CreateNetworkAclEntryInput{
		{RuleNumber: aws.Int32(100), Protocol: aws.String("-1"), RuleAction: ec2types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0")},
		{RuleNumber: aws.Int32(100), Egress: aws.Bool(true), Protocol: aws.String("6"), RuleAction: ec2types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0"), PortRange: &ec2types.PortRange{From: aws.Int32(443), To: aws.Int32(443)}},
	}); err != nil {
		return err
	}

	sgs := map[string]*string{}
	bastion, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("lab-bastion"), Description: aws.String("lab bastions"), VpcId: vpcID})
	if err != nil {
		return fmt.Errorf("create security group bastion: %w", err)
	}
	sgs["bastion"] = bastion.GroupId
	// The endpoints' groups: the first with EC2's default egress (all), the
	// second with none; and the instances' groups that admit them.
	for _, key := range []string{"eiceep", "eiceep2"} {
		g, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("lab-" + key), Description: aws.String("lab endpoint " + key), VpcId: vpcID})
		if err != nil {
			return fmt.Errorf("create security group %s: %w", key, err)
		}
		sgs[key] = g.GroupId
	}
	if _, err := e.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: sgs["eiceep2"], IpPermissions: []ec2types.IpPermission{
		{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
		return fmt.Errorf("revoke the second endpoint's egress: %w", err)
	}
	for key, perm := range map[string]ec2types.IpPermission{
		"fromeice":  {IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: sgs["eiceep"]}}},
		"fromeice2": {IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: sgs["eiceep2"]}}},
		"srcgroup":  {IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: bastion.GroupId}}},
		"ssh":       {IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("127.0.0.0/8")}}},
		"web":       {IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
		"othernet":  {IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.99.0.0/16")}}},
		"range":     {IpProtocol: aws.String("tcp"), FromPort: aws.Int32(20), ToPort: aws.Int32(30), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
	} {
		g, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("lab-" + key), Description: aws.String("lab " + key), VpcId: vpcID})
		if err != nil {
			return fmt.Errorf("create security group %s: %w", key, err)
		}
		if _, err := e.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: []ec2types.IpPermission{perm}}); err != nil {
			return err
		}
		sgs[key] = g.GroupId
	}

	// The instance profile the SSM agent needs.
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if _, err := im.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("lab-ssm-role"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		return fmt.Errorf("create role: %w", err)
	}
	if _, err := im.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("lab-ssm-role"),
		PolicyArn: aws.String("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")}); err != nil {
		return fmt.Errorf("attach AmazonSSMManagedInstanceCore (MOTO_IAM_LOAD_MANAGED_POLICIES): %w", err)
	}
	if _, err := im.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("lab-ssm")}); err != nil {
		return err
	}
	if _, err := im.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("lab-ssm"), RoleName: aws.String("lab-ssm-role")}); err != nil {
		return err
	}

	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"amzn*"}}}})
	if err != nil || len(imgs.Images) == 0 {
		return fmt.Errorf("no Amazon Linux image in moto: %v", err)
	}
	ami := imgs.Images[0].ImageId

	eic, err := eicCommand()
	if err != nil {
		return err
	}
	var nft []string
	online, addrs, views := map[string]bool{}, map[string]string{}, map[string]*View{}
	w.root = filepath.Join(LabRoot, strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(w.root, 0o755); err != nil {
		return err
	}
	var twinAt time.Time
	for _, s := range specs {
		if s.name == "twin" && !twinAt.IsZero() {
			// The second twin launches in a later second than the first, as
			// twins launched apart do: the ambiguity lists them oldest
			// first, and the demo's transcript stays the same run to run.
			time.Sleep(time.Until(twinAt.Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
		}
		if s.name == "twin" {
			twinAt = time.Now()
		}
		in := &ec2.RunInstancesInput{ImageId: ami, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: ec2types.InstanceTypeT3Micro,
			KeyName: aws.String(s.key), SubnetId: subnets[s.subnet], PrivateIpAddress: aws.String(s.ip), SecurityGroupIds: []string{*sgs[s.sg]},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(s.name)}}}}}
		if s.fleet {
			in.TagSpecifications[0].Tags = append(in.TagSpecifications[0].Tags, ec2types.Tag{Key: aws.String("Fleet"), Value: aws.String("lab")})
		}
		if s.profile {
			in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Name: aws.String("lab-ssm")}
		}
		out, err := e.RunInstances(ctx, in)
		if err != nil {
			return fmt.Errorf("run instance %s: %w", s.name, err)
		}
		li := &Instance{Name: s.name, ID: *out.Instances[0].InstanceId, IP: s.ip}
		online[li.ID] = s.profile && !s.stopped // the agent registers when the role allows it
		addrs[li.ID] = s.ip
		if s.stopped {
			if _, err := e.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{li.ID}}); err != nil {
				return err
			}
		}
		{
			// Every instance has its files; sshd runs on those that have one.
			// Keys pushed with EC2 Instance Connect are served for 60 s, as
			// the ec2-instance-connect package does on a real instance.
			layout := &Layout{Root: filepath.Join(w.root, s.name+"-"+s.ip), User: LoginUser, StrictModes: s.badModes, NoStart: !s.sshd || len(s.badConfig) > 0}
			if s.badModes {
				layout.KeysMode = 0o666
			}
			extra := append(append([]string(nil), s.badConfig...), "AuthorizedKeysCommand "+eic+" "+li.ID+" %u", "AuthorizedKeysCommandUser nobody")
			sd, err := StartSSHD(filepath.Join(w.Dir, "sshd-"+s.ip), SSHDOptions{Addr: s.ip, Port: 22, AuthorizedKeys: []string{pubs[s.key]},
				Extra: extra, Instance: layout})
			if err != nil {
				return err
			}
			views[li.ID] = layout.View()
			if !layout.NoStart {
				w.sshds = append(w.sshds, sd)
				li.SSHD = sd
			}
		}
		// The network's rules (security groups, network ACLs) filter below
		// the host, as AWS does: netdev hooks on lo, which an instance's
		// own firewall (ip, ip6, inet tables) does not show.
		if s.dropIn {
			// Not from the instance itself: the SSM agent's own connection
			// to its sshd is local, and no security group applies to it.
			nft = append(nft, fmt.Sprintf("add rule netdev lab-aws in ip saddr != %s ip daddr %s tcp dport 22 drop", s.ip, s.ip))
		}
		if s.onlyFrom == "-" {
			nft = append(nft, fmt.Sprintf("add rule netdev lab-aws in ip saddr != %s ip daddr %s tcp dport 22 drop", s.ip, s.ip))
		} else if s.onlyFrom != "" {
			nft = append(nft, fmt.Sprintf("add rule netdev lab-aws in ip saddr != { %s, %s } ip daddr %s tcp dport 22 drop", s.ip, s.onlyFrom, s.ip))
		}
		if s.dropOut {
			nft = append(nft, fmt.Sprintf("add rule netdev lab-aws out ip saddr %s ip daddr != %s tcp sport 22 drop", s.ip, s.ip))
		}
		if s.hostFirewall {
			// The instance's own firewall: the agent's connection from the
			// instance itself passes (loopback is accepted, as usual).
			nft = append(nft, "add table inet hostfw",
				"add chain inet hostfw input { type filter hook input priority 0; policy accept; }",
				fmt.Sprintf("add rule inet hostfw input ip saddr != %s ip daddr %s tcp dport 22 drop", s.ip, s.ip))
		}
		if s.name == "twin" {
			w.Twins = append(w.Twins, li.ID)
		} else {
			w.Instances[s.name] = li
		}
	}
	// One instance in another region, for the cross-region lookup and
	// --region all: reachable directly, no agent.
	if err := w.buildFarRegion(ctx, pubs["lab-ed25519"], eic); err != nil {
		return err
	}
	// The diagnosis world (issue 26) is built when a test first asks for
	// it (Diagnosis), on what this build made.
	w.diagBase = diagBase{vpc: *vpcID, subnets: map[string]string{}, sgs: map[string]string{}, ami: *ami, pub: pubs["lab-ed25519"], eic: eic}
	for k, v := range subnets {
		w.diagBase.subnets[k] = *v
	}
	for k, v := range sgs {
		w.diagBase.sgs[k] = *v
	}
	var hosts []string
	for _, sp := range specs {
		hosts = append(hosts, sp.ip)
	}
	w.eice, err = startEICE(w.Dir, w.MotoURL, "lab-secret-not-a-real-one", w.weather, []LabEndpoint{
		{ID: "eice-0lab0000000000001", VPCID: *vpcID, SubnetID: *subnets["d"], SecurityGroup: *sgs["eiceep"], Addr: "127.0.5.2", Hosts: hosts},
		{ID: "eice-0lab0000000000002", VPCID: *vpcID, SubnetID: *subnets["e"], SecurityGroup: *sgs["eiceep2"], Addr: "127.0.6.2", Hosts: hosts},
	}, w.over.ec2)
	if err != nil {
		return fmt.Errorf("start the EC2 Instance Connect Endpoint stand-in: %w", err)
	}
	w.views = views
	if w.ssm, err = StartSSM(SSMOptions{Port: SSMPort, Online: online, Addrs: addrs, Views: views, Weather: w.weather}); err != nil {
		return err
	}
	if w.ssmFront, err = w.over.startSSMFront(); err != nil {
		return err
	}
	if w.serial, err = startSerial(w.ssm, views); err != nil {
		return fmt.Errorf("start the serial console stand-in: %w", err)
	}
	return Nft("add table netdev lab-aws\n" +
		"add chain netdev lab-aws in { type filter hook ingress device lo priority 0; policy accept; }\n" +
		"add chain netdev lab-aws out { type filter hook egress device lo priority 0; policy accept; }\n" +
		strings.Join(nft, "\n") + "\n")
}

// FarRegion is the lab's second region; FarInstance its one instance.
const (
	FarRegion   = "eu-west-1"
	FarInstance = "far-away"
)

func (w *World) buildFarRegion(ctx context.Context, pub, eic string) error {
	cfg := w.awsConfig()
	cfg.Region = FarRegion
	e := ec2.NewFromConfig(cfg)
	if _, err := e.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("lab-ed25519"), PublicKeyMaterial: []byte(pub)}); err != nil {
		return fmt.Errorf("%s: import key pair: %w", FarRegion, err)
	}
	vpc, err := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("127.0.0.0/16")})
	if err != nil {
		return fmt.Errorf("%s: create vpc: %w", FarRegion, err)
	}
	sub, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("127.0.4.0/24")})
	if err != nil {
		return err
	}
	g, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("lab-ssh"), Description: aws.String("lab ssh"), VpcId: vpc.Vpc.VpcId})
	if err != nil {
		return err
	}
	if _, err := e.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: []ec2types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("127.0.0.0/8")}}}}}); err != nil {
		return err
	}
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"amzn*"}}}})
	if err != nil || len(imgs.Images) == 0 {
		return fmt.Errorf("no Amazon Linux image in moto's %s: %v", FarRegion, err)
	}
	const ip = "127.0.4.10"
	out, err := e.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		InstanceType: ec2types.InstanceTypeT3Micro, KeyName: aws.String("lab-ed25519"), SubnetId: sub.Subnet.SubnetId,
		PrivateIpAddress: aws.String(ip), SecurityGroupIds: []string{*g.GroupId},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
			{Key: aws.String("Name"), Value: aws.String(FarInstance)}, {Key: aws.String("Env"), Value: aws.String("far")}}}}})
	if err != nil {
		return fmt.Errorf("%s: run instance: %w", FarRegion, err)
	}
	li := &Instance{Name: FarInstance, ID: *out.Instances[0].InstanceId, IP: ip, Region: FarRegion}
	layout := &Layout{Root: filepath.Join(w.root, FarInstance+"-"+ip), User: LoginUser}
	sd, err := StartSSHD(filepath.Join(w.Dir, "sshd-"+ip), SSHDOptions{Addr: ip, Port: 22, AuthorizedKeys: []string{pub},
		Extra: []string{"AuthorizedKeysCommand " + eic + " " + li.ID + " %u", "AuthorizedKeysCommandUser nobody"}, Instance: layout})
	if err != nil {
		return err
	}
	w.sshds = append(w.sshds, sd)
	li.SSHD = sd
	w.Instances[FarInstance] = li
	return nil
}

// nacl gives subnet a new network ACL with entries (each ACL also ends in
// EC2's "*" deny rules).
func (w *World) nacl(ctx context.Context, vpcID string, subnet *string, entries []ec2.CreateNetworkAclEntryInput) error {
	acl, err := w.ec2.CreateNetworkAcl(ctx, &ec2.CreateNetworkAclInput{VpcId: aws.String(vpcID)})
	if err != nil {
		return err
	}
	for _, en := range entries {
		en.NetworkAclId = acl.NetworkAcl.NetworkAclId
		if en.Egress == nil {
			en.Egress = aws.Bool(false)
		}
		if _, err := w.ec2.CreateNetworkAclEntry(ctx, &en); err != nil {
			return fmt.Errorf("nacl entry: %w", err)
		}
	}
	cur, err := w.ec2.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{*subnet}}}})
	if err != nil || len(cur.NetworkAcls) == 0 {
		return fmt.Errorf("find the subnet's network acl: %v", err)
	}
	for _, as := range cur.NetworkAcls[0].Associations {
		if aws.ToString(as.SubnetId) == *subnet {
			_, err := w.ec2.ReplaceNetworkAclAssociation(ctx, &ec2.ReplaceNetworkAclAssociationInput{AssociationId: as.NetworkAclAssociationId, NetworkAclId: acl.NetworkAcl.NetworkAclId})
			return err
		}
	}
	return fmt.Errorf("subnet %s has no network acl association", *subnet)
}

// StartReferenceSSM starts a second SSM stand-in for the world's
// instances on a free port, with the agent's races off (SSMOptions.Reference),
// for holding the stand-in to the stock plugin. The caller stops it.
func (w *World) StartReferenceSSM() (*SSMStandIn, error) {
	port, err := FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	w.ssm.mu.Lock()
	online := map[string]bool{}
	for k, v := range w.ssm.online {
		online[k] = v
	}
	w.ssm.mu.Unlock()
	return StartSSM(SSMOptions{Port: port, Online: online, Addrs: w.ssm.addrs, Views: w.views, Reference: true})
}

// StartEncryptedSSM starts a second SSM stand-in for the world's instances
// on a free port whose sessions must be encrypted with a KMS key made in
// moto (the Session Manager preference organisations enforce); its agent
// decrypts the client's data key with moto's KMS. It returns the stand-in
// and the key's ARN; the caller stops it.
func (w *World) StartEncryptedSSM(ctx context.Context) (*SSMStandIn, string, error) {
	k := kms.NewFromConfig(w.awsConfig())
	key, err := k.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("ec2ssh lab: Session Manager encryption")})
	if err != nil {
		return nil, "", fmt.Errorf("create a KMS key in moto: %w", err)
	}
	port, err := FreePort("127.0.0.1")
	if err != nil {
		return nil, "", err
	}
	w.ssm.mu.Lock()
	online := map[string]bool{}
	for id, on := range w.ssm.online {
		online[id] = on
	}
	w.ssm.mu.Unlock()
	arn := aws.ToString(key.KeyMetadata.Arn)
	s, err := StartSSM(SSMOptions{Port: port, Online: online, Addrs: w.ssm.addrs, Views: w.views, KMSKeyID: arn, KMS: k})
	return s, arn, err
}

func (w *World) awsConfig() aws.Config {
	return aws.Config{Region: Region, BaseEndpoint: aws.String(w.MotoURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIALABLABLABLABLAB0", "lab-secret-not-a-real-one", "")}
}

// SerialKnownHosts is the serial console stand-in's known_hosts line.
func (w *World) SerialKnownHosts() string { return w.serial.KnownHostsLine() }

// EICEEndpoints are the lab's endpoints and the DNS name they share.
func (w *World) EICEEndpoints() ([]LabEndpoint, string) { return w.eice.endpoints, w.eice.DNSName() }

// EICETunnels is how many tunnels the endpoint stand-in opened, and the
// reasons of those it refused.
func (w *World) EICETunnels() (int, []string) { return w.eice.Tunnels() }

// SSM is the world's SSM stand-in.
func (w *World) SSM() *SSMStandIn { return w.ssm }

// ensureUser creates a local login user for the lab's sshd when missing.
func ensureUser(name string) error {
	if exec.Command("id", name).Run() == nil {
		// Only when needed: usermod rewrites /etc/passwd by renaming a new
		// file over it, which detaches every bind mount on it, such as the
		// diagnosis world's per-instance accounts in another lab's look
		// inside (mounts on a replaced file go, in every namespace).
		if out, err := exec.Command("getent", "shadow", name).Output(); err == nil {
			if f := strings.Split(string(out), ":"); len(f) > 1 && f[1] == "*" {
				return nil
			}
		}
		exec.Command("usermod", "-p", "*", name).Run()
		return nil
	}
	// "*" as the password: no password login, but not locked ("!"), which
	// sshd without PAM would refuse even for key logins.
	if out, err := exec.Command("useradd", "-m", "-s", "/bin/bash", "-p", "*", name).CombinedOutput(); err != nil {
		return fmt.Errorf("useradd %s: %v: %s", name, err, out)
	}
	return nil
}

// eicCommand writes the AuthorizedKeysCommand that asks the stand-in for
// pushed keys. sshd runs it only from a root-owned path that no one else
// can write, so it lives under /run.
func eicCommand() (string, error) {
	dir := "/run/ec2ssh-lab"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "eic-keys")
	script := fmt.Sprintf(`#!/bin/bash
# ec2ssh lab: the keys EC2 Instance Connect pushed for instance $1, user $2.
exec 3<>/dev/tcp/127.0.0.1/%d || exit 0
printf 'GET /lab/eic?instance=%%s&user=%%s HTTP/1.0\r\nHost: lab\r\n\r\n' "$1" "$2" >&3
sed '1,/^\r$/d' <&3
`, SSMPort)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}
