//go:build !windows

package reach

import (
	"os"

	"golang.org/x/sys/unix"
)

// hangupPoll is how often watchHangup looks whether it is still wanted.
const hangupPoll = 200

// watchHangup calls gone once f's reader has gone away (a pipe whose read
// end is closed reports POLLERR, a socket POLLHUP), and returns then or
// when done is closed. For a terminal or a file it waits for done.
func watchHangup(f *os.File, gone func(), done <-chan struct{}) {
	fds := []unix.PollFd{{Fd: int32(f.Fd())}}
	for {
		select {
		case <-done:
			return
		default:
		}
		n, err := unix.Poll(fds, hangupPoll)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			<-done
			return
		}
		if n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			gone()
			return
		}
	}
}
