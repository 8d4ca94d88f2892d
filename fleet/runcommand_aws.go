package fleet

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// The calls the Run Command engine makes, as narrow interfaces (a fake
// stands in for each in the tests), the clients that make them, and the
// classification of their errors where they enter.

// SSMAPI is the part of SSM the engine calls. Only SendCommand and
// CancelCommand change anything: they run, and stop, the user's command.
type SSMAPI interface {
	DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
	SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	ListCommands(context.Context, *ssm.ListCommandsInput, ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
	ListCommandInvocations(context.Context, *ssm.ListCommandInvocationsInput, ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error)
	GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
	CancelCommand(context.Context, *ssm.CancelCommandInput, ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error)
}

// S3API is the part of S3 the engine reads: the bucket --output-s3 names
// (HeadBucket: that it is there, and its region) and the agent's files.
type S3API interface {
	HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Deps gives the engine a region's clients.
type Deps struct {
	SSM func(region string) (SSMAPI, error)
	S3  func(region string) (S3API, error)
}

// callTimeout bounds one call, the SDK's retries of it included.
const callTimeout = 30 * time.Second

// NewDeps builds clients from the SDK's usual chain with --profile, one
// set per region, with preflight's adaptive retry mode: the client-side
// rate limiter slows the calls when SSM throttles them, so a fleet's
// polling settles under the account's rate instead of failing, and each
// call's retries and backoff fit its budget (preflight.RoleFleet's: Run marks
// its context so). The S3 client uses
// path-style addressing when an endpoint is set (AWS_ENDPOINT_URL_S3,
// AWS_ENDPOINT_URL or the shared config's), as S3 stand-ins need. Errors
// are preflight.LoadAWS's (failure.AWSAuth).
func NewDeps(ctx context.Context, profile string) Deps {
	var mu sync.Mutex
	cfgs := map[string]aws.Config{}
	load := func(region string) (aws.Config, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := cfgs[region]; ok {
			return c, nil
		}
		a, err := preflight.Load(ctx, preflight.Options{Profile: profile, Region: region, Adaptive: true})
		if err != nil {
			return aws.Config{}, err
		}
		cfgs[region] = a.Config
		return a.Config, nil
	}
	return Deps{
		SSM: func(region string) (SSMAPI, error) {
			cfg, err := load(region)
			if err != nil {
				return nil, err
			}
			return ssm.NewFromConfig(cfg), nil
		},
		S3: func(region string) (S3API, error) {
			cfg, err := load(region)
			if err != nil {
				return nil, err
			}
			return s3.NewFromConfig(cfg, s3Options), nil
		},
	}
}

// s3Options: the endpoint is resolved before these run, so BaseEndpoint
// is set exactly when the configuration names one.
func s3Options(o *s3.Options) {
	if o.BaseEndpoint != nil {
		o.UsePathStyle = true
	}
}

// apiFailure classifies an SSM or S3 error where it enters: the caller's
// cancellation, a denial (with the permission it needs), or another
// failure of the call.
func apiFailure(op, permission string, err error) *failure.Error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &failure.Error{Kind: failure.Canceled, Op: op, Err: err}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden":
			return &failure.Error{Kind: failure.AWSAuth, Msg: op + ": access denied", Err: err,
				Hint: "the caller needs " + permission + " (an IAM policy change)"}
		}
		return &failure.Error{Kind: failure.Unknown, Msg: op + ": " + ae.ErrorCode() + ": " + ae.ErrorMessage(), Err: err}
	}
	return &failure.Error{Kind: failure.Unknown, Op: op, Err: err, Hint: "AWS could not be reached; check the network and AWS_ENDPOINT_URL"}
}

// invocationMissing reports SSM's "no such invocation (yet)": just after
// SendCommand, GetCommandInvocation answers so for a moment (the SDK's
// CommandExecuted waiter retries on it).
func invocationMissing(err error) bool {
	var e *ssmtypes.InvocationDoesNotExist
	return errors.As(err, &e)
}

// objectMissing reports an S3 key that is not there: the agent writes a
// stream only when it has something, and only when the instance may.
func objectMissing(err error) bool {
	var nk *s3types.NoSuchKey
	var nf *s3types.NotFound
	return errors.As(err, &nk) || errors.As(err, &nf)
}

// bucketMissing reports HeadBucket's 404.
func bucketMissing(err error) bool {
	var nf *s3types.NotFound
	var nb *s3types.NoSuchBucket
	return errors.As(err, &nf) || errors.As(err, &nb)
}
