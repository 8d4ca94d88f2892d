package preflight

import (
	"context"
	"net/netip"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ssh/ec2ssh/failure"
)

// DestKind is how a destination names an instance (SPEC.md, "Destinations").
type DestKind int

const (
	DestName    DestKind = iota // a Name tag (or a host name that is not EC2's)
	DestID                      // i-0123456789abcdef0
	DestAddress                 // an IPv4 or IPv6 literal
	DestEC2DNS                  // ec2-….amazonaws.com, ip-….internal
)

var instanceID = regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)

// ClassifyDest says how dest names an instance.
func ClassifyDest(dest string) DestKind {
	switch {
	case instanceID.MatchString(dest):
		return DestID
	case isAddr(dest):
		return DestAddress
	case strings.HasSuffix(dest, ".amazonaws.com") && strings.HasPrefix(dest, "ec2-"),
		strings.HasPrefix(dest, "ip-") && (strings.HasSuffix(dest, ".internal") || strings.HasSuffix(dest, ".compute.internal")):
		return DestEC2DNS
	}
	return DestName
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// Resolve finds the instance dest names in a's region alone (Lookup, then
// Decide as --region would). It returns (nil, nil) when no instance
// matches; a failure.Config error listing the candidates when a Name tag
// names several live instances; the call's failure when asking failed.
func (a *AWS) Resolve(ctx context.Context, dest string) (*Instance, error) {
	in, _, _, err := Decide(dest, a.Lookup(ctx, dest), nil, true)
	return in, err
}

// describeInstances reads every page of DescribeInstances. Each page is
// one call with its own budget (the middleware's, by ctx's role): a long
// listing of slow pages is not bounded as a whole (issue 24).
func (a *AWS) describeInstances(ctx context.Context, ids []string, filters []ec2types.Filter) ([]*Instance, *APIError) {
	ctx, cancel := callCtx(ctx)
	defer cancel()
	p := ec2.NewDescribeInstancesPaginator(a.EC2, &ec2.DescribeInstancesInput{InstanceIds: ids, Filters: filters})
	told := pagesOf(ctx)
	var out []*Instance
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError("ec2:DescribeInstances", "ec2:DescribeInstances", err)
		}
		n := 0
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				out = append(out, convertInstance(in))
				n++
			}
		}
		if told != nil {
			told(a.Region(), n)
		}
	}
	return out, nil
}

func convertInstance(in ec2types.Instance) *Instance {
	i := &Instance{
		ID: aws.ToString(in.InstanceId), PublicIP: aws.ToString(in.PublicIpAddress), PrivateIP: aws.ToString(in.PrivateIpAddress),
		PublicDNS: aws.ToString(in.PublicDnsName), PrivateDNS: aws.ToString(in.PrivateDnsName), SubnetID: aws.ToString(in.SubnetId),
		VPCID: aws.ToString(in.VpcId), KeyName: aws.ToString(in.KeyName), ImageID: aws.ToString(in.ImageId),
		Platform: aws.ToString(in.PlatformDetails), LaunchTime: aws.ToTime(in.LaunchTime), Type: string(in.InstanceType),
	}
	if in.State != nil {
		i.State = State(in.State.Name)
	}
	if in.StateReason != nil {
		i.StateReason = aws.ToString(in.StateReason.Message)
	}
	if in.IamInstanceProfile != nil {
		i.InstanceProfile = aws.ToString(in.IamInstanceProfile.Arn)
	}
	for _, t := range in.Tags {
		if i.Tags == nil {
			i.Tags = map[string]string{}
		}
		i.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		if aws.ToString(t.Key) == "Name" {
			i.Name = aws.ToString(t.Value)
		}
	}
	for _, ni := range in.NetworkInterfaces {
		ifc := Interface{ID: aws.ToString(ni.NetworkInterfaceId), SubnetID: aws.ToString(ni.SubnetId)}
		for _, g := range ni.Groups {
			ifc.SecurityGroups = append(ifc.SecurityGroups, aws.ToString(g.GroupId))
		}
		for _, a := range ni.Ipv6Addresses {
			i.IPv6 = append(i.IPv6, aws.ToString(a.Ipv6Address))
		}
		interfaceAddresses(&ifc, ni)
		i.Interfaces = append(i.Interfaces, ifc)
	}
	if in.MetadataOptions != nil {
		i.MetadataEndpoint = string(in.MetadataOptions.HttpEndpoint)
	}
	if len(i.Interfaces) == 0 && len(in.SecurityGroups) > 0 {
		ifc := Interface{ID: "primary", SubnetID: i.SubnetID}
		for _, g := range in.SecurityGroups {
			ifc.SecurityGroups = append(ifc.SecurityGroups, aws.ToString(g.GroupId))
		}
		i.Interfaces = append(i.Interfaces, ifc)
	}
	return i
}

// Address picks the address to dial: the public IPv4 when there is one,
// else the private one; mode "public" or "private" forces a choice.
func (i *Instance) Address(mode string) (string, error) {
	switch mode {
	case "public":
		if i.PublicIP == "" {
			return "", &failure.Error{Kind: failure.Config, Msg: i.ID + " has no public address", Hint: "use --address=private from inside the VPC, or --fallback=ssm"}
		}
		return i.PublicIP, nil
	case "private":
		return i.PrivateIP, nil
	}
	if i.PublicIP != "" {
		return i.PublicIP, nil
	}
	if i.PrivateIP == "" && len(i.IPv6) > 0 {
		return i.IPv6[0], nil
	}
	return i.PrivateIP, nil
}

// DefaultUser returns the login user of an AMI from its name and
// description, or "" when it is not recognised (IdentifyImage).
func DefaultUser(imageName, description string) string {
	fam, _ := IdentifyImage(Image{Name: imageName, Description: description})
	return fam.User
}

// ImageUser looks up the instance's AMI and returns its default user, or
// "" when the image is unknown or unrecognised.
func (a *AWS) ImageUser(ctx context.Context, in *Instance) string {
	if in.ImageID == "" {
		return ""
	}
	ctx, cancel := callCtx(ctx)
	defer cancel()
	out, err := a.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{in.ImageID}})
	if err != nil || len(out.Images) == 0 {
		return ""
	}
	im := out.Images[0]
	in.ImageName = aws.ToString(im.Name)
	fam, _ := IdentifyImage(Image{Name: in.ImageName, Description: aws.ToString(im.Description), Owner: aws.ToString(im.OwnerId), Platform: string(im.Platform)})
	return fam.User
}
