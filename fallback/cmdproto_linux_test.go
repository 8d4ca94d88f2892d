package fallback

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: its master and its slave.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Non-blocking, so that read deadlines work.
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), slave
}

// TestWrapperUnderEachShell runs the wrapper on a real terminal, as the
// agent starts it (sh -c, a new session, the pty its controlling
// terminal), under each POSIX shell the images use for sh: dash (Debian,
// Ubuntu), bash (Amazon Linux 2023) and busybox where it is installed. No
// SSM here: records go into the pty's master, frames come out of it.
func TestWrapperUnderEachShell(t *testing.T) {
	// busybox's sh with this machine's tools, and with its own only. All
	// are lab packages (lab/deps.sh); only the fast subset goes without.
	shells := []string{"dash", "bash", "busybox", "busybox-tools"}
	in := make([]byte, 0, 600)
	for i := 0; i < 256; i++ {
		in = append(in, byte(i))
	}
	in = append(in, "\x00\r\n\x03\x04\x1c\x11\x13\x7f\xef\xbf\xbd\xe2\x82"...)
	for _, sh := range shells {
		t.Run(sh, func(t *testing.T) {
			path, err := exec.LookPath(strings.TrimSuffix(sh, "-tools"))
			if err != nil && testing.Short() {
				t.Skipf("%v (lab/deps.sh installs it)", err)
			}
			if err != nil {
				t.Fatalf("%v (lab/deps.sh installs it)", err)
			}
			args := []string{"-c", WrapCommand("n0", `cat; printf 'err\n' >&2; exit 42`)}
			if strings.HasPrefix(sh, "busybox") {
				args = append([]string{"sh"}, args...)
			}
			master, slave := openPTY(t)
			defer master.Close()
			cmd := exec.Command(path, args...)
			if sh == "busybox-tools" {
				dir := t.TempDir()
				for _, tool := range []string{"sh", "stty", "dd", "base64", "mkfifo", "mktemp", "setsid", "cat", "cut", "id", "sleep", "rm"} {
					os.Symlink(path, dir+"/"+tool)
				}
				cmd.Env = []string{"PATH=" + dir, "HOME=" + dir}
			}
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			slave.Close()
			defer cmd.Process.Kill()
			p := newFrameParser("n0")
			var stdout, stderr []byte
			code := int64(-1)
			ready := make(chan struct{})
			sent := false
			buf := make([]byte, 4096)
			deadline := time.Now().Add(20 * time.Second)
			master.SetReadDeadline(deadline)
			for code < 0 && time.Now().Before(deadline) {
				n, rerr := master.Read(buf)
				err := p.feed(buf[:n], func(ev event) error {
					switch ev.kind {
					case 'R':
						close(ready)
					case 'O':
						stdout = append(stdout, ev.data...)
					case 'E':
						stderr = append(stderr, ev.data...)
					case 'X':
						code = ev.n
					case 'M', 'F':
						t.Fatalf("the wrapper did not start: %c %q", ev.kind, ev.data)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("after %q: %v", p.Preamble(), err)
				}
				if !sent && p.ready {
					// Two records, then EOF, in one write.
					sent = true
					master.Write(append(append(dataRecord(in[:200]), dataRecord(in[200:])...), eofRecord...))
				}
				if rerr != nil {
					break
				}
			}
			if code != 42 || !bytes.Equal(stdout, in) || string(stderr) != "err\n" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 42, the input, err", code, stdout, stderr)
			}
		})
	}
}
