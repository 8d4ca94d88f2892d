package fleet

import (
	"fmt"
	"sort"
	"strings"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ssh/ec2ssh/failure"
)

// What an invocation's status means for the user: one outcome, one exit
// status, one reason (issue 22, "Output"). The statuses and their meanings
// are the SSM User Guide's "Understanding command statuses"; StatusDetails
// carries the ones Status folds together (Undeliverable, Terminated,
// Delivery and Execution Timed Out).

// Outcome is how an instance's part of the run ended. The set is closed:
// a test ranges over Outcomes.
type Outcome string

const (
	Success   Outcome = "success"   // ran, exit 0
	Failed    Outcome = "failed"    // ran and failed (its exit status), or the agent could not run it
	TimedOut  Outcome = "timed-out" // ran past the execution timeout and was stopped
	Cancelled Outcome = "cancelled" // cancelled while it ran or before
	NotRun    Outcome = "not-run"   // never ran: not a managed node, stopped, undeliverable, stopped by --max-errors, …
)

// Outcomes lists every Outcome, for tests that must cover them all.
var Outcomes = []Outcome{Success, Failed, TimedOut, Cancelled, NotRun}

// Exit statuses that are ec2ssh's own, as ssh(1) has them.
const (
	ExitNotRun      = 255 // the command did not run there (ssh: "an error occurred")
	ExitInterrupted = 130 // 128 + SIGINT: the run was cancelled
)

// terminal reports whether SSM will not change an invocation's status again.
func terminal(status ssmtypes.CommandInvocationStatus) bool {
	switch status {
	case ssmtypes.CommandInvocationStatusSuccess, ssmtypes.CommandInvocationStatusFailed,
		ssmtypes.CommandInvocationStatusTimedOut, ssmtypes.CommandInvocationStatusCancelled:
		return true
	}
	return false
}

// details normalises StatusDetails: the API writes "DeliveryTimedOut" where
// the guide writes "Delivery Timed Out".
func details(s string) string { return strings.ReplaceAll(s, " ", "") }

// outcomeOf maps a terminal invocation to an outcome, the exit status the
// run takes from it, and why (for the summary). code is the plugin's
// ResponseCode: -1 when the command never started.
func outcomeOf(status ssmtypes.CommandInvocationStatus, statusDetails string, code int) (Outcome, int, string) {
	ran := func() int {
		if code >= 1 && code <= 255 {
			return code
		}
		return 1 // a Windows code past 255, or none: failed all the same
	}
	switch details(statusDetails) {
	case "Success":
		return Success, 0, ""
	case "Failed":
		if code < 0 {
			return Failed, ExitNotRun, "the agent could not run it"
		}
		return Failed, ran(), ""
	case "ExecutionTimedOut":
		return TimedOut, ExitNotRun, "stopped at the execution timeout"
	case "DeliveryTimedOut":
		return NotRun, ExitNotRun, "not delivered before the delivery timeout (is the agent online?)"
	case "Undeliverable":
		return NotRun, ExitNotRun, "undeliverable: the agent did not answer (instance stopped, or agent offline)"
	case "Terminated":
		return NotRun, ExitNotRun, "--max-errors was reached: SSM sent it no further"
	case "Cancelled":
		return Cancelled, ExitInterrupted, ""
	}
	// StatusDetails unknown to this build: judge by Status alone.
	switch status {
	case ssmtypes.CommandInvocationStatusSuccess:
		return Success, 0, ""
	case ssmtypes.CommandInvocationStatusTimedOut:
		return TimedOut, ExitNotRun, "timed out (" + statusDetails + ")"
	case ssmtypes.CommandInvocationStatusCancelled:
		return Cancelled, ExitInterrupted, "cancelled (" + statusDetails + ")"
	}
	if code < 0 {
		return Failed, ExitNotRun, fmt.Sprintf("SSM status %s (%s)", status, statusDetails)
	}
	return Failed, ran(), ""
}

// resultLabel is how the output names an instance: its Name tag, or its id.
func resultLabel(r *Result) string {
	if r.Name != "" {
		return r.Name
	}
	return r.ID
}

// summary (after "ec2ssh: ") says who succeeded, failed, timed out, was cancelled or was not
// run (and why) in the style of --all over ssh: one line of counts, then
// one line per instance that did not succeed.
func summary(rs []*Result, commands []string) string {
	exits := map[int]int{}
	counts := map[Outcome]int{}
	var bad []string
	for _, r := range rs {
		name := failure.Vis(resultLabel(r))
		switch r.Status {
		case Success, Failed:
			exits[r.Exit]++
		default:
			counts[r.Status]++
		}
		switch {
		case r.Status == Success:
		case r.Status == Failed && r.Why == "":
			bad = append(bad, fmt.Sprintf("  %s (%s): exit %d", name, r.ID, r.Exit))
		case r.Status == NotRun:
			bad = append(bad, fmt.Sprintf("  %s (%s): not run: %s", name, r.ID, failure.Vis(r.Why)))
		case r.Why == "":
			bad = append(bad, fmt.Sprintf("  %s (%s): %s", name, r.ID, r.Status))
		default:
			bad = append(bad, fmt.Sprintf("  %s (%s): %s: %s", name, r.ID, r.Status, failure.Vis(r.Why)))
		}
	}
	var codes []int
	for c := range exits {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d exit %d", exits[c], c))
	}
	for _, o := range []Outcome{TimedOut, Cancelled, NotRun} {
		if counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[o], strings.ReplaceAll(string(o), "-", " ")))
		}
	}
	via := ""
	switch len(commands) {
	case 0:
	case 1:
		via = " (Run Command " + commands[0] + ")"
	default:
		via = fmt.Sprintf(" (%d Run Commands)", len(commands))
	}
	s := fmt.Sprintf("%d instances%s: %s", len(rs), via, strings.Join(parts, ", "))
	if len(bad) > 0 {
		s += "\n" + strings.Join(bad, "\n")
	}
	return s
}

// worst is the run's exit status: the highest of the instances', as --all
// over ssh has it.
func worst(rs []*Result) int {
	w := 0
	for _, r := range rs {
		w = max(w, r.Exit)
	}
	return w
}
