package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// tmuxSession drives a real terminal: a shell in a tmux pane.
type tmuxSession struct {
	t    *testing.T
	name string
	sock string
}

func newTmux(t *testing.T) *tmuxSession {
	lab.Require(t, "tmux")
	s := &tmuxSession{t: t, name: "ec2ssh-test", sock: filepath.Join(t.TempDir(), "tmux.sock")}
	s.run("new-session", "-d", "-s", s.name, "-x", "100", "-y", "30", "env -u SSH_AUTH_SOCK PS1='LOCAL> ' bash --norc --noprofile")
	t.Cleanup(func() { exec.Command("tmux", "-S", s.sock, "kill-server").Run() })
	s.waitFor("LOCAL>", 5*time.Second)
	return s
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", s.sock}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %q: %v: %s", args, err, out)
	}
	return string(out)
}

func (s *tmuxSession) send(keys string) { s.run("send-keys", "-t", s.name, "-l", "--", keys) }
func (s *tmuxSession) enter()           { s.run("send-keys", "-t", s.name, "Enter") }
func (s *tmuxSession) screen() string   { return s.run("capture-pane", "-p", "-t", s.name) }

// waitFor waits until the screen shows text, and returns the screen.
func (s *tmuxSession) waitFor(text string, limit time.Duration) string {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		scr := s.screen()
		if strings.Contains(scr, text) {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %q; it shows:\n%s", text, scr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForCount waits until text shows n times on the screen.
func (s *tmuxSession) waitForCount(text string, n int, limit time.Duration) string {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		scr := s.screen()
		if strings.Count(scr, text) >= n {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %q %d times; it shows:\n%s", text, n, scr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// saneTerminal checks, from the local shell, that the terminal is back in
// cooked mode with echo.
func (s *tmuxSession) saneTerminal(tag string) {
	s.t.Helper()
	// The typed line reads "R""ESULT", the output "RESULT": only the
	// output matches.
	s.send(fmt.Sprintf(`echo "R""ESULT-%s:$(stty -a | grep -o -- '-\?icanon\|-\?echo ' | tr -d ' \n'):"`, tag))
	s.enter()
	scr := s.waitFor("RESULT-"+tag+":", 5*time.Second)
	if !strings.Contains(scr, "RESULT-"+tag+":icanonecho:") {
		s.t.Errorf("terminal not restored after %s:\n%s", tag, scr)
	}
}

// TestInteractiveShell drives a login shell through a real terminal: a
// prompt, a command, a window resize, and the terminal restored after exit
// and after the connection is killed.
func TestInteractiveShell(t *testing.T) {
	needLab(t)
	s := newTmux(t)
	login := fmt.Sprintf("%s -F %s lab", bin, cfgFile)
	s.send(login)
	s.enter()
	s.waitFor("root@", 10*time.Second) // the remote prompt
	s.send("echo $((6*7))-$TERM")
	s.enter()
	s.waitFor("42-", 5*time.Second)

	s.run("resize-window", "-t", s.name, "-x", "120", "-y", "40")
	time.Sleep(200 * time.Millisecond)
	s.send("echo size:$(stty size)")
	s.enter()
	s.waitFor("size:40 120", 5*time.Second)

	s.send("exit")
	s.enter()
	s.waitForCount("LOCAL>", 2, 5*time.Second)
	s.saneTerminal("after-exit")

	// Now kill the connection from the far side while the shell is raw.
	s.run("send-keys", "-t", s.name, "clear", "Enter")
	s.send(login)
	s.enter()
	s.waitFor("root@", 10*time.Second)
	s.send("kill -9 $PPID")
	s.enter()
	scr := s.waitForCount("LOCAL>", 2, 10*time.Second)
	if !strings.Contains(scr, "ec2ssh") && !strings.Contains(scr, "closed") {
		t.Logf("screen after the kill:\n%s", scr)
	}
	s.saneTerminal("after-kill")
	if os.Getenv("EC2SSH_TEST_SHOW") != "" {
		t.Log(s.screen())
	}
}

// TestPassphrasePrompt: an encrypted identity asks for its passphrase on
// the terminal, only once the server has accepted its public key.
func TestPassphrasePrompt(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "locked")
	if err := lab.Keygen(key, "ed25519", "open sesame"); err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(key + ".pub")
	srv, err := lab.StartSSHD(filepath.Join(dir, "sshd"), lab.SSHDOptions{AuthorizedKeys: []string{string(pub)}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte(fmt.Sprintf("Host locked\n  HostName 127.0.0.1\n  Port %d\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n", srv.Port, key)), 0o600)
	s := newTmux(t)
	s.send(fmt.Sprintf("%s -F %s locked 'echo unlocked-$((40+2))'", bin, cfg))
	s.enter()
	s.waitFor("Enter passphrase for key '"+key+"':", 10*time.Second)
	s.send("open sesame")
	s.enter()
	scr := s.waitFor("unlocked-42", 10*time.Second)
	if strings.Contains(scr, "open sesame") {
		t.Errorf("the passphrase was echoed:\n%s", scr)
	}
}

// TestHostKeyAskPrompt: StrictHostKeyChecking ask asks on the terminal;
// "yes" records the key, so the next connection does not ask.
func TestHostKeyAskPrompt(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	cfg := writeConfig(filepath.Join(dir, "config"), kh, "ask")
	s := newTmux(t)
	s.send(fmt.Sprintf("%s -F %s -o BatchMode=no lab 'echo asked-$((1+1))'", bin, cfg)) // BatchMode would forbid asking
	s.enter()
	s.waitFor("Are you sure you want to continue connecting (yes/no/[fingerprint])?", 10*time.Second)
	s.send("yes")
	s.enter()
	s.waitFor("asked-2", 10*time.Second)
	if b, _ := os.ReadFile(kh); !strings.Contains(string(b), fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 ", sshd.Port)) {
		t.Fatalf("known_hosts after yes: %q", b)
	}
	r := runCmd(t, nil, bin, "-F", cfg, "lab", "echo again")
	if r.code != 0 || string(r.stdout) != "again\n" {
		t.Errorf("second connection: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
}

// TestSSMShellOnATerminal: sshd is down, so a login lands in an SSM shell
// with a terminal that follows resizes; the local terminal is sane after.
func TestSSMShellOnATerminal(t *testing.T) {
	needWorld(t)
	s := newTmux(t)
	envs := strings.Join(world.AWSEnv(), " ")
	s.send(fmt.Sprintf("env %s XDG_CACHE_HOME=%s %s -F %s sshd-stopped", envs, t.TempDir(), bin, ec2Cfg))
	s.enter()
	// The login shell's own prompt; what is typed before it waits for it.
	s.send("echo shell-$((20+22)); tty")
	s.enter()
	s.waitFor("shell-42", 20*time.Second)
	s.waitFor("/dev/pts/", 5*time.Second)
	s.run("resize-window", "-t", s.name, "-x", "111", "-y", "33")
	time.Sleep(300 * time.Millisecond)
	s.send("echo size:$(stty size)")
	s.enter()
	s.waitFor("size:33 111", 5*time.Second)
	s.send("exit")
	s.enter()
	s.waitForCount("LOCAL>", 2, 10*time.Second) // a new prompt, not the first
	s.saneTerminal("after-ssm-shell")
}

// TestEscapeSequences drives ssh(1)'s escapes on a real terminal, for
// ec2ssh and for OpenSSH's ssh with the same configuration: ~? lists them,
// ~C adds a forwarding that then carries a connection, and
// ~. ends the session with 255 and the terminal restored (issue 14).
func TestEscapeSequences(t *testing.T) {
	needLab(t)
	for _, client := range []string{bin, "ssh"} {
		t.Run(filepath.Base(client), func(t *testing.T) {
			s := newTmux(t)
			port := freePort(t)
			s.send(fmt.Sprintf("%s -F %s -o EnableEscapeCommandline=yes -t lab; echo \"S\"\"TATUS=$?\"", client, cfgFile))
			s.enter()
			s.waitFor("root@", 10*time.Second)
			s.enter()
			s.send("~?")
			s.waitFor("Supported escape sequences", 5*time.Second)
			s.enter()
			// ~C at a fresh line: a local forwarding to the lab's sshd.
			s.send("~C")
			s.waitFor("ssh>", 5*time.Second)
			s.send(fmt.Sprintf("-L%d:127.0.0.1:%d", port, sshd.Port))
			s.enter()
			// (LogLevel ERROR hides "Forwarding port.": poll the port.)
			var banner string
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if banner = readBanner(t, port); strings.HasPrefix(banner, "SSH-2.0-") {
					break
				}
			}
			if !strings.HasPrefix(banner, "SSH-2.0-") {
				t.Errorf("through the ~C forwarding: %q, want sshd's banner", banner)
			}
			s.enter()
			s.send("~.")
			scr := s.waitFor("STATUS=", 10*time.Second)
			if !strings.Contains(scr, "STATUS=255") {
				t.Errorf("~. should end with status 255:\n%s", scr)
			}
			s.saneTerminal("after-escape")
		})
	}
}

// TestBrokenPipeOnATerminal: stdout closed early (… | head -1) on a -t
// session ends ec2ssh with 255 and the terminal restored, as ssh does.
func TestBrokenPipeOnATerminal(t *testing.T) {
	needLab(t)
	// (OpenSSH 9.2 with -t keeps running here until it is killed; without
	// a terminal it ends with 255, which TestBrokenPipe compares.)
	s := newTmux(t)
	s.send(fmt.Sprintf("%s -F %s -t lab 'yes' | head -1; echo \"S\"\"TATUS=${PIPESTATUS[0]}\"", bin, cfgFile))
	s.enter()
	scr := s.waitFor("STATUS=", 15*time.Second)
	if !strings.Contains(scr, "STATUS=255") {
		t.Errorf("want status 255 once head has gone:\n%s", scr)
	}
	s.saneTerminal("after-pipe")
}

// TestSignalAtAPrompt: SIGTERM while ec2ssh waits at the host-key
// question ends it at once with 255 and echo back on.
func TestSignalAtAPrompt(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	cfg := writeConfig(filepath.Join(dir, "config"), filepath.Join(dir, "known_hosts"), "ask")
	s := newTmux(t)
	s.send(fmt.Sprintf("%s -F %s -o BatchMode=no lab true; echo \"S\"\"TATUS=$?\"", bin, cfg))
	s.enter()
	s.waitFor("Are you sure you want to continue connecting", 10*time.Second)
	start := time.Now()
	if out, err := exec.Command("pkill", "-TERM", "-f", "-e", "ec2ssh -F "+cfg).CombinedOutput(); err != nil {
		t.Fatalf("pkill: %v: %s", err, out)
	}
	scr := s.waitFor("STATUS=", 5*time.Second)
	if !strings.Contains(scr, "STATUS=255") {
		t.Errorf("want status 255 after SIGTERM at the prompt:\n%s", scr)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v to end after SIGTERM", d)
	}
	s.saneTerminal("after-sigterm")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// readBanner reads the first line from 127.0.0.1:port.
func readBanner(t *testing.T, port int) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}
