package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// The end-to-end tests run the ec2ssh binary and OpenSSH's ssh against the
// same real sshd on loopback, with the same ssh_config.
var (
	bin     string // the ec2ssh binary under test
	sshd    *lab.SSHD
	workDir string
	cfgFile string // ssh_config with Host "lab" for sshd
	keyFile string
	khFile  string // known_hosts holding sshd's key
	labErr  error  // why the lab could not start
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// The unit subset: no root, no lab; lab tests skip by name.
		os.Exit(m.Run())
	}
	// The suite runs in a private network namespace of its own, where the
	// lab's addresses and firewall rules cannot touch the machine's.
	if !lab.InNetns() {
		if err := lab.NetnsSupported(); err != nil {
			fmt.Fprintf(os.Stderr, "lab: %v (go test -short runs the unit subset without it)\n", err)
			os.Exit(1)
		}
		code, err := lab.Reexec()
		if err != nil {
			fmt.Fprintln(os.Stderr, "lab:", err)
			os.Exit(1)
		}
		os.Exit(code)
	}
	os.Exit(func() int {
		var err error
		workDir, err = os.MkdirTemp("", "ec2ssh-e2e-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(workDir)
		bin = filepath.Join(workDir, "ec2ssh")
		if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		labErr = startLab()
		if sshd != nil {
			defer sshd.Stop()
		}
		worldErr = startWorld()
		if world != nil {
			defer world.Stop()
		}
		return m.Run()
	}())
}

func startLab() error {
	if err := lab.Available(); err != nil {
		return err
	}
	keyFile = filepath.Join(workDir, "id_ed25519")
	if err := lab.Keygen(keyFile, "ed25519", ""); err != nil {
		return err
	}
	pub, err := os.ReadFile(keyFile + ".pub")
	if err != nil {
		return err
	}
	sshd, err = lab.StartSSHD(filepath.Join(workDir, "sshd"), lab.SSHDOptions{AuthorizedKeys: []string{string(pub)}})
	if err != nil {
		return err
	}
	khFile = filepath.Join(workDir, "known_hosts")
	if err := os.WriteFile(khFile, []byte(sshd.KnownHostsLine("127.0.0.1")+"\n"), 0o600); err != nil {
		return err
	}
	cfgFile = writeConfig(filepath.Join(workDir, "config"), khFile, "yes")
	return nil
}

// writeConfig writes an ssh_config for Host lab with the given known_hosts
// file and StrictHostKeyChecking value.
func writeConfig(path, knownHosts, strict string) string {
	text := fmt.Sprintf(`Host lab jumphost
  HostName 127.0.0.1
  Port %d
  User root
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking %s
  BatchMode yes
  LogLevel ERROR
`, sshd.Port, keyFile, knownHosts, strict)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		panic(err)
	}
	return path
}

func needLab(t *testing.T) { t.Helper(); need(t, labErr, "the sshd lab") }

// need fails the test when a part of the lab could not start: make test
// sets the lab up, and a run that cannot try something must not pass. Only
// the unit subset, asked for by name (go test -short, make unit), skips it.
func need(t *testing.T, err error, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s: a lab test (-short runs the unit subset)", what)
	}
	if err != nil {
		t.Fatalf("%s is needed: %v", what, err)
	}
}

type result struct {
	stdout, stderr []byte
	code           int
}

// runCmd runs name with args, stdin, and an environment without the
// caller's agent, and returns what it printed and its exit status.
func runCmd(t *testing.T, stdin []byte, name string, args ...string) result {
	t.Helper()
	return runCmdEnv(t, cleanEnv(), stdin, name, args...)
}

// runCmdEnv is runCmd with an environment of its own.
func runCmdEnv(t *testing.T, env []string, stdin []byte, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return result{out.Bytes(), errb.Bytes(), code}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			env = append(env, kv)
		}
	}
	return env
}

