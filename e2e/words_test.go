package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// Issue 25: the words callers parse are ssh's, and every way a connection
// fails or a session ends is said as ssh says it, with ssh's exit status.
// Each case runs OpenSSH's ssh and ec2ssh against the same peer in the same
// run: ec2ssh's stderr must begin with exactly ssh's lines, and whatever
// follows must be ec2ssh's own ("ec2ssh: " lines, its diagnosis).

// stderrLines splits stderr into lines without ssh's CRs.
func stderrLines(b []byte) []string {
	s := strings.TrimRight(strings.ReplaceAll(string(b), "\r", ""), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// sameWords requires ours to say what ssh said, then only ec2ssh's own
// lines, with the same exit status.
func sameWords(t *testing.T, what string, ssh, ours result) {
	t.Helper()
	want, got := stderrLines(ssh.stderr), stderrLines(ours.stderr)
	if ours.code != ssh.code {
		t.Errorf("%s: ec2ssh exits %d, ssh %d", what, ours.code, ssh.code)
	}
	if len(want) == 0 {
		t.Errorf("%s: ssh said nothing (stdout %q): the case shows nothing", what, ssh.stdout)
	}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Errorf("%s: ec2ssh's stderr\n%s\ndoes not begin with ssh's\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		return
	}
	for _, l := range got[len(want):] {
		if !strings.HasPrefix(l, "ec2ssh: ") {
			t.Errorf("%s: after ssh's words, a line that is not ec2ssh's own: %q", what, l)
		}
	}
}

// wordsConfig writes an ssh_config for Host lab at port with LogLevel
// INFO (ssh's default: the level its quit and timeout messages show at).
func wordsConfig(t *testing.T, port int, knownHosts, identity string, more ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config")
	text := fmt.Sprintf("Host lab\n  HostName 127.0.0.1\n  Port %d\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n"+
		"  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel INFO\n%s",
		port, identity, knownHosts, strings.Join(more, "\n"))
	if err := os.WriteFile(path, []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// hostileListener serves each connection with serve, on loopback.
func hostileListener(t *testing.T, serve func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// readClientLine takes what the client sends first (ssh sends its
// identification before reading; ec2ssh's race waits for the server's
// first line) for a moment, so that closing is a clean close either way.
func readClientLine(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	bufio.NewReader(c).ReadString('\n')
	c.SetReadDeadline(time.Time{})
}

func TestWordsAsSSH(t *testing.T) {
	needLab(t)
	lab.Require(t, "ssh")
	closed, _ := lab.FreePort("127.0.0.1")
	hangup := hostileListener(t, func(c net.Conn) { readClientLine(c) })
	silent := hostileListener(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	wrongKey := filepath.Join(t.TempDir(), "wrong")
	lab.Keygen(wrongKey, "ed25519", "")
	emptyKH := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(emptyKH, nil, 0o600)
	changedKH := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(changedKH, []byte(foreignKeyLine(t, fmt.Sprintf("[127.0.0.1]:%d", sshd.Port))), 0o600)

	// ec2ssh as ssh, under that name: the words that carry the program's
	// name (ssh's __progname) are then ssh's exactly.
	asSSH := filepath.Join(sshShim(t), "ssh")
	good := wordsConfig(t, sshd.Port, khFile, keyFile)
	for _, tt := range []struct {
		name string
		cfg  string
		args []string
	}{
		{"connection refused", good, []string{"-p", strconv.Itoa(closed)}},
		{"could not resolve hostname", good, []string{"-o", "HostName=no-such-host.invalid"}},
		{"permission denied", wordsConfig(t, sshd.Port, khFile, wrongKey), nil},
		{"unknown host key, strict", wordsConfig(t, sshd.Port, emptyKH, keyFile), nil},
		{"changed host key", wordsConfig(t, sshd.Port, changedKH, keyFile), nil},
		{"changed host key, accept-new", wordsConfig(t, sshd.Port, changedKH, keyFile), []string{"-o", "StrictHostKeyChecking=accept-new"}},
		{"no banner, closed", good, []string{"-p", strconv.Itoa(hangup)}},
		{"no banner, timed out", good, []string{"-p", strconv.Itoa(silent), "-o", "ConnectTimeout=1"}},
		{"no common host key algorithm", good, []string{"-o", "HostKeyAlgorithms=ssh-rsa"}},
		{"LogLevel FATAL", wordsConfig(t, sshd.Port, emptyKH, keyFile), []string{"-o", "LogLevel=FATAL"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			argv := append(append([]string{"-F", tt.cfg}, tt.args...), "lab", "true")
			sameWords(t, tt.name, runCmd(t, nil, "ssh", argv...), runCmd(t, nil, asSSH, argv...))
		})
	}
}

// A server that sends lines before its version line (RFC 4253 4.2 allows
// them), too many of them, or one too long: ssh's limits (1024 lines of
// 8 KiB), ssh's words, both bounded.
func TestHostileServersAsSSH(t *testing.T) {
	needLab(t)
	lab.Require(t, "ssh")
	prefixThen := func(prefix string, relay bool) int {
		return hostileListener(t, func(c net.Conn) {
			c.Write([]byte(prefix))
			if !relay {
				readClientLine(c)
				io.Copy(io.Discard, io.LimitReader(c, 1<<20))
				return
			}
			s, err := net.Dial("tcp", sshd.HostPort())
			if err != nil {
				return
			}
			defer s.Close()
			go io.Copy(s, c)
			io.Copy(c, s)
		})
	}
	line := func(n int) string { return strings.Repeat("j", n) + "\r\n" }
	// The known_hosts entry names the port, so each listener gets its own.
	for _, tt := range []struct {
		name   string
		prefix string
		relay  bool
	}{
		{"40 lines of 1000 bytes, then sshd", strings.Repeat(line(1000), 40), true},
		{"1100 lines", strings.Repeat(line(5), 1100), false},
		{"a line of 100 KB", strings.Repeat("j", 100<<10), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := prefixThen(tt.prefix, tt.relay)
			kh := filepath.Join(t.TempDir(), "known_hosts")
			os.WriteFile(kh, []byte(strings.Replace(sshd.KnownHostsLine("127.0.0.1"), strconv.Itoa(sshd.Port), strconv.Itoa(port), 1)+"\n"), 0o600)
			argv := []string{"-F", wordsConfig(t, port, kh, keyFile), "-o", "ConnectTimeout=10", "lab", "echo through"}
			want := runCmd(t, nil, "ssh", argv...)
			start := time.Now()
			got := runCmd(t, nil, bin, argv...)
			if time.Since(start) > 8*time.Second {
				t.Errorf("ec2ssh took %v", time.Since(start))
			}
			if tt.relay {
				if want.code != 0 || got.code != 0 || string(got.stdout) != "through\n" {
					t.Errorf("ssh: %d %q; ec2ssh: %d %q %q; want both through", want.code, want.stderr, got.code, got.stdout, got.stderr)
				}
				return
			}
			sameWords(t, tt.name, want, got)
		})
	}
}

// A session that ends because the server or the network went away: sshd's
// session process killed, the network cut (keepalives unanswered), the
// connection reset.
func TestSessionEndsAsSSH(t *testing.T) {
	needLab(t)
	lab.Require(t, "ssh", "nft")
	for _, tt := range []struct {
		name  string
		fault func(t *testing.T, srv *lab.SSHD)
	}{
		{"sshd killed", func(t *testing.T, srv *lab.SSHD) { killSessions(t, srv) }},
		{"network cut", func(t *testing.T, srv *lab.SSHD) {
			nft(t, srv.Port, fmt.Sprintf("add rule inet %s in tcp sport %d drop", nftTable(srv.Port), srv.Port))
		}},
		{"connection reset", func(t *testing.T, srv *lab.SSHD) {
			nft(t, srv.Port, fmt.Sprintf("add rule inet %s out tcp dport %d reject with tcp reset", nftTable(srv.Port), srv.Port))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var res [2]result
			for i, client := range []string{"ssh", bin} {
				// A server of its own for each client, so that the fault
				// touches only its connection.
				srv, err := lab.StartSSHD(filepath.Join(t.TempDir(), "sshd"), lab.SSHDOptions{AuthorizedKeys: []string{mustRead(keyFile + ".pub")}})
				if err != nil {
					t.Fatal(err)
				}
				kh := filepath.Join(t.TempDir(), "known_hosts")
				os.WriteFile(kh, []byte(srv.KnownHostsLine("127.0.0.1")+"\n"), 0o600)
				cfg := wordsConfig(t, srv.Port, kh, keyFile, "  ServerAliveInterval 1", "  ServerAliveCountMax 2")
				res[i] = sessionWithFault(t, client, cfg, func() { tt.fault(t, srv) })
				srv.Stop()
				nftDelete(srv.Port)
			}
			sameWords(t, tt.name, res[0], res[1])
		})
	}
}

// sessionWithFault starts a session that would last a minute, injects the
// fault once it runs, and returns how the client ended.
func sessionWithFault(t *testing.T, client, cfg string, fault func()) result {
	t.Helper()
	cmd := exec.Command(client, "-F", cfg, "lab", "echo started; sleep 60")
	cmd.Env = cleanEnv()
	out, _ := cmd.StdoutPipe()
	var errb strings.Builder
	cmd.Stderr = &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(out)
	if line, err := r.ReadString('\n'); line != "started\n" {
		t.Fatalf("%s: the session did not start: %q %v %s", client, line, err, errb.String())
	}
	fault()
	done := make(chan error, 1)
	go func() { io.Copy(io.Discard, r); done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not end within 30 s of the fault; stderr %q", client, errb.String())
	}
	return result{stderr: []byte(errb.String()), code: cmd.ProcessState.ExitCode()}
}

// killSessions kills (SIGKILL) the processes srv forked for its
// connections, and nothing else: the listener's descendants.
func killSessions(t *testing.T, srv *lab.SSHD) {
	t.Helper()
	cfg := filepath.Join(srv.Dir, "sshd_config")
	listener := 0
	children := map[int][]int{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		// sshd retitles itself ("sshd: /usr/sbin/sshd -D -e -f CFG [listener] …").
		if cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline")); err == nil &&
			(strings.Contains(string(cmdline), "-f\x00"+cfg+"\x00") || strings.Contains(string(cmdline), "-f "+cfg+" [listener]")) {
			listener = pid
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat")); err == nil {
			f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if ppid, err := strconv.Atoi(f[1]); err == nil {
				children[ppid] = append(children[ppid], pid)
			}
		}
	}
	if listener == 0 {
		t.Fatalf("no sshd listening with %s", cfg)
	}
	var kill func(pid int)
	n := 0
	kill = func(pid int) {
		for _, c := range children[pid] {
			kill(c)
			syscall.Kill(c, syscall.SIGKILL)
			n++
		}
	}
	kill(listener)
	if n == 0 {
		t.Fatal("sshd had no session process to kill")
	}
}

func nftTable(port int) string { return fmt.Sprintf("ec2ssh_words_%d", port) }

// nft adds a rule to a table of the port's own (input and output chains).
func nft(t *testing.T, port int, rule string) {
	t.Helper()
	table := nftTable(port)
	script := fmt.Sprintf("add table inet %s\nadd chain inet %s in { type filter hook input priority 0; }\nadd chain inet %s out { type filter hook output priority 0; }\n%s\n",
		table, table, table, rule)
	if err := lab.Nft(script); err != nil {
		t.Fatal(err)
	}
}

func nftDelete(port int) { lab.Nft("delete table inet " + nftTable(port) + "\n") }
