package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ec2ssh/ec2ssh/failure"
)

// AWS weather (SPEC.md, "Every wait has a budget"): each AWS call has a
// budget set by why it is made, its retries and their backoff fit inside
// it, and what did not answer in time is said in plain words. The budget
// is applied to every operation of every client built from LoadAWS's
// configuration, by a middleware outside the SDK's retry loop, so no call
// site can forget it.

// CallRole is why an AWS call is made.
type CallRole int

const (
	// RoleWayIn: on the way to a session (resolving the destination,
	// starting an SSM session, pushing a key): the person waits on it.
	RoleWayIn CallRole = iota
	// RoleCheck: a check beside or after a connection; what it does not
	// learn in time is unknown.
	RoleCheck
	// RoleFleet: one page of a listing, or one region of a sweep.
	RoleFleet
	// RoleBackground: work nobody waits for (a cache refresh).
	RoleBackground
)

// Budgets is each role's budget for one call, retries included.
var Budgets = map[CallRole]time.Duration{
	RoleWayIn:      5 * time.Second,
	RoleCheck:      2 * time.Second,
	RoleFleet:      15 * time.Second,
	RoleBackground: 10 * time.Second,
}

var roleNames = map[CallRole]string{RoleWayIn: "way-in", RoleCheck: "check", RoleFleet: "fleet", RoleBackground: "background"}

func (r CallRole) String() string { return roleNames[r] }

type roleKey struct{}

// WithRole marks the AWS calls made under ctx as made for role.
func WithRole(ctx context.Context, role CallRole) context.Context {
	return context.WithValue(ctx, roleKey{}, role)
}

// RoleOf is the role ctx's calls are made for (RoleWayIn when unmarked).
func RoleOf(ctx context.Context) CallRole {
	if r, ok := ctx.Value(roleKey{}).(CallRole); ok {
		return r
	}
	return RoleWayIn
}

// Weather is how an AWS call failed, as a person needs to know it.
type Weather int

const (
	WeatherNone        Weather = iota // an answer: the service's own error, if any
	WeatherSlow                       // no answer within the budget
	WeatherThrottled                  // throttled, past what retries absorb in the budget
	WeatherServer                     // the service answered 5xx
	WeatherReset                      // the connection was reset or cut
	WeatherUnreachable                // AWS could not be reached at all
	WeatherAbsent                     // the API does not exist in this region or partition
)

// CallError is an AWS call that failed, classified where it left the SDK.
type CallError struct {
	Service, Op string
	Role        CallRole
	Budget      time.Duration
	Took        time.Duration
	Weather     Weather
	Status      int    // the HTTP status, when there was one
	Code        string // the service's error code, when there was one
	Err         error
}

func (e *CallError) Unwrap() error { return e.Err }

// Error says what happened in plain words: never the SDK's own text for
// the weather kinds.
func (e *CallError) Error() string {
	switch e.Weather {
	case WeatherSlow:
		return fmt.Sprintf("%s did not answer in %v", e.Op, roundBudget(e.Budget))
	case WeatherThrottled:
		return fmt.Sprintf("%s: throttled by AWS (%s)", e.Op, e.Code)
	case WeatherServer:
		return fmt.Sprintf("%s: AWS answered %d", e.Op, e.Status)
	case WeatherReset:
		return fmt.Sprintf("%s: the connection to AWS was cut", e.Op)
	case WeatherUnreachable:
		return fmt.Sprintf("%s: AWS could not be reached", e.Op)
	case WeatherAbsent:
		return fmt.Sprintf("%s is not available here", e.Op)
	}
	var ae smithy.APIError
	if errors.As(e.Err, &ae) {
		return e.Op + ": " + ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return e.Op + ": " + e.Err.Error()
}

// WeatherFailure is err as a failure when AWS's weather made it (a
// CallError with its Weather set), said in words under op ("start an SSM
// session on i-0abc") with the hint that blames the weather, not the
// credentials; nil for any other error, which the caller classifies. The
// kind is Unreachable (Config for an API absent here), so the ladder goes
// on to the next way in rather than trying the same one again.
func WeatherFailure(op string, err error) error {
	var ce *CallError
	if !errors.As(err, &ce) || ce.Weather == WeatherNone {
		return nil
	}
	f := (&APIError{Op: ce.Service + ":" + ce.Op, Code: ce.Code, Message: ce.Error(), Weather: ce.Weather}).AsFailure()
	var fe *failure.Error
	if errors.As(f, &fe) {
		fe.Msg, fe.Err = op+": "+ce.Error(), err
	}
	return f
}

func roundBudget(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(10 * time.Millisecond)
}

// throttleCodes are the error codes AWS services throttle with.
var throttleCodes = map[string]bool{"Throttling": true, "ThrottlingException": true, "ThrottledException": true,
	"RequestLimitExceeded": true, "RequestThrottled": true, "RequestThrottledException": true, "TooManyRequestsException": true,
	"ProvisionedThroughputExceededException": true, "SlowDown": true, "PriorRequestNotComplete": true, "EC2ThrottledException": true,
	"BandwidthLimitExceeded": true, "LimitExceededException": true}

// absentCodes say an API does not exist where it was asked.
var absentCodes = map[string]bool{"InvalidAction": true, "UnknownOperationException": true, "UnsupportedOperation": true,
	"UnsupportedOperationException": true, "InvalidClientTokenId.Region": true}

// classifyCall turns what an operation ended with into a CallError.
func classifyCall(ctx context.Context, service, op string, role CallRole, budget, took time.Duration, err error) *CallError {
	e := &CallError{Service: service, Op: op, Role: role, Budget: budget, Took: took, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
	}
	var ne net.Error
	switch {
	case noCredentials(err) != nil:
		// The credential chain found nothing (or an ended SSO session):
		// not weather, whatever the chain's last try met on the way.
	case throttleCodes[e.Code] || e.Status == 429:
		e.Weather = WeatherThrottled
		if e.Code == "" {
			e.Code = "HTTP 429"
		}
	case absentCodes[e.Code] || e.Status == 404 && e.Code == "":
		e.Weather = WeatherAbsent
	case e.Status >= 500:
		e.Weather = WeatherServer
	case e.Code != "":
		// The service's own answer (denied, not found, invalid): not weather.
	case errors.Is(context.Cause(ctx), errBudget) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		e.Weather = WeatherSlow
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(strings.ToLower(err.Error()), "connection reset"):
		// (the one string test: the SDK wraps a reset in its own error
		// text on some paths; pinned by TestClassifyCall)
		e.Weather = WeatherReset
	case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) || isDNS(err):
		e.Weather = WeatherUnreachable
	case errors.Is(err, net.ErrClosed) || errors.As(err, new(*smithyhttp.RequestSendError)):
		// The request could not be sent or its answer read: the
		// connection went away under it.
		e.Weather = WeatherReset
	}
	return e
}