// TestDifferential runs the same command lines through OpenSSH and ec2ssh
// and requires the same stdout, stderr and exit status.
func TestDifferential(t *testing.T) {
	needLab(t)
	lab.Require(t, "ssh")
	tests := []struct {
		name string
		args []string
	}{
		{"exit 0", []string{"true"}},
		{"exit 3", []string{"exit 3"}},
		{"exit 42", []string{"sh", "-c", "'exit 42'"}},
		{"killed by SIGKILL", []string{"kill -9 $$"}},
		{"killed by SIGTERM", []string{"sh -c 'kill -TERM $$'"}},
		{"no trailing newline", []string{"printf", "no-newline"}},
		{"arguments with spaces", []string{"printf", "'[%s]\\n'", "a b", "  c  ", "'d  e'"}},
		{"stderr kept apart", []string{"echo out; echo err >&2; echo out2; exit 5"}},
		{"stdin passed", []string{"tr a-z A-Z"}},
		{"options after the host", []string{"-T", "echo", "after"}},
		{"double dash", []string{"--", "echo", "-n", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := append([]string{"-F", cfgFile, "lab"}, tt.args...)
			stdin := []byte("some input\nno newline at the end")
			want := runCmd(t, stdin, "ssh", argv...)
			got := runCmd(t, stdin, bin, argv...)
			if !bytes.Equal(got.stdout, want.stdout) {
				t.Errorf("ec2ssh %q stdout = %q, ssh gives %q", argv, got.stdout, want.stdout)
			}
			if !bytes.Equal(got.stderr, want.stderr) {
				t.Errorf("ec2ssh %q stderr = %q, ssh gives %q", argv, got.stderr, want.stderr)
			}
			if got.code != want.code {
				t.Errorf("ec2ssh %q exit = %d, ssh gives %d", argv, got.code, want.code)
			}
		})
	}
}

// TestBinaryStreams sends 8 MiB of random bytes up and back, and checks
// them by SHA-256 against what OpenSSH returns.
func TestBinaryStreams(t *testing.T) {
	needLab(t)
	data := make([]byte, 8<<20)
	rand.Read(data)
	sum := sha256.Sum256(data)
	got := runCmd(t, data, bin, "-F", cfgFile, "lab", "cat")
	if got.code != 0 || sha256.Sum256(got.stdout) != sum {
		t.Fatalf("ec2ssh lab cat: exit %d, %d bytes back of %d, stderr %q", got.code, len(got.stdout), len(data), got.stderr)
	}
	// And the remote sees the same bytes: its checksum matches ours.
	got = runCmd(t, data, bin, "-F", cfgFile, "lab", "sha256sum")
	if want := fmt.Sprintf("%x  -\n", sum); string(got.stdout) != want {
		t.Fatalf("remote sha256sum = %q, want %q", got.stdout, want)
	}
	// Down only: 8 MiB generated remotely arrive whole.
	got = runCmd(t, nil, bin, "-F", cfgFile, "lab", "head -c 8388608 /dev/zero")
	if len(got.stdout) != 8<<20 || bytes.Count(got.stdout, []byte{0}) != 8<<20 {
		t.Fatalf("download: %d bytes, want %d zero bytes", len(got.stdout), 8<<20)
	}
}

