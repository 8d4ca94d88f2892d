package reach

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/lab/xsshd"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// The way in, tested without AWS, root or the lab: a fake Cloud, x/crypto's
// own SSH server on loopback as sshd (lab/xsshd), and direct transports
// that are silent or refused as a blocked or closed port is.

// fakeCloud is AWS as the tests script it.
type fakeCloud struct {
	region    string
	mu        sync.Mutex
	instances []*preflight.Instance
	// facts answers Gather; nil: facts with the instance only.
	facts func(req preflight.Request) *preflight.Facts
	// port answers PortSession; nil: the SSM agent is not connected.
	port      func(ctx context.Context, id string, port int) (net.Conn, error)
	endpoints []preflight.InstanceConnectEndpoint
	tunnel    func(ctx context.Context, ep fallback.TunnelEndpoint, ip string, port int) (net.Conn, error)
	oneTime   ssh.Signer // what OneTimeKey pushes; nil: denied
	imageUser string
	inside    *preflight.Inside // what the look inside finds
	calls     []string
	// states, when set, are the states DescribeInstances gives an
	// instance one call after another (the last one stays).
	states []preflight.State
	// others are the account's other regions (names_test.go); err, when
	// set, is how asking this region fails.
	others []*fakeCloud
	err    error
}

func (f *fakeCloud) call(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *fakeCloud) called(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (f *fakeCloud) Region() string { return f.region }

func (f *fakeCloud) Resolve(ctx context.Context, dest string) (*preflight.Instance, error) {
	f.call("Resolve")
	in, _, _, err := preflight.Decide(dest, f.lookup(dest), nil, true)
	return in, err
}

// WaitRunning polls Resolve as preflight's does, o.Interval apart, within
// o.Budget.
func (f *fakeCloud) WaitRunning(ctx context.Context, id string, o preflight.WaitOptions) (*preflight.Instance, error) {
	deadline := time.Now().Add(o.Budget)
	for time.Now().Before(deadline) {
		time.Sleep(o.Interval)
		in, err := f.Resolve(ctx, id)
		if err != nil {
			return nil, err
		}
		if in != nil && in.State.Running() {
			return in, nil
		}
		if in != nil && in.State != preflight.StatePending {
			return nil, &failure.Error{Kind: failure.InstanceState, Msg: id + " is " + string(in.State)}
		}
	}
	return nil, &failure.Error{Kind: failure.InstanceState, Msg: id + " is still pending"}
}

func (f *fakeCloud) Lookup(ctx context.Context, dest string) preflight.Answer {
	f.call("Lookup")
	return f.lookup(dest)
}

// lookup is what the fake region says dest names: every instance whose id,
// Name or address it is; a scripted sequence of states, when set, is
// what one lookup after another gives them.
func (f *fakeCloud) lookup(dest string) preflight.Answer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return preflight.Answer{Region: f.region, Err: f.err}
	}
	ans := preflight.Answer{Region: f.region}
	for _, in := range f.instances {
		if in.ID == dest || in.Name == dest || in.PrivateIP == dest || in.PublicIP == dest {
			c := *in
			c.Region = f.region
			if len(f.states) > 0 {
				c.State, f.states = f.states[0], f.states[1:]
				if len(f.states) == 0 {
					f.states = []preflight.State{c.State}
				}
			}
			ans.Instances = append(ans.Instances, &c)
		}
	}
	return ans
}

func (f *fakeCloud) Elsewhere(ctx context.Context, dest string) ([]preflight.Answer, error) {
	f.call("Elsewhere")
	var out []preflight.Answer
	for _, o := range f.others {
		if o.region != f.region {
			out = append(out, o.lookup(dest))
		}
	}
	return out, nil
}

func (f *fakeCloud) ImageUser(ctx context.Context, in *preflight.Instance) string {
	f.call("ImageUser")
	return f.imageUser
}

func (f *fakeCloud) Gather(ctx context.Context, req preflight.Request) *preflight.Facts {
	f.call("Gather")
	if f.facts != nil {
		return f.facts(req)
	}
	return &preflight.Facts{Region: f.region, Port: req.Port, Instance: req.Instance}
}

