package reach

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// TestConnectPlainHost: a host that is no instance, with no AWS set up, is
// ssh: the command's output and status, and no AWS asked.
func TestConnectPlainHost(t *testing.T) {
	w := newWorld(t, false)
	s := w.sshd(nil)
	r := w.run("-p", port(s), "127.0.0.1", "echo hello; err oops; exit 3")
	spec, err := SpecFor(r)
	if err != nil {
		t.Fatal(err)
	}
	code, err := Connect(context.Background(), r, spec)
	if err != nil || code != 3 {
		t.Fatalf("Connect = %d, %v; want 3: %s", code, err, read(t, w.stderr))
	}
	if out := read(t, w.stdout); out != "hello\n" {
		t.Errorf("stdout %q", out)
	}
	if !contains(read(t, w.stderr), "oops") {
		t.Errorf("stderr lacks the remote stderr: %q", read(t, w.stderr))
	}
	if len(w.cloud.calls) != 0 {
		t.Errorf("a plain host asked AWS: %v", w.cloud.calls)
	}
}

// TestConnectInstance: an instance id resolves, the AMI is asked only when
// no user is given, and a healthy dial makes no other AWS call.
func TestConnectInstance(t *testing.T) {
	for _, tt := range []struct {
		name      string
		argv      []string
		imageCall int
	}{
		{"no user: the AMI's user", []string{"i-0123456789abcdef0", "echo hi"}, 1},
		{"-l given: no AMI lookup", []string{"-l", "ubuntu", "i-0123456789abcdef0", "echo hi"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, true)
			s := w.sshd(nil)
			w.instance("i-0123456789abcdef0", "web-1", s)
			w.cloud.imageUser = "ec2-user"
			r := w.run(append([]string{"-p", port(s)}, tt.argv...)...)
			spec, _ := SpecFor(r)
			code, err := Connect(context.Background(), r, spec)
			if err != nil || code != 0 || read(t, w.stdout) != "hi\n" {
				t.Fatalf("Connect = %d, %v, %q: %s", code, err, read(t, w.stdout), read(t, w.stderr))
			}
			if got := w.cloud.called("ImageUser"); got != tt.imageCall {
				t.Errorf("ImageUser called %d times, want %d", got, tt.imageCall)
			}
			if w.cloud.called("Gather") != 0 || w.cloud.called("PortSession") != 0 {
				t.Errorf("a healthy connection asked more of AWS: %v", w.cloud.calls)
			}
		})
	}
}

// TestConnectRacesSSM: the port is silent; SSM starts at the grace and
// carries the session, and the line says so.
func TestConnectRacesSSM(t *testing.T) {
	w := newWorld(t, true)
	s := w.sshd(nil)
	w.instance("i-0123456789abcdef0", "web-1", s)
	w.direct = silentDial
	w.cloud.port = func(ctx context.Context, id string, port int) (net.Conn, error) { return toServer(s)(ctx) }
	r := w.run("-l", "ec2-user", "web-1", "echo over ssm")
	spec, _ := SpecFor(r)
	start := time.Now()
	code, err := Connect(context.Background(), r, spec)
	if err != nil || code != 0 || read(t, w.stdout) != "over ssm\n" {
		t.Fatalf("Connect = %d, %v, %q: %s", code, err, read(t, w.stdout), read(t, w.stderr))
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v: the race did not cut the wait", took)
	}
	if !contains(read(t, w.stderr), "continuing over SSM (it answered first") {
		t.Errorf("no line says SSM carried it: %q", read(t, w.stderr))
	}
}