// TestToolsThroughEc2ssh uses ec2ssh as scp's, rsync's and git's ssh.
func TestToolsThroughEc2ssh(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	// scp and git pass no -F of their own: point them at the lab config
	// with a wrapper, as a user's ~/.ssh/config would.
	wrapper := filepath.Join(dir, "ssh-wrapper")
	os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\nexec %s -F %s \"$@\"\n", bin, cfgFile)), 0o755)
	local := filepath.Join(dir, "local.bin")
	data := make([]byte, 1<<20+17)
	rand.Read(data)
	os.WriteFile(local, data, 0o600)
	remote := filepath.Join(dir, "remote-side")
	os.MkdirAll(remote, 0o700)

	t.Run("scp", func(t *testing.T) {
		lab.Require(t, "scp")
		up := runCmd(t, nil, "scp", "-S", wrapper, local, "lab:"+remote+"/up.bin")
		if up.code != 0 {
			t.Fatalf("scp up: exit %d: %s", up.code, up.stderr)
		}
		back := filepath.Join(dir, "back.bin")
		down := runCmd(t, nil, "scp", "-S", wrapper, "lab:"+remote+"/up.bin", back)
		if down.code != 0 {
			t.Fatalf("scp down: exit %d: %s", down.code, down.stderr)
		}
		if b, _ := os.ReadFile(back); !bytes.Equal(b, data) {
			t.Fatalf("scp round trip changed the file: %d bytes back of %d", len(b), len(data))
		}
	})
	t.Run("rsync", func(t *testing.T) {
		lab.Require(t, "rsync")
		src := filepath.Join(dir, "tree")
		os.MkdirAll(filepath.Join(src, "sub"), 0o700)
		os.WriteFile(filepath.Join(src, "sub", "f"), data, 0o600)
		os.WriteFile(filepath.Join(src, "g"), []byte("g\n"), 0o600)
		r := runCmd(t, nil, "rsync", "-a", "-e", wrapper, src+"/", "lab:"+remote+"/tree/")
		if r.code != 0 {
			t.Fatalf("rsync up: exit %d: %s", r.code, r.stderr)
		}
		back := filepath.Join(dir, "tree-back")
		r = runCmd(t, nil, "rsync", "-a", "-e", wrapper, "lab:"+remote+"/tree/", back+"/")
		if r.code != 0 {
			t.Fatalf("rsync down: exit %d: %s", r.code, r.stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(back, "sub", "f")); !bytes.Equal(b, data) {
			t.Fatalf("rsync round trip changed sub/f")
		}
	})
	t.Run("git", func(t *testing.T) {
		lab.Require(t, "git")
		repo := filepath.Join(remote, "repo.git")
		git := func(dir string, args ...string) {
			t.Helper()
			cmd := exec.Command("git", args...)
			cmd.Dir = dir
			cmd.Env = append(cleanEnv(), "GIT_SSH_COMMAND="+wrapper, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e",
				"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %q: %v\n%s", args, err, out)
			}
		}
		git(dir, "init", "-q", "--bare", repo)
		work := filepath.Join(dir, "work")
		git(dir, "clone", "-q", "lab:"+repo, work)
		os.WriteFile(filepath.Join(work, "README"), []byte("hello over ec2ssh\n"), 0o600)
		git(work, "add", "README")
		git(work, "commit", "-qm", "first")
		git(work, "push", "-q", "origin", "HEAD")
		clone2 := filepath.Join(dir, "clone2")
		git(dir, "clone", "-q", "lab:"+repo, clone2)
		if b, _ := os.ReadFile(filepath.Join(clone2, "README")); string(b) != "hello over ec2ssh\n" {
			t.Fatalf("cloned README = %q", b)
		}
	})
}

