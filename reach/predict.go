package reach

import (
	"strings"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// Predict says how a connection to the instance would get in, for
// --list's REACH (issue 24): the ladder itself (fallback.Next) climbed on
// paper over the facts a listing has (preflight.ListFacts), not a second
// judgement. Each rung the ladder chooses is judged from those facts with
// the checks a connection's diagnosis runs:
//
//   - direct: the security-group and network-acl checks (routes, the host
//     firewall and sshd are learnt only by connecting);
//   - SSM: the agent's registration (Online);
//   - an EC2 Instance Connect Endpoint: the instance-connect-endpoint
//     check (a ready endpoint whose group lets it out and the instance's
//     in).
//
// A rung judged to fail is fed back to the ladder as the failure a
// connection would meet there (the port unreachable; SSM's
// TargetNotConnected, also Unreachable); the first rung judged to work
// is the answer. A rung that cannot be judged (a call that failed) is
// said in Why; when no later rung is known to work, Via is "unknown".
// mode is --fallback / --via; addressMode --address.
func Predict(mode connect.Mode, f *preflight.Facts, addressMode string) preflight.Reach {
	s := fallback.Situation{Mode: mode, Instance: true, Raceable: true}
	situationFacts(&s, f)
	var said, unsure []string
	prefix := ""
	judged := map[fallback.Step]bool{}
	for range len(fallback.Steps) * 2 {
		d := fallback.Next(s)
		switch d.Step {
		case fallback.WaitRunning:
			// A connection waits for a pending instance, then climbs.
			s.Waited, s.State = true, preflight.StateRunning
			prefix = "pending; once it runs: "
			continue
		case fallback.Direct, fallback.SSMPort, fallback.EICE:
		default:
			// Stop, or a rung a listing cannot come to (a refused key, sshd
			// down inside): nothing known reaches it. The ladder's own
			// words say why only where no rung was judged (a stopped
			// instance) or the mode stopped it; else the rungs' reasons do,
			// with those of the ways the ladder did not try.
			if len(s.Tried) == 0 || mode == connect.ModeDirect {
				said = append(said, d.Why)
			}
			if mode == connect.ModeAuto && s.State.Running() {
				if !judged[fallback.SSMPort] {
					_, why := judgeRung(fallback.SSMPort, f, addressMode)
					said = append(said, why)
				}
				if !judged[fallback.EICE] {
					r := preflight.RunCheck(preflight.CheckEICE, f)
					if r.Status == preflight.Unknown {
						unsure = append(unsure, "eice not known: "+r.Summary)
					} else if r.Status != preflight.Skip || f.Instance.VPCID != "" {
						said = append(said, r.Summary)
					}
				}
			}
			if len(unsure) > 0 {
				return preflight.Reach{Via: "unknown", Why: prefix + strings.Join(append(said, unsure...), "; ")}
			}
			return preflight.Reach{Via: "none", Why: prefix + strings.Join(said, "; ")}
		}
		judged[d.Step] = true
		works, why := judgeRung(d.Step, f, addressMode)
		switch works {
		case rungWorks:
			return preflight.Reach{Via: viaName[d.Step], Why: prefix + strings.Join(append(append(said, unsure...), why), "; ")}
		case rungUnknown:
			unsure = append(unsure, viaName[d.Step]+" not known: "+why)
		default:
			said = append(said, why)
		}
		s.Tried = append(s.Tried, fallback.Attempt{Step: d.Step, Kind: failure.Unreachable})
	}
	return preflight.Reach{Via: "unknown", Why: prefix + "the ladder did not settle"}
}

var viaName = map[fallback.Step]string{fallback.Direct: "direct", fallback.SSMPort: "ssm", fallback.EICE: "eice"}

type rungVerdict int

const (
	rungFails rungVerdict = iota
	rungWorks
	rungUnknown
)

// judgeRung says whether step would get through, from f, and why.
func judgeRung(step fallback.Step, f *preflight.Facts, addressMode string) (rungVerdict, string) {
	switch step {
	case fallback.Direct:
		if _, err := f.Instance.Address(addressMode); err != nil {
			return rungFails, err.Error()
		}
		sg := preflight.RunCheck(preflight.CheckSecurityGroup, f)
		acl := preflight.RunCheck(preflight.CheckNetworkACL, f)
		switch {
		case sg.Status == preflight.Fail:
			return rungFails, sg.Summary
		case acl.Status == preflight.Fail:
			return rungFails, acl.Summary
		case sg.Status == preflight.Pass && acl.Status == preflight.Pass:
			return rungWorks, sg.Summary
		case sg.Status != preflight.Pass:
			return rungUnknown, sg.Summary
		}
		return rungUnknown, acl.Summary
	case fallback.SSMPort:
		switch {
		case f.SSMErr != nil:
			return rungUnknown, f.SSMErr.Error()
		case f.SSM.Online():
			return rungWorks, "the SSM agent is online"
		case f.SSM != nil && f.SSM.Registered:
			return rungFails, "the SSM agent is " + f.SSM.PingStatus
		}
		return rungFails, "no SSM agent is registered"
	case fallback.EICE:
		r := preflight.RunCheck(preflight.CheckEICE, f)
		switch r.Status {
		case preflight.Pass:
			return rungWorks, r.Summary
		case preflight.Unknown:
			return rungUnknown, r.Summary
		}
		return rungFails, r.Summary
	}
	return rungUnknown, step.String() + " cannot be judged from a listing"
}
