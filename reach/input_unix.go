//go:build !windows

package reach

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/ec2ssh/ec2ssh/failure"
)

// refusePendingInput refuses to run a command over SSM when stdin holds
// input for it: the agent's NonInteractiveCommands plugin gives a command
// no stdin, and ec2ssh must not drop input silently. A terminal, /dev/null,
// an empty file or a pipe already at its end is no input.
func refusePendingInput(stdin *os.File) error {
	st, err := stdin.Stat()
	if err != nil {
		return nil
	}
	pending := false
	switch {
	case st.Mode()&os.ModeCharDevice != 0:
		return nil // a terminal, or /dev/null
	case st.Mode().IsRegular():
		pos, err := stdin.Seek(0, 1)
		pending = err == nil && st.Size() > pos
	default: // a pipe or socket: look without reading
		fds := []unix.PollFd{{Fd: int32(stdin.Fd()), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 0); err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0 {
			// Readable: data, or (with the writer gone) the end of it.
			pending = bytesWaiting(stdin) != 0
		}
	}
	if !pending {
		return nil
	}
	return failure.Configf("pass no input (-n, or </dev/null), or start sshd from an SSM shell: ec2ssh --fallback=ssm HOST",
		"sshd is down and the SSM command path has no stdin (the agent gives a non-interactive command none): ec2ssh will not drop your input")
}