// TestHostKeys checks StrictHostKeyChecking against known_hosts files that
// OpenSSH reads too.
func TestHostKeys(t *testing.T) {
	needLab(t)
	lab.Require(t, "ssh", "ssh-keygen")
	t.Run("accept-new records a key OpenSSH accepts", func(t *testing.T) {
		for _, hash := range []string{"no", "yes"} {
			dir := t.TempDir()
			kh := filepath.Join(dir, "ssh", "known_hosts") // the directory does not exist yet
			cfg := writeConfig(filepath.Join(dir, "config"), kh, "accept-new")
			got := runCmd(t, nil, bin, "-F", cfg, "-o", "HashKnownHosts="+hash, "lab", "echo ok")
			if got.code != 0 || string(got.stdout) != "ok\n" {
				t.Fatalf("ec2ssh accept-new (hash %s): exit %d, %q, %s", hash, got.code, got.stdout, got.stderr)
			}
			b, _ := os.ReadFile(kh)
			if lines := strings.Count(string(b), "\n"); lines != 1 {
				t.Fatalf("known_hosts has %d lines, want 1: %q", lines, b)
			}
			if hashed := strings.HasPrefix(string(b), "|1|"); hashed != (hash == "yes") {
				t.Errorf("HashKnownHosts=%s wrote %q", hash, b)
			}
			strict := writeConfig(filepath.Join(dir, "strict"), kh, "yes")
			want := runCmd(t, nil, "ssh", "-F", strict, "lab", "echo ok")
			if want.code != 0 {
				t.Fatalf("OpenSSH refuses the known_hosts ec2ssh wrote (hash %s): %s", hash, want.stderr)
			}
			// Found by ssh-keygen too, by name and port.
			if r := runCmd(t, nil, "ssh-keygen", "-F", "[127.0.0.1]:"+strconv.Itoa(sshd.Port), "-f", kh); r.code != 0 {
				t.Errorf("ssh-keygen -F finds no entry in %q", b)
			}
		}
	})
	t.Run("unknown key with yes is refused and nothing written", func(t *testing.T) {
		dir := t.TempDir()
		kh := filepath.Join(dir, "known_hosts")
		os.WriteFile(kh, []byte("# mine\n"), 0o600)
		cfg := writeConfig(filepath.Join(dir, "config"), kh, "yes")
		got := runCmd(t, nil, bin, "-F", cfg, "lab", "true")
		if got.code != 255 || !strings.Contains(string(got.stderr), "Host key verification failed.") {
			t.Fatalf("exit %d, stderr %q; want 255 and ssh's 'Host key verification failed.'", got.code, got.stderr)
		}
		if b, _ := os.ReadFile(kh); string(b) != "# mine\n" {
			t.Errorf("known_hosts changed on a refusal: %q", b)
		}
	})
	t.Run("changed key is refused with the fix", func(t *testing.T) {
		dir := t.TempDir()
		kh := filepath.Join(dir, "known_hosts")
		before := foreignKeyLine(t, fmt.Sprintf("[127.0.0.1]:%d", sshd.Port))
		os.WriteFile(kh, []byte(before), 0o600)
		for _, strict := range []string{"yes", "accept-new", "ask"} {
			cfg := writeConfig(filepath.Join(dir, "config"), kh, strict)
			got := runCmd(t, nil, bin, "-F", cfg, "lab", "echo should-not-run")
			if got.code != 255 || len(got.stdout) != 0 {
				t.Fatalf("%s: exit %d, stdout %q; want 255 and nothing", strict, got.code, got.stdout)
			}
			if !strings.Contains(string(got.stderr), "has changed") || !strings.Contains(string(got.stderr), "ssh-keygen -R '[127.0.0.1]:") {
				t.Errorf("%s: stderr %q lacks the diagnosis or the fix", strict, got.stderr)
			}
			if b, _ := os.ReadFile(kh); string(b) != before {
				t.Errorf("%s: known_hosts changed on a refusal: %q", strict, b)
			}
		}
	})
	t.Run("entries hashed by ssh-keygen -H are read", func(t *testing.T) {
		dir := t.TempDir()
		kh := filepath.Join(dir, "known_hosts")
		os.WriteFile(kh, []byte(sshd.KnownHostsLine("127.0.0.1")+"\n"), 0o600)
		if out, err := exec.Command("ssh-keygen", "-H", "-f", kh).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen -H: %v: %s", err, out)
		}
		if b, _ := os.ReadFile(kh); !strings.HasPrefix(string(b), "|1|") {
			t.Fatalf("not hashed: %q", b)
		}
		cfg := writeConfig(filepath.Join(dir, "config"), kh, "yes")
		if r := runCmd(t, nil, bin, "-F", cfg, "lab", "echo hashed-ok"); r.code != 0 || string(r.stdout) != "hashed-ok\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("HostKeyAlias names the entry", func(t *testing.T) {
		dir := t.TempDir()
		kh := filepath.Join(dir, "known_hosts")
		cfg := writeConfig(filepath.Join(dir, "config"), kh, "accept-new")
		got := runCmd(t, nil, bin, "-F", cfg, "-o", "HostKeyAlias=i-0123456789abcdef0", "lab", "true")
		b, _ := os.ReadFile(kh)
		// ssh(1) looks a HostKeyAlias up bare, whatever the port.
		if got.code != 0 || !strings.HasPrefix(string(b), "i-0123456789abcdef0 ") {
			t.Fatalf("exit %d, known_hosts %q; want an entry under the bare alias", got.code, b)
		}
		if out, err := exec.Command("ssh-keygen", "-F", "i-0123456789abcdef0", "-f", kh).CombinedOutput(); err != nil {
			t.Errorf("ssh-keygen -F finds no entry for the alias: %v: %s", err, out)
		}
	})
}

// foreignKeyLine is a known_hosts line recording a new, unrelated key for
// name: what a host whose key changed looks like.
func foreignKeyLine(t *testing.T, name string) string {
	t.Helper()
	other := filepath.Join(t.TempDir(), "other")
	if err := lab.Keygen(other, "ed25519", ""); err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(other + ".pub")
	f := strings.Fields(string(pub))
	return name + " " + f[0] + " " + f[1] + "\n"
}