// TestConnectLadder: each failure leads to the rung the ladder names, and
// the session runs on it (or the failure says why).
func TestConnectLadder(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(w *world)
		code   int
		stdout string
		stderr []string
		err    bool
		kind   failure.Kind
		calls  map[string]int
		within time.Duration // when set, the whole run takes no longer
	}{
		{name: "refused, SSM carries it",
			setup: func(w *world) {
				w.direct = refusedDial
				s := w.sshd(nil)
				w.instance("i-0123456789abcdef0", "web-1", s)
				w.cloud.port = func(ctx context.Context, id string, port int) (net.Conn, error) { return toServer(s)(ctx) }
			},
			stdout: "in\n", stderr: []string{"continuing over SSM"}, calls: map[string]int{"PortSession": 1}},
		{name: "keys refused: a one-time key",
			setup: func(w *world) {
				s := w.sshd(nil)
				w.instance("i-0123456789abcdef0", "web-1", s)
				other := w.key
				w.key, _ = newKey()
				w.cloud.oneTime = other // the server accepts only the pushed key
				w.rewriteKey()
			},
			stdout: "in\n", stderr: []string{"continuing with a one-time key from EC2 Instance Connect"}, calls: map[string]int{"OneTimeKey": 1}},
		{name: "silent, no agent, an endpoint",
			setup: func(w *world) {
				w.direct = silentDial
				s := w.sshd(nil)
				w.instance("i-0123456789abcdef0", "web-1", s)
				w.cloud.endpoints = []preflight.InstanceConnectEndpoint{{ID: "eice-1", VPCID: "vpc-1", SubnetID: "subnet-1", State: "create-complete",
					DNSName: "eice.test", SecurityGroups: []string{"sg-ep"}}}
				// The instance's group admits only the endpoint's group on
				// the port: the silent dial is doomed, and the endpoint is
				// what is left.
				in := w.cloud.instances[0]
				in.Interfaces = []preflight.Interface{{ID: "eni-1", SubnetID: "subnet-1", VPCID: "vpc-1", SecurityGroups: []string{"sg-1"},
					PrivateIPs: []string{"127.0.0.1"}}}
				p := s.Port
				w.cloud.facts = func(req preflight.Request) *preflight.Facts {
					return &preflight.Facts{Region: "us-east-1", Port: req.Port, Instance: req.Instance, Endpoints: w.cloud.endpoints,
						SSM:            &preflight.SSMAgent{Registered: false},
						SecurityGroups: []preflight.SecurityGroup{{ID: "sg-1", Ingress: []preflight.SGRule{{Protocol: "tcp", FromPort: p, ToPort: p, Groups: []string{"sg-ep"}}}}},
						EndpointGroups: []preflight.SecurityGroup{{ID: "sg-ep", Egress: []preflight.SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}}},
						SourceLookedUp: true,
						Source:         preflight.Source{Address: "127.0.0.1", How: "--source-ip"}}
				}
				w.cloud.tunnel = func(ctx context.Context, ep fallback.TunnelEndpoint, ip string, port int) (net.Conn, error) {
					return toServer(s)(ctx)
				}
			},
			stdout: "in\n", stderr: []string{"continuing through an EC2 Instance Connect Endpoint"}, calls: map[string]int{"Tunnel": 1}},
		{name: "silent, no agent, an endpoint, and the checks never answer: the tunnel races the dial",
			setup: func(w *world) {
				w.direct = silentDial
				s := w.sshd(nil)
				w.instance("i-0123456789abcdef0", "web-1", s)
				w.cloud.endpoints = []preflight.InstanceConnectEndpoint{{ID: "eice-1", VPCID: "vpc-1", SubnetID: "subnet-1", State: "create-complete", DNSName: "eice.test"}}
				w.cloud.facts = func(req preflight.Request) *preflight.Facts {
					time.Sleep(time.Minute) // a check's call in bad weather: nothing waits on it
					return nil
				}
				w.cloud.tunnel = func(ctx context.Context, ep fallback.TunnelEndpoint, ip string, port int) (net.Conn, error) {
					return toServer(s)(ctx)
				}
			},
			stdout: "in\n", stderr: []string{"continuing through an EC2 Instance Connect Endpoint"}, calls: map[string]int{"Tunnel": 1, "Endpoints": 1}, within: 3 * time.Second},
		{name: "silent, SSM in AWS's weather, no endpoint: the weather is said with the failure",
			setup: func(w *world) {
				w.direct = silentFor(time.Second)
				s := w.sshd(nil)
				w.instance("i-0123456789abcdef0", "web-1", s)
				w.cloud.port = func(ctx context.Context, id string, port int) (net.Conn, error) {
					return nil, preflight.WeatherFailure("start an SSM session on "+id,
						&preflight.CallError{Service: "ssm", Op: "StartSession", Weather: preflight.WeatherServer, Status: 500})
				}
			},
			code: 255, err: true, kind: failure.Unreachable, stderr: []string{"web-1 (i-0123456789abcdef0): SSM could not carry it: StartSession: AWS answered 500"},
			calls: map[string]int{"PortSession": 1, "Tunnel": 0}},
		{name: "stopped: said at once, nothing dialled",
			setup: func(w *world) {
				w.direct = func(ctx context.Context) (net.Conn, error) { panic("dialled a stopped instance") }
				s := w.sshd(nil)
				w.instance("i-0123456789abcdef0", "web-1", s).State = preflight.StateStopped
			},
			code: 255, err: true, kind: failure.InstanceState, calls: map[string]int{"PortSession": 0}},
		{name: "refused, the port session ends without a banner, sshd down inside: the shell rung",
			setup: func(w *world) {
				w.direct = refusedDial
				s := w.sshd(nil)
				w.instance("i-0123456789abcdef0", "web-1", s)
				w.cloud.port = closesAtOnce
				w.cloud.facts = func(req preflight.Request) *preflight.Facts {
					return &preflight.Facts{Region: "us-east-1", Port: req.Port, Instance: req.Instance,
						SSM: &preflight.SSMAgent{Registered: true, PingStatus: "Online"}}
				}
				w.cloud.inside = &preflight.Inside{Complete: true, PortsListed: true, Ports: []string{"0.0.0.0:80"}}
			},
			// The shell rung's session is denied by the fake SSM.
			code: 255, stderr: []string{"sshd refuses connections, also from inside the instance"}, err: true, kind: failure.Unknown},
		{name: "refused, the port session says it ended (SessionEnded), sshd down inside: the shell rung",
			setup: func(w *world) {
				w.direct = refusedDial
				s := w.sshd(nil)
				w.instance("i-0123456789abcdef0", "web-1", s)
				w.cloud.port = endsAtOnce
				w.cloud.facts = func(req preflight.Request) *preflight.Facts {
					return &preflight.Facts{Region: "us-east-1", Port: req.Port, Instance: req.Instance,
						SSM: &preflight.SSMAgent{Registered: true, PingStatus: "Online"}}
				}
				w.cloud.inside = &preflight.Inside{Complete: true, PortsListed: true, Ports: []string{"0.0.0.0:80"}}
			},
			// The shell rung's session is denied by the fake SSM.
			code: 255, stderr: []string{"sshd refuses connections, also from inside the instance"}, err: true, kind: failure.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, true)
			tt.setup(w)
			r := w.run("-l", "ec2-user", "-p", port(w.server), "web-1", "echo in")
			spec, _ := SpecFor(r)
			start := time.Now()
			code, err := Connect(context.Background(), r, spec)
			if took := time.Since(start); tt.within > 0 && took > tt.within {
				t.Errorf("took %v, want at most %v", took, tt.within)
			}
			stderr := read(t, w.stderr)
			if code != tt.code || tt.err != (err != nil) || err != nil && failure.KindOf(err) != tt.kind {
				t.Fatalf("Connect = %d, %v (%v); want %d, kind %v\n%s", code, err, failure.KindOf(err), tt.code, tt.kind, stderr)
			}
			if got := read(t, w.stdout); got != tt.stdout {
				t.Errorf("stdout %q, want %q", got, tt.stdout)
			}
			for _, want := range tt.stderr {
				if !contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			for call, n := range tt.calls {
				if got := w.cloud.called(call); got != n {
					t.Errorf("%s called %d times, want %d (%v)", call, got, n, w.cloud.calls)
				}
			}
		})
	}
}
