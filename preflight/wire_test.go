package preflight

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDeniedCallOverTheWire answers EC2 calls with a real
// UnauthorizedOperation error document and checks that the SDK's error is
// classified as a denial naming the permission, and the check is unknown.
func TestDeniedCallOverTheWire(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("Action") == "DescribeSecurityGroups" {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>req-1</RequestID></Response>`))
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	a, err := LoadAWS(context.Background(), "", "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	_, apiErr := a.securityGroups(context.Background(), []string{"sg-1"})
	if apiErr == nil || !apiErr.Denied || apiErr.Permission != "ec2:DescribeSecurityGroups" || apiErr.Code != "UnauthorizedOperation" {
		t.Fatalf("securityGroups error = %+v, want a denial of ec2:DescribeSecurityGroups", apiErr)
	}
	f := base()
	f.SecurityGroups, f.SecurityGroupsErr = nil, apiErr
	r := result(t, f, "security-group")
	if r.Status != Unknown || !strings.Contains(r.Fix, "ec2:DescribeSecurityGroups") {
		t.Errorf("security-group = %s (%s, fix %q), want unknown naming the permission", r.Status, r.Summary, r.Fix)
	}
}
