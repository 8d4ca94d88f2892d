package preflight

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/ec2ssh/ec2ssh/failure"
)

// CallTimeout bounds each AWS call: a diagnosis that waits longer than a
// TCP timeout helps nobody.
const CallTimeout = 8 * time.Second

// AWS holds the service clients, built from the SDK's usual chain
// (environment, shared config and credentials files, SSO, assume-role,
// IMDS) plus --profile and --region, and AWS_ENDPOINT_URL_* overrides.
// Each client is the small interface of the calls made here, so tests can
// stand in for a service.
type AWS struct {
	Config  aws.Config
	Profile string
	EC2     EC2API
	IAM     IAMAPI
	STS     STSAPI
	SSM     SSMInfoAPI
}

// EC2API is the part of EC2 ec2ssh reads. Nothing here changes anything.
type EC2API interface {
	ec2.DescribeInstancesAPIClient
	DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
	DescribeInstanceStatus(context.Context, *ec2.DescribeInstanceStatusInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
	DescribeInternetGateways(context.Context, *ec2.DescribeInternetGatewaysInput, ...func(*ec2.Options)) (*ec2.DescribeInternetGatewaysOutput, error)
	DescribeKeyPairs(context.Context, *ec2.DescribeKeyPairsInput, ...func(*ec2.Options)) (*ec2.DescribeKeyPairsOutput, error)
	DescribeNetworkAcls(context.Context, *ec2.DescribeNetworkAclsInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error)
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribeRouteTables(context.Context, *ec2.DescribeRouteTablesInput, ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
	DescribeRegions(context.Context, *ec2.DescribeRegionsInput, ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error)
	DescribeInstanceConnectEndpoints(context.Context, *ec2.DescribeInstanceConnectEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceConnectEndpointsOutput, error)
	GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	GetSerialConsoleAccessStatus(context.Context, *ec2.GetSerialConsoleAccessStatusInput, ...func(*ec2.Options)) (*ec2.GetSerialConsoleAccessStatusOutput, error)
	GetManagedPrefixListEntries(context.Context, *ec2.GetManagedPrefixListEntriesInput, ...func(*ec2.Options)) (*ec2.GetManagedPrefixListEntriesOutput, error)
	DescribeNatGateways(context.Context, *ec2.DescribeNatGatewaysInput, ...func(*ec2.Options)) (*ec2.DescribeNatGatewaysOutput, error)
	DescribeVpcEndpoints(context.Context, *ec2.DescribeVpcEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcEndpointsOutput, error)
	DescribeVpcAttribute(context.Context, *ec2.DescribeVpcAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeVpcAttributeOutput, error)
}

// IAMAPI is the part of IAM ec2ssh reads: the instance profile's role and
// its policies.
type IAMAPI interface {
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	GetPolicy(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
}

// STSAPI is who the caller is.
type STSAPI interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// SSMInfoAPI is whether an instance's agent is online.
type SSMInfoAPI interface {
	DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
}

// Configured reports whether AWS credentials are set up here without
// asking any service: environment variables, a profile, or the shared
// files. When false, ec2ssh makes no AWS call for a destination it can
// reach as plain ssh (SPEC.md: "Not an instance (or no AWS credentials)").
func Configured(profile string) bool {
	if profile != "" {
		return true
	}
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	home, _ := os.UserHomeDir()
	for _, f := range []string{os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), os.Getenv("AWS_CONFIG_FILE"),
		filepath.Join(home, ".aws", "credentials"), filepath.Join(home, ".aws", "config")} {
		if f == "" {
			continue
		}
		if st, err := os.Stat(f); err == nil && st.Size() > 0 {
			return true
		}
	}
	return false
}

// RegionHint is the region --region or the environment names (as the
// SDK reads it), or "" when only the shared configuration can say.
func RegionHint(flag string) string {
	if flag != "" {
		return flag
	}
	for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if r := os.Getenv(v); r != "" {
			return r
		}
	}
	return ""
}

// LoadAWS builds the clients. It makes no call; its error is a
// failure.AWSAuth for a profile or config file that cannot be read.
func LoadAWS(ctx context.Context, profile, region string) (*AWS, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return retry.AddWithMaxAttempts(retry.NewStandard(), 2) }),
		// The SDK's own warnings (a cancelled call's unread body, …) would
		// land on stderr between the remote's lines: ec2ssh says what
		// matters itself.
		config.WithLogger(logging.Nop{}),
	}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, &failure.Error{Kind: failure.AWSAuth, Op: "load AWS configuration", Err: err,
			Hint: "check the profile name and ~/.aws/config (aws configure list)"}
	}
	return &AWS{Config: cfg, Profile: profile, EC2: ec2.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg),
		STS: sts.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg)}, nil
}

// Region is the region in force, or "".
func (a *AWS) Region() string { return a.Config.Region }

// apiError classifies an AWS SDK error at the boundary where it enters:
// smithy API error codes for denials and bad credentials, the credential
// chain's own failure for missing credentials.
func apiError(op, permission string, err error) *APIError {
	if err == nil {
		return nil
	}
	e := &APIError{Op: op, Message: err.Error()}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "SSO token") || strings.Contains(msg, "sso token"):
		// The IAM Identity Center session has ended (or never began).
		e.NoCreds, e.Code, e.Message = true, "SSOTokenExpired", "the IAM Identity Center (SSO) session has expired or was never started"
		return e
	case strings.Contains(msg, "get credentials") || strings.Contains(msg, "failed to refresh cached credentials"):
		e.NoCreds, e.Code = true, "NoCredentials"
		return e
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code, e.Message = ae.ErrorCode(), ae.ErrorMessage()
		switch e.Code {
		case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "UnauthorizedAccess":
			e.Denied, e.Permission = true, permission
		}
		return e
	}
	return e
}

// Credentials retrieves the credentials once, so that "none found" is
// known before any service is asked (and reported as such, not as a
// failure of whichever call came first).
func (a *AWS) Credentials(ctx context.Context) *APIError {
	if a.Config.Credentials == nil {
		return &APIError{Op: "load credentials", NoCreds: true, Message: "no AWS credentials found"}
	}
	ctx, cancel := callCtx(ctx)
	defer cancel()
	if _, err := a.Config.Credentials.Retrieve(ctx); err != nil {
		return &APIError{Op: "load credentials", NoCreds: true, Message: "no usable AWS credentials: " + err.Error()}
	}
	return nil
}

// AsFailure turns an APIError from resolution into a failure.Error.
func (e *APIError) AsFailure() error {
	kind := failure.AWSAuth
	hint := "check your AWS credentials and region: aws sts get-caller-identity"
	if e.Denied {
		hint = "the caller needs " + e.Permission + " (an IAM policy change)"
	}
	if e.Code == "SSOTokenExpired" {
		hint = "sign in again: aws sso login --profile PROFILE (or --sso-session NAME), as the AWS CLI asks"
	}
	if !e.Denied && !e.NoCreds && e.Code == "" {
		kind = failure.Unknown
		hint = "AWS could not be reached; check the network and AWS_ENDPOINT_URL"
	}
	return &failure.Error{Kind: kind, Msg: e.Error(), Err: e, Hint: hint}
}

func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, CallTimeout)
}
