package preflight

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// pagedEC2 answers DescribeInstances in pages of per instances (pages in
// all), each after delay, and records each request's filters.
func pagedEC2(pages, per int, delay time.Duration, names func(i int) string, seen *[]url.Values) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		if seen != nil {
			*seen = append(*seen, form)
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		page := 0
		fmt.Sscan(form.Get("NextToken"), &page)
		var items strings.Builder
		for i := page * per; i < (page+1)*per; i++ {
			fmt.Fprintf(&items, `<item><instanceId>i-%017d</instanceId><instanceState><name>running</name></instanceState><tagSet><item><key>Name</key><value>%s</value></item></tagSet></item>`, i, names(i))
		}
		next := ""
		if page+1 < pages {
			next = fmt.Sprintf("<nextToken>%d</nextToken>", page+1)
		}
		fmt.Fprintf(w, `<DescribeInstancesResponse><reservationSet><item><instancesSet>%s</instancesSet></item></reservationSet>%s</DescribeInstancesResponse>`, items.String(), next)
	}
}

// TestListPagesHaveTheirOwnBudget: a listing whose pages each take most of
// a fleet call's budget finishes, however long the whole takes (issue 24:
// it used to end after 8 s with exit 255), and every page is told.
func TestListPagesHaveTheirOwnBudget(t *testing.T) {
	shortBudgets(t) // RoleFleet: 1 s a call
	s, n := serveWeather(t, weather{"slow pages", pagedEC2(4, 5, 600*time.Millisecond, func(i int) string { return fmt.Sprint("web-", i) }, nil)})
	a := liveAWS(t, s.URL)
	var pages, told atomic.Int32
	ctx := WithPages(WithRole(context.Background(), RoleFleet), func(region string, k int) {
		pages.Add(1)
		told.Add(int32(k))
	})
	start := time.Now()
	ins, err := a.List(ctx, Filter{})
	took := time.Since(start)
	if err != nil || len(ins) != 20 {
		t.Fatalf("List = %d instances, %v after %v; want all 20", len(ins), err, took)
	}
	if took < 2*time.Second {
		t.Errorf("took %v: the pages were not slow", took)
	}
	if pages.Load() != 4 || told.Load() != 20 || n.Load() != 4 {
		t.Errorf("told of %d pages, %d instances; %d calls; want 4, 20, 4", pages.Load(), told.Load(), n.Load())
	}
	// One page slower than its budget is said in words.
	s, _ = serveWeather(t, weather{"a page too slow", pagedEC2(2, 5, 1500*time.Millisecond, func(i int) string { return "x" }, nil)})
	a = liveAWS(t, s.URL)
	_, err = a.List(WithRole(context.Background(), RoleFleet), Filter{})
	if err == nil || err.Error() != "DescribeInstances did not answer in 1s" {
		t.Errorf("a page past its budget: %v", err)
	}
}

// TestListIsWhatEC2Selects: the filter goes to EC2 as typed, terminated
// instances are asked away, and what EC2 answers is listed as it is: no
// second filter with other rules (a "*" that path.Match would stop at "/").
func TestListIsWhatEC2Selects(t *testing.T) {
	var seen []url.Values
	names := []string{"team/api", "Web 1", "web-1"}
	s, _ := serveWeather(t, weather{"ec2", pagedEC2(1, 3, 0, func(i int) string { return names[i] }, &seen)})
	a := liveAWS(t, s.URL)
	f, _ := ParseFilter("*api*")
	ins, err := a.List(context.Background(), f)
	if err != nil || len(ins) != 3 {
		t.Fatalf("List = %v, %v; want EC2's three", ins, err)
	}
	form := seen[0]
	if form.Get("Filter.1.Name") != "tag:Name" || form.Get("Filter.1.Value.1") != "*api*" || form.Get("Filter.2.Name") != "instance-state-name" {
		t.Errorf("asked %v", form)
	}
	for i := 1; form.Get(fmt.Sprintf("Filter.2.Value.%d", i)) != ""; i++ {
		if form.Get(fmt.Sprintf("Filter.2.Value.%d", i)) == "terminated" {
			t.Errorf("terminated instances asked for: %v", form)
		}
	}
	if ins[0].Name != "Web 1" || ins[2].Name != "web-1" || ins[0].Region != "us-east-1" {
		t.Errorf("sorted by name: %q %q %q, region %q", ins[0].Name, ins[1].Name, ins[2].Name, ins[0].Region)
	}
}

// listEC2 is EC2 for ListFacts: groups, ACLs and endpoints by id.
type listEC2 struct {
	EC2API
	groups    map[string]ec2types.SecurityGroup
	acls      []ec2types.NetworkAcl
	endpoints []ec2types.Ec2InstanceConnectEndpoint
	mu        sync.Mutex // ListFacts asks in parallel
	calls     map[string]int
	fail      map[string]error
}

func (e *listEC2) count(op string) {
	e.mu.Lock()
	e.calls[op]++
	e.mu.Unlock()
}

func (e *listEC2) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	e.count("DescribeSecurityGroups")
	if err := e.fail["DescribeSecurityGroups"]; err != nil {
		return nil, err
	}
	out := &ec2.DescribeSecurityGroupsOutput{}
	for _, id := range in.GroupIds {
		if g, ok := e.groups[id]; ok {
			out.SecurityGroups = append(out.SecurityGroups, g)
		}
	}
	return out, nil
}

