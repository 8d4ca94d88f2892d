package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/failure"
)

func inst(id, name string, state State) *Instance {
	return &Instance{ID: id, Name: name, State: state, PrivateIP: "10.0.0.1", LaunchTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// TestDecide is resolution's one rule, over every shape of answer.
func TestDecide(t *testing.T) {
	const id = "i-0123456789abcdef0"
	boom := &failure.Error{Kind: failure.Unreachable, Msg: "DescribeInstances: AWS answered 500"}
	tests := []struct {
		name   string
		dest   string
		home   Answer
		others []Answer // nil: not asked
		pinned bool
		// want: the instance id and its region; more: the other regions
		// are needed; err: what the error must say (and its kind).
		want, region string
		more         bool
		err          []string
		kind         failure.Kind
		hint         string
	}{
		{name: "one live in the home region", dest: "web-1", home: answer("us-east-1", inst("i-1", "web-1", StateRunning)), want: "i-1", region: "us-east-1"},
		{name: "a stopped one is still the one", dest: "web-1", home: answer("us-east-1", inst("i-1", "web-1", StateStopped)), want: "i-1", region: "us-east-1"},
		{name: "live beats terminated", dest: "web-1", home: answer("us-east-1", inst("i-1", "web-1", StateTerminated), inst("i-2", "web-1", StateRunning)), want: "i-2", region: "us-east-1"},
		{name: "two live: the error lists them", dest: "web-1", home: answer("us-east-1", inst("i-1", "web-1", StateRunning), inst("i-2", "web-1", StateStopped)),
			err: []string{`2 instances are named "web-1"`, "i-1", "i-2", "stopped"}, kind: failure.Config, hint: "ec2ssh i-1"},
		{name: "home wins over another region", dest: "web-1", home: answer("us-east-1", inst("i-1", "web-1", StateRunning)),
			others: []Answer{answer("eu-west-1", inst("i-9", "web-1", StateRunning))}, want: "i-1", region: "us-east-1"},
		{name: "none at home: the others are needed", dest: "web-1", home: answer("us-east-1"), more: true},
		{name: "none at home, pinned: none", dest: "web-1", home: answer("us-east-1"), pinned: true},
		{name: "none at home: one elsewhere", dest: "web-1", home: answer("us-east-1"),
			others: []Answer{answer("eu-west-1", inst("i-9", "web-1", StateRunning)), answer("ap-south-1")}, want: "i-9", region: "eu-west-1"},
		{name: "none at home: two elsewhere", dest: "web-1", home: answer("us-east-1"),
			others: []Answer{answer("eu-west-1", inst("i-9", "web-1", StateRunning)), answer("ap-south-1", inst("i-8", "web-1", StateRunning))},
			err:    []string{"2 instances in 2 regions", "i-9", "in eu-west-1", "i-8", "in ap-south-1"}, kind: failure.Config, hint: "--region"},
		{name: "none at home: ambiguous in one region elsewhere", dest: "web-1", home: answer("us-east-1"),
			others: []Answer{answer("eu-west-1", inst("i-9", "web-1", StateRunning), inst("i-8", "web-1", StateRunning))},
			err:    []string{`2 instances are named "web-1"`, "i-9", "i-8"}, kind: failure.Config},
		{name: "found elsewhere, but a region could not be asked", dest: "web-1", home: answer("us-east-1"),
			others: []Answer{answer("eu-west-1", inst("i-9", "web-1", StateRunning)), {Region: "ap-south-1", Err: boom}},
			err:    []string{"web-1 is i-9 in eu-west-1", "1 region could not be asked: ap-south-1 (DescribeInstances: AWS answered 500)", "may be named there too"}, kind: failure.Unreachable, hint: "--region eu-west-1"},
		{name: "not found, and a region could not be asked", dest: "web-1", home: answer("us-east-1"),
			others: []Answer{answer("eu-west-1"), {Region: "ap-south-1", Err: boom}},
			err:    []string{"web-1 is not in us-east-1 or the 1 other regions that answered", "ap-south-1 (DescribeInstances: AWS answered 500)"}, kind: failure.Unreachable, hint: "--region ap-south-1"},
		{name: "the home region could not be asked", dest: "web-1", home: Answer{Region: "us-east-1", Err: boom}, err: []string{"AWS answered 500"}, kind: failure.Unreachable},
		{name: "terminated at home, live elsewhere", dest: "web-1", home: answer("us-east-1", inst("i-1", "web-1", StateTerminated)),
			others: []Answer{answer("eu-west-1", inst("i-9", "web-1", StateRunning))}, want: "i-9", region: "eu-west-1"},
		{name: "terminated at home, the others asked first", dest: "web-1", home: answer("us-east-1", inst("i-1", "web-1", StateTerminated)), more: true},
		{name: "terminated at home, nothing elsewhere", dest: "web-1", home: answer("us-east-1", inst("i-1", "web-1", StateTerminated)),
			others: []Answer{answer("eu-west-1")}, want: "i-1", region: "us-east-1"},
		{name: "an id at home", dest: id, home: answer("us-east-1", inst(id, "", StateTerminated)), want: id, region: "us-east-1"},
		{name: "an id elsewhere decides, whatever failed", dest: id, home: answer("us-east-1"),
			others: []Answer{{Region: "ap-south-1", Err: boom}, answer("eu-west-1", inst(id, "", StateRunning))}, want: id, region: "eu-west-1"},
		{name: "an id nowhere, a region unasked", dest: id, home: answer("us-east-1"), others: []Answer{{Region: "ap-south-1", Err: boom}},
			err: []string{id + " is not in us-east-1", "ap-south-1"}, kind: failure.Unreachable, hint: "--region ap-south-1"},
		{name: "an id pinned to a region without it", dest: id, home: answer("us-east-1"), pinned: true},
		{name: "an address is the home region's only", dest: "10.0.0.1", home: answer("us-east-1")},
		{name: "an address of two instances", dest: "10.0.0.1", home: answer("us-east-1", inst("i-1", "a", StateRunning), inst("i-2", "b", StateRunning)),
			err: []string{"i-1", "i-2"}, kind: failure.Config},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, region, more, err := Decide(tt.dest, tt.home, tt.others, tt.pinned)
			if more != tt.more {
				t.Errorf("more = %v, want %v", more, tt.more)
			}
			if len(tt.err) > 0 {
				if err == nil {
					t.Fatalf("Decide = %v in %q, want an error", in, region)
				}
				for _, w := range tt.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if failure.KindOf(err) != tt.kind || !strings.Contains(failure.HintOf(err), tt.hint) {
					t.Errorf("error kind %v, hint %q; want %v and a hint with %q", failure.KindOf(err), failure.HintOf(err), tt.kind, tt.hint)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			got := ""
			if in != nil {
				got = in.ID
			}
			if got != tt.want || region != tt.region {
				t.Errorf("Decide = %q in %q, want %q in %q", got, region, tt.want, tt.region)
			}
		})
	}
}

// TestDecideUnaskedHint: the error for a region that could not be asked
// says how to choose.
func TestDecideUnaskedHint(t *testing.T) {
	boom := errors.New("AWS answered 500")
	_, _, _, err := Decide("web-1", answer("us-east-1"), []Answer{answer("eu-west-1", inst("i-9", "web-1", StateRunning)), {Region: "ap-south-1", Err: boom}}, false)
	if h := failure.HintOf(err); !strings.Contains(h, "--region eu-west-1") || !strings.Contains(h, "ec2ssh i-9") || !strings.Contains(h, "--region ap-south-1") {
		t.Errorf("hint %q", h)
	}
	if failure.KindOf(err) != failure.Unreachable {
		t.Errorf("kind %v: an unclassified cause is still AWS out of reach", failure.KindOf(err))
	}
}

// TestLookupAsksForTheNameItself: a destination is the Name tag exactly,
// its wildcards escaped; an id EC2 does not know is no instance.
func TestLookupAsksForTheNameItself(t *testing.T) {
	var got []string
	s, _ := serveWeather(t, weather{"recording", func(w http.ResponseWriter, r *http.Request, n int) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		if id := form.Get("InstanceId.1"); id != "" {
			ec2Error(400, "InvalidInstanceID.NotFound")(w, r, n)
			return
		}
		got = append(got, form.Get("Filter.1.Name")+"="+form.Get("Filter.1.Value.1"))
		fmt.Fprint(w, `<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>`)
	}})
	a := liveAWS(t, s.URL)
	ans := a.Lookup(context.Background(), `a*b?\c`)
	if ans.Err != nil || len(ans.Instances) != 0 || len(got) != 1 || got[0] != `tag:Name=a\*b\?\\c` {
		t.Errorf("Lookup asked %q, answered %+v", got, ans)
	}
	ans = a.Lookup(context.Background(), "i-0123456789abcdef0")
	if ans.Err != nil || len(ans.Instances) != 0 {
		t.Errorf("Lookup of an unknown id = %+v", ans)
	}
}

// TestAdaptiveWeatherSaysWhatAWSAnswered: a region sweep's clients retry
// adaptively; when the budget ends in their wait, what AWS last answered
// (500) is said, not a silence ("did not answer"), which is what the
// error for a region that could not be asked names.
func TestAdaptiveWeatherSaysWhatAWSAnswered(t *testing.T) {
	shortBudgets(t)
	s, n := serveWeather(t, weather{"500", ec2Error(500, "InternalError")})
	liveAWS(t, s.URL) // the environment
	a, err := Load(context.Background(), Options{Region: "us-east-1", Adaptive: true})
	if err != nil {
		t.Fatal(err)
	}
	ans := a.Lookup(context.Background(), "web-1")
	if ans.Err == nil || ans.Err.Error() != "DescribeInstances: AWS answered 500" || n.Load() < 2 {
		t.Errorf("Lookup with every answer a 500: %v after %d calls", ans.Err, n.Load())
	}
}
