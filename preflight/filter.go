package preflight

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ssh/ec2ssh/failure"
)

// A --list or --all FILTER is one of EC2's own DescribeInstances filters
// (issue 24): it is sent to EC2 as typed and means exactly what EC2 makes
// of it, at any fleet size. Nothing here filters again with other rules.
// EC2's wildcards, from the EC2 API reference (Filter) and the SDKs'
// documentation of it: values are case-sensitive; "*" matches any run of
// characters, "/" and spaces included; "?" matches exactly one character;
// a backslash makes the next "*", "?" or "\" literal. Several values of
// one filter are ORed, several filters ANDed.

// Filter selects instances: the Name tag's value (a pattern: "web-*"), a
// tag's value ("tag:Env=prod", a pattern too), an instance id, or nothing
// (every instance).
type Filter struct {
	NameGlob string
	TagKey   string
	TagGlob  string
	ID       string
}

// ParseFilter reads a --list or --all filter. "" and "*" select every
// instance, named or not; "tag:Key=Value" a tag (the value after the first
// "=", wildcards allowed; the key exact, as EC2's tag:<key> filter takes
// it); an instance id that instance; anything else is a pattern on the
// Name tag. Its only error (failure.Config) is a tag filter without a key
// or an "=".
func ParseFilter(s string) (Filter, error) {
	switch {
	case s == "" || s == "*":
		return Filter{}, nil
	case strings.HasPrefix(s, "tag:"):
		k, v, ok := strings.Cut(s[4:], "=")
		if !ok || k == "" {
			return Filter{}, failure.Configf("write it as tag:Key=Value (the value may use * and ?; tag:Key=* for any value)", "bad filter %q", s)
		}
		return Filter{TagKey: k, TagGlob: v}, nil
	case ClassifyDest(s) == DestID:
		return Filter{ID: s}, nil
	}
	return Filter{NameGlob: s}, nil
}

// Named reports whether f selects instances by their Name alone (a Name
// pattern, or every instance): then a listing holds every instance of each
// name it shows, in each region it asked, and can stand for resolving
// those names.
func (f Filter) Named() bool { return f.ID == "" && f.TagKey == "" }

// Matches reports whether EC2 would select in with f (see EC2Match). The
// fleet's own listing never calls it: EC2 filters. It is here for
// stand-ins (tests' fake regions) that must select as EC2 does.
func (f Filter) Matches(in *Instance) bool {
	switch {
	case f.ID != "":
		return in.ID == f.ID
	case f.TagKey != "":
		v, ok := in.Tags[f.TagKey]
		return ok && EC2Match(f.TagGlob, v)
	case f.NameGlob != "":
		v, ok := in.Tags["Name"]
		if !ok && in.Name != "" {
			v, ok = in.Name, true
		}
		return ok && EC2Match(f.NameGlob, v)
	}
	return true
}

// listedStates are the states a listing asks EC2 for: every one but
// terminated (an instance EC2 still shows for up to an hour after it is
// gone, which nothing can reach or start again).
var listedStates = []string{string(StatePending), string(StateRunning), string(StateShuttingDown), string(StateStopping), string(StateStopped)}

// EC2Filters are the DescribeInstances parameters that select what f
// selects, terminated instances left out: the ids, and the filters.
func (f Filter) EC2Filters() ([]string, []ec2types.Filter) {
	states := ec2types.Filter{Name: aws.String("instance-state-name"), Values: listedStates}
	switch {
	case f.ID != "":
		return []string{f.ID}, []ec2types.Filter{states}
	case f.TagKey != "":
		return nil, []ec2types.Filter{{Name: aws.String("tag:" + f.TagKey), Values: []string{f.TagGlob}}, states}
	case f.NameGlob != "":
		return nil, []ec2types.Filter{{Name: aws.String("tag:Name"), Values: []string{f.NameGlob}}, states}
	}
	return nil, []ec2types.Filter{states}
}

// EC2Match reports whether EC2 matches value with the filter value
// pattern: "*" any run of characters (none, "/" and " " included), "?"
// exactly one, "\*" "\?" "\\" those characters; anything else itself,
// case and all. A backslash before any other character stands for itself
// (what EC2 does there is not documented).
func EC2Match(pattern, value string) bool {
	p, v := []rune(pattern), []rune(value)
	// Iterative matching with one backtrack point for the last "*", as
	// path.Match does, over tokens decoded on the fly.
	pi, vi := 0, 0
	starP, starV := -1, 0
	for vi < len(v) {
		if pi < len(p) {
			tok, lit, n := ec2Token(p, pi)
			switch {
			case tok == '*' && !lit:
				starP, starV = pi+n, vi
				pi += n
				continue
			case tok == '?' && !lit, tok == v[vi]:
				pi += n
				vi++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starV++
		pi, vi = starP, starV
	}
	for pi < len(p) {
		tok, lit, n := ec2Token(p, pi)
		if tok != '*' || lit {
			return false
		}
		pi += n
	}
	return true
}

// ec2Token is the pattern's token at i: the character it stands for,
// whether it is literal (escaped), and how many runes it takes.
func ec2Token(p []rune, i int) (rune, bool, int) {
	if p[i] == '\\' && i+1 < len(p) && (p[i+1] == '*' || p[i+1] == '?' || p[i+1] == '\\') {
		return p[i+1], true, 2
	}
	return p[i], p[i] != '*' && p[i] != '?', 1
}
