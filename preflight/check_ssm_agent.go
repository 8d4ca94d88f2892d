package preflight

import (
	"fmt"
	"strings"
)

// SSMCorePolicy is the AWS managed policy that lets the SSM agent register
// and carry Session Manager sessions.
const SSMCorePolicy = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"

// checkSSMAgent judges whether SSM can carry a session to the instance:
// its agent online (DescribeInstanceInformation), and what it needs to
// register and to open sessions. When it cannot, it names each missing
// piece with its fix, found from the facts, not a list of every possible
// cause:
//   - to register (Online): credentials from the instance metadata service,
//     a role allowing ssm:UpdateInstanceInformation, a way to the ssm
//     endpoint;
//   - to open sessions: a role allowing the ssmmessages channel actions
//     (no Deny), a way to the ssmmessages endpoint.
//
// ec2messages carries Run Command, which ec2ssh does not use: its way and
// permissions are evidence, never a failure.
func checkSSMAgent(f *Facts) Result {
	in := f.Instance
	if in == nil {
		return Result{Status: Skip, Summary: "not an EC2 instance"}
	}
	if !in.State.Running() {
		// A stopped instance's agent is offline by nature: instance-state
		// says what matters.
		return Result{Status: Skip, Summary: "the instance is not running"}
	}
	online := f.SSM != nil && f.SSM.Registered && f.SSM.PingStatus == "Online"
	register, sessions, ev := agentPieces(f, online)
	if online {
		ev = append([]string{"ping Online, agent " + f.SSM.AgentVersion}, ev...)
		if f.Inside != nil {
			// A session just opened (the look inside): nothing more to tell.
			return Result{Status: Pass, Summary: "the SSM agent is online (version " + f.SSM.AgentVersion + ") and a session opened", Evidence: ev}
		}
		if r, bad := summarise(sessions, "the SSM agent is online but cannot open sessions: ", ev); bad {
			return r
		}
		if f.InsideErr != "" {
			return Result{Status: Unknown, Summary: "the SSM agent is online, but a session could not be opened: " + Sanitize(f.InsideErr), Evidence: ev}
		}
		if r, undecided := summariseUnknown(sessions, "the SSM agent is online; whether it can open sessions could not be told: ", ev); undecided {
			return r
		}
		return Result{Status: Pass, Summary: "the SSM agent is online (version " + f.SSM.AgentVersion + ") and may open sessions", Evidence: ev}
	}
	state := "has not registered"
	if f.SSM != nil && f.SSM.Registered {
		state = "is " + f.SSM.PingStatus
		if !f.SSM.LastPing.IsZero() {
			state += " since " + f.SSM.LastPing.UTC().Format("2006-01-02 15:04 UTC")
		}
		ev = append([]string{"ping " + f.SSM.PingStatus}, ev...)
	}
	if impaired(f) {
		return Result{Status: Unknown, Summary: "the SSM agent " + state + ", and the instance fails its status checks: that is the cause (see status-checks)", Evidence: ev}
	}
	all := append(append([]piece(nil), register...), sessions...)
	if r, bad := summarise(all, "the SSM agent "+state+": ", ev); bad {
		return r
	}
	if f.SSMErr != nil {
		r := unknownFrom(f.SSMErr)
		r.Summary = "the SSM agent's status " + r.Summary
		return r
	}
	if r, undecided := summariseUnknown(all, "the SSM agent "+state+", and why could not be told: ", ev); undecided {
		r.Status = Fail
		r.Fix = strings.TrimPrefix(r.Fix+"; else look at the agent on the instance: sudo systemctl status amazon-ssm-agent", "; else ")
		return r
	}
	if f.SSM != nil && f.SSM.Registered {
		return Result{Status: Fail, Summary: "the SSM agent " + state + ", though its role, metadata and network allow it", Evidence: ev,
			Fix: "restart it on the instance: sudo systemctl restart amazon-ssm-agent"}
	}
	return Result{Status: Fail, Summary: "the SSM agent has not registered, though its role, metadata and network allow it: it is not installed or not running", Evidence: ev,
		Fix: "install or start it (from user data, or the serial console: ec2ssh --serial): sudo systemctl enable --now amazon-ssm-agent"}
}

