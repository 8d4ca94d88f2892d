package preflight

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// fakeEC2 answers the reads Gather makes from canned data: an instance in
// a VPC whose only SSH rule admits members of sg-bastion.
type fakeEC2 struct {
	denied   map[string]bool // operation -> answer UnauthorizedOperation
	ifcs     []ec2types.NetworkInterface
	impaired bool   // the instance's status check fails
	console  string // its console output
	image    *ec2types.Image
}

func (f *fakeEC2) deny(op string) error {
	if f.denied[op] {
		return &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."}
	}
	return nil
}

func (f *fakeEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{{
		InstanceId: aws.String("i-0abc"), State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning},
		PrivateIpAddress: aws.String("10.0.1.5"), SubnetId: aws.String("subnet-1"), VpcId: aws.String("vpc-1"), KeyName: aws.String("dev"),
		Tags:               []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("web-1")}},
		NetworkInterfaces:  []ec2types.InstanceNetworkInterface{{NetworkInterfaceId: aws.String("eni-1"), Groups: []ec2types.GroupIdentifier{{GroupId: aws.String("sg-1")}}}},
		IamInstanceProfile: &ec2types.IamInstanceProfile{Arn: aws.String("arn:aws:iam::1:instance-profile/ssm")},
	}}}}}, nil
}
func (f *fakeEC2) DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	if f.image != nil {
		return &ec2.DescribeImagesOutput{Images: []ec2types.Image{*f.image}}, nil
	}
	return &ec2.DescribeImagesOutput{}, nil
}
func (f *fakeEC2) DescribeInstanceStatus(context.Context, *ec2.DescribeInstanceStatusInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error) {
	ok := &ec2types.InstanceStatusSummary{Status: ec2types.SummaryStatusOk}
	inst := ok
	if f.impaired {
		inst = &ec2types.InstanceStatusSummary{Status: ec2types.SummaryStatusImpaired}
	}
	return &ec2.DescribeInstanceStatusOutput{InstanceStatuses: []ec2types.InstanceStatus{{SystemStatus: ok, InstanceStatus: inst}}}, nil
}
func (f *fakeEC2) DescribeInternetGateways(context.Context, *ec2.DescribeInternetGatewaysInput, ...func(*ec2.Options)) (*ec2.DescribeInternetGatewaysOutput, error) {
	return &ec2.DescribeInternetGatewaysOutput{}, nil
}
func (f *fakeEC2) DescribeKeyPairs(context.Context, *ec2.DescribeKeyPairsInput, ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error) {
	if err := f.deny("DescribeKeyPairs"); err != nil {
		return nil, err
	}
	return &ec2.DescribeKeyPairsOutput{KeyPairs: []ec2types.KeyPairInfo{{KeyName: aws.String("dev"), KeyFingerprint: aws.String("SHA256:abc"), KeyType: ec2types.KeyTypeEd25519}}}, nil
}
func (f *fakeEC2) DescribeNetworkAcls(context.Context, *ec2.DescribeNetworkAclsInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error) {
	allow := func(egress bool) ec2types.NetworkAclEntry {
		return ec2types.NetworkAclEntry{RuleNumber: aws.Int32(100), Egress: aws.Bool(egress), Protocol: aws.String("-1"), RuleAction: ec2types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0")}
	}
	return &ec2.DescribeNetworkAclsOutput{NetworkAcls: []ec2types.NetworkAcl{{NetworkAclId: aws.String("acl-1"), Entries: []ec2types.NetworkAclEntry{allow(false), allow(true)}}}}, nil
}
func (f *fakeEC2) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	if err := f.deny("DescribeNetworkInterfaces"); err != nil {
		return nil, err
	}
	return &ec2.DescribeNetworkInterfacesOutput{NetworkInterfaces: f.ifcs}, nil
}
func (f *fakeEC2) DescribeRouteTables(context.Context, *ec2.DescribeRouteTablesInput, ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	return &ec2.DescribeRouteTablesOutput{RouteTables: []ec2types.RouteTable{{RouteTableId: aws.String("rtb-1"),
		Routes: []ec2types.Route{{DestinationCidrBlock: aws.String("10.0.0.0/16"), GatewayId: aws.String("local"), State: ec2types.RouteStateActive}}}}}, nil
}
func (f *fakeEC2) DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: []ec2types.SecurityGroup{{GroupId: aws.String("sg-1"), GroupName: aws.String("ssh"),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String("sg-bastion")}}}}}}}, nil
}
func (f *fakeEC2) DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return &ec2.DescribeSubnetsOutput{Subnets: []ec2types.Subnet{{SubnetId: aws.String("subnet-1"), CidrBlock: aws.String("10.0.1.0/24"), VpcId: aws.String("vpc-1")}}}, nil
}
func (f *fakeEC2) DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return &ec2.DescribeVpcsOutput{Vpcs: []ec2types.Vpc{{VpcId: aws.String("vpc-1"), CidrBlock: aws.String("10.0.0.0/16")}}}, nil
}
func (f *fakeEC2) DescribeInstanceConnectEndpoints(context.Context, *ec2.DescribeInstanceConnectEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceConnectEndpointsOutput, error) {
	return &ec2.DescribeInstanceConnectEndpointsOutput{}, nil
}
func (f *fakeEC2) GetConsoleOutput(_ context.Context, in *ec2.GetConsoleOutputInput, _ ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error) {
	if !aws.ToBool(in.Latest) {
		return &ec2.GetConsoleOutputOutput{}, nil // the boot's start only, not what the tail needs
	}
	return &ec2.GetConsoleOutputOutput{Output: aws.String(base64.StdEncoding.EncodeToString([]byte(f.console)))}, nil
}
func (f *fakeEC2) DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	return &ec2.DescribeInstanceTypesOutput{}, nil
}
func (f *fakeEC2) GetSerialConsoleAccessStatus(context.Context, *ec2.GetSerialConsoleAccessStatusInput, ...func(*ec2.Options)) (*ec2.GetSerialConsoleAccessStatusOutput, error) {
	return &ec2.GetSerialConsoleAccessStatusOutput{}, nil
}
func (f *fakeEC2) DescribeRegions(context.Context, *ec2.DescribeRegionsInput, ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error) {
	return &ec2.DescribeRegionsOutput{Regions: []ec2types.Region{{RegionName: aws.String("eu-west-1")}, {RegionName: aws.String("us-east-1")}}}, nil
}
func (f *fakeEC2) GetManagedPrefixListEntries(context.Context, *ec2.GetManagedPrefixListEntriesInput, ...func(*ec2.Options)) (*ec2.GetManagedPrefixListEntriesOutput, error) {
	return &ec2.GetManagedPrefixListEntriesOutput{}, nil
}

