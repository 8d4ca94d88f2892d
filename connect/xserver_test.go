package connect

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ec2ssh/ec2ssh/failure"
)

// These tests run ec2ssh's client against x/crypto's own SSH server over
// loopback TCP: no root, no lab, no OpenSSH. They pin the classification
// of failures to the errors x/crypto really returns.

// xserver is an x/crypto SSH server on 127.0.0.1.
type xserver struct {
	ln      net.Listener
	port    int
	hostKey ssh.Signer
	config  *ssh.ServerConfig
}

type xopts struct {
	userKeys  []ssh.PublicKey // accepted for publickey
	password  string          // accepted for password, "" for none
	kbdAnswer string          // accepted for keyboard-interactive, "" for none
	kex       []string        // the server's key exchanges, nil for the default
	banner    string          // a pre-auth banner
	// publicKey, when set, decides publickey authentication instead of userKeys.
	publicKey func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error)
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startXServer(t *testing.T, o xopts) *xserver {
	t.Helper()
	s := &xserver{hostKey: newSigner(t)}
	cfg := &ssh.ServerConfig{}
	if len(o.userKeys) > 0 {
		cfg.PublicKeyCallback = func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, k := range o.userKeys {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					return nil, nil
				}
			}
			return nil, errors.New("no")
		}
	}
	if o.publicKey != nil {
		cfg.PublicKeyCallback = o.publicKey
	}
	if o.password != "" {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == o.password {
				return nil, nil
			}
			return nil, errors.New("no")
		}
	}
	if o.kbdAnswer != "" {
		cfg.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			ans, err := ch("lab", "answer the question", []string{"Code: "}, []bool{false})
			if err == nil && len(ans) == 1 && ans[0] == o.kbdAnswer {
				return nil, nil
			}
			return nil, errors.New("no")
		}
	}
	if o.kex != nil {
		cfg.KeyExchanges = o.kex
	}
	if o.banner != "" {
		cfg.BannerCallback = func(ssh.ConnMetadata) string { return o.banner }
	}
	cfg.AddHostKey(s.hostKey)
	s.config = cfg
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.port = ln, ln.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

// serve runs one connection: sessions answer "exec" with the command's
// text and exit status 0; direct-tcpip channels are dialled (for -L, -D).
func (s *xserver) serve(c net.Conn) {
	sc, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		c.Close()
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		switch nc.ChannelType() {
		case "direct-tcpip":
			var p struct {
				Host     string
				Port     uint32
				OrigHost string
				OrigPort uint32
			}
			if ssh.Unmarshal(nc.ExtraData(), &p) != nil {
				nc.Reject(ssh.ConnectionFailed, "bad request")
				continue
			}
			target, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
			if err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			ch, chReqs, err := nc.Accept()
			if err != nil {
				target.Close()
				continue
			}
			go ssh.DiscardRequests(chReqs)
			go func() {
				go func() { io.Copy(ch, target); ch.CloseWrite() }()
				io.Copy(target, ch)
				target.Close()
			}()
		case "session":
			ch, chReqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go func() {
				for r := range chReqs {
					if r.Type == "exec" {
						var cmd struct{ Command string }
						ssh.Unmarshal(r.Payload, &cmd)
						r.Reply(true, nil)
						switch {
						case cmd.Command == "cat":
							// stdin to stdout until EOF, as cat does.
							io.Copy(ch, ch)
						case strings.HasPrefix(cmd.Command, "emit "):
							// N bytes out, stdin never read, as scp -f sends a file.
							n, _ := strconv.Atoi(strings.TrimPrefix(cmd.Command, "emit "))
							ch.Write(bytes.Repeat([]byte("x"), n))
						default:
							fmt.Fprintf(ch, "ran %s\n", cmd.Command)
						}
						ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 0))
						ch.Close()
						return
					}
					r.Reply(false, nil)
				}
			}()
		default:
			nc.Reject(ssh.UnknownChannelType, "no")
		}
	}
}

