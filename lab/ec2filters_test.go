package lab

import (
	"net/url"
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