func (f *fakeEC2) DescribeNatGateways(context.Context, *ec2.DescribeNatGatewaysInput, ...func(*ec2.Options)) (*ec2.DescribeNatGatewaysOutput, error) {
	return &ec2.DescribeNatGatewaysOutput{}, nil
}
func (f *fakeEC2) DescribeVpcEndpoints(context.Context, *ec2.DescribeVpcEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcEndpointsOutput, error) {
	return &ec2.DescribeVpcEndpointsOutput{}, nil
}
func (f *fakeEC2) DescribeVpcAttribute(_ context.Context, in *ec2.DescribeVpcAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcAttributeOutput, error) {
	t := &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}
	return &ec2.DescribeVpcAttributeOutput{EnableDnsSupport: t, EnableDnsHostnames: t}, nil
}

type fakeIAM struct{}

func (fakeIAM) GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	return &iam.GetRoleOutput{Role: &iamtypes.Role{RoleName: aws.String("ssm-role")}}, nil
}
func (fakeIAM) GetPolicy(_ context.Context, in *iam.GetPolicyInput, _ ...func(*iam.Options)) (*iam.GetPolicyOutput, error) {
	return &iam.GetPolicyOutput{Policy: &iamtypes.Policy{Arn: in.PolicyArn, DefaultVersionId: aws.String("v7")}}, nil
}
func (fakeIAM) GetPolicyVersion(_ context.Context, in *iam.GetPolicyVersionInput, _ ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error) {
	if aws.ToString(in.PolicyArn) != SSMCorePolicy || aws.ToString(in.VersionId) != "v7" {
		return nil, &smithy.GenericAPIError{Code: "NoSuchEntity", Message: "no such policy version"}
	}
	return &iam.GetPolicyVersionOutput{PolicyVersion: &iamtypes.PolicyVersion{Document: aws.String(url.QueryEscape(knownPolicies[SSMCorePolicy]))}}, nil
}

func (fakeIAM) GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	return &iam.GetInstanceProfileOutput{InstanceProfile: &iamtypes.InstanceProfile{Roles: []iamtypes.Role{{RoleName: aws.String("ssm-role")}}}}, nil
}
func (fakeIAM) ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error) {
	return &iam.ListAttachedRolePoliciesOutput{AttachedPolicies: []iamtypes.AttachedPolicy{{PolicyArn: aws.String(SSMCorePolicy)}}}, nil
}
func (fakeIAM) ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	return &iam.ListRolePoliciesOutput{}, nil
}
func (fakeIAM) GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	return nil, errors.New("none")
}

