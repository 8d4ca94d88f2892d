//go:build !windows

package connect

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// openTTY opens the controlling terminal, as ssh(1) asks its questions on
// /dev/tty whatever stdin and stdout carry.
func openTTY() (in, out *os.File, err error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	return f, f, err
}

func closeTTY(in, out *os.File) { in.Close() }

// shellCommand runs a ProxyCommand (or LocalCommand) as ssh(1) does: with
// the user's shell replaced by the command (exec), so that no shell lingers.
func shellCommand(command string) *exec.Cmd {
	return exec.Command("/bin/sh", "-c", "exec "+command)
}

// umask sets the process's file mode mask and returns the old one.
func umask(m int) int { return syscall.Umask(m) }

// streamLocalMask reads StreamLocalBindMask (octal).
func streamLocalMask(s string) int {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0o177
	}
	return int(n)
}

// suspendSelf stops ec2ssh as ^Z would (SIGTSTP); it returns once the
// shell continues it.
func suspendSelf() error { return syscall.Kill(syscall.Getpid(), syscall.SIGTSTP) }
