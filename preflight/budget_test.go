package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ssh/ec2ssh/failure"
)

// AWS weather against the SDK's real clients over a real socket: a local
// server answers as AWS does when it is slow, throttles, fails, cuts the
// connection, denies or lacks the API. What the person sees is one
// readable line, the right hint and kind, within the call's budget.

type weather struct {
	name string
	// serve answers one request; n counts requests so far (from 1).
	serve func(w http.ResponseWriter, r *http.Request, n int)
}

func ec2Error(status int, code string) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>the service says %s</Message></Error></Errors><RequestID>r-1</RequestID></Response>`, code, code)
	}
}

func jsonError(status int, code string) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("X-Amzn-ErrorType", code)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":"%s","message":"the service says %s"}`, code, code)
	}
}

func slow(d time.Duration) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		w.WriteHeader(500)
	}
}

func reset(w http.ResponseWriter, r *http.Request, n int) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) // RST, as a middlebox that drops the connection
	}
	c.Close()
}

// thenOK is w for the first n requests, then a plain answer.
func thenOK(n int, w func(http.ResponseWriter, *http.Request, int), ok string) func(http.ResponseWriter, *http.Request, int) {
	return func(rw http.ResponseWriter, r *http.Request, i int) {
		if i <= n {
			w(rw, r, i)
			return
		}
		rw.Write([]byte(ok))
	}
}

const describeOK = `<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse><requestId>r</requestId><reservationSet><item><instancesSet><item><instanceId>i-0123456789abcdef0</instanceId><instanceState><name>running</name></instanceState><privateIpAddress>10.0.0.5</privateIpAddress></item></instancesSet></item></reservationSet></DescribeInstancesResponse>`

func serveWeather(t *testing.T, w weather) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.serve(rw, r, int(n.Add(1)))
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func shortBudgets(t *testing.T) {
	saved := Budgets
	Budgets = map[CallRole]time.Duration{RoleWayIn: 600 * time.Millisecond, RoleCheck: 300 * time.Millisecond, RoleFleet: time.Second, RoleBackground: time.Second}
	t.Cleanup(func() { Budgets = saved })
}

func liveAWS(t *testing.T, url string) *AWS {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
	t.Setenv("AWS_ENDPOINT_URL", url)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	a, err := Load(context.Background(), Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestWeatherOnTheWayIn: DescribeInstances, the call every connection by
// id or Name waits on, in each weather.
func TestWeatherOnTheWayIn(t *testing.T) {
	shortBudgets(t)
	tests := []struct {
		w       weather
		msg     string
		kind    failure.Kind
		hint    string
		within  time.Duration
		resolve bool // the retries absorbed it: resolution succeeds
	}{
		{weather{"slower than its budget", slow(1500 * time.Millisecond)}, "DescribeInstances did not answer in 600ms", failure.Unreachable, "AWS is slow", 900 * time.Millisecond, false},
		{weather{"throttled", ec2Error(503, "RequestLimitExceeded")}, "DescribeInstances: throttled by AWS (RequestLimitExceeded)", failure.Unreachable, "throttled", 900 * time.Millisecond, false},
		{weather{"throttled twice, then fine", thenOK(2, ec2Error(503, "RequestLimitExceeded"), describeOK)}, "", 0, "", 900 * time.Millisecond, true},
		{weather{"500", ec2Error(500, "InternalError")}, "DescribeInstances: AWS answered 500", failure.Unreachable, "internal error", 900 * time.Millisecond, false},
		{weather{"one 500, then fine", thenOK(1, ec2Error(500, "InternalError"), describeOK)}, "", 0, "", 900 * time.Millisecond, true},
		{weather{"connection reset", reset}, "DescribeInstances: the connection to AWS was cut", failure.Unreachable, "could not be reached", 900 * time.Millisecond, false},
		{weather{"access denied", ec2Error(403, "UnauthorizedOperation")}, "ec2:DescribeInstances: access denied (needs ec2:DescribeInstances)", failure.AWSAuth, "the caller needs ec2:DescribeInstances", 300 * time.Millisecond, false},
		{weather{"absent", ec2Error(400, "InvalidAction")}, "DescribeInstances is not available here", failure.Config, "not offered in this region", 300 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.w.name, func(t *testing.T) {
			s, _ := serveWeather(t, tt.w)
			a := liveAWS(t, s.URL)
			start := time.Now()
			in, err := a.Resolve(context.Background(), "i-0123456789abcdef0")
			took := time.Since(start)
			if took > tt.within {
				t.Errorf("took %v, want at most %v", took, tt.within)
			}
			if tt.resolve {
				if err != nil || in == nil || in.ID != "i-0123456789abcdef0" {
					t.Errorf("Resolve = %v, %v; want the instance", in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %v, want an error", in)
			}
			if err.Error() != tt.msg && !strings.HasSuffix(err.Error(), tt.msg) {
				t.Errorf("message %q, want %q", err.Error(), tt.msg)
			}
			if len(err.Error()) > 200 || strings.Contains(err.Error(), "operation error") || strings.Contains(err.Error(), "https response error") {
				t.Errorf("message is SDK text: %q", err.Error())
			}
			if failure.KindOf(err) != tt.kind {
				t.Errorf("kind %v, want %v", failure.KindOf(err), tt.kind)
			}
			if h := failure.HintOf(err); !strings.Contains(h, tt.hint) {
				t.Errorf("hint %q, want it to say %q", h, tt.hint)
			}
		})
	}
}

// TestWeatherOnChecks: a check's call that does not answer in time is
// unknown with a readable reason, never pass, and within the check budget.
func TestWeatherOnChecks(t *testing.T) {
	shortBudgets(t)
	for _, tt := range []struct {
		w      weather
		reason string
	}{
		{weather{"slow", slow(1500 * time.Millisecond)}, "DescribeNetworkAcls did not answer in 300ms"},
		{weather{"throttled", ec2Error(503, "RequestLimitExceeded")}, "throttled by AWS"},
		{weather{"500", ec2Error(500, "InternalError")}, "AWS answered 500"},
	} {
		t.Run(tt.w.name, func(t *testing.T) {
			s, _ := serveWeather(t, tt.w)
			a := liveAWS(t, s.URL)
			start := time.Now()
			acl, apiErr := a.networkACL(WithRole(context.Background(), RoleCheck), &Instance{ID: "i-1", SubnetID: "subnet-1"})
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("took %v, beyond the check budget", took)
			}
			if acl != nil || apiErr == nil {
				t.Fatalf("networkACL = %v, %v", acl, apiErr)
			}
			f := &Facts{Instance: &Instance{ID: "i-1", SubnetID: "subnet-1", State: StateRunning}, NetworkACLErr: apiErr, Port: 22}
			r := checkNetworkACL(f)
			if r.Status != Unknown || !strings.Contains(r.Summary, tt.reason) {
				t.Errorf("network-acl = %s %q, want unknown saying %q", r.Status, r.Summary, tt.reason)
			}
		})
	}
}

// TestWeatherOnSSM: a JSON-protocol service (SSM) classifies alike.
func TestWeatherOnSSM(t *testing.T) {
	shortBudgets(t)
	for _, tt := range []struct {
		w   weather
		msg string
	}{
		{weather{"throttled", jsonError(400, "ThrottlingException")}, "DescribeInstanceInformation: throttled by AWS (ThrottlingException)"},
		{weather{"500", jsonError(500, "InternalServerError")}, "DescribeInstanceInformation: AWS answered 500"},
		{weather{"slow", slow(1500 * time.Millisecond)}, "DescribeInstanceInformation did not answer in 600ms"},
	} {
		t.Run(tt.w.name, func(t *testing.T) {
			s, _ := serveWeather(t, tt.w)
			a := liveAWS(t, s.URL)
			_, err := a.SSM.DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{
				Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{"i-1"}}}})
			var ce *CallError
			if !errors.As(err, &ce) || ce.Error() != tt.msg {
				t.Errorf("error %v, want %q", err, tt.msg)
			}
		})
	}
}

