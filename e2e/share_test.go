package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// Connection sharing (issue 11): an ec2ssh master serves ec2ssh and
// OpenSSH clients, ec2ssh rides an OpenSSH master, -O check/exit/stop,
// ControlPersist, and a master over SSH-over-SSM serves many commands with
// one SSM session.

func ctlPath(t *testing.T) string {
	t.Helper()
	// A short directory: socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "cm")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o700)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "ctl")
}

// waitGone waits for path to disappear.
func waitGone(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return
		}
	}
	t.Errorf("%s still exists", path)
}

func TestSharingServesOpenSSHClients(t *testing.T) {
	needLab(t)
	lab.Require(t, "ssh", "sftp", "scp")
	ctl := ctlPath(t)
	r := runCmd(t, nil, bin, "-F", cfgFile, "-nNf", "-o", "ControlMaster=yes", "-o", "ControlPath="+ctl, "lab")
	if r.code != 0 {
		t.Fatalf("master: exit %d: %s", r.code, r.stderr)
	}
	t.Cleanup(func() { runCmd(t, nil, bin, "-F", cfgFile, "-O", "exit", "-o", "ControlPath="+ctl, "lab") })
	if st, err := os.Stat(ctl); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, mode %v; want 0600", err, st.Mode())
	}
	for _, client := range []string{"ssh", bin} {
		r := runCmd(t, nil, client, "-F", cfgFile, "-S", ctl, "lab", "echo shared-$((6*7)); echo err >&2; exit 9")
		if r.code != 9 || string(r.stdout) != "shared-42\n" || !strings.Contains(string(r.stderr), "err") {
			t.Errorf("%s through the ec2ssh master: exit %d, %q, %q", filepath.Base(client), r.code, r.stdout, r.stderr)
		}
		r = runCmd(t, nil, client, "-F", cfgFile, "-O", "check", "-S", ctl, "lab")
		if r.code != 0 || !strings.Contains(string(r.stderr), "Master running (pid=") {
			t.Errorf("%s -O check: exit %d, %q", filepath.Base(client), r.code, r.stderr)
		}
	}
	// stdin goes through, and its end.
	r = runCmd(t, []byte("line one\nline two\n"), "ssh", "-F", cfgFile, "-S", ctl, "lab", "wc -l")
	if strings.TrimSpace(string(r.stdout)) != "2" {
		t.Errorf("stdin through the master: %q %q", r.stdout, r.stderr)
	}
	// sftp and scp (OpenSSH's) through the master.
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.WriteFile(src, []byte(strings.Repeat("ec2ssh\n", 10000)), 0o644)
	batch := filepath.Join(dir, "batch")
	os.WriteFile(batch, []byte(fmt.Sprintf("put %s /tmp/ec2ssh-share-sftp\nget /tmp/ec2ssh-share-sftp %s/back\n", src, dir)), 0o644)
	if r := runCmd(t, nil, "sftp", "-q", "-F", cfgFile, "-o", "ControlPath="+ctl, "-b", batch, "lab"); r.code != 0 {
		t.Errorf("sftp through the master: exit %d: %s", r.code, r.stderr)
	} else if mustRead(filepath.Join(dir, "back")) != mustRead(src) {
		t.Error("sftp through the master: the file came back different")
	}
	if r := runCmd(t, nil, "scp", "-q", "-F", cfgFile, "-o", "ControlPath="+ctl, src, "lab:/tmp/ec2ssh-share-scp"); r.code != 0 {
		t.Errorf("scp through the master: exit %d: %s", r.code, r.stderr)
	}
	// -O forward then a connection through it, -O cancel.
	port := freePort(t)
	r = runCmd(t, nil, "ssh", "-F", cfgFile, "-O", "forward", "-S", ctl, "-L", fmt.Sprintf("%d:127.0.0.1:%d", port, sshd.Port), "lab")
	if r.code != 0 {
		t.Fatalf("-O forward: exit %d: %s", r.code, r.stderr)
	}
	if b := readBanner(t, port); !strings.HasPrefix(b, "SSH-2.0-") {
		t.Errorf("through a forwarding the master made: %q", b)
	}
	r = runCmd(t, nil, bin, "-F", cfgFile, "-O", "cancel", "-S", ctl, "-L", fmt.Sprintf("%d:127.0.0.1:%d", port, sshd.Port), "lab")
	if r.code != 0 {
		t.Errorf("-O cancel: exit %d: %s", r.code, r.stderr)
	}
	// -O exit ends the master and removes its socket.
	r = runCmd(t, nil, "ssh", "-F", cfgFile, "-O", "exit", "-S", ctl, "lab")
	if r.code != 0 {
		t.Errorf("-O exit: exit %d: %s", r.code, r.stderr)
	}
	waitGone(t, ctl)
	r = runCmd(t, nil, bin, "-F", cfgFile, "-O", "check", "-S", ctl, "lab")
	if r.code != 255 || !strings.Contains(string(r.stderr), "Control socket connect(") {
		t.Errorf("-O check with no master: exit %d, %q", r.code, r.stderr)
	}
}

