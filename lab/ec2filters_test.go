package lab

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestMotoPattern: EC2's filter values as the fnmatch patterns moto needs
// to answer as EC2 does (ec2filters.go; the e2e names tests hold moto,
// through the front, to EC2's rule).
func TestMotoPattern(t *testing.T) {
	for _, tt := range []struct{ ec2, moto string }{
		{"web-*", "web-*"},
		{"*/api", "*/api"},
		{"db-?", "db-?"},
		{"web[1]", "web[[]1]"},
		{`a\*b`, "a[*]b"},
		{`a\?`, "a[?]"},
		{`a\\b`, `a[\]b`},
		{`a\b`, `a[\]b`},
		{`\\*`, `[\]*`},
		{"", ""},
	} {
		if got := MotoPattern(tt.ec2); got != tt.moto {
			t.Errorf("MotoPattern(%q) = %q, want %q", tt.ec2, got, tt.moto)
		}
	}
	body := []byte("Action=DescribeInstances&Filter.1.Name=tag%3AName&Filter.1.Value.1=web%5B1%5D&Filter.2.Name=instance-state-name&Filter.2.Value.1=running")
	form, _ := url.ParseQuery(string(body))
	_, got := asEC2Filters(body, form)
	if got.Get("Filter.1.Value.1") != "web[[]1]" || got.Get("Filter.2.Value.1") != "running" {
		t.Errorf("asEC2Filters = %v", got)
	}
}

func TestNamesWorldSize(t *testing.T) {
	if n := NamesWorldSize(); n < 1000 {
		t.Errorf("the names world has %d instances, want at least 1000", n)
	}
}

// TestAnsweredAsEC2: DescribeNetworkAcls for several subnets is asked one
// subnet at a time and the ACLs merged, each once, whole.
func TestAnsweredAsEC2(t *testing.T) {
	acl := func(id, subnet string) string {
		return `<item><networkAclId>` + id + `</networkAclId><entrySet><item><ruleNumber>100</ruleNumber></item></entrySet>` +
			`<associationSet><item><subnetId>` + subnet + `</subnetId></item></associationSet></item>`
	}
	var asked []string
	moto := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		asked = append(asked, form.Get("Filter.1.Value.1")+" "+r.Header.Get("Authorization"))
		items := acl("acl-default", "subnet-a")
		if form.Get("Filter.1.Value.1") == "subnet-c" {
			items = acl("acl-c", "subnet-c")
		}
		fmt.Fprintf(w, `<DescribeNetworkAclsResponse><requestId>r</requestId><networkAclSet>%s</networkAclSet></DescribeNetworkAclsResponse>`, items)
	}))
	defer moto.Close()
	form := url.Values{"Action": {"DescribeNetworkAcls"}, "Filter.1.Name": {"association.subnet-id"},
		"Filter.1.Value.1": {"subnet-a"}, "Filter.1.Value.2": {"subnet-c"}, "Filter.1.Value.3": {"subnet-a2"}}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA/20260101/eu-west-1/ec2/aws4_request")
	w := httptest.NewRecorder()
	if !answeredAsEC2(w, req, form, moto.URL) {
		t.Fatal("not answered")
	}
	body := w.Body.String()
	if strings.Count(body, "<networkAclId>acl-default</networkAclId>") != 1 || strings.Count(body, "<networkAclId>acl-c</networkAclId>") != 1 ||
		!strings.Contains(body, "<subnetId>subnet-c</subnetId>") || !strings.Contains(body, "<ruleNumber>100</ruleNumber>") {
		t.Errorf("answer: %s", body)
	}
	if len(asked) != 3 || !strings.Contains(asked[0], "eu-west-1") {
		t.Errorf("asked moto %q", asked)
	}
	one := url.Values{"Action": {"DescribeNetworkAcls"}, "Filter.1.Name": {"association.subnet-id"}, "Filter.1.Value.1": {"subnet-a"}}
	if answeredAsEC2(httptest.NewRecorder(), req, one, moto.URL) {
		t.Error("one subnet is moto's to answer")
	}
}
