package preflight

import (
	"fmt"
	"strings"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Status is a check's verdict.
type Status string

const (
	Pass    Status = "pass"
	Fail    Status = "fail"
	Warn    Status = "warn"
	Unknown Status = "unknown"
	Skip    Status = "skip"
)

// Result is one check's finding.
type Result struct {
	ID       CheckID  `json:"id"`
	Status   Status   `json:"status"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence"`
	Fix      string   `json:"fix,omitempty"`
	// Cause is the failure kind a failed check proves, when it proves
	// more than "the network does not let it through" (sshd refusing:
	// failure.Refused); Unknown otherwise.
	Cause failure.Kind `json:"-"`
	// Inside: the look inside the instance established this finding.
	Inside bool `json:"-"`
}

// Check judges Facts; it is pure and never panics on odd data.
type Check struct {
	ID  CheckID
	Run func(f *Facts) Result
}

// Checks are the checks of SPEC.md, in the order they are reported.
var Checks = []Check{
	{CheckCredentials, checkCredentials},
	{CheckInstanceState, checkInstanceState},
	{CheckStatusChecks, checkStatusChecks},
	{CheckNetworkPath, checkNetworkPath},
	{CheckSecurityGroup, checkSecurityGroup},
	{CheckNetworkACL, checkNetworkACL},
	{CheckKeyPair, checkKeyPair},
	{CheckLoginUser, checkLoginUser},
	{CheckSSHD, checkSSHD},
	{CheckInstanceOS, checkInstanceOS},
	{CheckSSMAgent, checkSSMAgent},
	{CheckEICE, checkEICE},
}

// RunAll runs every check over f. A check that panics is reported as
// unknown rather than taking ec2ssh down.
func RunAll(f *Facts) []Result {
	out := make([]Result, 0, len(Checks))
	for _, c := range Checks {
		out = append(out, runOne(c, f))
	}
	return out
}

func runOne(c Check, f *Facts) (r Result) {
	defer func() {
		if p := recover(); p != nil {
			r = Result{ID: c.ID, Status: Unknown, Summary: fmt.Sprintf("the check failed on unexpected data: %v", p)}
		}
	}()
	r = c.Run(f)
	r.ID = c.ID
	if r.Evidence == nil {
		r.Evidence = []string{}
	}
	return r
}

// unknownFrom is the result for a check whose facts an API call could not
// get: unknown, naming the permission it lacked.
func unknownFrom(e *APIError) Result {
	r := Result{Status: Unknown, Summary: "could not be checked: " + e.Error(), Evidence: []string{e.Op}}
	if e.Denied {
		r.Fix = fmt.Sprintf("grant %s to the caller's IAM identity to let ec2ssh check this", e.Permission)
	}
	return r
}

// firstErr returns the first non-nil APIError.
func firstErr(errs ...*APIError) *APIError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func joinIDs(ids []string) string { return strings.Join(ids, ", ") }