type fakeSTS struct{}

func (fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Account: aws.String("123456789012"), Arn: aws.String("arn:aws:iam::123456789012:user/dev")}, nil
}

type fakeSSMInfo struct{}

func (fakeSSMInfo) DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	return &ssm.DescribeInstanceInformationOutput{InstanceInformationList: []ssmtypes.InstanceInformation{{PingStatus: ssmtypes.PingStatusOnline, AgentVersion: aws.String("3.3")}}}, nil
}

// fakeInside is the instance's answer to InsideScript.
type fakeInside struct {
	out    string
	args   []string
	script string
}

func (f *fakeInside) How() string { return "a fake" }
func (f *fakeInside) RunScript(ctx context.Context, id, script string, args ...string) ([]byte, error) {
	f.script, f.args = script, args
	return []byte(f.out), nil
}

func fakeAWS(e *fakeEC2) *AWS {
	return &AWS{Config: aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIA", "secret", "")},
		EC2: e, IAM: fakeIAM{}, STS: fakeSTS{}, SSM: fakeSSMInfo{}}
}

// TestGatherWithFakeAWS runs the whole gathering against fakes of every
// service: the source's membership in the group the rule names is looked
// up, the instance is looked into, a denied call becomes unknown.
func TestGatherWithFakeAWS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := &fakeEC2{denied: map[string]bool{"DescribeKeyPairs": true},
		ifcs: []ec2types.NetworkInterface{{NetworkInterfaceId: aws.String("eni-bastion"), VpcId: aws.String("vpc-1"),
			Groups: []ec2types.GroupIdentifier{{GroupId: aws.String("sg-bastion")}}}}}
	a := fakeAWS(e)
	in, err := a.Resolve(ctx, "i-0abc")
	if err != nil || in == nil || in.Name != "web-1" {
		t.Fatalf("Resolve = %+v, %v", in, err)
	}
	inside := &fakeInside{out: "@@ec2ssh:listen\nLISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:((\"sshd\",pid=1,fd=3))\n@@ec2ssh:user\nec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n@@ec2ssh:end\n"}
	f := a.Gather(ctx, Request{Instance: in, Address: in.PrivateIP, Port: 22, NoProbe: true, SourceIP: "10.0.2.7", User: "ec2-user", Inside: inside})
	rep := NewReport(f, in.PrivateIP)
	want := map[CheckID]Status{CheckCredentials: Pass, CheckInstanceState: Pass, CheckSecurityGroup: Pass, CheckNetworkACL: Pass,
		CheckKeyPair: Unknown, CheckSSMAgent: Pass, CheckInstanceOS: Pass, CheckSSHD: Pass}
	for id, st := range want {
		if c, _ := rep.Result(id); c.Status != st {
			t.Errorf("%s = %s (%s), want %s", id, c.Status, c.Summary, st)
		}
	}
	if c, _ := rep.Result(CheckSecurityGroup); !strings.Contains(c.Summary, "eni-bastion") {
		t.Errorf("security-group: %q should name the interface that makes the source a member", c.Summary)
	}
	if c, _ := rep.Result(CheckKeyPair); !strings.Contains(c.Fix, "ec2:DescribeKeyPairs") {
		t.Errorf("key-pair: the fix %q should name the denied permission", c.Fix)
	}
	if inside.script != InsideScript || strings.Join(inside.args, " ") != "ec2-user 22" {
		t.Errorf("the look inside ran %q with %q", inside.script[:20], inside.args)
	}
	// Not a member: the interface holding the source is in another group.
	e.ifcs[0].Groups = []ec2types.GroupIdentifier{{GroupId: aws.String("sg-web")}}
	f = a.Gather(ctx, Request{Instance: in, Address: in.PrivateIP, Port: 22, NoProbe: true, SourceIP: "10.0.2.7"})
	if c, _ := NewReport(f, in.PrivateIP).Result(CheckSecurityGroup); c.Status != Fail {
		t.Errorf("security-group for a non-member = %s (%s), want fail", c.Status, c.Summary)
	}
	// The membership lookup denied: unknown, naming the permission.
	e.denied["DescribeNetworkInterfaces"] = true
	f = a.Gather(ctx, Request{Instance: in, Address: in.PrivateIP, Port: 22, NoProbe: true, SourceIP: "10.0.2.7"})
	if c, _ := NewReport(f, in.PrivateIP).Result(CheckSecurityGroup); c.Status != Unknown || !strings.Contains(c.Fix, "ec2:DescribeNetworkInterfaces") {
		t.Errorf("security-group with the lookup denied = %s (%s / %s)", c.Status, c.Summary, c.Fix)
	}
}