// summarise names the pieces that fail, each with its fix.
func summarise(pieces []piece, prefix string, ev []string) (Result, bool) {
	var what, fixes []string
	for _, p := range pieces {
		if p.status == Fail {
			what = append(what, p.what)
			if p.fix != "" && !contains(fixes, p.fix) {
				fixes = append(fixes, p.fix)
			}
			ev = append(ev, p.ev...)
		}
	}
	if len(what) == 0 {
		return Result{}, false
	}
	return Result{Status: Fail, Summary: prefix + strings.Join(what, "; and "), Evidence: ev, Fix: strings.Join(fixes, "; ")}, true
}

// summariseUnknown names the pieces that could not be told.
func summariseUnknown(pieces []piece, prefix string, ev []string) (Result, bool) {
	var what, fixes []string
	for _, p := range pieces {
		if p.status == Unknown {
			what = append(what, p.what)
			if p.fix != "" && !contains(fixes, p.fix) {
				fixes = append(fixes, p.fix)
			}
			ev = append(ev, p.ev...)
		}
	}
	if len(what) == 0 {
		return Result{}, false
	}
	return Result{Status: Unknown, Summary: prefix + strings.Join(what, "; and "), Evidence: ev, Fix: strings.Join(fixes, "; ")}, true
}

// agentPieces judges what the agent needs, to register and to open
// sessions, and says what it found for ec2messages as evidence. For an
// agent that is offline, one cause that keeps it from both ssm and
// ssmmessages is one piece.
func agentPieces(f *Facts, online bool) (register, sessions []piece, ev []string) {
	in := f.Instance
	if in.MetadataEndpoint == "disabled" {
		register = append(register, failPiece("the instance metadata service is off (HttpEndpoint disabled), and the agent takes its credentials from it",
			fmt.Sprintf("aws ec2 modify-instance-metadata-options --instance-id %s --http-endpoint enabled --region %s", in.ID, f.Region)))
	}
	reg, ses, roleEv := rolePieces(f)
	register = append(register, reg...)
	sessions = append(sessions, ses...)
	ev = append(ev, roleEv...)
	ssmP, msgP := agentPath(f, "ssm"), agentPath(f, "ssmmessages")
	if !online && ssmP.status == Fail && msgP.status == Fail && ssmP.cause != "" && ssmP.cause == msgP.cause {
		// One cause, both services (no endpoints, no way to the
		// internet): named once.
		ssmP.what = fmt.Sprintf("no way to %s or %s: %s", serviceHost(f, "ssm"), serviceHost(f, "ssmmessages"), ssmP.cause)
		msgP = passPiece("(as ssm)")
	}
	if ssmP.status == Pass {
		ev = append(ev, "ssm: "+ssmP.what)
		ev = append(ev, ssmP.ev...)
	} else {
		register = append(register, ssmP)
	}
	if msgP.status == Pass {
		ev = append(ev, "ssmmessages: "+msgP.what)
	} else {
		sessions = append(sessions, msgP)
	}
	switch p := agentPath(f, "ec2messages"); p.status {
	case Pass:
		ev = append(ev, "ec2messages: "+p.what)
	default:
		ev = append(ev, "ec2messages (Run Command only, not used by ec2ssh): "+p.what)
	}
	return register, sessions, ev
}

