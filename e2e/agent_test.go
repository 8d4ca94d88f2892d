package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// startAgent runs OpenSSH's ssh-agent holding key and returns its socket.
func startAgent(t *testing.T, key string) string {
	t.Helper()
	lab.Require(t, "ssh-agent", "ssh-add")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	add := exec.Command("ssh-add", key)
	add.Env = append(cleanEnv(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	return sock
}

// TestAgentAuthAndForwarding logs in with a key held only by the agent,
// and with -A the remote side sees that agent.
func TestAgentAuthAndForwarding(t *testing.T) {
	needLab(t)
	sock := startAgent(t, keyFile)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	text := strings.NewReplacer("IdentityFile "+keyFile, "IdentityFile "+filepath.Join(dir, "none"),
		"IdentitiesOnly yes", "IdentitiesOnly no", "IdentityAgent none", "IdentityAgent SSH_AUTH_SOCK").Replace(mustRead(cfgFile))
	os.WriteFile(cfg, []byte(text), 0o600)
	run := func(args ...string) result {
		return runCmdEnv(t, append(cleanEnv(), "SSH_AUTH_SOCK="+sock), nil, bin, append([]string{"-F", cfg}, args...)...)
	}
	if r := run("lab", "echo agent-ok"); r.code != 0 || string(r.stdout) != "agent-ok\n" {
		t.Fatalf("agent login: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	// -A: the remote ssh-add lists the forwarded key; -a (last) turns it off.
	if r := run("-A", "lab", "ssh-add -l"); r.code != 0 || !strings.Contains(string(r.stdout), "ED25519") {
		t.Errorf("-A: exit %d, stdout %q, stderr %q; want the key listed", r.code, r.stdout, r.stderr)
	}
	if r := run("-A", "-a", "lab", "ssh-add -l"); r.code == 0 {
		t.Errorf("-A -a: remote ssh-add found an agent: %q", r.stdout)
	}
}

// TestRemoteForward: -R makes a port on the server lead back to a local
// echo service.
func TestRemoteForward(t *testing.T) {
	needLab(t)
	rport, _ := lab.FreePort("127.0.0.1")
	spec := fmt.Sprintf("%d:127.0.0.1:%d", rport, startEcho(t))
	// The remote command talks to its own end of the forward with bash's /dev/tcp.
	script := fmt.Sprintf(`exec 3<>/dev/tcp/127.0.0.1/%d; echo through-R >&3; head -n1 <&3`, rport)
	r := runCmd(t, nil, bin, "-F", cfgFile, "-o", "ExitOnForwardFailure=yes", "-R", spec, "lab", "bash", "-c", "'"+script+"'")
	if r.code != 0 || string(r.stdout) != "through-R\n" {
		t.Fatalf("-R: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestDynamicForward: -D answers SOCKS5 and connects through the server.
func TestDynamicForward(t *testing.T) {
	needLab(t)
	port, _ := lab.FreePort("127.0.0.1")
	cmd := exec.Command(bin, "-F", cfgFile, "-N", "-D", fmt.Sprint(port), "lab")
	conn := startListening(t, cmd, port)
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// SOCKS5: no auth; CONNECT to the lab sshd by name; read its banner.
	conn.Write([]byte{5, 1, 0})
	reply := make([]byte, 2)
	io.ReadFull(conn, reply)
	host := "localhost"
	req := append([]byte{5, 1, 0, 3, byte(len(host))}, host...)
	req = append(req, byte(sshd.Port>>8), byte(sshd.Port))
	conn.Write(req)
	resp := make([]byte, 10)
	if _, err := io.ReadFull(conn, resp); err != nil || resp[1] != 0 {
		t.Fatalf("SOCKS5 CONNECT reply %v, %v", resp, err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.HasPrefix(line, "SSH-2.0-OpenSSH") {
		t.Fatalf("through -D got %q, want an SSH banner", line)
	}
}

// TestProxyCommandAndBackground: ProxyCommand carries the connection (here
// through ec2ssh's own --proxy), and -f returns once the connection is up
// while the command carries on in the background.
func TestProxyCommandAndBackground(t *testing.T) {
	needLab(t)
	pc := fmt.Sprintf("ProxyCommand=%s --proxy %%h %%p", bin)
	r := runCmd(t, nil, bin, "-F", cfgFile, "-o", pc, "lab", "echo via-proxy")
	if r.code != 0 || string(r.stdout) != "via-proxy\n" {
		t.Fatalf("ProxyCommand: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// The ProxyCommand process does not outlive ec2ssh (pgrep exits 1 when
	// it finds none; any other failure is not an answer).
	lab.Require(t, "pgrep")
	pat := fmt.Sprintf("--proxy 127.0.0.1 %d", sshd.Port)
	out, err := exec.Command("pgrep", "-f", "--", pat).Output()
	var ee *exec.ExitError
	if err == nil {
		t.Errorf("a ProxyCommand process outlived ec2ssh: pids %s", out)
	} else if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("pgrep: %v", err)
	}
	// OpenSSH with ec2ssh as its ProxyCommand.
	lab.Require(t, "ssh")
	r = runCmd(t, nil, "ssh", "-F", cfgFile, "-o", pc, "lab", "echo openssh-via-ec2ssh")
	if r.code != 0 || string(r.stdout) != "openssh-via-ec2ssh\n" {
		t.Fatalf("ssh with ec2ssh --proxy: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// Output goes to a file: the background child keeps stdout and stderr
	// open (as ssh -f does), and only the parent's exit is measured.
	marker := filepath.Join(t.TempDir(), "bg")
	outFile, _ := os.Create(filepath.Join(t.TempDir(), "out"))
	defer outFile.Close()
	fg := exec.Command(bin, "-F", cfgFile, "-f", "lab", fmt.Sprintf("sleep 1; echo done > %s", marker))
	fg.Env, fg.Stdout, fg.Stderr = cleanEnv(), outFile, outFile
	start := time.Now()
	if err := fg.Run(); err != nil {
		out, _ := os.ReadFile(outFile.Name())
		t.Fatalf("-f: %v: %s", err, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("-f waited for the command (%v)", time.Since(start))
	}
	for i := 0; i < 100; i++ {
		if b, err := os.ReadFile(marker); err == nil && string(b) == "done\n" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the backgrounded command never ran")
}

// TestKeepaliveNoticesADeadServer: packets to the server start being
// dropped mid-session; ServerAliveInterval × ServerAliveCountMax later
// ec2ssh gives up with exit 255, as ssh(1) does.
func TestKeepaliveNoticesADeadServer(t *testing.T) {
	needLab(t)
	lab.Require(t, "nft")
	srv, err := lab.StartSSHD(filepath.Join(t.TempDir(), "sshd"), lab.SSHDOptions{Addr: "127.0.0.2", AuthorizedKeys: []string{mustRead(keyFile + ".pub")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cmd := exec.Command(bin, "-F", cfgFile, "-o", "HostName=127.0.0.2", "-o", fmt.Sprintf("Port=%d", srv.Port),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2", "-o", "LogLevel=INFO", "lab", "echo up; sleep 600")
	cmd.Env = cleanEnv()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "up\n" {
		t.Fatalf("session did not start: %q %s", line, stderr.String())
	}
	rule := fmt.Sprintf("add table inet ka\nadd chain inet ka input { type filter hook input priority 0; }\nadd rule inet ka input ip saddr 127.0.0.2 tcp sport %d drop\n", srv.Port)
	if err := lab.Nft(rule); err != nil {
		t.Fatal(err)
	}
	defer lab.Nft("delete table inet ka\n")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("ec2ssh did not notice the dead server; stderr %q", stderr.String())
	}
	// ssh's words (logit: shown at LogLevel INFO, as ssh shows them).
	if code := cmd.ProcessState.ExitCode(); code != 255 || !strings.HasPrefix(stderr.String(), "Timeout, server 127.0.0.2 not responding.\r\n") {
		t.Errorf("exit %d, stderr %q; want 255 and ssh's 'Timeout, server 127.0.0.2 not responding.'", code, stderr.String())
	}
}

// TestNoCommandEndsOnSignal: -N runs until a signal, then exits 255 as
// ssh(1) does.
func TestNoCommandEndsOnSignal(t *testing.T) {
	needLab(t)
	port, _ := lab.FreePort("127.0.0.1")
	cmd := exec.Command(bin, "-F", cfgFile, "-N", "-L", fmt.Sprintf("%d:127.0.0.1:%d", port, sshd.Port), "lab")
	startListening(t, cmd, port)
	cmd.Process.Signal(os.Interrupt)
	done := make(chan int, 1)
	go func() {
		st, err := cmd.Process.Wait()
		if err != nil {
			done <- -1
			return
		}
		done <- st.ExitCode()
	}()
	select {
	case code := <-done:
		if code != 255 {
			t.Errorf("-N after SIGINT exited %d, want 255", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("-N did not end on SIGINT")
	}
}

// TestCertificateAuth: the key itself is not authorized, but its
// certificate (key-cert.pub beside it) is signed by a CA sshd trusts.
func TestCertificateAuth(t *testing.T) {
	needLab(t)
	dir := t.TempDir()
	ca, key := filepath.Join(dir, "ca"), filepath.Join(dir, "user")
	if err := lab.Keygen(ca, "ed25519", ""); err != nil {
		t.Fatal(err)
	}
	if err := lab.Keygen(key, "ed25519", ""); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-s", ca, "-I", "ec2ssh-test", "-n", "root", "-V", "+1h", key+".pub").CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -s: %v: %s", err, out)
	}
	srv, err := lab.StartSSHD(filepath.Join(dir, "sshd"), lab.SSHDOptions{Extra: []string{"TrustedUserCAKeys " + ca + ".pub"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	args := []string{"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-p", fmt.Sprint(srv.Port), "root@127.0.0.1", "echo cert-ok"}
	r := runCmd(t, nil, bin, args...)
	if r.code != 0 || string(r.stdout) != "cert-ok\n" {
		t.Fatalf("certificate login: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Without the certificate the bare key is refused: the test proves the certificate did it.
	os.Remove(key + "-cert.pub")
	if r := runCmd(t, nil, bin, args...); r.code != 255 {
		t.Errorf("without the certificate: exit %d, want 255", r.code)
	}
}
