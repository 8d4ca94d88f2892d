package preflight

import (
	"encoding/json"
	"fmt"
	"strings"
)

// What the SSM agent's role must allow, judged from the role's policy
// documents as IAM evaluates them (IAM User Guide, "Policy evaluation
// logic"): an explicit Deny in any policy wins; otherwise an identity
// policy (managed or inline) must Allow, and a permissions boundary, when
// the role has one, must Allow too. Actions and NotAction match with IAM's
// wildcards (* and ?, case-insensitive). A statement with a Condition, a
// policy that could not be read or parsed, leaves an action undecided:
// never allowed, never denied on a guess. Service control policies and
// session policies are not readable from the account and are not judged.

// The actions the agent's own calls need ("Reference: ec2messages,
// ssmmessages, and other API operations", Systems Manager User Guide).
var (
	// AgentRegisterActions: the agent registers and pings (Online).
	AgentRegisterActions = []string{"ssm:UpdateInstanceInformation"}
	// AgentSessionActions: the agent's control and data channels, which
	// every Session Manager session (ec2ssh's included) rides.
	AgentSessionActions = []string{"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
		"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"}
	// AgentMessageActions: Run Command's delivery for agents that do not
	// use ssmmessages for it; ec2ssh's sessions do not need them.
	AgentMessageActions = []string{"ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
		"ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply"}
)

