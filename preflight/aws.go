package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/ec2ssh/ec2ssh/failure"
)

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
	opts    Options
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

// Options are how LoadAWS builds the clients.
type Options struct {
	Profile, Region string
	// Adaptive: the SDK's adaptive retry mode (client-side rate limiting),
	// for fleets and region sweeps.
	Adaptive bool
	// Debug, when set, hears of every AWS call: its time and outcome (-v).
	Debug func(format string, a ...any)
}

// IMDSWait bounds asking the instance metadata service for credentials:
// on EC2 it answers in milliseconds; elsewhere (a laptop with no
// credentials) nothing answers, and the person should hear so at once.
const IMDSWait = 800 * time.Millisecond

// LoadAWS builds the clients for a profile and region ("" for the
// configured one). It makes no call; its error is a failure.AWSAuth for a
// profile or config file that cannot be read.
func LoadAWS(ctx context.Context, profile, region string) (*AWS, error) {
	return Load(ctx, Options{Profile: profile, Region: region})
}

// Load builds the clients as o says.
func Load(ctx context.Context, o Options) (*AWS, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(retryer(o.Adaptive)),
		config.WithAPIOptions([]func(*middleware.Stack) error{addBudget(o.Debug)}),
		// The SDK's own warnings (a cancelled call's unread body, …) would
		// land on stderr between the remote's lines: ec2ssh says what
		// matters itself.
		config.WithLogger(logging.Nop{}),
		config.WithEC2RoleCredentialOptions(func(ro *ec2rolecreds.Options) { ro.Client = quickIMDS() }),
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, configError(o.Profile, err)
	}
	return &AWS{Config: cfg, Profile: o.Profile, EC2: ec2.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg),
		STS: sts.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg), opts: o}, nil
}

// quickIMDS is the metadata client the credential chain ends with: one
// attempt, IMDSWait at most, the endpoint and on/off switch from the
// environment as the SDK reads them.
func quickIMDS() *imds.Client {
	o := imds.Options{Retryer: aws.NopRetryer{}, HTTPClient: awshttp.NewBuildableClient().WithTimeout(IMDSWait),
		Endpoint: os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")}
	if strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		o.ClientEnableState = imds.ClientDisabled
	}
	return imds.New(o)
}

// configError is a configuration that cannot be loaded, in one line.
func configError(profile string, err error) error {
	var missing config.SharedConfigProfileNotExistError
	if profile == "" { // named by AWS_PROFILE, not --profile
		profile = os.Getenv("AWS_PROFILE")
		if errors.As(err, &missing) && missing.Profile != "" {
			profile = missing.Profile
		}
	}
	if errors.As(err, &missing) || strings.Contains(err.Error(), "failed to get shared config profile") {
		return &failure.Error{Kind: failure.AWSAuth, Msg: fmt.Sprintf("the AWS profile %q is in neither ~/.aws/config nor ~/.aws/credentials", profile), Err: err,
			Hint: "list the profiles with: aws configure list-profiles (or set AWS_PROFILE to one of them)"}
	}
	return &failure.Error{Kind: failure.AWSAuth, Op: "load AWS configuration", Err: err,
		Hint: "check the profile name and ~/.aws/config (aws configure list)"}
}

// Region is the region in force, or "".
func (a *AWS) Region() string { return a.Config.Region }

// apiError classifies an AWS SDK error at the boundary where it enters:
// the weather the budget middleware found (slow, throttled, 5xx, cut,
// absent), smithy API error codes for denials, the credential chain's own
// failure for missing or expired credentials.
func apiError(op, permission string, err error) *APIError {
	if err == nil {
		return nil
	}
	e := &APIError{Op: op, Message: err.Error()}
	if nc := noCredentials(err); nc != nil {
		nc.Op = op
		return nc
	}
	var ce *CallError
	if errors.As(err, &ce) && ce.Weather != WeatherNone {
		e.Weather, e.Message, e.Code = ce.Weather, ce.Error(), ce.Code
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

// noCredentials recognises the credential chain's failures: an Identity
// Center session that ended, or no credentials anywhere. (The SDK gives
// them no type of their own; the one string test, pinned by
// TestNoCredentials to the SDK's real errors.)
func noCredentials(err error) *APIError {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "SSO token") || strings.Contains(msg, "sso token") || strings.Contains(msg, "refresh cached SSO token"):
		return &APIError{NoCreds: true, Code: "SSOTokenExpired", Message: "the IAM Identity Center (SSO) session has expired or was never started"}
	case strings.Contains(msg, "get credentials") || strings.Contains(msg, "failed to refresh cached credentials") ||
		strings.Contains(msg, "no EC2 IMDS role found") || strings.Contains(msg, "failed to retrieve credentials"):
		return &APIError{NoCreds: true, Code: "NoCredentials", Message: "no AWS credentials were found"}
	}
	return nil
}

// Credentials retrieves the credentials once, so that "none found" is
// known before any service is asked (and reported as such, not as a
// failure of whichever call came first).
func (a *AWS) Credentials(ctx context.Context) *APIError {
	if a.Config.Credentials == nil {
		return &APIError{Op: "load credentials", NoCreds: true, Code: "NoCredentials", Message: "no AWS credentials were found"}
	}
	ctx, cancel := callCtx(ctx)
	defer cancel()
	if _, err := a.Config.Credentials.Retrieve(ctx); err != nil {
		if nc := noCredentials(err); nc != nil {
			nc.Op = "load credentials"
			return nc
		}
		return &APIError{Op: "load credentials", NoCreds: true, Code: "NoCredentials", Message: "no usable AWS credentials"}
	}
	return nil
}

// AsFailure turns an APIError from resolution into a failure.Error whose
// hint blames the right thing: the credentials, a permission, or AWS's
// weather.
func (e *APIError) AsFailure() error {
	kind, hint := failure.AWSAuth, "check your AWS credentials and region: aws sts get-caller-identity"
	switch {
	case e.Code == "SSOTokenExpired":
		hint = "sign in again: aws sso login --profile PROFILE (or --sso-session NAME), as the AWS CLI asks"
	case e.NoCreds:
		hint = "set them up with: aws configure, or aws sso login, or name a profile with AWS_PROFILE"
	case e.Denied:
		hint = "the caller needs " + e.Permission + " (an IAM policy change)"
	case e.Weather == WeatherSlow:
		kind, hint = failure.Unreachable, "AWS is slow or out of reach from here; try again, or check the network, a proxy and AWS_ENDPOINT_URL"
	case e.Weather == WeatherThrottled:
		kind, hint = failure.Unreachable, "this account's calls are being throttled; try again shortly (other tools share the limit)"
	case e.Weather == WeatherServer:
		kind, hint = failure.Unreachable, "AWS had an internal error; try again (the AWS Health Dashboard says whether the service is impaired)"
	case e.Weather == WeatherReset, e.Weather == WeatherUnreachable:
		kind, hint = failure.Unreachable, "AWS could not be reached; check the network, a proxy and AWS_ENDPOINT_URL"
	case e.Weather == WeatherAbsent:
		kind, hint = failure.Config, "that API is not offered in this region; name another with --region"
	case e.Code == "":
		kind, hint = failure.Unknown, "AWS could not be reached; check the network and AWS_ENDPOINT_URL"
	}
	return &failure.Error{Kind: kind, Msg: e.Error(), Err: e, Hint: hint}
}

// callCtx is the context of one call site's calls. Each call's budget is
// set by its role (budget.go), per call, by the middleware every client
// carries; a call site that makes several calls gives each its own.
func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}