// TestGatherUserFromImage: with no user given, the image is looked up
// beside the other parts (not before them) and its login user is the one
// the look inside asks about and the login-user check names.
func TestGatherUserFromImage(t *testing.T) {
	ctx := context.Background()
	e := &fakeEC2{image: &ec2types.Image{ImageId: aws.String("ami-1"), Name: aws.String("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240101"),
		OwnerId: aws.String("099720109477")}}
	a := fakeAWS(e)
	in, _ := a.Resolve(ctx, "i-0abc")
	in.ImageID = "ami-1"
	inside := &fakeInside{out: "@@ec2ssh:end\n"}
	f := a.Gather(ctx, Request{Instance: in, Address: in.PrivateIP, Port: 22, NoProbe: true, SourceIP: "10.0.2.7",
		User: "me", UserFrom: UserFromLocal, UserFromImage: true, Inside: inside})
	if f.User != "ubuntu" || f.UserFrom != UserFromAMI {
		t.Errorf("user %q from %q, want ubuntu from the AMI", f.User, f.UserFrom)
	}
	if len(inside.args) == 0 || inside.args[0] != "ubuntu" {
		t.Errorf("the look inside asked about %q, want ubuntu", inside.args)
	}
	// The image unknown: the user given stays, and says where it came from.
	e.image = nil
	f = a.Gather(ctx, Request{Instance: in, Address: in.PrivateIP, Port: 22, NoProbe: true, SourceIP: "10.0.2.7",
		User: "me", UserFrom: UserFromLocal, UserFromImage: true, Inside: inside})
	if f.User != "me" || f.UserFrom != UserFromLocal || inside.args[0] != "me" {
		t.Errorf("no image: user %q from %q, inside %q; want me from the local user", f.User, f.UserFrom, inside.args)
	}
}

// TestConsoleTailWhenStatusChecksFail: an impaired instance's diagnosis
// ends with the latest console output (escapes made safe).
func TestConsoleTailWhenStatusChecksFail(t *testing.T) {
	ctx := context.Background()
	e := &fakeEC2{impaired: true, console: "booting\n[FAILED] Failed to mount /data.\nYou are in emergency mode.\x1b[2J\n"}
	a := fakeAWS(e)
	in, _ := a.Resolve(ctx, "i-0abc")
	f := a.Gather(ctx, Request{Instance: in, Address: in.PrivateIP, Port: 22, NoProbe: true, SourceIP: "10.0.2.7"})
	var b strings.Builder
	NewReport(f, in.PrivateIP).WriteTable(&b, false)
	if !strings.Contains(b.String(), "| [FAILED] Failed to mount /data.") || !strings.Contains(b.String(), `emergency mode.\033[2J`) {
		t.Errorf("the diagnosis lacks the console's tail:\n%s", b.String())
	}
	e.impaired = false
	f = a.Gather(ctx, Request{Instance: in, Address: in.PrivateIP, Port: 22, NoProbe: true, SourceIP: "10.0.2.7"})
	if len(f.ConsoleTail) != 0 {
		t.Errorf("a healthy instance's console was read: %q", f.ConsoleTail)
	}
}

// TestSGRuleForeignGroups: a rule naming another account's group, or one
// across a peering, cannot have its members looked up here.
func TestSGRuleForeignGroups(t *testing.T) {
	p := ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), UserIdGroupPairs: []ec2types.UserIdGroupPair{
		{GroupId: aws.String("sg-mine"), UserId: aws.String("111111111111")},
		{GroupId: aws.String("sg-theirs"), UserId: aws.String("222222222222")},
		{GroupId: aws.String("sg-peered"), UserId: aws.String("111111111111"), VpcPeeringConnectionId: aws.String("pcx-1")},
		{GroupId: aws.String("sg-plain")},
	}}
	r := sgRule(p, "111111111111")
	if strings.Join(r.Groups, ",") != "sg-mine,sg-plain" || strings.Join(r.ForeignGroups, ",") != "sg-theirs,sg-peered" {
		t.Errorf("sgRule = groups %v, foreign %v", r.Groups, r.ForeignGroups)
	}
}
