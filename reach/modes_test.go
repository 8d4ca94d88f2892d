package reach

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/lab/xsshd"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// TestProxy: --proxy carries sshd's bytes on stdout, whichever way in
// carries them, and the line says which.
func TestProxy(t *testing.T) {
	for _, tt := range []struct {
		name   string
		direct func(context.Context) (net.Conn, error)
		note   string
	}{
		{"direct", nil, ""},
		{"blocked: over SSM", silentDial, "continuing over SSM"},
		{"refused: over SSM", refusedDial, "continuing over SSM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, true)
			s := w.sshd(nil)
			w.instance("i-0123456789abcdef0", "web-1", s)
			w.cloud.port = func(ctx context.Context, id string, port int) (net.Conn, error) { return toServer(s)(ctx) }
			if tt.direct != nil {
				w.direct = tt.direct
			} else {
				w.direct = toServer(s)
			}
			r := w.run("--proxy", "i-0123456789abcdef0", "22")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				Proxy(ctx, r)
			}()
			// The banner reaches stdout; then the run is ended as ssh ends
			// its ProxyCommand (a signal).
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if b, _ := os.ReadFile(w.stdout.Name()); len(b) > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done
			if out := read(t, w.stdout); len(out) < 8 || out[:8] != "SSH-2.0-" {
				t.Errorf("stdout %q, want sshd's banner", out)
			}
			if tt.note != "" && !contains(read(t, w.stderr), tt.note) {
				t.Errorf("stderr lacks %q: %s", tt.note, read(t, w.stderr))
			}
		})
	}
}

// TestProxyPlainHostStaysPlain: --proxy to a host that is no instance with
// a refused port fails as ssh would, asking AWS nothing.
func TestProxyPlainHostStaysPlain(t *testing.T) {
	w := newWorld(t, false)
	w.direct = refusedDial
	r := w.run("--proxy", "git.example.test", "22")
	code, err := Proxy(context.Background(), r)
	if code != 255 || failure.KindOf(err) != failure.Refused {
		t.Errorf("Proxy = %d, %v; want 255, Refused", code, err)
	}
	if len(w.cloud.calls) != 0 {
		t.Errorf("AWS asked: %v", w.cloud.calls)
	}
}

// TestDiagnose: the report as JSON, exit 1 when a check failed.
func TestDiagnose(t *testing.T) {
	w := newWorld(t, true)
	s := w.sshd(nil)
	w.instance("i-0123456789abcdef0", "web-1", s)
	w.cloud.facts = func(req preflight.Request) *preflight.Facts {
		f := &preflight.Facts{Region: "us-east-1", Port: req.Port, Instance: req.Instance,
			SecurityGroups: []preflight.SecurityGroup{{ID: "sg-1"}}}
		return f
	}
	r := w.run("--diagnose", "--json", "web-1")
	code, err := Diagnose(context.Background(), r)
	if err != nil || code != 1 {
		t.Fatalf("Diagnose = %d, %v; want 1 (a check failed)", code, err)
	}
	var rep struct {
		Target struct {
			InstanceID string `json:"instance_id"`
		}
		Checks []struct{ ID, Status string }
	}
	if err := json.Unmarshal([]byte(read(t, w.stdout)), &rep); err != nil {
		t.Fatalf("%v: %s", err, read(t, w.stdout))
	}
	if rep.Target.InstanceID != "i-0123456789abcdef0" || len(rep.Checks) == 0 {
		t.Errorf("report: %+v", rep)
	}
	if w.cloud.called("Gather") != 1 {
		t.Errorf("Gather called %d times", w.cloud.called("Gather"))
	}
	// The table, for a person.
	r = w.run("--diagnose", "web-1")
	if code, _ := Diagnose(context.Background(), r); code != 1 || !contains(read(t, w.stdout), "security-group") {
		t.Errorf("table: %d\n%s", code, read(t, w.stdout))
	}
}

