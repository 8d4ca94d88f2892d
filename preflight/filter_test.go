package preflight

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ec2ssh/ec2ssh/failure"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in   string
		want Filter
		bad  bool
	}{
		{in: "", want: Filter{}},
		{in: "*", want: Filter{}},
		{in: "web-*", want: Filter{NameGlob: "web-*"}},
		{in: "*/api", want: Filter{NameGlob: "*/api"}},
		{in: "web[1]", want: Filter{NameGlob: "web[1]"}}, // not a character class: EC2 has none
		{in: "db server ?", want: Filter{NameGlob: "db server ?"}},
		{in: "tag:Env=prod", want: Filter{TagKey: "Env", TagGlob: "prod"}},
		{in: "tag:Env=pr*d", want: Filter{TagKey: "Env", TagGlob: "pr*d"}},
		{in: "tag:Team=a=b", want: Filter{TagKey: "Team", TagGlob: "a=b"}},
		{in: "tag:aws:cloudformation:stack-name=*", want: Filter{TagKey: "aws:cloudformation:stack-name", TagGlob: "*"}},
		{in: "i-0123456789abcdef0", want: Filter{ID: "i-0123456789abcdef0"}},
		{in: "tag:Env", bad: true},
		{in: "tag:=prod", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseFilter(tt.in)
		if tt.bad {
			if failure.KindOf(err) != failure.Config || failure.HintOf(err) == "" {
				t.Errorf("ParseFilter(%q) = %+v, %v; want a Config error with a hint", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseFilter(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestEC2Match pins EC2's wildcard semantics (the API reference's Filter:
// "*" zero or more characters, "?" exactly one, a backslash escapes; values
// case-sensitive), which the lab's EC2 front holds moto to.
func TestEC2Match(t *testing.T) {
	tests := []struct {
		pattern, value string
		want           bool
	}{
		{"*", "", true},
		{"*", "a/b c", true},
		{"*/api", "team/x/api", true},
		{"*api", "team/api", true},
		{"web-*", "web-", true},
		{"web-*", "Web-1", false},
		{"web-?", "web-1", true},
		{"web-?", "web-", false},
		{"web-?", "web-10", false},
		{"?", "é", true},
		{"a?c", "a/c", true},
		{`\*`, "*", true},
		{`\*`, "x", false},
		{`a\?`, "a?", true},
		{`a\?`, "ab", false},
		{`a\\b`, `a\b`, true},
		{`a\\*`, `a\bcd`, true},
		{`a\b`, `a\b`, true}, // an escape of nothing special stands for itself
		{"[ab]", "a", false},
		{"[ab]", "[ab]", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"*-*", "db-1", true},
		{"db server ?", "db server 3", true},
		{"", "", true},
		{"", "a", false},
	}
	for _, tt := range tests {
		if got := EC2Match(tt.pattern, tt.value); got != tt.want {
			t.Errorf("EC2Match(%q, %q) = %v, want %v", tt.pattern, tt.value, got, tt.want)
		}
	}
}

func TestEC2Filters(t *testing.T) {
	for _, tt := range []struct {
		in        string
		ids, want []string
	}{
		{"", nil, []string{"instance-state-name"}},
		{"web-*", nil, []string{"tag:Name=web-*", "instance-state-name"}},
		{"tag:Env=p*", nil, []string{"tag:Env=p*", "instance-state-name"}},
		{"i-0123456789abcdef0", []string{"i-0123456789abcdef0"}, []string{"instance-state-name"}},
	} {
		f, _ := ParseFilter(tt.in)
		ids, filters := f.EC2Filters()
		var got []string
		for _, fl := range filters {
			name := aws.ToString(fl.Name)
			if name == "instance-state-name" {
				if slices.Contains(fl.Values, "terminated") || !slices.Contains(fl.Values, "stopped") {
					t.Errorf("%q: states %v", tt.in, fl.Values)
				}
				got = append(got, name)
				continue
			}
			got = append(got, name+"="+strings.Join(fl.Values, ","))
		}
		if !slices.Equal(ids, tt.ids) || !slices.Equal(got, tt.want) {
			t.Errorf("EC2Filters(%q) = %v, %v; want %v, %v", tt.in, ids, got, tt.ids, tt.want)
		}
	}
}

// FuzzEscapeEC2: a destination is looked up as itself: its escaped form
// matches it and nothing longer.
func FuzzEscapeEC2(f *testing.F) {
	for _, s := range []string{"web-1", "a*b", `a\b`, "?", `\*`, "team/api x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := EscapeEC2(s)
		if !EC2Match(p, s) {
			t.Errorf("EC2Match(EscapeEC2(%q)=%q, itself) = false", s, p)
		}
		if EC2Match(p, s+"x") || EC2Match(p, "x"+s) {
			t.Errorf("EC2Match(EscapeEC2(%q)=%q) matches a longer value", s, p)
		}
	})
}