// knownPolicies are AWS managed policies whose published documents stand in
// when the caller may not read them (iam:GetPolicyVersion denied): only
// their statements about the agent's actions, as AWS publishes them.
var knownPolicies = map[string]string{
	SSMCorePolicy: `{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Action":["ssm:DescribeAssociation","ssm:GetDeployablePatchSnapshotForInstance","ssm:GetDocument","ssm:DescribeDocument","ssm:GetManifest","ssm:GetParameter","ssm:GetParameters","ssm:ListAssociations","ssm:ListInstanceAssociations","ssm:PutInventory","ssm:PutComplianceItems","ssm:PutConfigurePackageResult","ssm:UpdateAssociationStatus","ssm:UpdateInstanceAssociationStatus","ssm:UpdateInstanceInformation"],"Resource":"*"},
{"Effect":"Allow","Action":["ssmmessages:CreateControlChannel","ssmmessages:CreateDataChannel","ssmmessages:OpenControlChannel","ssmmessages:OpenDataChannel"],"Resource":"*"},
{"Effect":"Allow","Action":["ec2messages:AcknowledgeMessage","ec2messages:DeleteMessage","ec2messages:FailMessage","ec2messages:GetEndpoint","ec2messages:GetMessages","ec2messages:SendReply"],"Resource":"*"}]}`,
	"arn:aws:iam::aws:policy/AdministratorAccess": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`,
}

// Grant is what the role's policies say about one action.
type Grant struct {
	Action  string
	Allowed bool   // allowed, and nothing denies it
	Denied  bool   // an explicit Deny applies
	By      string // the policy (and statement) that allows or denies
	// Undecided says why the action could be neither allowed nor
	// refused: a policy not read, a condition not evaluated.
	Undecided string
}

// statement is one policy statement, its lists normalised.
type statement struct {
	Sid                            string
	Effect                         string
	Action, NotAction              []string
	Resource, NotResource          []string
	HasAction, HasResource, HasCnd bool
}

// parsePolicy reads a policy document's statements.
func parsePolicy(doc string) ([]statement, error) {
	var p struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return nil, err
	}
	type raw struct {
		Sid         string
		Effect      string
		Action      json.RawMessage
		NotAction   json.RawMessage
		Resource    json.RawMessage
		NotResource json.RawMessage
		Condition   json.RawMessage
	}
	var rs []raw
	if err := json.Unmarshal(p.Statement, &rs); err != nil {
		var one raw
		if err := json.Unmarshal(p.Statement, &one); err != nil {
			return nil, fmt.Errorf("no statements")
		}
		rs = []raw{one}
	}
	var out []statement
	for _, r := range rs {
		s := statement{Sid: r.Sid, Effect: r.Effect, HasAction: len(r.Action) > 0, HasResource: len(r.Resource) > 0,
			HasCnd: len(r.Condition) > 0 && string(r.Condition) != "null" && string(r.Condition) != "{}"}
		var err error
		for _, f := range []struct {
			raw json.RawMessage
			to  *[]string
		}{{r.Action, &s.Action}, {r.NotAction, &s.NotAction}, {r.Resource, &s.Resource}, {r.NotResource, &s.NotResource}} {
			if *f.to, err = stringList(f.raw); err != nil {
				return nil, err
			}
		}
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return nil, fmt.Errorf("statement with effect %q", s.Effect)
		}
		out = append(out, s)
	}
	return out, nil
}

// stringList reads a policy element that is a string or a list of them.
func stringList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("not a string or a list of strings: %s", raw)
	}
	return many, nil
}

// wildMatch matches s against an IAM pattern (* any run, ? one
// character), case-insensitively when fold.
func wildMatch(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	// Iterative glob matching with backtracking on the last star.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if wildMatch(p, s, fold) {
			return true
		}
	}
	return false
}

// applies reports whether the statement covers action on resource, its
// condition aside (the caller weighs that).
func (s statement) applies(action, resource string) bool {
	switch {
	case s.HasAction && !anyMatch(s.Action, action, true):
		return false
	case !s.HasAction && anyMatch(s.NotAction, action, true):
		return false
	case !s.HasAction && len(s.NotAction) == 0:
		return false
	}
	switch {
	case s.HasResource && !anyMatch(s.Resource, resource, false):
		return false
	case !s.HasResource && len(s.NotResource) > 0 && anyMatch(s.NotResource, resource, false):
		return false
	case !s.HasResource && len(s.NotResource) == 0:
		return false
	}
	return true
}

// Evaluate judges each action against the role's documents. resource is
// the ARN the action acts on ("*" for actions that have no resource).
func (r *Role) Evaluate(actions []string, resource func(action string) string) []Grant {
	type parsed struct {
		doc   PolicyDoc
		stmts []statement
		bad   string
	}
	var docs []parsed
	for _, d := range r.Documents {
		p := parsed{doc: d}
		switch {
		case d.Err != nil:
			p.bad = d.Name + " could not be read (" + d.Err.Error() + ")"
		default:
			st, err := parsePolicy(d.Document)
			if err != nil {
				p.bad = d.Name + " could not be parsed (" + err.Error() + ")"
			}
			p.stmts = st
		}
		docs = append(docs, p)
	}
	name := func(d PolicyDoc, s statement) string {
		n := policyName(d)
		if s.Sid != "" {
			n += " (statement " + s.Sid + ")"
		}
		return n
	}
	var out []Grant
	for _, action := range actions {
		res := resource(action)
		g := Grant{Action: action}
		var allowBy, boundaryBy, maybeAllow, maybeBoundary, maybeDeny, unread string
		hasBoundary := false
		for _, p := range docs {
			boundary := p.doc.Kind == PolicyBoundary
			hasBoundary = hasBoundary || boundary
			if p.bad != "" {
				if unread == "" {
					unread = p.bad
				}
				continue
			}
			for _, s := range p.stmts {
				if !s.applies(action, res) {
					continue
				}
				switch {
				case s.Effect == "Deny" && !s.HasCnd:
					if !g.Denied {
						g.Denied, g.By = true, name(p.doc, s)
					}
				case s.Effect == "Deny":
					if maybeDeny == "" {
						maybeDeny = name(p.doc, s) + " denies it under a condition ec2ssh does not evaluate"
					}
				case s.HasCnd && boundary:
					if maybeBoundary == "" {
						maybeBoundary = name(p.doc, s) + " allows it only under a condition ec2ssh does not evaluate"
					}
				case s.HasCnd:
					if maybeAllow == "" {
						maybeAllow = name(p.doc, s) + " allows it only under a condition ec2ssh does not evaluate"
					}
				case boundary:
					if boundaryBy == "" {
						boundaryBy = name(p.doc, s)
					}
				default:
					if allowBy == "" {
						allowBy = name(p.doc, s)
					}
				}
			}
		}
		switch {
		case g.Denied:
		case maybeDeny != "":
			g.Undecided = maybeDeny
		case unread != "":
			g.Undecided = unread
		case allowBy == "" && maybeAllow != "":
			g.Undecided = maybeAllow
		case allowBy != "" && hasBoundary && boundaryBy == "" && maybeBoundary != "":
			g.Undecided = maybeBoundary
		case allowBy != "" && hasBoundary && boundaryBy == "":
			// The boundary caps the role: not allowed there, not allowed.
			g.By = "the permissions boundary"
		case allowBy != "":
			g.Allowed, g.By = true, allowBy
		}
		out = append(out, g)
	}
	return out
}

// policyName is how a policy is named to the user: a managed policy by its
// name (the ARN's last part), an inline one as such.
func policyName(d PolicyDoc) string {
	switch d.Kind {
	case PolicyInline:
		return "inline policy " + d.Name
	case PolicyBoundary:
		return "permissions boundary " + d.Name[strings.LastIndexByte(d.Name, '/')+1:]
	}
	return "policy " + d.Name[strings.LastIndexByte(d.Name, '/')+1:]
}