// TestDiagnoseNoInstance: an id that names nothing is an error that says
// where it looked.
func TestDiagnoseNoInstance(t *testing.T) {
	w := newWorld(t, true)
	r := w.run("--diagnose", "i-0123456789abcdef0")
	code, err := Diagnose(context.Background(), r)
	if code != 255 || failure.KindOf(err) != failure.Config || !contains(err.Error(), "no instance i-0123456789abcdef0 in us-east-1") {
		t.Errorf("Diagnose = %d, %v", code, err)
	}
}

// TestWaitRunning: a pending instance is waited for, visibly, and the
// session runs once it runs; one that stays pending is given up on within
// ConnectTimeout.
func TestWaitRunning(t *testing.T) {
	waitInterval = 10 * time.Millisecond
	defer func() { waitInterval = 0 }()
	for _, tt := range []struct {
		name   string
		states []preflight.State
		code   int
		kind   failure.Kind
	}{
		{"starts", []preflight.State{preflight.StatePending, preflight.StatePending, preflight.StateRunning}, 0, 0},
		{"stays pending", []preflight.State{preflight.StatePending}, 255, failure.InstanceState},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, true)
			s := w.sshd(nil)
			w.instance("i-0123456789abcdef0", "web-1", s)
			w.cloud.states = tt.states
			r := w.run("-l", "ec2-user", "-p", port(s), "-o", "ConnectTimeout=1", "web-1", "echo up")
			spec, _ := SpecFor(r)
			start := time.Now()
			code, err := Connect(context.Background(), r, spec)
			if code != tt.code || failure.KindOf(err) != tt.kind {
				t.Fatalf("Connect = %d, %v; want %d, %v\n%s", code, err, tt.code, tt.kind, read(t, w.stderr))
			}
			if !contains(read(t, w.stderr), "is starting (pending); waiting up to 1s for it to run") {
				t.Errorf("the wait is not said: %s", read(t, w.stderr))
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %v: beyond ConnectTimeout", took)
			}
		})
	}
}

// TestSpecFor: what the command line asks of a connection, and what it
// refuses.
func TestSpecFor(t *testing.T) {
	w := newWorld(t, false)
	for _, tt := range []struct {
		argv []string
		err  string
		spec Spec
	}{
		{[]string{"host", "uptime"}, "", Spec{Command: "uptime"}},
		{[]string{"-N", "host"}, "", Spec{NoSession: true}},
		{[]string{"-f", "host"}, "cannot fork into background without a command", Spec{}},
		{[]string{"-f", "-N", "host"}, "", Spec{NoSession: true, Background: true}},
		{[]string{"-o", "RemoteCommand=ls", "host", "uptime"}, "Cannot execute command-line and remote command.", Spec{}},
		{[]string{"-o", "RemoteCommand=ls", "host"}, "", Spec{Command: "ls"}},
	} {
		s, err := SpecFor(w.run(tt.argv...))
		if tt.err != "" {
			if err == nil || !contains(err.Error(), tt.err) {
				t.Errorf("SpecFor(%q) = %v, want %q", tt.argv, err, tt.err)
			}
			continue
		}
		if err != nil || s.Command != tt.spec.Command || s.NoSession != tt.spec.NoSession || s.Background != tt.spec.Background {
			t.Errorf("SpecFor(%q) = %+v, %v; want %+v", tt.argv, s, err, tt.spec)
		}
	}
}

// TestControlWithoutPath: -O with no ControlPath says so, as ssh does.
func TestControlWithoutPath(t *testing.T) {
	w := newWorld(t, false)
	r := w.run("-O", "check", "host")
	sh, err := SharingFor(r)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := Control(context.Background(), r, sh); code != 255 || err == nil || !contains(err.Error(), `No ControlPath specified for "-O" command`) {
		t.Errorf("Control = %d, %v", code, err)
	}
	if code, ok, err := TryMaster(context.Background(), r, sh, &connect.Session{}, false); ok || code != 0 || err != nil {
		t.Errorf("TryMaster with no path = %d, %v, %v; want not ok", code, ok, err)
	}
}