// rolePieces judges the instance profile's role: what it allows the agent.
func rolePieces(f *Facts) (register, sessions []piece, ev []string) {
	in := f.Instance
	switch {
	case in.InstanceProfile == "" && f.Role == nil && f.RoleErr == nil:
		return []piece{failPiece(in.ID+" has no instance profile, so its agent has no credentials",
			fmt.Sprintf("give it a profile whose role has AmazonSSMManagedInstanceCore: aws ec2 associate-iam-instance-profile --instance-id %s --iam-instance-profile Name=PROFILE --region %s", in.ID, f.Region))}, nil, nil
	case f.RoleErr != nil:
		p := unknownAPI("the instance profile's role", f.RoleErr)
		return []piece{p}, nil, nil
	case f.Role == nil:
		return []piece{unknownPiece("the instance profile "+in.InstanceProfile+" was not read", "")}, nil, nil
	case f.Role.Name == "":
		return []piece{failPiece("instance profile "+f.Role.Profile+" has no role",
			fmt.Sprintf("aws iam add-role-to-instance-profile --instance-profile-name %s --role-name ROLE", f.Role.Profile))}, nil, nil
	}
	role := f.Role
	ev = append(ev, "instance profile "+role.Profile+", role "+role.Name)
	for _, d := range role.Documents {
		if d.Err != nil {
			ev = append(ev, policyName(d)+": not read ("+d.Err.Error()+")")
		} else {
			ev = append(ev, policyName(d)+" ("+d.Kind+")")
		}
	}
	account := "*"
	if f.Caller != nil && f.Caller.Account != "" {
		account = f.Caller.Account
	}
	resource := func(action string) string {
		if strings.HasPrefix(action, "ssm:") {
			return fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", f.Region, account, in.ID)
		}
		return "*"
	}
	attach := fmt.Sprintf("aws iam attach-role-policy --role-name %s --policy-arn %s", role.Name, SSMCorePolicy)
	judge := func(actions []string) []piece {
		var out []piece
		var missing []string
		for _, g := range role.Evaluate(actions, resource) {
			switch {
			case g.Denied:
				out = append(out, failPiece(fmt.Sprintf("role %s: %s denies %s", role.Name, g.By, g.Action),
					fmt.Sprintf("remove or narrow that Deny in %s of role %s", g.By, role.Name)))
			case g.Undecided != "":
				out = append(out, unknownPiece(fmt.Sprintf("whether role %s allows %s could not be told: %s", role.Name, g.Action, g.Undecided), undecidedFix(g.Undecided)))
			case !g.Allowed && g.By != "":
				out = append(out, failPiece(fmt.Sprintf("role %s's %s does not allow %s", role.Name, g.By, g.Action),
					"widen the permissions boundary of role "+role.Name+" to allow "+g.Action))
			case !g.Allowed:
				missing = append(missing, g.Action)
			}
		}
		if len(missing) > 0 {
			out = append(out, failPiece(fmt.Sprintf("role %s does not allow %s", role.Name, strings.Join(missing, ", ")), attach))
		}
		return dedupePieces(out)
	}
	register = judge(AgentRegisterActions)
	sessions = judge(AgentSessionActions)
	for _, g := range role.Evaluate(AgentMessageActions[:1], resource) {
		if !g.Allowed {
			ev = append(ev, "role "+role.Name+" does not allow ec2messages (Run Command only, not used by ec2ssh)")
		}
	}
	return register, sessions, ev
}

func undecidedFix(why string) string {
	if strings.Contains(why, "iam:") && strings.Contains(why, "could not be read") {
		return "grant iam:GetPolicy, iam:GetPolicyVersion and iam:GetRolePolicy to the caller's IAM identity to let ec2ssh read the role's policies"
	}
	return ""
}

// dedupePieces merges pieces that say the same thing (one Deny statement
// covering several actions).
func dedupePieces(ps []piece) []piece {
	var out []piece
	seen := map[string]int{}
	for _, p := range ps {
		key := p.fix + "|" + fmt.Sprint(p.status)
		if i, ok := seen[key]; ok && p.fix != "" && p.status == Fail && strings.Contains(p.what, " denies ") {
			out[i].what += ", " + p.what[strings.LastIndex(p.what, " ")+1:]
			continue
		}
		seen[key] = len(out)
		out = append(out, p)
	}
	return out
}