func (f *fakeCloud) PortSession(ctx context.Context, id string, port int) (net.Conn, error) {
	f.call("PortSession")
	if f.port == nil {
		return nil, &failure.Error{Kind: failure.Unreachable, Msg: "TargetNotConnected: " + id + " is not connected"}
	}
	return f.port(ctx, id, port)
}

func (f *fakeCloud) Endpoints(ctx context.Context, vpc string) ([]preflight.InstanceConnectEndpoint, error) {
	f.call("Endpoints")
	return f.endpoints, nil
}

func (f *fakeCloud) Tunnel(ctx context.Context, ep fallback.TunnelEndpoint, ip string, port int) (net.Conn, error) {
	f.call("Tunnel")
	if f.tunnel == nil {
		return nil, &failure.Error{Kind: failure.Unreachable, Msg: "no tunnel"}
	}
	return f.tunnel(ctx, ep, ip, port)
}

func (f *fakeCloud) OneTimeKey(ctx context.Context, id, user string) (ssh.Signer, error) {
	f.call("OneTimeKey")
	if f.oneTime == nil {
		return nil, &failure.Error{Kind: failure.AWSAuth, Msg: "ec2-instance-connect:SendSSHPublicKey denied"}
	}
	return f.oneTime, nil
}

// LookInside answers with what inside says (nil: the look fails).
func (f *fakeCloud) LookInside(ctx context.Context, id, user string, port int, addr string) (*preflight.Inside, error) {
	f.call("LookInside")
	if f.inside == nil {
		return nil, errors.New("the look inside is not in this test")
	}
	in := *f.inside
	in.Port = port
	return &in, nil
}

func (f *fakeCloud) SSM() *fallback.SSM {
	return &fallback.SSM{Client: deniedSSM{}, Sleep: func(context.Context, time.Duration) error { return nil }}
}

func (f *fakeCloud) SerialAccess(ctx context.Context) (bool, bool) { return true, true }
func (f *fakeCloud) Nitro(ctx context.Context, typ string) (bool, bool) {
	return typ != "t2.micro", typ != ""
}
func (f *fakeCloud) SerialKey(ctx context.Context, id string) (ssh.Signer, error) {
	return f.oneTime, nil
}

// deniedSSM refuses every session: the shell rung's decisions are tested
// here, its data channel in fallback and e2e.
type deniedSSM struct{ fallback.SSMAPI }

func (deniedSSM) StartSession(ctx context.Context, in *ssm.StartSessionInput, _ ...func(*ssm.Options)) (*ssm.StartSessionOutput, error) {
	return nil, errors.New("AccessDeniedException: not in this test")
}

// world is one test's client side: a home, a key, a known_hosts, and the
// streams a run writes to.
type world struct {
	t       *testing.T
	home    string
	key     ssh.Signer
	keyFile string
	khFile  string
	cloud   *fakeCloud
	// direct, when set, replaces the TCP dial.
	direct func(ctx context.Context) (net.Conn, error)
	stdout *os.File
	stderr *os.File
	server *xsshd.Server // the last one started
}

func newWorld(t *testing.T, aws bool) *world {
	t.Helper()
	w := &world{t: t, home: t.TempDir(), cloud: &fakeCloud{region: "us-east-1"}}
	t.Setenv("HOME", w.home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(w.home, ".cache"))
	t.Setenv("SSH_AUTH_SOCK", "")
	for _, v := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "EC2SSH_SOURCE_IP"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	if aws {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	w.key, _ = ssh.NewSignerFromKey(priv)
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(w.home, ".ssh"), 0o700)
	w.keyFile = filepath.Join(w.home, ".ssh", "id_ed25519")
	if err := os.WriteFile(w.keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	w.khFile = filepath.Join(w.home, ".ssh", "known_hosts")
	return w
}

// sshd starts an x/crypto server that accepts the world's key.
func (w *world) sshd(h xsshd.Handler) *xsshd.Server {
	w.t.Helper()
	s, err := xsshd.Start(xsshd.Options{Keys: []ssh.PublicKey{w.key.PublicKey()}, Handler: h})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { s.Close() })
	w.server = s
	return s
}