// TestSharedConnection: the first connection becomes a master on its
// ControlPath, and a second session rides it with no new connection.
func TestSharedConnection(t *testing.T) {
	if !connect.MuxSupported {
		t.Skip("connection sharing needs descriptor passing (not on this platform)")
	}
	w := newWorld(t, false)
	s := w.sshd(nil)
	sock := filepath.Join(w.home, "mux")
	master := w.run("-M", "-S", sock, "-N", "-p", port(s), "127.0.0.1")
	spec, _ := SpecFor(master)
	if spec.Share, _ = SharingFor(master); !spec.Share.Master {
		t.Fatalf("-M: %+v", spec.Share)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { code, _ := Connect(ctx, master, spec); done <- code }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no master socket: %s", read(t, w.stderr))
		}
		time.Sleep(10 * time.Millisecond)
	}
	rider := w.run("-S", sock, "-p", port(s), "127.0.0.1", "echo shared")
	sh, _ := SharingFor(rider)
	code, ok, err := TryMaster(context.Background(), rider, sh, &connect.Session{Command: "echo shared"}, false)
	if !ok || err != nil || code != 0 || read(t, w.stdout) != "shared\n" {
		t.Errorf("TryMaster = %d, %v, %v, %q", code, ok, err, read(t, w.stdout))
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("the server saw %d connections, want 1", n)
	}
	cancel()
	<-done
}

// TestSerialPreconditions: what stops the serial console before a key is
// pushed.
func TestSerialPreconditions(t *testing.T) {
	w := newWorld(t, true)
	for _, tt := range []struct {
		name string
		in   preflight.Instance
		kind failure.Kind
	}{
		{"running Nitro", preflight.Instance{ID: "i-1", State: preflight.StateRunning, Type: "t3.micro"}, 0},
		{"stopped", preflight.Instance{ID: "i-1", State: preflight.StateStopped, Type: "t3.micro"}, failure.InstanceState},
		{"Xen", preflight.Instance{ID: "i-1", State: preflight.StateRunning, Type: "t2.micro"}, failure.InstanceState},
	} {
		err := serialPreconditions(context.Background(), w.cloud, &Target{ID: "i-1", Instance: &tt.in})
		if failure.KindOf(err) != tt.kind || (tt.kind == 0) != (err == nil) {
			t.Errorf("%s: serialPreconditions = %v, want kind %v", tt.name, err, tt.kind)
		}
	}
}

// TestSerialRefusesACommand: the console is a terminal.
func TestSerialRefusesACommand(t *testing.T) {
	w := newWorld(t, true)
	if code, err := Serial(context.Background(), w.run("--serial", "i-0123456789abcdef0", "uptime")); code != 255 || failure.KindOf(err) != failure.Config {
		t.Errorf("Serial with a command = %d, %v", code, err)
	}
}

// TestSerialSession: the console's host key is the published one or in
// known_hosts; the session runs with the pushed key.
func TestSerialSession(t *testing.T) {
	w := newWorld(t, true)
	pushed, _ := newKey()
	s, err := xsshd.Start(xsshd.Options{Keys: []ssh.PublicKey{pushed.PublicKey()}, Handler: func(cmd string, in io.Reader, out, errw io.Writer) int {
		io.WriteString(out, "login: ")
		return 0
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w.instance("i-0123456789abcdef0", "web-1", s).Type = "t3.micro"
	w.cloud.oneTime = pushed
	// The console's name is pointed at the server by ssh_config, as a
	// user may with HostName (its key recorded under the console's name).
	conf := filepath.Join(w.home, ".ssh", "config")
	os.WriteFile(conf, []byte("Host serial-console.ec2-instance-connect.us-east-1.aws\n  HostName 127.0.0.1\n  Port "+port(s)+"\n"), 0o600)
	os.WriteFile(w.khFile, []byte(s.KnownHostsLine("serial-console.ec2-instance-connect.us-east-1.aws")+"\n"), 0o600)
	r := w.run("-F", conf, "--serial", "web-1")
	r.Args.ConfigFile = conf
	code, err := Serial(context.Background(), r)
	if err != nil || code != 0 || read(t, w.stdout) != "login: " {
		t.Errorf("Serial = %d, %v, %q\n%s", code, err, read(t, w.stdout), read(t, w.stderr))
	}
}