func (e *listEC2) DescribeNetworkAcls(ctx context.Context, in *ec2.DescribeNetworkAclsInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error) {
	e.count("DescribeNetworkAcls")
	return &ec2.DescribeNetworkAclsOutput{NetworkAcls: e.acls}, nil
}

func (e *listEC2) DescribeInstanceConnectEndpoints(ctx context.Context, in *ec2.DescribeInstanceConnectEndpointsInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceConnectEndpointsOutput, error) {
	e.count("DescribeInstanceConnectEndpoints")
	return &ec2.DescribeInstanceConnectEndpointsOutput{InstanceConnectEndpoints: e.endpoints}, nil
}

type listSSM struct {
	online []string
	calls  *int
}

func (s listSSM) DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	*s.calls++
	out := &ssm.DescribeInstanceInformationOutput{}
	for _, id := range in.Filters[0].Values {
		for _, on := range s.online {
			if id == on {
				out.InstanceInformationList = append(out.InstanceInformationList, ssmtypes.InstanceInformation{InstanceId: aws.String(id), PingStatus: ssmtypes.PingStatusOnline})
			}
		}
	}
	return out, nil
}

// TestListFacts: a few calls for the whole list (SSM 50 instances at a
// time), each instance's own part of them, and a call that failed beside
// its part.
func TestListFacts(t *testing.T) {
	open22 := ec2types.SecurityGroup{GroupId: aws.String("sg-open"), IpPermissions: []ec2types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}
	web := ec2types.SecurityGroup{GroupId: aws.String("sg-web")}
	e := &listEC2{calls: map[string]int{}, groups: map[string]ec2types.SecurityGroup{"sg-open": open22, "sg-web": web},
		acls: []ec2types.NetworkAcl{{NetworkAclId: aws.String("acl-1"), Associations: []ec2types.NetworkAclAssociation{{SubnetId: aws.String("subnet-1")}}}},
		endpoints: []ec2types.Ec2InstanceConnectEndpoint{{InstanceConnectEndpointId: aws.String("eice-1"), VpcId: aws.String("vpc-1"), State: "create-complete"},
			{InstanceConnectEndpointId: aws.String("eice-2"), VpcId: aws.String("vpc-2"), State: "create-complete"}}}
	ssmCalls := 0
	var ins []*Instance
	for i := range 120 {
		g := "sg-open"
		if i%2 == 1 {
			g = "sg-web"
		}
		ins = append(ins, &Instance{ID: fmt.Sprintf("i-%017d", i), State: StateRunning, PrivateIP: "10.0.0.1", VPCID: "vpc-1", SubnetID: "subnet-1",
			Interfaces: []Interface{{ID: "eni", SecurityGroups: []string{g}}}})
	}
	ins = append(ins, &Instance{ID: "i-stopped", State: StateStopped})
	a := &AWS{Config: aws.Config{Region: "us-east-1"}, EC2: e, SSM: listSSM{online: []string{ins[1].ID}, calls: &ssmCalls}}
	facts := a.ListFacts(context.Background(), ins, ListRequest{Port: 22, SourceIP: "203.0.113.5"})
	if len(facts) != 121 || ssmCalls != 3 || e.calls["DescribeSecurityGroups"] != 1 || e.calls["DescribeNetworkAcls"] != 1 || e.calls["DescribeInstanceConnectEndpoints"] != 1 {
		t.Fatalf("%d facts; calls %v, SSM %d", len(facts), e.calls, ssmCalls)
	}
	f0, f1 := facts[ins[0].ID], facts[ins[1].ID]
	if len(f0.SecurityGroups) != 1 || f0.SecurityGroups[0].ID != "sg-open" || f0.NetworkACL == nil || f0.NetworkACL.ID != "acl-1" || f0.SSM == nil || f0.SSM.Online() {
		t.Errorf("instance 0: %+v", f0)
	}
	if !f1.SSM.Online() || len(f1.Endpoints) != 1 || f1.Endpoints[0].ID != "eice-1" || f1.Source.Address != "203.0.113.5" {
		t.Errorf("instance 1: SSM %+v, endpoints %+v, source %+v", f1.SSM, f1.Endpoints, f1.Source)
	}
	if r := RunCheck(CheckSecurityGroup, f0); r.Status != Pass {
		t.Errorf("security-group over instance 0's facts: %+v", r)
	}
	if st := facts["i-stopped"]; st.Instance == nil || st.SecurityGroups != nil || st.SSM != nil {
		t.Errorf("a stopped instance: %+v", st)
	}
	// A call that failed is said beside its part; the checks say unknown.
	e.fail = map[string]error{"DescribeSecurityGroups": fmt.Errorf("boom")}
	facts = a.ListFacts(context.Background(), ins[:1], ListRequest{Port: 22, SourceIP: "203.0.113.5"})
	if f := facts[ins[0].ID]; f.SecurityGroupsErr == nil || RunCheck(CheckSecurityGroup, f).Status != Unknown {
		t.Errorf("with DescribeSecurityGroups failing: %+v", f)
	}
}