// instance adds an instance whose address is the server's.
func (w *world) instance(id, name string, s *xsshd.Server) *preflight.Instance {
	in := &preflight.Instance{ID: id, Name: name, State: preflight.StateRunning, PrivateIP: "127.0.0.1", VPCID: "vpc-1", SubnetID: "subnet-1"}
	w.cloud.instances = append(w.cloud.instances, in)
	return in
}

// toServer is a transport to s (what an SSM port session or a tunnel
// carries).
func toServer(s *xsshd.Server) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", s.Addr)
	}
}

// silent never connects: dropped SYNs.
func silentDial(ctx context.Context) (net.Conn, error) {
	<-ctx.Done()
	return nil, &failure.Error{Kind: failure.Unreachable, Msg: "connection timed out", Err: context.Cause(ctx)}
}

func refusedDial(ctx context.Context) (net.Conn, error) {
	return nil, &failure.Error{Kind: failure.Refused, Msg: "connect to host port 22: Connection refused"}
}

// closesAtOnce is a port session the agent ends without a byte: sshd
// refused the agent's own dial (the basic port plugin says nothing).
func closesAtOnce(ctx context.Context, id string, port int) (net.Conn, error) {
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

// endedConn is a port session whose data channel the agent ended: reads
// and writes fail with the channel's own error, as fallback.Channel's do.
type endedConn struct{ net.Conn }

func (endedConn) Read([]byte) (int, error) { return 0, sessionEnded }
func (endedConn) Write([]byte) (int, error) {
	return 0, sessionEnded
}

var sessionEnded = &failure.Error{Kind: failure.SessionEnded, Msg: "the SSM port session ended before the port on the instance sent anything"}

// endsAtOnce is a port session whose channel says it ended, before a byte.
func endsAtOnce(ctx context.Context, id string, port int) (net.Conn, error) {
	a, _ := net.Pipe()
	return endedConn{a}, nil
}

// run makes a Run of argv (ssh's command line) in the world.
func (w *world) run(argv ...string) *Run {
	w.t.Helper()
	base := []string{"-F", "none", "-i", w.keyFile, "-o", "UserKnownHostsFile=" + w.khFile, "-o", "StrictHostKeyChecking=accept-new",
		"-o", "BatchMode=yes", "-o", "IdentityAgent=none", "-o", "GlobalKnownHostsFile=/dev/null"}
	args, err := connect.ParseArgs(append(base, argv...))
	if err != nil {
		w.t.Fatal(err)
	}
	cfg, err := connect.ResolveConfig(args)
	if err != nil {
		w.t.Fatal(err)
	}
	if args.Verbose > 0 {
		cfg.LogLevel = "DEBUG" + strconv.Itoa(args.Verbose)
	}
	if err := cfg.Supported(); err != nil {
		w.t.Fatal(err)
	}
	open := func(name string) *os.File {
		f, err := os.Create(filepath.Join(w.t.TempDir(), name))
		if err != nil {
			w.t.Fatal(err)
		}
		w.t.Cleanup(func() { f.Close() })
		return f
	}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { stdin.Close() })
	w.stdout, w.stderr = open("stdout"), open("stderr")
	logw := w.stderr
	env := &connect.Env{Args: args,
		Log:   func(f string, a ...any) { fmt.Fprintf(logw, f+"\n", a...) },
		Debug: func(f string, a ...any) { fmt.Fprintf(logw, f+"\n", a...) }}
	r := &Run{Argv: argv, Args: args, Config: cfg, Env: env, IO: IO{Stdin: stdin, Stdout: w.stdout, Stderr: w.stderr, Log: logw},
		Notes: NewNotices(logw, cfg), Cloud: func(ctx context.Context, o preflight.Options) (Cloud, error) { return w.cloud, nil }}
	if w.direct != nil {
		r.Direct = func(*connect.Config, *connect.Env) connect.Transport { return w.direct }
	}
	return r
}

func read(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// port is the server's port as a -p argument.
func port(s *xsshd.Server) string { return strconv.Itoa(s.Port) }

func contains(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

func newKey() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// rewriteKey writes the world's key file anew from w.key (after a test
// replaced it).
func (w *world) rewriteKey() {
	w.t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	w.key, _ = ssh.NewSignerFromKey(priv)
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(w.keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		w.t.Fatal(err)
	}
}
