package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// OpenSSH's own regression suite (openssh-portable 9.2p1's regress/, as
// Debian's openssh-tests package ships it) with ec2ssh as the ssh under
// test: the suite's test-exec.sh takes the client from TEST_SSH_SSH and
// runs the real sshd, ssh-keygen, ssh-agent, scp and sftp around it.
//
// regressTests are its client-driven tests. The suite's others drive only
// sshd, ssh-keygen, ssh-agent, ssh-keyscan or scp's own wrapper and say
// nothing about ec2ssh. regressLeftOut are the client tests not run, each
// with why: what they check is OpenSSH's own log text, or a feature ec2ssh
// refuses by name (SPEC.md, "Honour or refuse").
var regressTests = []string{
	"connect", "proxy-connect", "sshfp-connect", "connect-privsep", "connect-uri", "exit-status", "exit-status-signal",
	"envpass", "transfer", "banner", "stderr-data", "stderr-after-eof", "broken-pipe", "try-ciphers", "yes-head",
	"login-timeout", "agent", "keygen-moduli", "keygen-sshfp", "key-options", "scp3", "sftp", "sftp-chroot", "sftp-cmds",
	"sftp-badcmds", "sftp-batch", "sftp-glob", "sftp-perm", "sftp-uri", "reconfigure", "dynamic-forward", "forwarding",
	"multiplex", "reexec", "brokenkeys", "sshcfgparse", "cfgmatch", "cfgmatchlisten", "percent", "localcommand",
	"forcecommand", "portnum", "keytype", "kextype", "cert-hostkey", "cert-userkey", "host-expand", "keys-command",
	"forward-control", "multipubkey", "limit-keytype", "hostkey-rotate", "principals-command",
	"cert-file", "cfginclude", "servcfginclude", "allow-deny-users", "authinfo", "knownhosts", "knownhosts-command",
	"channel-timeout", "connection-timeout",
}

var regressLeftOut = map[string]string{
	"rekey":          "counts OpenSSH's own \"rekeying\" log lines, and asks for time-based RekeyLimit, which x/crypto cannot do (refused)",
	"dhgex":          "greps OpenSSH's -vvv log for the group sizes it requests (x/crypto asks for its own)",
	"integrity":      "matches the first words of OpenSSH's own error lines (ec2ssh says \"Corrupted MAC on input.\" after its prefix)",
	"hostbased":      "host-based authentication (ssh-keysign) is refused by name",
	"hostkey-agent":  "takes its host certificate types from the system's own ssh -Q key-sig (not the ssh under test), which lists DSA and FIDO (sk-*) certificate types that x/crypto cannot verify; ec2ssh refuses those HostKeyAlgorithms by name",
	"agent-restrict": "keys restricted with ssh-add -h need session-bind@openssh.com, which x/crypto cannot send (it keeps the exchange hash's signature to itself)",
}

var regressFixedPorts = map[string]bool{"cfgmatch": true, "cfgmatchlisten": true, "forward-control": true, "forwarding": true, "multiplex": true}

func TestOpenSSHRegress(t *testing.T) {
	needLab(t)
	const suite = "/usr/lib/openssh/regress"
	if _, err := os.Stat(filepath.Join(suite, "test-exec.sh")); err != nil {
		t.Fatalf("OpenSSH's regression suite is not installed (%v): lab/deps.sh installs openssh-tests", err)
	}
	lab.Require(t, "ssh-keygen", "ssh-agent", "ssh-add", "scp", "sftp", "openssl")
	for name, why := range regressLeftOut {
		if slices.Contains(regressTests, name) {
			t.Fatalf("%s is both run and left out", name)
		}
		t.Logf("not run: %s: %s", name, why)
	}
	for i, name := range regressTests {
		t.Run(name, func(t *testing.T) {
			// Tests that listen on fixed ports (33xx) run one at a time,
			// before the others, which run in parallel.
			if !regressFixedPorts[name] {
				t.Parallel()
			}
			// Not t.TempDir: its path holds the test's name, and the suite's
			// scripts grep their files by words like "hostkey".
			obj, err := os.MkdirTemp("", "ec2ssh-regress-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(obj) })
			if out, err := exec.Command("cp", "-a", suite+"/.", obj).CombinedOutput(); err != nil {
				t.Fatalf("copy the suite: %v: %s", err, out)
			}
			os.Chmod(obj, 0o755)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "test-exec.sh", obj, filepath.Join(obj, name+".sh"))
			cmd.Dir = obj
			// Each test gets its own ports (it uses PORT and the next few).
			// BUILDDIR is where test-exec.sh reads config.h, as OpenSSH's
			// own "make tests" sets it: the suite's config.h says the
			// default build's ENABLE_SK, so SecurityKeyProvider (the
			// suite's sk-dummy.so) is in its ssh_config for every host,
			// as it is when OpenSSH tests itself (issue 25).
			cmd.Env = append(cleanEnv(), "BUILDDIR="+obj, "PATH="+obj+":"+os.Getenv("PATH"), "TEST_SHELL=/bin/sh",
				"TEST_SSH_SSH="+bin, "TEST_SSH_SSHD=/usr/sbin/sshd", "TEST_SSH_SFTPSERVER=/usr/lib/openssh/sftp-server",
				"TEST_SSH_UNSAFE_PERMISSIONS=1", fmt.Sprintf("TEST_SSH_PORT=%d", 5200+10*i), "TEST_SSH_QUIET=")
			// A file, not a pipe: sshd daemons the tests start keep their
			// output open after the test is done.
			logPath := filepath.Join(obj, "ec2ssh-regress.out")
			logf, err := os.Create(logPath)
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout, cmd.Stderr = logf, logf
			err = cmd.Run()
			logf.Close()
			out, _ := os.ReadFile(logPath)
			if ctx.Err() != nil {
				t.Fatalf("%s ran past 10 minutes:\n%s", name, tail(string(out), 40))
			}
			if err != nil && os.Getenv("EC2SSH_REGRESS_KEEP") != "" {
				exec.Command("cp", "-a", obj, filepath.Join(os.Getenv("EC2SSH_REGRESS_KEEP"), name)).Run()
			}
			if err != nil {
				t.Errorf("OpenSSH's %s.sh fails with ec2ssh as ssh (%v):\n%s", name, err, tail(string(out), 40))
			}
		})
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