func isDNS(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de)
}

// errBudget is why a call's context ends when its budget is spent.
var errBudget = errors.New("the call's budget is spent")

// budgetMiddleware applies each call's budget and classifies how it
// ended; -v's debug function, when set, hears of every call.
type budgetMiddleware struct {
	debug func(format string, a ...any)
}

func (budgetMiddleware) ID() string { return "ec2sshBudget" }

func (m budgetMiddleware) HandleInitialize(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (
	middleware.InitializeOutput, middleware.Metadata, error) {
	service, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
	role := RoleOf(ctx)
	budget := Budgets[role]
	// The budget ends the call, not what it returned: a streamed body (S3
	// GetObject) is read after the call and must not be cut by it.
	cctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(budget, func() { cancel(errBudget) })
	start := time.Now()
	out, md, err := next.HandleInitialize(cctx, in)
	took := time.Since(start)
	timer.Stop()
	if err != nil {
		defer cancel(nil)
	}
	if err != nil && ctx.Err() == nil {
		// The deadline may fall in a retry's backoff: what the last
		// attempt that reached AWS got (a 5xx, a throttle) is then what
		// to say. (An attempt the deadline ended before it was sent, as
		// the adaptive mode's rate limiter waits, got nothing from AWS.)
		cause := err
		if res, ok := retry.GetAttemptResults(md); ok && cctx.Err() != nil {
			for i := len(res.Results) - 1; i >= 0; i-- {
				if e := res.Results[i].Err; e != nil && !errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, context.Canceled) {
					cause = e
					break
				}
			}
		}
		ce := classifyCall(cctx, service, op, role, budget, took, cause)
		m.say("debug1: aws: %s %s (%s): %v after %v", service, op, role, ce, took.Round(time.Millisecond))
		return out, md, ce
	}
	if err == nil {
		m.say("debug1: aws: %s %s (%s): ok in %v", service, op, role, took.Round(time.Millisecond))
	}
	return out, md, err
}

func (m budgetMiddleware) say(format string, a ...any) {
	if m.debug != nil {
		m.debug(format, a...)
	}
}

// addBudget puts the budget middleware at the start of a client's stack.
func addBudget(debug func(string, ...any)) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(budgetMiddleware{debug: debug}, middleware.Before)
	}
}

// retryer is the SDK's retry policy: standard (3 attempts, backoff at
// most 1 s, no client-side retry quota: the budget bounds the total) for a
// session's calls; adaptive (client-side rate limiting, more attempts) for
// fleets and region sweeps, so that they slow down instead of failing.
func retryer(adaptive bool) func() aws.Retryer {
	standard := func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.MaxBackoff = 400 * time.Millisecond
		o.Backoff = backoff{base: 100 * time.Millisecond, max: o.MaxBackoff}
		o.RateLimiter = noRateLimit{}
		o.Retryables = append([]retry.IsErrorRetryable{noCredentialsRetry}, o.Retryables...)
	}
	if adaptive {
		return func() aws.Retryer {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(o *retry.StandardOptions) {
					o.MaxAttempts = 8
					o.MaxBackoff = 2 * time.Second
					o.Backoff = backoff{base: 200 * time.Millisecond, max: o.MaxBackoff}
					o.RateLimiter = noRateLimit{}
					o.Retryables = append([]retry.IsErrorRetryable{noCredentialsRetry}, o.Retryables...)
				})
			})
		}
	}
	return func() aws.Retryer { return retry.NewStandard(standard) }
}

// noCredentialsRetry: no credentials anywhere is not weather, and asking
// again finds none again. The SDK would retry it as a failed request (the
// credential chain ends in the metadata service, unreachable off EC2): 8
// attempts of a fleet's adaptive retries took 6 s to say so (issue 20).
var noCredentialsRetry = retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
	if noCredentials(err) != nil {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
})

// noRateLimit lets every retry through: the budget, not a token bucket
// shared by a short-lived process, decides when to give up.
type noRateLimit struct{}

func (noRateLimit) GetToken(ctx context.Context, cost uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noRateLimit) AddTokens(uint) error { return nil }

// backoff is exponential backoff with equal jitter: the n-th retry waits
// between half and all of base·2ⁿ⁻¹, at most max. Short enough that a
// session's retries fit its budget.
type backoff struct{ base, max time.Duration }

func (b backoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	d := b.base << min(attempt-1, 16)
	if d > b.max || d <= 0 {
		d = b.max
	}
	return d/2 + rand.N(d/2+1), nil
}
