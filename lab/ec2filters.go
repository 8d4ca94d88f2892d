package lab

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
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

// moto also matches a filter with several values against a list-valued
// attribute only when the attribute's values are a subset or a superset of
// the filter's (moto/ec2/utils.py, is_filter_matching); EC2 matches when
// any value is among them. ec2ssh asks DescribeNetworkAcls for the ACLs
// of several subnets at once (association.subnet-id), and a VPC's default
// ACL, associated with other subnets too, would be left out: the front
// asks moto once per subnet and answers with the union (answeredAsEC2).

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

// answeredAsEC2 answers, in place of moto, a request moto would answer
// unlike EC2: DescribeNetworkAcls with several association.subnet-id
// values, asked of moto one value at a time (the request's own headers,
// so its region), the ACLs merged. It reports whether it answered.
func answeredAsEC2(w http.ResponseWriter, r *http.Request, form url.Values, motoURL string) bool {
	if form.Get("Action") != "DescribeNetworkAcls" {
		return false
	}
	n := ""
	for i := 1; form.Get(fmt.Sprintf("Filter.%d.Name", i)) != ""; i++ {
		if form.Get(fmt.Sprintf("Filter.%d.Name", i)) == "association.subnet-id" {
			n = fmt.Sprint(i)
		}
	}
	var values []string
	for j := 1; n != "" && form.Get("Filter."+n+".Value."+fmt.Sprint(j)) != ""; j++ {
		values = append(values, form.Get("Filter."+n+".Value."+fmt.Sprint(j)))
	}
	if len(values) < 2 {
		return false
	}
	var items []string
	seen := map[string]bool{}
	for _, v := range values {
		one := url.Values{}
		for k, vs := range form {
			if !strings.HasPrefix(k, "Filter."+n+".Value.") {
				one[k] = vs
			}
		}
		one.Set("Filter."+n+".Value.1", v)
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, motoURL+"/", strings.NewReader(one.Encode()))
		req.Header = r.Header.Clone()
		req.Header.Del("Content-Length")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			w.WriteHeader(resp.StatusCode)
			w.Write(b)
			return true
		}
		var acls struct {
			Items []struct {
				ID    string `xml:"networkAclId"`
				Inner string `xml:",innerxml"`
			} `xml:"networkAclSet>item"`
		}
		if err := xml.NewDecoder(bytes.NewReader(b)).Decode(&acls); err != nil {
			http.Error(w, "lab: moto's DescribeNetworkAcls answer: "+err.Error(), http.StatusBadGateway)
			return true
		}
		for _, it := range acls.Items {
			if !seen[it.ID] {
				seen[it.ID] = true
				items = append(items, "<item>"+it.Inner+"</item>")
			}
		}
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<DescribeNetworkAclsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>lab</requestId><networkAclSet>%s</networkAclSet></DescribeNetworkAclsResponse>`, strings.Join(items, ""))
	return true
}