// knownHostsFor writes a known_hosts file holding key for 127.0.0.1:port.
func knownHostsFor(t *testing.T, port int, key ssh.PublicKey) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))}, key)
	if err := os.WriteFile(f, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// testConfigFor is a Config for 127.0.0.1:port as ssh_config would give it.
func testConfigFor(port int, knownHosts string) *Config {
	return &Config{Alias: "xserver", HostName: "127.0.0.1", Port: port, User: "tester", UserSet: true,
		PubkeyAuth: true, PasswordAuth: true, KbdInteractive: true, PasswordPrompts: 3, BatchMode: true,
		UserKnownHostsFiles: []string{knownHosts}, StrictHostKeyChecking: "yes", ConnectTimeout: 5 * time.Second,
		ConnectionAttempts: 1, AddressFamily: "any", RequestTTY: "auto", SessionType: "default", ForwardAgent: "no", LogLevel: "INFO"}
}

type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) log(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, a...))
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func testEnv(l *logSink) *Env {
	return &Env{Log: l.log, Debug: func(string, ...any) {}}
}

// dialX dials c with the given signers and prompter.
func dialX(t *testing.T, c *Config, signers []ssh.Signer, p Prompter) (*Client, *logSink, error) {
	t.Helper()
	logs := &logSink{}
	cr := &Credentials{Signers: signers, Prompter: p, cfg: c, user: c.User, host: c.HostName}
	client, err := Dial(context.Background(), c, cr, NewHostKeys(c, p, logs.log), nil, testEnv(logs))
	if client != nil {
		t.Cleanup(func() { client.Close() })
	}
	return client, logs, err
}

func TestDialAndRunAgainstXCrypto(t *testing.T) {
	key := newSigner(t)
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}, banner: "welcome\n"})
	c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
	client, logs, err := dialX(t, c, []ssh.Signer{key}, nil)
	if err != nil {
		t.Fatalf("Dial = %v", err)
	}
	if !strings.Contains(logs.String(), "welcome") {
		t.Errorf("the server's banner was not shown: %q", logs)
	}
	var out, errb bytes.Buffer
	code, err := Run(context.Background(), client, &Session{Command: "hello world"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, logs.log)
	if err != nil || code != 0 || out.String() != "ran hello world\n" {
		t.Errorf("Run = %d, %v, stdout %q; want 0, nil, %q", code, err, out.String(), "ran hello world\n")
	}
}

