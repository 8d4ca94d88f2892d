package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Target names what was checked, for reports.
type Target struct {
	InstanceID string `json:"instance_id"`
	Name       string `json:"name"`
	Address    string `json:"address"`
	Region     string `json:"region"`
}

// Report is --diagnose's answer (SPEC.md: the JSON object).
type Report struct {
	Target Target   `json:"target"`
	Checks []Result `json:"checks"`
	// Verdict is the answer for the way in that was chosen (--via; direct
	// SSH by default); Paths the answer for each way in.
	Verdict Verdict   `json:"verdict"`
	Paths   []Verdict `json:"paths"`
	// ConsoleTail is the end of the console output when the status checks
	// fail: what went wrong at boot, seen without logging in.
	ConsoleTail []string `json:"console_tail,omitempty"`
}

// Path is a way in.
type Path string

// The ways in a report judges.
const (
	PathDirect Path = "direct" // SSH to the address, port 22 (or -p)
	PathSSM    Path = "ssm"    // SSH over an SSM port session
	PathEICE   Path = "eice"   // SSH through an EC2 Instance Connect Endpoint
)

// Verdict is what the checks say of one way in: pass only when every
// check that matters for it passed (or warned), fail when one of them
// failed, unknown when none failed but one could not decide. It never says
// pass while a check that matters is unknown or failed.
type Verdict struct {
	Path    Path      `json:"path"`
	Status  Status    `json:"status"`
	Summary string    `json:"summary"`
	Checks  []CheckID `json:"checks"`            // the checks that matter for it
	Failed  []CheckID `json:"failed,omitempty"`  // those that failed
	Unknown []CheckID `json:"unknown,omitempty"` // those that could not decide
}

// PathChecks are the checks that matter for a way in. Every way needs the
// instance running and healthy, the key and the user (SSH runs over all of
// them) and a sound system inside; the direct way also needs the network
// path, the groups, the network ACL and sshd answering on the port; the SSM
// way its agent; the endpoint way its endpoint. Without an instance only
// the port matters.
func PathChecks(p Path, instance bool) []CheckID {
	if !instance {
		return []CheckID{CheckSSHD}
	}
	common := []CheckID{CheckCredentials, CheckInstanceState, CheckStatusChecks}
	tail := []CheckID{CheckKeyPair, CheckLoginUser, CheckInstanceOS}
	var own []CheckID
	switch p {
	case PathSSM:
		own = []CheckID{CheckSSMAgent}
	case PathEICE:
		own = []CheckID{CheckEICE}
	default:
		own = []CheckID{CheckNetworkPath, CheckSecurityGroup, CheckNetworkACL, CheckSSHD}
	}
	return append(append(append([]CheckID(nil), common...), own...), tail...)
}

var pathNames = map[Path]string{PathDirect: "direct SSH", PathSSM: "SSH over SSM", PathEICE: "SSH through an EC2 Instance Connect Endpoint"}

// judgePath judges one way in from the results.
func judgePath(p Path, results []Result, instance bool) Verdict {
	v := Verdict{Path: p, Status: Pass, Checks: PathChecks(p, instance)}
	byID := map[CheckID]Result{}
	for _, r := range results {
		byID[r.ID] = r
	}
	var first *Result
	var warned []string
	for _, id := range v.Checks {
		r, ok := byID[id]
		switch {
		case !ok:
			continue
		case r.Status == Fail:
			v.Failed = append(v.Failed, id)
			if v.Status != Fail {
				v.Status, first = Fail, &r
			}
		case r.Status == Unknown:
			v.Unknown = append(v.Unknown, id)
			if v.Status == Pass {
				v.Status, first = Unknown, &r
			}
		case r.Status == Warn:
			warned = append(warned, string(id))
		}
	}
	name := pathNames[p]
	switch v.Status {
	case Fail:
		v.Summary = fmt.Sprintf("%s will not work: %s: %s", name, first.ID, first.Summary)
	case Unknown:
		v.Summary = fmt.Sprintf("%s could not be confirmed: %s could not decide: %s", name, first.ID, first.Summary)
	default:
		v.Summary = name + " should work: every check that matters for it passed"
		if len(warned) > 0 {
			v.Summary += " (warnings: " + strings.Join(warned, ", ") + ")"
		}
	}
	return v
}

