package preflight

import (
	"fmt"
	"strings"
)

// SSMCorePolicy is the AWS managed policy that lets the SSM agent register
// and carry Session Manager sessions.
const SSMCorePolicy = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"

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
	if f.SSM != nil && f.SSM.Registered && f.SSM.PingStatus == "Online" {
		return Result{Status: Pass, Summary: "the SSM agent is online (version " + f.SSM.AgentVersion + ")",
			Evidence: []string{"ping " + f.SSM.PingStatus}}
	}
	roleFix := func(role string) string {
		return fmt.Sprintf("aws iam attach-role-policy --role-name %s --policy-arn %s", role, SSMCorePolicy)
	}
	// Why the agent is not there: the role first, since it is the usual cause.
	if f.RoleErr == nil && f.Role == nil && in.InstanceProfile == "" {
		return Result{Status: Fail, Summary: in.ID + " has no instance profile, so its SSM agent cannot register",
			Fix: fmt.Sprintf("give it a profile whose role has AmazonSSMManagedInstanceCore: aws ec2 associate-iam-instance-profile --instance-id %s --iam-instance-profile Name=PROFILE --region %s", in.ID, f.Region)}
	}
	if f.Role != nil {
		granted := f.Role.InlineSSM
		for _, p := range f.Role.Policies {
			granted = granted || p == SSMCorePolicy || strings.HasSuffix(p, ":policy/AmazonSSMManagedInstanceCore")
		}
		ev := []string{"instance profile " + f.Role.Profile, "role " + f.Role.Name + ": " + strings.Join(f.Role.Policies, ", ")}
		if !granted {
			return Result{Status: Fail, Summary: "role " + f.Role.Name + " lacks AmazonSSMManagedInstanceCore, so the SSM agent cannot register",
				Evidence: ev, Fix: roleFix(f.Role.Name)}
		}
		if f.SSMErr != nil {
			r := unknownFrom(f.SSMErr)
			r.Summary = "role " + f.Role.Name + " grants SSM; the agent's status " + r.Summary
			return r
		}
		if f.SSM == nil || !f.SSM.Registered {
			return Result{Status: Fail, Summary: "the SSM agent has not registered, though role " + f.Role.Name + " allows it", Evidence: ev,
				Fix: "check that amazon-ssm-agent runs on the instance and can reach ssm, ssmmessages and ec2messages (VPC endpoints or a NAT)"}
		}
	}
	if f.SSMErr != nil {
		return unknownFrom(f.SSMErr)
	}
	if f.SSM != nil && f.SSM.Registered {
		last := ""
		if !f.SSM.LastPing.IsZero() {
			last = " since " + f.SSM.LastPing.UTC().Format("2006-01-02 15:04 UTC")
		}
		return Result{Status: Fail, Summary: "the SSM agent is " + f.SSM.PingStatus + last, Evidence: []string{"ping " + f.SSM.PingStatus},
			Fix: "restart it on the instance: sudo systemctl restart amazon-ssm-agent"}
	}
	if f.RoleErr != nil {
		return unknownFrom(f.RoleErr)
	}
	return Result{Status: Fail, Summary: "the SSM agent has not registered"}
}
