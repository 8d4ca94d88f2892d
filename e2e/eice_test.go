package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/gorilla/websocket"

	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/lab"
)

// EC2 Instance Connect Endpoint tunnels (issue 12) in the lab: a private
// instance with no SSM agent whose port 22 answers only the endpoint.

func TestEICEGetsIn(t *testing.T) {
	needWorld(t)
	before, _ := world.EICETunnels()
	r, took := runEC2(t, 90*time.Second, "-v", "eice-only", "echo ok; exit 3")
	if r.code != 3 || string(r.stdout) != "ok\n" {
		t.Fatalf("eice-only: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(string(r.stderr), "continuing through an EC2 Instance Connect Endpoint") {
		t.Errorf("stderr %q lacks the line that says the endpoint carried it", r.stderr)
	}
	if after, _ := world.EICETunnels(); after <= before {
		t.Errorf("no tunnel was opened (%d before, %d after)", before, after)
	}
	t.Logf("eice-only through the endpoint in %v", took.Round(time.Millisecond))
	// --via=eice straight away, and to an instance reachable otherwise too.
	r, _ = runEC2(t, 60*time.Second, "--via=eice", "healthy", "echo via")
	if r.code != 0 || string(r.stdout) != "via\n" {
		t.Errorf("--via=eice healthy: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
}

// TestEICEProxy: OpenSSH, scp and rsync through "ec2ssh --proxy".
func TestEICEProxy(t *testing.T) {
	needWorld(t)
	lab.Require(t, "ssh", "scp", "rsync")
	in := world.Instances["eice-only"]
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	env := strings.Join(world.AWSEnv(), " ")
	os.WriteFile(cfg, []byte("Host eice\n  HostName "+in.ID+"\n  User root\n  IdentityFile "+world.ED25519Key+"\n  IdentitiesOnly yes\n"+
		"  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n  LogLevel ERROR\n  BatchMode yes\n"+
		"  ProxyCommand env "+env+" XDG_CACHE_HOME="+dir+" "+bin+" --proxy %h %p\n"), 0o600)
	src := filepath.Join(dir, "payload")
	os.WriteFile(src, []byte(strings.Repeat("through the endpoint\n", 50000)), 0o644)
	if r := runCmd(t, nil, "scp", "-q", "-F", cfg, src, "eice:/tmp/ec2ssh-eice-scp"); r.code != 0 {
		t.Fatalf("scp: exit %d: %s", r.code, r.stderr)
	}
	if r := runCmd(t, nil, "rsync", "-a", "-e", "ssh -F "+cfg, src, "eice:/tmp/ec2ssh-eice-rsync"); r.code != 0 {
		t.Fatalf("rsync: exit %d: %s", r.code, r.stderr)
	}
	r := runCmd(t, nil, "ssh", "-F", cfg, "eice", "cmp /tmp/ec2ssh-eice-scp /tmp/ec2ssh-eice-rsync && wc -c < /tmp/ec2ssh-eice-scp")
	if r.code != 0 || strings.TrimSpace(string(r.stdout)) != "1050000" {
		t.Errorf("the copies: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
}

// TestEICERefusesBadURLs: the stand-in checks what AWS checks.
func TestEICERefusesBadURLs(t *testing.T) {
	needWorld(t)
	var env map[string]string = map[string]string{}
	for _, kv := range world.AWSEnv() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(env["SSL_CERT_FILE"])
	pool.AppendCertsFromPEM(pem)
	dialer := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 5 * time.Second}
	cfg := aws.Config{Region: lab.Region, Credentials: credentials.NewStaticCredentialsProvider(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], "")}
	eps := endpointsOf(t)
	in := world.Instances["eice-only"]
	ep, _ := fallback.PickEndpoint(eps, eps[0].VPCID, "")
	for _, tt := range []struct {
		name   string
		tunnel *fallback.EICETunnels
		tamper func(string) string
		want   string
	}{
		{"expired", &fallback.EICETunnels{Config: cfg, Dialer: dialer, Now: func() time.Time { return time.Now().Add(-2 * time.Minute) }}, nil, "expired"},
		{"tampered address", &fallback.EICETunnels{Config: cfg, Dialer: dialer}, func(u string) string {
			return strings.Replace(u, url.QueryEscape(in.IP), "127.0.1.10", 1)
		}, "signature does not match"},
		{"wrong secret", &fallback.EICETunnels{Config: aws.Config{Region: lab.Region, Credentials: credentials.NewStaticCredentialsProvider(env["AWS_ACCESS_KEY_ID"], "not-the-secret", "")}, Dialer: dialer}, nil, "signature does not match"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, err := tt.tunnel.URL(context.Background(), ep, in.IP, 22, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				u = tt.tamper(u)
			}
			_, resp, err := dialer.Dial(u, nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("dial %s: err %v, response %v; want 403", tt.name, err, resp)
			}
			if _, refused := world.EICETunnels(); len(refused) == 0 || !strings.Contains(refused[len(refused)-1], tt.want) {
				t.Errorf("refused for %q, want %q", refused, tt.want)
			}
			// Through ec2ssh's own Open: the refusal is an AWS error, said as one.
			if tt.tamper == nil {
				if _, err := tt.tunnel.Open(context.Background(), ep, in.IP, 22); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
					t.Errorf("Open: %v, want the 403 named", err)
				}
			}
		})
	}
}

// endpointsOf lists the lab's endpoints.
func endpointsOf(t *testing.T) []fallback.TunnelEndpoint {
	t.Helper()
	eps, dns := world.EICEEndpoints()
	var out []fallback.TunnelEndpoint
	for _, e := range eps {
		out = append(out, fallback.TunnelEndpoint{ID: e.ID, DNSName: dns, VPCID: e.VPCID, SubnetID: e.SubnetID, State: "create-complete"})
	}
	return out
}

func TestEICEDiagnosesMissingEgress(t *testing.T) {
	needWorld(t)
	r, _ := runEC2(t, 60*time.Second, "--diagnose", "eice-noegress")
	out := string(r.stdout)
	if !strings.Contains(out, "instance-connect-endpoint") || !strings.Contains(out, "lets nothing out to port 22") ||
		!strings.Contains(out, "aws ec2 authorize-security-group-egress --group-id sg-") {
		t.Errorf("--diagnose eice-noegress:\n%s%s", out, r.stderr)
	}
	// And eice-only's endpoint passes.
	r, _ = runEC2(t, 60*time.Second, "--diagnose", "eice-only")
	if !strings.Contains(string(r.stdout), "eice-0lab0000000000001 can reach port 22 (one hour per tunnel, 20 connections per endpoint)") {
		t.Errorf("--diagnose eice-only:\n%s%s", r.stdout, r.stderr)
	}
}

// TestSerialConsole: --serial pushes a one-time key for port 0 and opens
// the instance's terminal through the console's SSH endpoint (the lab's
// stand-in, named in ssh_config as a user would name a proxy for it).
func TestSerialConsole(t *testing.T) {
	needWorld(t)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(world.SerialKnownHosts()+"\n"), 0o600)
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte("Host serial-console.ec2-instance-connect.*.aws\n  HostName 127.0.7.1\n  UserKnownHostsFile "+kh+
		"\n  StrictHostKeyChecking yes\nInclude "+ec2Cfg+"\n"), 0o600)
	run := func(stdin string, args ...string) result { return runLab(t, cfg, dir, stdin, args...) }
	// sshd-stopped: no sshd, and the console still lets one in.
	r := run("echo serial-$((6*7))\nexit\n", "--serial", "sshd-stopped")
	if r.code != 0 || !strings.Contains(string(r.stdout), "serial-42") {
		t.Fatalf("--serial: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	// A command is refused: a console runs none.
	if r := run("", "--serial", "sshd-stopped", "uptime"); r.code != 255 || !strings.Contains(string(r.stderr), "takes no command") {
		t.Errorf("--serial with a command: exit %d, %q", r.code, r.stderr)
	}
	// A console key that is neither AWS's published one for the region nor
	// in known_hosts (the stand-in's, with an empty known_hosts): refused
	// with the published fingerprint and where it is published, even under
	// accept-new, and nothing recorded.
	os.WriteFile(kh, nil, 0o600)
	for _, extra := range [][]string{nil, {"-o", "StrictHostKeyChecking=accept-new"}} {
		r := run("", append(append([]string{"--serial"}, extra...), "sshd-stopped")...)
		if r.code != 255 || !strings.Contains(string(r.stderr), "sc-endpoints-and-fingerprints") ||
			!strings.Contains(string(r.stderr), fallback.SerialConsoleFingerprint(lab.Region)) {
			t.Errorf("--serial %v, console key not the published one: exit %d, %q", extra, r.code, r.stderr)
		}
	}
	if b, _ := os.ReadFile(kh); len(b) != 0 {
		t.Errorf("known_hosts was written: %q", b)
	}
	os.WriteFile(kh, []byte(world.SerialKnownHosts()+"\n"), 0o600)
	// One session at a time: a second while the first is open is told so.
	first := exec.Command(bin, "-F", cfg, "--serial", "sshd-stopped")
	first.Env = append(append(cleanEnv(), world.AWSEnv()...), "XDG_CACHE_HOME="+dir)
	stdinW, _ := first.StdinPipe()
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdinW.Close(); first.Process.Kill(); first.Wait() }()
	time.Sleep(3 * time.Second)
	if r := run("", "--serial", "sshd-stopped"); r.code != 255 || !strings.Contains(string(r.stderr), "already open") {
		t.Errorf("a second console session: exit %d, %q", r.code, r.stderr)
	}
}