// TestWeatherIsNotRetriedPastTheBudget: retries and their backoff fit in
// the budget (a throttled call is asked a few times, not forever).
func TestWeatherIsNotRetriedPastTheBudget(t *testing.T) {
	shortBudgets(t)
	s, n := serveWeather(t, weather{"throttled", ec2Error(503, "RequestLimitExceeded")})
	a := liveAWS(t, s.URL)
	start := time.Now()
	a.EC2.DescribeRegions(context.Background(), &ec2.DescribeRegionsInput{})
	if took := time.Since(start); took > 900*time.Millisecond || n.Load() > 3 || n.Load() < 2 {
		t.Errorf("%d requests in %v; want 2 or 3 within the budget", n.Load(), took)
	}
}

// TestNoCredentials: with no credentials anywhere and no instance metadata
// service, the first call fails at once with one short line.
func TestNoCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	// The metadata service of a laptop: nothing answers there.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ln.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://"+ln.Addr().String())
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	a, err := Load(context.Background(), Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = a.Resolve(context.Background(), "i-0123456789abcdef0")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v to find there are no credentials", took)
	}
	// A fleet's adaptive retries do not ask again either (they took 6 s).
	fleet, err2 := Load(context.Background(), Options{Region: "us-east-1", Adaptive: true})
	if err2 != nil {
		t.Fatal(err2)
	}
	start = time.Now()
	if _, err2 = fleet.List(WithRole(context.Background(), RoleFleet), Filter{}); noCredentials(err2) == nil && !strings.Contains(fmt.Sprint(err2), "no AWS credentials") {
		t.Errorf("List with no credentials = %v", err2)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a fleet's call took %v to find there are no credentials: retried", took)
	}
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Kind != failure.AWSAuth || !strings.Contains(err.Error(), "no AWS credentials were found") || len(err.Error()) > 200 {
		t.Errorf("error %q (%v), want a short AWSAuth line saying no credentials were found", err, failure.KindOf(err))
	}
	if h := failure.HintOf(err); !strings.Contains(h, "aws configure") || !strings.Contains(h, "aws sso login") {
		t.Errorf("hint %q", h)
	}
}

// TestUnknownProfile: a profile that is not configured is one line.
func TestUnknownProfile(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	_, err := Load(context.Background(), Options{Profile: "nope"})
	if failure.KindOf(err) != failure.AWSAuth || !strings.Contains(err.Error(), `the AWS profile "nope"`) || len(err.Error()) > 200 {
		t.Errorf("Load(profile nope) = %v", err)
	}
	// Named by AWS_PROFILE rather than --profile: the same line, with its name.
	t.Setenv("AWS_PROFILE", "nope-env")
	_, err = Load(context.Background(), Options{})
	if failure.KindOf(err) != failure.AWSAuth || !strings.Contains(err.Error(), `the AWS profile "nope-env"`) {
		t.Errorf("Load(AWS_PROFILE=nope-env) = %v", err)
	}
}
