package e2e

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ec2ssh/ec2ssh/lab"
)

// Issue 25: through an ec2ssh master, scp -O (whose ssh has one socket for
// stdin and stdout) and any passenger with one socket finish with every
// byte: EOF from the passenger becomes the channel's EOF, and the channel's
// EOF shuts down the write side of the passenger's stdout. Both OpenSSH's
// ssh and ec2ssh as the passenger's client; OpenSSH's master as the
// reference, in the same run.
func TestHalfCloseThroughEc2sshMaster(t *testing.T) {
	needLab(t)
	lab.Require(t, "ssh", "scp")
	data := make([]byte, 5<<20)
	rand.Read(data)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.WriteFile(src, data, 0o644)
	remote := "/tmp/ec2ssh-halfclose-" + filepath.Base(dir)
	t.Cleanup(func() { os.Remove(remote) })

	for _, master := range []string{bin, "ssh"} {
		ctl := ctlPath(t)
		if r := runCmd(t, nil, master, "-F", cfgFile, "-nNf", "-o", "ControlMaster=yes", "-o", "ControlPath="+ctl, "lab"); r.code != 0 {
			t.Fatalf("%s master: exit %d: %s", master, r.code, r.stderr)
		}
		for _, client := range []string{"ssh", bin} {
			name := filepath.Base(master) + " master, " + filepath.Base(client) + " passenger"
			// scp -O up and down, with client as scp's ssh.
			back := filepath.Join(dir, "back")
			os.Remove(back)
			for _, args := range [][]string{{src, "lab:" + remote}, {"lab:" + remote, back}} {
				argv := append([]string{"-O", "-q", "-S", client, "-F", cfgFile, "-o", "ControlPath=" + ctl}, args...)
				if r := runLimited(t, 60*time.Second, nil, "scp", argv...); r.code != 0 {
					t.Errorf("%s: scp -O %v: exit %d: %s", name, args, r.code, r.stderr)
				}
			}
			if b, _ := os.ReadFile(back); !bytes.Equal(b, data) {
				t.Errorf("%s: scp -O down gave %d bytes, want the %d sent up", name, len(b), len(data))
			}
			// One socket for stdin and stdout: up with EOF, and back.
			got, code := oneSocketPassenger(t, client, ctl, data, "cat")
			if code != 0 || !bytes.Equal(got, data) {
				t.Errorf("%s: one-socket passenger, cat: exit %d, %d bytes back of %d", name, code, len(got), len(data))
			}
			// Down, the passenger's write side left open (as scp -O's sink).
			got, code = oneSocketPassenger(t, client, ctl, nil, "head -c 3000000 /dev/zero")
			if code != 0 || len(got) != 3000000 {
				t.Errorf("%s: one-socket passenger, download: exit %d, %d bytes, want 3000000", name, code, len(got))
			}
		}
		runCmd(t, nil, master, "-F", cfgFile, "-O", "exit", "-o", "ControlPath="+ctl, "lab")
	}
}

// oneSocketPassenger runs client -S ctl lab command with one end of a
// socketpair as both its stdin and stdout, writes send (then shuts down
// its writing, unless send is nil) and reads until EOF, within a minute.
func oneSocketPassenger(t *testing.T, client, ctl string, send []byte, command string) ([]byte, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	theirs, ours := os.NewFile(uintptr(fds[0]), "passenger"), os.NewFile(uintptr(fds[1]), "ours")
	defer ours.Close()
	cmd := exec.Command(client, "-F", cfgFile, "-S", ctl, "lab", command)
	cmd.Env = cleanEnv()
	cmd.Stdin, cmd.Stdout = theirs, theirs
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	if send != nil {
		go func() {
			ours.Write(send)
			unix.Shutdown(int(ours.Fd()), unix.SHUT_WR)
		}()
	}
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(ours); got <- b }()
	var b []byte
	select {
	case b = <-got:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Errorf("%s %q: no EOF on its socket within a minute; stderr %q", filepath.Base(client), command, errb.String())
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("%s %q did not end", filepath.Base(client), command)
	}
	return b, cmd.ProcessState.ExitCode()
}

// runLimited is runCmd with a time limit.
func runLimited(t *testing.T, limit time.Duration, stdin []byte, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = cleanEnv()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	defer timer.Stop()
	cmd.Wait()
	if !timer.Stop() {
		t.Errorf("%s %q ran past %v", name, args, limit)
	}
	return result{out.Bytes(), errb.Bytes(), cmd.ProcessState.ExitCode()}
}