// TestFailuresAreClassified checks the error line, the hint and the status
// of failures a user meets.
func TestFailuresAreClassified(t *testing.T) {
	needLab(t)
	closed, _ := lab.FreePort("127.0.0.1")
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() { // accepts and says nothing, like a hung daemon
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	wrongKey := filepath.Join(t.TempDir(), "wrong")
	lab.Keygen(wrongKey, "ed25519", "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		// A connection that fails is said in ssh's words (issue 25), the
		// hint after; a mistake in the command line or the configuration is
		// ec2ssh's own error line.
		{"refused", []string{"-p", strconv.Itoa(closed), "lab", "true"}, "ssh: connect to host 127.0.0.1 port " + strconv.Itoa(closed) + ": Connection refused\r\n"},
		{"no banner", []string{"-p", strconv.Itoa(silent.Addr().(*net.TCPAddr).Port), "-o", "ConnectTimeout=1", "lab", "true"}, "Connection timed out during banner exchange\r\n"},
		{"dns", []string{"-o", "HostName=no-such-host.invalid", "lab", "true"}, "ec2ssh: Could not resolve hostname no-such-host.invalid: "},
		{"auth rejected", []string{"-i", wrongKey, "-o", "IdentityFile=" + wrongKey, "lab", "true"}, "root@127.0.0.1: Permission denied (publickey).\r\n"},
		{"bad option", []string{"-X", "lab"}, "ec2ssh: error: option -X is not supported by ec2ssh"},
		{"bad config value", []string{"-o", "Port=70000", "lab"}, "ec2ssh: error: bad port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := append([]string{"-F", cfgFile}, tt.args...)
			if tt.name == "auth rejected" {
				// Only the wrong key: a config of its own without the right one.
				dir := t.TempDir()
				cfg := filepath.Join(dir, "config")
				os.WriteFile(cfg, []byte(strings.Replace(mustRead(cfgFile), "IdentityFile "+keyFile, "IdentityFile "+wrongKey, 1)), 0o600)
				argv = []string{"-F", cfg, "lab", "true"}
			}
			got := runCmd(t, nil, bin, argv...)
			stderr := string(got.stderr)
			if got.code != 255 {
				t.Errorf("exit = %d, want 255 (stderr %q)", got.code, stderr)
			}
			if !strings.HasPrefix(stderr, tt.want) || !strings.Contains(stderr, "\nec2ssh: hint: ") {
				t.Errorf("stderr = %q, want it to begin %q and a hint", stderr, tt.want)
			}
			if len(got.stdout) != 0 {
				t.Errorf("stdout = %q, want nothing", got.stdout)
			}
		})
	}
}

func mustRead(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// startListening starts cmd (an ec2ssh that opens a local port) and
// returns a connection to that port once it is open; cmd is killed when
// the test ends.
func startListening(t *testing.T, cmd *exec.Cmd, port int) net.Conn {
	t.Helper()
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var err error
	for i := 0; i < 100; i++ {
		var conn net.Conn
		if conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			t.Cleanup(func() { conn.Close() })
			return conn
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%v: port %d never opened: %v; stderr %q", cmd.Args, port, err, stderr.String())
	return nil
}

// startEcho serves a TCP echo on loopback for the test's life and returns
// its port.
func startEcho(t *testing.T) int {
	t.Helper()
	port, stop, err := lab.Echo()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return port
}

// TestForwarding covers -L, -W and -J against the lab sshd.
func TestForwarding(t *testing.T) {
	needLab(t)
	echoPort := startEcho(t)

	t.Run("W", func(t *testing.T) {
		got := runCmd(t, []byte("through -W\n"), bin, "-F", cfgFile, "-W", fmt.Sprintf("127.0.0.1:%d", echoPort), "lab")
		if got.code != 0 || string(got.stdout) != "through -W\n" {
			t.Fatalf("-W: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
		}
	})
	t.Run("J", func(t *testing.T) {
		// lab is its own jump host: the second hop goes through the first.
		got := runCmd(t, nil, bin, "-F", cfgFile, "-J", "jumphost", "lab", "echo jumped")
		if got.code != 0 || string(got.stdout) != "jumped\n" {
			t.Fatalf("-J: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
		}
	})
	t.Run("L", func(t *testing.T) {
		port, _ := lab.FreePort("127.0.0.1")
		cmd := exec.Command(bin, "-F", cfgFile, "-N", "-L", fmt.Sprintf("%d:127.0.0.1:%d", port, echoPort), "lab")
		conn := startListening(t, cmd, port)
		defer conn.Close()
		conn.Write([]byte("through -L\n"))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 11)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "through -L\n" {
			t.Fatalf("-L echo = %q, %v", buf, err)
		}
	})
}
