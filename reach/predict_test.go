package reach

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// A listing's facts, built up as the cases need.
type listFacts struct {
	open, aclDeny, online, endpoint, endpointShut bool
	state                                         preflight.State
	sgErr, ssmErr, epErr                          bool
}

func (lf listFacts) facts(in *preflight.Instance) *preflight.Facts {
	port := func(p int, cidr string) preflight.SGRule {
		return preflight.SGRule{Protocol: "tcp", FromPort: p, ToPort: p, CIDRs: []string{cidr}}
	}
	in.State = preflight.StateRunning
	if lf.state != "" {
		in.State = lf.state
	}
	in.Interfaces = []preflight.Interface{{ID: "eni-1", SecurityGroups: []string{"sg-inst"}}}
	inst := preflight.SecurityGroup{ID: "sg-inst", Ingress: []preflight.SGRule{port(80, "0.0.0.0/0")}}
	if lf.open {
		inst.Ingress = append(inst.Ingress, port(22, "203.0.113.0/24"))
	}
	acl := &preflight.NetworkACL{ID: "acl-1", Entries: []preflight.ACLEntry{{Number: 100, Protocol: "-1", Allow: true, CIDR: "0.0.0.0/0"},
		{Number: 100, Egress: true, Protocol: "-1", Allow: true, CIDR: "0.0.0.0/0"}}}
	if lf.aclDeny {
		acl.Entries = append([]preflight.ACLEntry{{Number: 50, Protocol: "6", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"}}, acl.Entries...)
	}
	f := &preflight.Facts{Region: "us-east-1", Port: 22, Instance: in, SecurityGroups: []preflight.SecurityGroup{inst}, NetworkACL: acl,
		SSM:    &preflight.SSMAgent{},
		Source: preflight.Source{Address: "203.0.113.5", How: "--source-ip", EphemeralLow: 32768, EphemeralHigh: 60999}}
	if lf.online {
		f.SSM = &preflight.SSMAgent{Registered: true, PingStatus: "Online"}
	}
	if lf.endpoint {
		// The instance admits the endpoint's group; this machine is in no
		// group (ListFacts looked its address up).
		inst.Ingress = append(inst.Ingress, preflight.SGRule{Protocol: "tcp", FromPort: 22, ToPort: 22, Groups: []string{"sg-ep"}})
		f.SecurityGroups, f.SourceLookedUp = []preflight.SecurityGroup{inst}, true
		f.Endpoints = []preflight.InstanceConnectEndpoint{{ID: "eice-1", VPCID: in.VPCID, SubnetID: in.SubnetID, State: "create-complete",
			DNSName: "eice.test", SecurityGroups: []string{"sg-ep"}}}
		egress := []preflight.SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}
		if lf.endpointShut {
			egress = nil
		}
		f.EndpointGroups = []preflight.SecurityGroup{{ID: "sg-ep", Egress: egress}}
	}
	if lf.sgErr {
		f.SecurityGroups, f.SecurityGroupsErr = nil, &preflight.APIError{Op: "ec2:DescribeSecurityGroups", Weather: preflight.WeatherServer, Message: "DescribeSecurityGroups: AWS answered 500"}
	}
	if lf.ssmErr {
		f.SSM, f.SSMErr = nil, &preflight.APIError{Op: "ssm:DescribeInstanceInformation", Weather: preflight.WeatherThrottled, Message: "DescribeInstanceInformation: throttled by AWS (ThrottlingException)"}
	}
	if lf.epErr {
		f.Endpoints, f.EndpointsErr = nil, &preflight.APIError{Op: "ec2:DescribeInstanceConnectEndpoints", Denied: true, Permission: "ec2:DescribeInstanceConnectEndpoints"}
	}
	return f
}

var predictCases = []struct {
	name string
	mode connect.Mode
	lf   listFacts
	via  string
	why  []string
	// ladder: the lab-less ladder can carry this case out (a pending
	// instance, an unreadable group are left to the table).
	ladder bool
}{
	{name: "open", lf: listFacts{open: true}, via: "direct", why: []string{"sg-inst allows tcp 22-22 from 203.0.113.0/24"}, ladder: true},
	{name: "blocked, agent online", lf: listFacts{online: true}, via: "ssm", why: []string{"port 22 blocked by sg-inst", "the SSM agent is online"}, ladder: true},
	{name: "blocked, no agent, an endpoint", lf: listFacts{endpoint: true}, via: "eice", why: []string{"port 22 is allowed only from members of sg-ep", "eice-1 can reach port 22"}, ladder: true},
	{name: "blocked, no agent, an endpoint that lets nothing out", lf: listFacts{endpoint: true, endpointShut: true}, via: "none",
		why: []string{"the source 203.0.113.5 is not one", "no SSM agent is registered", "lets nothing out"}, ladder: true},
	{name: "blocked, no agent, no endpoint", lf: listFacts{}, via: "none", why: []string{"port 22 blocked", "no SSM agent is registered", "no EC2 Instance Connect Endpoint in vpc-1"}, ladder: true},
	{name: "the network ACL denies, agent online", lf: listFacts{open: true, aclDeny: true, online: true}, via: "ssm", why: []string{"acl-1 denies tcp 22", "online"}, ladder: true},
	{name: "stopped", lf: listFacts{open: true, online: true, state: preflight.StateStopped}, via: "none", why: []string{"the instance is stopped"}, ladder: true},
	{name: "--fallback=never, blocked", mode: connect.ModeDirect, lf: listFacts{online: true}, via: "none", why: []string{"port 22 blocked", "--fallback=never"}, ladder: true},
	{name: "--via=ssm, open", mode: connect.ModeSSM, lf: listFacts{open: true, online: true}, via: "ssm", why: []string{"online"}, ladder: true},
	{name: "--via=eice", mode: connect.ModeEICE, lf: listFacts{open: true, online: true, endpoint: true}, via: "eice", why: []string{"eice-1"}, ladder: true},
	{name: "pending", lf: listFacts{open: true, state: preflight.StatePending}, via: "direct", why: []string{"pending; once it runs"}},
	{name: "groups unreadable, agent online", lf: listFacts{sgErr: true, online: true}, via: "ssm", why: []string{"direct not known", "AWS answered 500", "online"}},
	{name: "groups unreadable, no agent", lf: listFacts{sgErr: true}, via: "unknown", why: []string{"direct not known", "AWS answered 500", "no SSM agent"}},
	{name: "agent unknown, blocked", lf: listFacts{ssmErr: true}, via: "unknown", why: []string{"port 22 blocked", "ssm not known: DescribeInstanceInformation: throttled"}},
	{name: "endpoints unknown, blocked, no agent", lf: listFacts{epErr: true}, via: "unknown", why: []string{"port 22 blocked", "eice not known", "access denied"}},
}

// TestPredict: REACH is the ladder's choice over a listing's facts.
func TestPredict(t *testing.T) {
	for _, tt := range predictCases {
		t.Run(tt.name, func(t *testing.T) {
			in := &preflight.Instance{ID: "i-0123456789abcdef0", PrivateIP: "127.0.0.1", VPCID: "vpc-1", SubnetID: "subnet-1"}
			got := Predict(tt.mode, tt.lf.facts(in), "")
			if got.Via != tt.via {
				t.Errorf("Predict = %+v, want via %q", got, tt.via)
			}
			for _, w := range tt.why {
				if !strings.Contains(got.Why, w) {
					t.Errorf("why %q lacks %q", got.Why, w)
				}
			}
		})
	}
}

// TestPredictAgreesWithTheLadder: for each case, a real connection is
// made through the ladder over the same facts (a direct dial that is
// silent when the groups or ACL block it, an SSM port session that opens
// when the agent is online, a tunnel that opens when the endpoint check
// passes), and the way it got in is the one Predict named.
func TestPredictAgreesWithTheLadder(t *testing.T) {
	for _, tt := range predictCases {
		if !tt.ladder {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, true)
			s := w.sshd(nil)
			in := w.instance("i-0123456789abcdef0", "web-1", s)
			f := tt.lf.facts(in)
			predicted := Predict(tt.mode, f, "").Via
			directOK := preflight.RunCheck(preflight.CheckSecurityGroup, f).Status == preflight.Pass &&
				preflight.RunCheck(preflight.CheckNetworkACL, f).Status == preflight.Pass
			if !directOK {
				w.direct = silentDial
			}
			if f.SSM.Online() {
				w.cloud.port = func(ctx context.Context, id string, port int) (net.Conn, error) { return toServer(s)(ctx) }
			}
			w.cloud.endpoints = f.Endpoints
			w.cloud.tunnel = func(ctx context.Context, ep fallback.TunnelEndpoint, ip string, port int) (net.Conn, error) {
				if preflight.RunCheck(preflight.CheckEICE, f).Status != preflight.Pass {
					return nil, &failure.Error{Kind: failure.Unreachable, Msg: "Failed to connect to " + ip}
				}
				return toServer(s)(ctx)
			}
			w.cloud.facts = func(req preflight.Request) *preflight.Facts {
				g := *f
				g.Instance = req.Instance
				return &g
			}
			argv := []string{"-l", "ec2-user", "-o", "ConnectTimeout=2", "-p", port(s)}
			switch tt.mode {
			case connect.ModeDirect:
				argv = append(argv, "--fallback=never")
			case connect.ModeSSM:
				argv = append(argv, "--via=ssm")
			case connect.ModeEICE:
				argv = append(argv, "--via=eice")
			}
			r := w.run(append(argv, "web-1", "echo in")...)
			spec, _ := SpecFor(r)
			code, _ := Connect(context.Background(), r, spec)
			stderr := read(t, w.stderr)
			got := "none"
			switch {
			case code != 0:
			case w.cloud.called("Tunnel") > 0:
				got = "eice"
			case w.cloud.called("PortSession") > 0 && !strings.Contains(stderr, "direct connection answered first"):
				got = "ssm"
			default:
				got = "direct"
			}
			if got != predicted {
				t.Errorf("the ladder got in %s, REACH said %s\n%s", got, predicted, stderr)
			}
			if got != tt.via {
				t.Errorf("got in %s, want %s", got, tt.via)
			}
		})
	}
}
