package lab

import (
	"net/url"
	"strings"
)

// moto reads a filter value as Python's fnmatch does, which is not EC2's
// rule (issue 24). Measured against moto 5.2 in the lab:
//
//   - "[...]" is a character class in moto ("web[1]" matches "web1");
//     EC2 has no classes: "[" is itself;
//   - "\\" is two backslashes in moto; in EC2 it is one literal
//     backslash (a backslash escapes "*", "?" and itself);
//   - moto also matches a value equal to the pattern as typed, wildcards
//     and escapes included ("a\*" matches the value `a\*`); EC2 does not.
//
// "*" (across "/" and spaces), "?" (exactly one character), "\*", "\?"
// and case-sensitivity agree. The EC2 front rewrites each tag filter
// value of DescribeInstances into the fnmatch pattern that means what
// the EC2 value means, so that moto answers as EC2 would. The third
// difference remains for a tag value that equals a rewritten pattern
// (one with "[*]", "[?]", "[[]" or "[\]" in it): the generated worlds
// have none.

// asEC2Filters rewrites a DescribeInstances request's tag filter values
// (form, and the body it came from) for moto; other requests pass as
// they are.
func asEC2Filters(body []byte, form url.Values) ([]byte, url.Values) {
	if form.Get("Action") != "DescribeInstances" {
		return body, form
	}
	changed := false
	for key, vals := range form {
		// Filter.N.Value.M whose Filter.N.Name is a tag filter.
		if !strings.HasPrefix(key, "Filter.") || !strings.Contains(key, ".Value.") {
			continue
		}
		n := key[len("Filter."):strings.Index(key, ".Value.")]
		name := form.Get("Filter." + n + ".Name")
		if !strings.HasPrefix(name, "tag:") && name != "tag-value" {
			continue
		}
		for i, v := range vals {
			if p := MotoPattern(v); p != v {
				vals[i], changed = p, true
			}
		}
	}
	if !changed {
		return body, form
	}
	return []byte(form.Encode()), form
}

// MotoPattern is the fnmatch pattern (as moto reads it) that matches what
// the EC2 filter value v matches: EC2's wildcards kept, every character
// EC2 reads literally made literal for fnmatch ("[x]").
func MotoPattern(v string) string {
	var b strings.Builder
	r := []rune(v)
	lit := func(c rune) {
		switch c {
		case '*', '?', '[':
			b.WriteString("[" + string(c) + "]")
		case '\\':
			b.WriteString(`[\]`)
		default:
			b.WriteRune(c)
		}
	}
	for i := 0; i < len(r); i++ {
		switch c := r[i]; {
		case c == '\\' && i+1 < len(r) && (r[i+1] == '*' || r[i+1] == '?' || r[i+1] == '\\'):
			i++
			lit(r[i])
		case c == '*' || c == '?':
			b.WriteRune(c)
		default:
			lit(c)
		}
	}
	return b.String()
}