func TestSharingRidesAnOpenSSHMaster(t *testing.T) {
	needLab(t)
	ctl := ctlPath(t)
	if r := runCmd(t, nil, "ssh", "-F", cfgFile, "-nNf", "-o", "ControlMaster=yes", "-o", "ControlPath="+ctl, "lab"); r.code != 0 {
		t.Fatalf("OpenSSH master: exit %d: %s", r.code, r.stderr)
	}
	t.Cleanup(func() { runCmd(t, nil, "ssh", "-F", cfgFile, "-O", "exit", "-o", "ControlPath="+ctl, "lab") })
	// A configuration that could not connect by itself (port 1): only
	// the master can carry the session.
	r := runCmd(t, []byte("in\n"), bin, "-F", cfgFile, "-p", "1", "-S", ctl, "lab", "cat; exit 6")
	if r.code != 6 || string(r.stdout) != "in\n" {
		t.Errorf("ec2ssh through OpenSSH's master: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, nil, bin, "-F", cfgFile, "-O", "exit", "-S", ctl, "lab"); r.code != 0 || !strings.Contains(string(r.stderr), "Exit request sent.") {
		t.Errorf("ec2ssh -O exit to OpenSSH's master: exit %d, %q", r.code, r.stderr)
	}
	waitGone(t, ctl)
}

func TestSharingPersistsAndEnds(t *testing.T) {
	needLab(t)
	ctl := ctlPath(t)
	opts := []string{"-F", cfgFile, "-o", "ControlMaster=auto", "-o", "ControlPersist=2", "-o", "ControlPath=" + ctl}
	r := runCmd(t, nil, bin, append(opts, "lab", "echo first; exit 3")...)
	if r.code != 3 || string(r.stdout) != "first\n" {
		t.Fatalf("first: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	out, _ := exec.Command("pgrep", "-f", "ControlPath="+ctl).Output()
	pids := strings.Fields(string(out))
	if len(pids) != 1 {
		t.Fatalf("want one background master, found %q", pids)
	}
	// The second run has no connection of its own to make: port 1.
	r = runCmd(t, nil, bin, append(opts, "-p", "1", "lab", "echo second")...)
	if r.code != 0 || string(r.stdout) != "second\n" {
		t.Errorf("second, through the persisting master: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	// Two seconds idle: the master ends and leaves nothing behind.
	waitGone(t, ctl)
	time.Sleep(200 * time.Millisecond)
	if out, _ := exec.Command("pgrep", "-f", "ControlPath="+ctl).Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("processes left after ControlPersist ended: %s", out)
	}
}

func TestSharingAStaleSocket(t *testing.T) {
	needLab(t)
	ctl := ctlPath(t)
	// A socket nobody listens on (a master killed with -9).
	cmd := exec.Command(bin, "-F", cfgFile, "-nN", "-o", "ControlMaster=yes", "-o", "ControlPath="+ctl, "lab")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ctl); err == nil {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(ctl); err != nil {
		t.Fatalf("the killed master left no socket to test with: %v", err)
	}
	r := runCmd(t, nil, bin, "-F", cfgFile, "-o", "ControlMaster=auto", "-o", "ControlPath="+ctl, "lab", "echo fresh")
	if r.code != 0 || string(r.stdout) != "fresh\n" {
		t.Errorf("with a stale socket: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
}

// TestSharingOverSSM: port 22 is blocked, so the master's connection runs
// over an SSM session; ten commands through it open no other session.
func TestSharingOverSSM(t *testing.T) {
	needWorld(t)
	ctl := ctlPath(t)
	cache := t.TempDir()
	before := world.SSM().Started()
	run := func(args ...string) result {
		return runLab(t, ec2Cfg, cache, "", append([]string{"-o", "ControlMaster=auto", "-o", "ControlPersist=30", "-o", "ControlPath=" + ctl}, args...)...)
	}
	t.Cleanup(func() { run("-O", "exit", "sg-no-22") })
	for i := range 10 {
		r := run("sg-no-22", fmt.Sprintf("echo n%d; exit %d", i, i))
		if r.code != i || string(r.stdout) != fmt.Sprintf("n%d\n", i) {
			t.Fatalf("command %d: exit %d, %q, %q", i, r.code, r.stdout, r.stderr)
		}
	}
	if n := world.SSM().Started() - before; n != 1 {
		t.Errorf("ten commands through a shared connection opened %d SSM sessions, want 1", n)
	}
}

// TestAnsibleDefaultOptions: Ansible with ec2ssh as its ssh and its own
// default options (ControlMaster=auto, ControlPersist=60s, no pipelining:
// modules go over OpenSSH's sftp, through ec2ssh's master).
func TestAnsibleDefaultOptions(t *testing.T) {
	needLab(t)
	lab.Require(t, "ansible-playbook", "sftp")
	dir := t.TempDir()
	cpDir := filepath.Join(dir, ".ansible", "cp") // Ansible's own default, under HOME
	play := filepath.Join(dir, "play.yml")
	os.WriteFile(play, []byte(`- hosts: all
  gather_facts: false
  tasks:
    - command: echo from-ansible
      register: out
    - copy: {content: "copied by ansible\n", dest: /tmp/ec2ssh-ansible-copy}
    - stat: {path: /tmp/ec2ssh-ansible-copy}
      register: st
    - assert: {that: ["out.stdout == 'from-ansible'", "st.stat.exists"]}
`), 0o644)
	inv := filepath.Join(dir, "inventory")
	os.WriteFile(inv, []byte(fmt.Sprintf("lab ansible_host=lab ansible_ssh_extra_args='-F %s' ansible_python_interpreter=/usr/bin/python3\n", cfgFile)), 0o644)
	cmd := exec.Command("ansible-playbook", "-i", inv, play)
	cmd.Env = append(cleanEnv(), "ANSIBLE_SSH_EXECUTABLE="+bin, "ANSIBLE_HOST_KEY_CHECKING=False",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"), "ANSIBLE_NOCOLOR=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "failed=0") {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	// The master it left (ControlPersist) answers, and ends when told.
	socks, _ := filepath.Glob(filepath.Join(cpDir, "*"))
	var master string
	for _, s := range socks {
		if st, err := os.Stat(s); err == nil && st.Mode()&os.ModeSocket != 0 {
			master = s
		}
	}
	if master == "" {
		t.Fatalf("no control socket in %s after the playbook: %v\n%s", cpDir, socks, out)
	}
	if r := runCmd(t, nil, bin, "-F", cfgFile, "-O", "check", "-S", master, "lab"); r.code != 0 {
		t.Errorf("-O check on Ansible's master: exit %d, %s", r.code, r.stderr)
	}
	runCmd(t, nil, bin, "-F", cfgFile, "-O", "exit", "-S", master, "lab")
	waitGone(t, master)
}
