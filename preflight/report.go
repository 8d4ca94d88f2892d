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
	// ConsoleTail is the end of the console output when the status checks
	// fail: what went wrong at boot, seen without logging in.
	ConsoleTail []string `json:"console_tail,omitempty"`
}

// NewReport runs the checks over f.
func NewReport(f *Facts, address string) *Report {
	t := Target{Region: f.Region, Address: address}
	if f.Instance != nil {
		t.InstanceID, t.Name = f.Instance.ID, f.Instance.Name
	}
	return &Report{Target: t, Checks: RunAll(f), ConsoleTail: f.ConsoleTail}
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
