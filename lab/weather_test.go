package lab

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// TestWeatherOnTheWire: what the stand-ins answer in each weather reads to
// the SDK's real clients as AWS's own answers do (the weather the budget
// middleware classifies), for every protocol the lab serves: EC2's query,
// IAM's and STS's query, SSM's and EC2 Instance Connect's JSON. And the
// ways in that fallback owns (StartSession, SendSSHPublicKey) say it in
// words, with a kind that sends the ladder on. No root, no lab.
func TestWeatherOnTheWire(t *testing.T) {
	saved := preflight.Budgets
	preflight.Budgets = map[preflight.CallRole]time.Duration{preflight.RoleWayIn: 600 * time.Millisecond,
		preflight.RoleCheck: 300 * time.Millisecond, preflight.RoleFleet: time.Second, preflight.RoleBackground: time.Second}
	t.Cleanup(func() { preflight.Budgets = saved })
	ws := &Weathers{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !ws.meet(w, r, body) {
			t.Errorf("a call met no weather: %s %s", r.Header.Get("X-Amz-Target"), body)
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	t.Cleanup(srv.Close)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": srv.URL, "AWS_ACCESS_KEY_ID": "AKIALABLABLABLABLAB0", "AWS_SECRET_ACCESS_KEY": "x",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"} {
		t.Setenv(k, v)
	}
	a, err := preflight.Load(context.Background(), preflight.Options{Region: Region})
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		api  string
		call func(ctx context.Context) error
	}{
		{"ec2:DescribeInstances", func(ctx context.Context) error { _, err := a.Resolve(ctx, "i-0123456789abcdef0"); return err }},
		{"sts:GetCallerIdentity", func(ctx context.Context) error {
			_, err := a.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}},
		{"iam:GetInstanceProfile", func(ctx context.Context) error {
			_, err := a.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: new(string)})
			return err
		}},
		{"ssm:DescribeInstanceInformation", func(ctx context.Context) error {
			_, err := a.SSM.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
			return err
		}},
		{"ssm:StartSession", func(ctx context.Context) error {
			_, err := fallback.NewSSM(a.Config).StartPort(ctx, "i-0123456789abcdef0", 22, true)
			return err
		}},
		{"ec2-instance-connect:SendSSHPublicKey", func(ctx context.Context) error {
			_, err := fallback.OneTimeKey(ctx, fallback.NewInstanceConnect(a.Config), "i-0123456789abcdef0", "ec2-user")
			return err
		}},
	}
	for _, wx := range []struct {
		w       Weather
		weather preflight.Weather
		words   string
		kind    failure.Kind
	}{
		{Weather{Latency: 2 * time.Second}, preflight.WeatherSlow, "did not answer in 600ms", failure.Unreachable},
		{Weather{Fault: FaultThrottle}, preflight.WeatherThrottled, "throttled by AWS", failure.Unreachable},
		{Weather{Fault: FaultServer}, preflight.WeatherServer, "AWS answered 500", failure.Unreachable},
		{Weather{Fault: FaultUnavailable}, preflight.WeatherServer, "AWS answered 503", failure.Unreachable},
		{Weather{Fault: FaultReset}, preflight.WeatherReset, "the connection to AWS was cut", failure.Unreachable},
		{Weather{Fault: FaultAbsent}, preflight.WeatherAbsent, "is not available here", failure.Config},
	} {
		for _, c := range calls {
			t.Run(wx.w.String()+"/"+c.api, func(t *testing.T) {
				ws.Clear()
				ws.Set(c.api, wx.w)
				start := time.Now()
				err := c.call(context.Background())
				took := time.Since(start)
				if took > 900*time.Millisecond {
					t.Errorf("took %v, past the 600 ms budget", took)
				}
				// What a person reads: the product's own failures (Resolve,
				// StartSession, SendSSHPublicKey) say it in words; a raw SDK
				// call carries the middleware's CallError, said in words too.
				product := c.api == "ssm:StartSession" || c.api == "ec2-instance-connect:SendSSHPublicKey" || c.api == "ec2:DescribeInstances"
				said := err.Error()
				if !product {
					var ce *preflight.CallError
					if !errors.As(err, &ce) || ce.Weather != wx.weather {
						t.Fatalf("%s in %v: error %v (%T), want weather %v", c.api, wx.w, err, err, wx.weather)
					}
					said = ce.Error()
				} else if k := failure.KindOf(err); k != wx.kind {
					t.Errorf("%s in %v: kind %v, want %v (%v)", c.api, wx.w, k, wx.kind, err)
				}
				if !strings.Contains(said, wx.words) {
					t.Errorf("%s in %v says %q, want %q", c.api, wx.w, said, wx.words)
				}
				if strings.Contains(said, "operation error") || strings.Contains(said, "https response error") {
					t.Errorf("%s in %v says SDK text: %q", c.api, wx.w, said)
				}
				if _, met := ws.Calls(); met[c.api] == 0 {
					t.Errorf("%s was not recognised as itself: %v", c.api, met)
				}
			})
		}
	}
}

// TestWeatherRules: the first matching rule applies, a fair rule shields its
// APIs from a wildcard, Times lifts the weather, Region limits it.
func TestWeatherRules(t *testing.T) {
	ws := &Weathers{}
	ws.Set("ec2:DescribeInstances", Weather{})
	ws.Set("ec2:*", Weather{Fault: FaultServer, Times: 2})
	ws.Set("ssm:StartSession", Weather{Fault: FaultThrottle, Region: "eu-west-1"})
	for i, tt := range []struct {
		api, region string
		want        Weather
		met         bool
	}{
		{"ec2:DescribeInstances", "us-east-1", Weather{}, false},
		{"ec2:DescribeSubnets", "us-east-1", Weather{Fault: FaultServer, Times: 2}, true},
		{"ec2:DescribeVpcs", "us-east-1", Weather{Fault: FaultServer, Times: 2}, true},
		{"ec2:DescribeVpcs", "us-east-1", Weather{}, false}, // the two calls are spent
		{"ssm:StartSession", "us-east-1", Weather{}, false},
		{"ssm:StartSession", "eu-west-1", Weather{Fault: FaultThrottle, Region: "eu-west-1"}, true},
	} {
		if got, met := ws.take(tt.api, tt.region); got != tt.want || met != tt.met {
			t.Errorf("%d: take(%s, %s) = %v, %v; want %v, %v", i, tt.api, tt.region, got, met, tt.want, tt.met)
		}
	}
	if asked, met := ws.Calls(); asked["ec2:DescribeVpcs"] != 2 || met["ec2:DescribeVpcs"] != 1 || met["ec2:DescribeInstances"] != 0 {
		t.Errorf("Calls() = %v, %v", asked, met)
	}
}
