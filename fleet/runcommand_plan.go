package fleet

import (
	"fmt"
	"strconv"
	"strings"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// Which instances get the command, in which calls (issue 22, "Targets"):
// a judgement made from facts already gathered (the instances EC2 listed,
// what DescribeInstanceInformation said of their agents), so every case is
// a table test.

// BatchSize is the most instance ids one SendCommand takes (InstanceIds:
// "You can specify a maximum of 50 IDs", the SendCommand API reference).
const BatchSize = 50

// Documents: the command runs as a shell script, or as a PowerShell script
// on Windows.
const (
	DocShell      = "AWS-RunShellScript"
	DocPowerShell = "AWS-RunPowerShellScript"
)

// Spec is a --parallel or --max-errors value as SendCommand takes
// MaxConcurrency and MaxErrors: a count, or a percentage of the targets.
type Spec struct {
	N       int
	Percent bool
}

func (s Spec) String() string {
	if s.Percent {
		return strconv.Itoa(s.N) + "%"
	}
	return strconv.Itoa(s.N)
}

// Of is the count s stands for among total targets: a percentage rounded
// down, as SendCommand's MaxErrors counts ("10% of 50 stops at the sixth").
func (s Spec) Of(total int) int {
	if !s.Percent {
		return s.N
	}
	return s.N * total / 100
}

// ParseSpec reads a --parallel (zero false) or --max-errors (zero true)
// value with SendCommand's own rules: MaxConcurrency
// ^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$, MaxErrors the same with 0 and
// 0% allowed, at most 7 characters. It fails with a failure.Config.
func ParseSpec(option, s string, zero bool) (Spec, error) {
	bad := failure.Configf(fmt.Sprintf("give --%s a count (such as 10) or a percentage (such as 10%%)", option), "bad --%s value %q", option, s)
	digits, pct := strings.CutSuffix(s, "%")
	if digits == "" || len(s) > 7 || strings.TrimLeft(digits, "0123456789") != "" || (len(digits) > 1 && digits[0] == '0') {
		return Spec{}, bad
	}
	n, err := strconv.Atoi(digits)
	if err != nil || (n == 0 && !zero) || (pct && n > 100) {
		return Spec{}, bad
	}
	return Spec{N: n, Percent: pct}, nil
}

// Defaults, said in --help and docs/run-command.md.
const (
	// DefaultRunCommandParallel is SendCommand's own default MaxConcurrency.
	DefaultRunCommandParallel = "50"
	// DefaultMaxErrors lets every instance run the command, as --all over
	// ssh does: a fleet query such as "grep -q x /etc/y" answers through
	// its exit status, and AWS's default (0) would stop the fleet at the
	// first instance that answers no. --max-errors 0 asks for that.
	DefaultMaxErrors = "100%"
)

// agent is what DescribeInstanceInformation says of an instance's agent.
type agent struct {
	Ping     ssmtypes.PingStatus
	Platform ssmtypes.PlatformType
}

// notRunWhy says why an instance cannot take the command now, or "" when
// it can: running, with a registered agent that is online.
func notRunWhy(in *preflight.Instance, a agent, known bool) string {
	switch {
	case !in.State.Running():
		return "the instance is " + string(in.State)
	case !known:
		return "not a managed node: no SSM agent is registered for it (agent not installed, or no instance profile allowing SSM)"
	case a.Ping != ssmtypes.PingStatusOnline:
		return "its SSM agent is not online (" + string(a.Ping) + ")"
	}
	return ""
}

// document is the SSM document for an instance: PowerShell on Windows.
func document(in *preflight.Instance, a agent) string {
	if a.Platform == ssmtypes.PlatformTypeWindows || (a.Platform == "" && strings.HasPrefix(in.Platform, "Windows")) {
		return DocPowerShell
	}
	return DocShell
}

// exactTag returns the tag a filter names with an exact value: then
// SendCommand's tag target selects what EC2's filter selected, and one
// call reaches any number of instances. Tag targets take no wildcards, so
// a pattern is sent as instance ids.
func exactTag(f preflight.Filter) (key, value string, ok bool) {
	if f.TagKey == "" || strings.ContainsAny(f.TagGlob, `*?[\`) {
		return "", "", false
	}
	return f.TagKey, f.TagGlob, true
}

// batch is one SendCommand to make.
type batch struct {
	Doc            string
	IDs            []string // instance ids; nil with a tag target
	TagKey, TagVal string
	// MaxConcurrency is a tag target's; a batch of ids gets its share of
	// the region's slots when it is sent (share).
	MaxConcurrency string
	// MaxErrors is a percentage, the same of each batch; "" when the
	// fleet's limit is a count: then each batch is sent with what is left
	// of it (ErrorBudget less the errors so far).
	MaxErrors string
}

// plan is one region's SendCommands.
type plan struct {
	Batches []batch
	// Slots is how many invocations may run at once over all the batches
	// (--parallel as a count); 0 for a tag target, where SSM paces.
	Slots int
	// ErrorBudget is how many errors (Failed or Execution Timed Out, as
	// SSM counts them) the region's run takes before no more is sent.
	ErrorBudget int
}

// planRegion decides the calls for the runnable instances of one region
// (ids in order; docs by id).
//
// A filter with an exact tag and one document becomes one tag target: SSM
// applies MaxConcurrency and MaxErrors itself. Otherwise ids go in batches
// of 50, and the fleet-wide limits are shared out so that they hold across
// the batches: the batches in flight never have more MaxConcurrency
// between them than --parallel allows (share), each batch's MaxErrors is
// what is left of the fleet's when it is sent (a percentage: the same
// percentage of each batch), and the engine stops sending, and cancels
// what has not started, once the region's errors pass ErrorBudget.
func planRegion(f preflight.Filter, ids []string, docs map[string]string, parallel, maxErrors Spec) plan {
	if len(ids) == 0 {
		return plan{}
	}
	byDoc := map[string][]string{}
	var order []string
	for _, id := range ids {
		d := docs[id]
		if _, seen := byDoc[d]; !seen {
			order = append(order, d)
		}
		byDoc[d] = append(byDoc[d], id)
	}
	budget := maxErrors.Of(len(ids))
	if key, val, ok := exactTag(f); ok && len(order) == 1 {
		return plan{Batches: []batch{{Doc: order[0], TagKey: key, TagVal: val, MaxConcurrency: parallel.String(), MaxErrors: maxErrors.String()}},
			ErrorBudget: budget}
	}
	var bs []batch
	for _, d := range order {
		group := byDoc[d]
		for start := 0; start < len(group); start += BatchSize {
			b := batch{Doc: d, IDs: group[start:min(start+BatchSize, len(group))]}
			if maxErrors.Percent {
				b.MaxErrors = maxErrors.String()
			}
			bs = append(bs, b)
		}
	}
	return plan{Batches: bs, Slots: max(1, parallel.Of(len(ids))), ErrorBudget: budget}
}

// share is the MaxConcurrency for the next batch of size ids when free
// slots are unused and unsent batches wait: the free slots spread over as
// many of those batches as can start now, at least one each; 0 when no
// slot is free. The batches in flight never hold more than the slots.
func share(free, unsent, size int) int {
	if free < 1 || unsent < 1 {
		return 0
	}
	return max(1, min(BatchSize, size, free/min(unsent, free)))
}