// TestFailureKindsFromXCrypto makes each failure happen for real and checks
// the kind it is classified as.
func TestFailureKindsFromXCrypto(t *testing.T) {
	key := newSigner(t)
	good := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
	goodKH := knownHostsFor(t, good.port, good.hostKey.PublicKey())

	// A port nothing listens on.
	closedLn, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closedLn.Addr().(*net.TCPAddr).Port
	closedLn.Close()

	// A server that answers with something other than SSH.
	httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { httpLn.Close() })
	go func() {
		for {
			c, err := httpLn.Accept()
			if err != nil {
				return
			}
			// Read the request (ec2ssh's identification, as ssh sends
			// its own first) before answering, as a web server does.
			c.Read(make([]byte, 256))
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	// One that accepts and says nothing.
	silentLn, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { silentLn.Close() })
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := silentLn.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	// One that sends its banner and hangs up.
	hangupLn, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { hangupLn.Close() })
	go func() {
		for {
			c, err := hangupLn.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.2p1\r\n"))
			// Everything the client sends (its identification, its
			// KEXINIT) is read before hanging up, so that the close is
			// clean: a close with unread data is a reset.
			for {
				c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := c.Read(make([]byte, 4096)); err != nil {
					break
				}
			}
			c.Close()
		}
	}()
	oldKex := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}, kex: []string{"diffie-hellman-group1-sha1"}})

	port := func(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }
	tests := []struct {
		name    string
		config  func() *Config
		signers []ssh.Signer
		want    failure.Kind
		words   string // ssh(1)'s stderr lines for it, as a regexp
	}{
		{"refused", func() *Config { return testConfigFor(closedPort, goodKH) }, []ssh.Signer{key}, failure.Refused, `^ssh: connect to host 127\.0\.0\.1 port \d+: Connection refused$`},
		{"dns", func() *Config {
			c := testConfigFor(good.port, goodKH)
			c.HostName = "no-such-host.invalid"
			return c
		}, []ssh.Signer{key}, failure.DNS, `^connect\.test: Could not resolve hostname no-such-host\.invalid: (Name or service not known|Temporary failure in name resolution)$`},
		{"not ssh", func() *Config { return testConfigFor(port(httpLn), goodKH) }, []ssh.Signer{key}, failure.NoBanner, `^kex_exchange_identification: Connection closed by remote host\nConnection closed by 127\.0\.0\.1 port \d+$`},
		{"silent", func() *Config {
			c := testConfigFor(port(silentLn), goodKH)
			c.ConnectTimeout = 300 * time.Millisecond
			return c
		}, []ssh.Signer{key}, failure.NoBanner, `^Connection timed out during banner exchange\nConnection to 127\.0\.0\.1 port \d+ timed out$`},
		{"hangs up after the banner", func() *Config { return testConfigFor(port(hangupLn), goodKH) }, []ssh.Signer{key}, failure.Unknown, `^Connection closed by 127\.0\.0\.1 port \d+$`},
		{"no common key exchange", func() *Config {
			return testConfigFor(oldKex.port, knownHostsFor(t, oldKex.port, oldKex.hostKey.PublicKey()))
		}, []ssh.Signer{key}, failure.Algorithms, `^Unable to negotiate with 127\.0\.0\.1 port \d+: no matching key exchange method found\. Their offer: diffie-hellman-group1-sha1(,kex-strict-s-v00@openssh\.com)?$`},
		{"key rejected", func() *Config { return testConfigFor(good.port, goodKH) }, []ssh.Signer{newSigner(t)}, failure.AuthRejected, `^tester@127\.0\.0\.1: Permission denied \(publickey\)\.$`},
		{"no key at all", func() *Config { return testConfigFor(good.port, goodKH) }, nil, failure.AuthRejected, `^tester@127\.0\.0\.1: Permission denied \(publickey\)\.$`},
		{"host key unknown", func() *Config {
			return testConfigFor(good.port, filepath.Join(t.TempDir(), "empty_known_hosts"))
		}, []ssh.Signer{key}, failure.HostKeyUnknown, `^No ED25519 host key is known for \[127\.0\.0\.1\]:\d+ and you have requested strict checking\.\nHost key verification failed\.$`},
		{"host key changed", func() *Config {
			return testConfigFor(good.port, knownHostsFor(t, good.port, newSigner(t).PublicKey()))
		}, []ssh.Signer{key}, failure.HostKeyChanged, `(?s)^@+\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n.*\nHost key for \[127\.0\.0\.1\]:\d+ has changed and you have requested strict checking\.\nHost key verification failed\.$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := dialX(t, tt.config(), tt.signers, nil)
			if got := failure.KindOf(err); got != tt.want {
				t.Errorf("Dial: kind %v (%v), want %v", got, err, tt.want)
			}
			if err != nil && failure.HintOf(err) == "" && tt.want != failure.Unknown {
				t.Errorf("Dial: %v has no hint", err)
			}
			if got := strings.Join(SSHLines(err), "\n"); !regexp.MustCompile(tt.words).MatchString(got) {
				t.Errorf("Dial: ssh's words %q, want %s (%#v)", got, tt.words, errors.Unwrap(err))
			}
		})
	}
}

func TestDialCanceled(t *testing.T) {
	silentLn, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { silentLn.Close() })
	go func() {
		for {
			c, err := silentLn.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c := testConfigFor(silentLn.Addr().(*net.TCPAddr).Port, "/dev/null")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	logs := &logSink{}
	start := time.Now()
	_, err := Dial(ctx, c, &Credentials{cfg: c}, NewHostKeys(c, nil, logs.log), nil, testEnv(logs))
	if time.Since(start) > 3*time.Second {
		t.Errorf("a cancelled dial took %v", time.Since(start))
	}
	if failure.KindOf(err) != failure.Canceled {
		t.Errorf("Dial after cancel: %v (%v), want Canceled", failure.KindOf(err), err)
	}
}

// scripted answers prompts from a list.
type scripted struct {
	answers []string
	asked   []string
}

func (s *scripted) Ask(q string, echo bool) (string, error) {
	s.asked = append(s.asked, q)
	if len(s.answers) == 0 {
		return "", io.EOF
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}

func TestAuthMethods(t *testing.T) {
	key := newSigner(t)
	t.Run("password after a refused key", func(t *testing.T) {
		srv := startXServer(t, xopts{password: "s3cret"})
		c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
		c.KbdInteractive = false
		p := &scripted{answers: []string{"wrong", "s3cret"}}
		if _, _, err := dialX(t, c, []ssh.Signer{key}, p); err != nil {
			t.Fatalf("Dial = %v", err)
		}
		if len(p.asked) != 2 || !strings.Contains(p.asked[0], "tester@127.0.0.1's password") {
			t.Errorf("asked %q, want two password prompts", p.asked)
		}
	})
	t.Run("keyboard-interactive", func(t *testing.T) {
		srv := startXServer(t, xopts{kbdAnswer: "1234"})
		c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
		p := &scripted{answers: []string{"1234"}}
		if _, _, err := dialX(t, c, nil, p); err != nil {
			t.Fatalf("Dial = %v", err)
		}
		if len(p.asked) != 1 || !strings.Contains(p.asked[0], "answer the question") || !strings.Contains(p.asked[0], "Code: ") {
			t.Errorf("asked %q, want the instruction and the question", p.asked)
		}
	})
	t.Run("password with no terminal", func(t *testing.T) {
		srv := startXServer(t, xopts{password: "s3cret"})
		c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
		_, _, err := dialX(t, c, []ssh.Signer{key}, nil)
		if failure.KindOf(err) != failure.AuthRejected || !strings.Contains(failure.HintOf(err), "no terminal") {
			t.Errorf("Dial = %v (hint %q), want AuthRejected saying there is no terminal", err, failure.HintOf(err))
		}
	})
	t.Run("PubkeyAuthentication no", func(t *testing.T) {
		srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
		c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
		c.PubkeyAuth = false
		if _, _, err := dialX(t, c, []ssh.Signer{key}, nil); failure.KindOf(err) != failure.AuthRejected {
			t.Errorf("Dial = %v, want AuthRejected: the key must not be offered", err)
		}
	})
}

func TestHostKeyPolicies(t *testing.T) {
	key := newSigner(t)
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
	t.Run("accept-new records one line OpenSSH reads", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		c := testConfigFor(srv.port, kh)
		c.StrictHostKeyChecking = "accept-new"
		if _, logs, err := dialX(t, c, []ssh.Signer{key}, nil); err != nil || !strings.Contains(logs.String(), "Permanently added") {
			t.Fatalf("Dial = %v, logs %q", err, logs)
		}
		b, _ := os.ReadFile(kh)
		want := knownhosts.Line([]string{"[127.0.0.1]:" + strconv.Itoa(srv.port)}, srv.hostKey.PublicKey()) + "\n"
		if string(b) != want {
			t.Errorf("known_hosts = %q, want %q", b, want)
		}
		c.StrictHostKeyChecking = "yes"
		if _, _, err := dialX(t, c, []ssh.Signer{key}, nil); err != nil {
			t.Errorf("the recorded key was not accepted: %v", err)
		}
	})
	t.Run("hashed", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		c := testConfigFor(srv.port, kh)
		c.StrictHostKeyChecking, c.HashKnownHosts = "accept-new", true
		if _, _, err := dialX(t, c, []ssh.Signer{key}, nil); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(kh)
		if !strings.HasPrefix(string(b), "|1|") {
			t.Errorf("known_hosts = %q, want a hashed name", b)
		}
		c.StrictHostKeyChecking = "yes"
		if _, _, err := dialX(t, c, []ssh.Signer{key}, nil); err != nil {
			t.Errorf("the hashed key was not accepted: %v", err)
		}
	})
	t.Run("changed key under no is a warning", func(t *testing.T) {
		c := testConfigFor(srv.port, knownHostsFor(t, srv.port, newSigner(t).PublicKey()))
		c.StrictHostKeyChecking = "no"
		c.ForwardAgent = "yes"
		_, logs, err := dialX(t, c, []ssh.Signer{key}, nil)
		if err != nil || !strings.Contains(logs.String(), "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!") {
			t.Errorf("Dial = %v, logs %q; want a warning and a connection", err, logs)
		}
		// As ssh(1)'s continue_unsafe: nothing a man in the middle could use.
		if c.PasswordAuth || c.KbdInteractive || c.ForwardAgent != "no" || !strings.Contains(logs.String(), "Password authentication is disabled") {
			t.Errorf("after a changed key under no: password %v, keyboard-interactive %v, agent %q; logs %q; want all off",
				c.PasswordAuth, c.KbdInteractive, c.ForwardAgent, logs)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte("@revoked * "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.hostKey.PublicKey())))+"\n"), 0o600)
		c := testConfigFor(srv.port, kh)
		c.StrictHostKeyChecking = "no"
		_, _, err := dialX(t, c, []ssh.Signer{key}, nil)
		if failure.KindOf(err) != failure.HostKeyChanged || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("Dial = %v, want a refusal naming the revocation even under StrictHostKeyChecking no", err)
		}
	})
	t.Run("ask, answered yes", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		c := testConfigFor(srv.port, kh)
		c.StrictHostKeyChecking = "ask"
		p := &scripted{answers: []string{"maybe", "yes"}}
		if _, _, err := dialX(t, c, []ssh.Signer{key}, p); err != nil {
			t.Fatal(err)
		}
		if len(p.asked) != 2 || !strings.Contains(p.asked[0], ssh.FingerprintSHA256(srv.hostKey.PublicKey())) {
			t.Errorf("asked %q, want the fingerprint and a second try after 'maybe'", p.asked)
		}
	})
}

// TestDynamicForwardSOCKS drives -D with SOCKS4, SOCKS4a and SOCKS5
// clients through x/crypto's server to an echo service.
func TestDynamicForwardSOCKS(t *testing.T) {
	key := newSigner(t)
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
	c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
	echo, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			conn, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(conn, conn); conn.Close() }()
		}
	}()
	echoPort := uint16(echo.Addr().(*net.TCPAddr).Port)
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	socksPort := free.Addr().(*net.TCPAddr).Port
	free.Close()
	c.DynamicForwards = []string{"127.0.0.1:" + strconv.Itoa(socksPort)}
	client, logs, err := dialX(t, c, []ssh.Signer{key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := StartForwards(ctx, client, logs.log); err != nil {
		t.Fatal(err)
	}
	port := binary.BigEndian.AppendUint16(nil, echoPort)
	cases := []struct {
		name  string
		hello []byte
		reply int // bytes of reply before the stream
		ok    func([]byte) bool
	}{
		{"socks4", append(append([]byte{4, 1}, port...), 127, 0, 0, 1, 0), 8, func(r []byte) bool { return r[1] == 90 }},
		{"socks4a", append(append(append([]byte{4, 1}, port...), 0, 0, 0, 1, 'u', 0), append([]byte("localhost"), 0)...), 8, func(r []byte) bool { return r[1] == 90 }},
		{"socks5", nil, 0, nil},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(socksPort))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			if tt.name == "socks5" {
				conn.Write([]byte{5, 1, 0})
				m := make([]byte, 2)
				if _, err := io.ReadFull(conn, m); err != nil || m[1] != 0 {
					t.Fatalf("method reply %v, %v", m, err)
				}
				conn.Write(append([]byte{5, 1, 0, 1, 127, 0, 0, 1}, port...))
				r := make([]byte, 10)
				if _, err := io.ReadFull(conn, r); err != nil || r[1] != 0 {
					t.Fatalf("connect reply %v, %v", r, err)
				}
			} else {
				conn.Write(tt.hello)
				r := make([]byte, tt.reply)
				if _, err := io.ReadFull(conn, r); err != nil || !tt.ok(r) {
					t.Fatalf("reply %v, %v", r, err)
				}
			}
			conn.Write([]byte("ping"))
			got := make([]byte, 4)
			if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping" {
				t.Errorf("echo through %s = %q, %v", tt.name, got, err)
			}
		})
	}
}

// A server's banner is shown as ssh(1) shows it: escape sequences and
// control characters as octal, lines kept (issue 14).
func TestBannerIsMadeSafe(t *testing.T) {
	key := newSigner(t)
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}, banner: "hello\x1b]0;pwned\x07\n\x1b[2Jline two\n"})
	c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
	_, logs, err := dialX(t, c, []ssh.Signer{key}, nil)
	if err != nil {
		t.Fatalf("Dial = %v", err)
	}
	got := logs.String()
	if strings.ContainsAny(got, "\x1b\x07") || !strings.Contains(got, `hello\033]0;pwned\007`+"\n"+`\033[2Jline two`) {
		t.Errorf("banner shown as %q, want the escapes in octal and the line break kept", got)
	}
}
