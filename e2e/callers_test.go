package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// Issue 25: tools that run ssh and read what it says work with ec2ssh as
// their ssh: ssh-copy-id (the exit status of a trial login, "Permission
// denied", -v's "remote software version"), autossh (the exit status, to
// restart a connection that died, and -L through it), and the checks VS
// Code Remote-SSH makes (-V's OpenSSH_N.N, then -T -D with a script on
// stdin).

// sshShim is a directory whose "ssh" is ec2ssh, for tools that run the ssh
// on PATH.
func sshShim(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "ssh")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func envWithPath(dir string) []string {
	env := []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return env
}

func TestSSHCopyID(t *testing.T) {
	needLab(t)
	lab.Require(t, "ssh-copy-id", "ssh")
	// An sshd whose session HOME is a directory of the test's, so that
	// ssh-copy-id's remote ~/.ssh/authorized_keys is the test's file.
	home := t.TempDir()
	os.Chmod(home, 0o755)
	ak := filepath.Join(home, ".ssh", "authorized_keys")
	os.MkdirAll(filepath.Dir(ak), 0o700)
	os.WriteFile(ak, []byte(mustRead(keyFile+".pub")), 0o600)
	srv, err := lab.StartSSHD(filepath.Join(t.TempDir(), "sshd"), lab.SSHDOptions{
		AuthorizedKeys: []string{mustRead(keyFile + ".pub")},
		Extra:          []string{"SetEnv HOME=" + home, "AuthorizedKeysFile " + ak},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(srv.KnownHostsLine("127.0.0.1")+"\n"), 0o600)
	// The login key is in an agent, as a user's is: ssh-copy-id's trial
	// logins (-i the new key, IdentitiesOnly) then offer only the new key.
	agentSock := startAgent(t, keyFile)
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte(fmt.Sprintf("Host lab\n  HostName 127.0.0.1\n  Port %d\n  User root\n  IdentityAgent %s\n"+
		"  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n", srv.Port, agentSock, kh)), 0o600)
	newKey := filepath.Join(t.TempDir(), "new")
	lab.Keygen(newKey, "ed25519", "")
	// ssh-copy-id keeps its scratch files in the local ~/.ssh.
	localHome := t.TempDir()
	os.Mkdir(filepath.Join(localHome, ".ssh"), 0o700)
	env := append(envWithPath(sshShim(t)), "HOME="+localHome)

	// Not there yet: the trial login is refused ("Permission denied"), and
	// the key is installed through ec2ssh.
	r := runCmdEnv(t, env, nil, "ssh-copy-id", "-i", newKey+".pub", "-F", cfg, "lab")
	installed := mustRead(filepath.Join(home, ".ssh", "authorized_keys"))
	if r.code != 0 || !strings.Contains(installed, strings.Fields(mustRead(newKey + ".pub"))[1]) {
		t.Fatalf("ssh-copy-id through ec2ssh: exit %d, %s; authorized_keys %q", r.code, r.stderr, installed)
	}
	if !strings.Contains(string(r.stdout)+string(r.stderr), "Number of key(s) added: 1") {
		t.Errorf("ssh-copy-id's report: %s%s", r.stdout, r.stderr)
	}
	// There now: the trial login succeeds (exit 0) and nothing is added.
	r = runCmdEnv(t, env, nil, "ssh-copy-id", "-i", newKey+".pub", "-F", cfg, "lab")
	if r.code != 0 || !strings.Contains(string(r.stderr), "skipped because they already exist") {
		t.Errorf("ssh-copy-id again: exit %d, %s; want the key found installed", r.code, r.stderr)
	}
	if got := mustRead(filepath.Join(home, ".ssh", "authorized_keys")); got != installed {
		t.Errorf("the second run changed authorized_keys: %q", got)
	}
	// The new key logs in, through ec2ssh.
	cfgNew := wordsConfig(t, srv.Port, kh, newKey)
	if r := runCmd(t, nil, bin, "-F", cfgNew, "lab", "echo with-the-new-key"); r.code != 0 || string(r.stdout) != "with-the-new-key\n" {
		t.Errorf("login with the installed key: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	// ssh-copy-id reads the server's software version from ssh -v.
	r = runCmd(t, nil, bin, "-v", "-F", cfg, "-o", "PreferredAuthentications=,", "-o", "ControlPath=none", "lab")
	if !regexp.MustCompile(`remote software version OpenSSH_`).Match(r.stderr) {
		t.Errorf("-v does not name the remote software version: %s", r.stderr)
	}
}

func TestAutossh(t *testing.T) {
	needLab(t)
	lab.Require(t, "autossh")
	srv, err := lab.StartSSHD(filepath.Join(t.TempDir(), "sshd"), lab.SSHDOptions{AuthorizedKeys: []string{mustRead(keyFile + ".pub")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(srv.KnownHostsLine("127.0.0.1")+"\n"), 0o600)
	cfg := wordsConfig(t, srv.Port, kh, keyFile, "  ServerAliveInterval 1", "  ServerAliveCountMax 2", "  ExitOnForwardFailure yes")
	echo := startEcho(t)
	local := freePort(t)
	cmd := exec.Command("autossh", "-M", "0", "-N", "-F", cfg, "-L", fmt.Sprintf("%d:127.0.0.1:%d", local, echo), "lab")
	cmd.Env = append(cleanEnv(), "AUTOSSH_PATH="+bin, "AUTOSSH_GATETIME=0", "AUTOSSH_POLL=1", "AUTOSSH_FIRST_POLL=1")
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	echoThrough := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(local), time.Second)
			if err == nil {
				c.SetDeadline(time.Now().Add(3 * time.Second))
				fmt.Fprintln(c, what)
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Close()
				if line == what+"\n" {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no echo of %q through autossh's ec2ssh: %v; autossh said %s", what, err, errb.String())
			}
		}
	}
	echoThrough("first")
	// The connection dies (sshd's side of it killed): ec2ssh exits 255,
	// autossh starts it again, and the forwarding comes back.
	killSessions(t, srv)
	time.Sleep(500 * time.Millisecond)
	echoThrough("after the restart")
	if !strings.Contains(errb.String(), "starting ssh") {
		t.Logf("autossh's log: %s", errb.String())
	}
}

// VS Code Remote-SSH checks `ssh -V` for OpenSSH_N.N, then runs
// `ssh -T -D PORT -o ConnectTimeout=15 HOST bash` and writes its install
// script to stdin, reading markers from stdout; the SOCKS port carries its
// connections.
func TestVSCodeStyleChecks(t *testing.T) {
	needLab(t)
	r := runCmd(t, nil, bin, "-V")
	m := regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`).FindSubmatch(r.stderr)
	if r.code != 0 || m == nil || string(m[1]) != "9" || strings.HasPrefix(string(r.stderr), "OpenSSH") {
		t.Fatalf("-V: exit %d, %q; want an OpenSSH_9.2 token, not a claim to be OpenSSH", r.code, r.stderr)
	}
	socks := freePort(t)
	script := "echo 'ec2ssh-marker-start'\necho \"listeningOn==$((40000+2))==\"\necho 'ec2ssh-marker-end'\nsleep 3\n"
	cmd := exec.Command(bin, "-T", "-D", strconv.Itoa(socks), "-o", "ConnectTimeout=15", "-F", cfgFile, "lab", "bash")
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(script)
	out, _ := cmd.StdoutPipe()
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	br := bufio.NewReader(out)
	var seen []string
	for len(seen) < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the script's markers: %q, %v; stderr %s", seen, err, errb.String())
		}
		seen = append(seen, strings.TrimSpace(line))
	}
	if seen[1] != "listeningOn==40002==" {
		t.Errorf("markers %q", seen)
	}
	// The SOCKS port reaches the server's side (here, sshd itself).
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(socks), 5*time.Second)
	if err != nil {
		t.Fatalf("-D port: %v; stderr %s", err, errb.String())
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{5, 1, 0})
	var hello [2]byte
	io.ReadFull(c, hello[:])
	req := []byte{5, 1, 0, 1, 127, 0, 0, 1, byte(sshd.Port >> 8), byte(sshd.Port)}
	c.Write(req)
	var rep [10]byte
	io.ReadFull(c, rep[:])
	banner, _ := bufio.NewReader(c).ReadString('\n')
	if rep[1] != 0 || !strings.HasPrefix(banner, "SSH-2.0-") {
		t.Errorf("through the SOCKS port: reply %v, %q", rep, banner)
	}
}