// NewReport runs the checks over f; its verdict is for direct SSH until
// Choose says otherwise.
func NewReport(f *Facts, address string) *Report {
	t := Target{Region: f.Region, Address: address}
	if f.Instance != nil {
		t.InstanceID, t.Name = f.Instance.ID, f.Instance.Name
	}
	r := &Report{Target: t, Checks: RunAll(f), ConsoleTail: f.ConsoleTail}
	for _, p := range []Path{PathDirect, PathSSM, PathEICE} {
		if p != PathDirect && f.Instance == nil {
			continue
		}
		r.Paths = append(r.Paths, judgePath(p, r.Checks, f.Instance != nil))
	}
	r.Verdict = r.Paths[0]
	return r
}

// Choose makes the verdict the one for way p (--via).
func (r *Report) Choose(p Path) {
	for _, v := range r.Paths {
		if v.Path == p {
			r.Verdict = v
		}
	}
}

// ExitStatus is --diagnose's exit status: 1 when some check failed, 2
// when none failed but the chosen way in could not be confirmed (a check
// that matters for it could not decide), 0 when it should work.
func (r *Report) ExitStatus() int {
	switch {
	case len(r.Failed()) > 0:
		return 1
	case r.Verdict.Status != Pass:
		return 2
	}
	return 0
}

// FirstFailed returns the first of ids (in their order) whose check
// failed, or nil.
func (r *Report) FirstFailed(ids []CheckID) *Result {
	for _, id := range ids {
		if c, ok := r.Result(id); ok && c.Status == Fail {
			return &c
		}
	}
	return nil
}

// Failed returns the checks that failed.
func (r *Report) Failed() []Result {
	var out []Result
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// Result returns the check with the given id.
func (r *Report) Result(id CheckID) (Result, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Result{}, false
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "route 0.0.0.0/0 -> igw-1", not \u003e
	return enc.Encode(r)
}

var marks = map[Status]struct{ sym, color string }{
	Pass: {"✓", "\033[32m"}, Fail: {"✗", "\033[31m"}, Warn: {"!", "\033[33m"}, Unknown: {"?", "\033[35m"}, Skip: {"-", "\033[2m"},
}

// WriteTable writes a line per check and then the fixes; color adds ANSI
// colours (for a terminal).
func (r *Report) WriteTable(w io.Writer, color bool) {
	name := r.Target.InstanceID
	if r.Target.Name != "" {
		name = r.Target.Name + " (" + r.Target.InstanceID + ")"
	}
	if name == "" {
		name = r.Target.Address
	}
	fmt.Fprintf(w, "%s  %s  %s\n", Sanitize(name), Sanitize(r.Target.Address), Sanitize(r.Target.Region))
	for _, c := range r.Checks {
		m := marks[c.Status]
		sym := m.sym
		if color {
			sym = m.color + sym + "\033[0m"
		}
		fmt.Fprintf(w, "  %s %-15s %s\n", sym, c.ID, Sanitize(c.Summary))
	}
	mark := marks[r.Verdict.Status]
	sym := mark.sym
	if color {
		sym = mark.color + sym + "\033[0m"
	}
	fmt.Fprintf(w, "\n%s %s\n", sym, Sanitize(r.Verdict.Summary))
	var fixes []string
	for _, c := range r.Checks {
		if c.Fix != "" && (c.Status == Fail || c.Status == Warn || c.Status == Unknown) {
			fixes = append(fixes, fmt.Sprintf("  %s: %s", c.ID, Sanitize(c.Fix)))
		}
	}
	if len(fixes) > 0 {
		fmt.Fprintf(w, "\nTo fix:\n%s\n", strings.Join(fixes, "\n"))
	}
	if len(r.ConsoleTail) > 0 {
		fmt.Fprintf(w, "\nThe console's last lines (aws ec2 get-console-output --latest):\n")
		for _, l := range r.ConsoleTail {
			fmt.Fprintf(w, "  | %s\n", Sanitize(l))
		}
	}
}
