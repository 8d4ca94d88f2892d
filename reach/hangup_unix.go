//go:build !windows

package reach

import (
	"os"

	"golang.org/x/sys/unix"
)

// watchHangup calls gone once f's reader has gone away (a pipe whose read
// end is closed reports POLLERR, a socket POLLHUP). It blocks until then;
// for a terminal or a file it never returns.
func watchHangup(f *os.File, gone func()) {
	fds := []unix.PollFd{{Fd: int32(f.Fd())}}
	for {
		n, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		if n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			gone()
			return
		}
	}
}
