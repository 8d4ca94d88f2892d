//go:build !windows

package connect

import (
	"os"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// shutdownWrite ends what is written to f, as OpenSSH's channel code does
// at the channel's EOF (nchan.c, chan_shutdown_write): a socket is shut
// down for writing, which its reader sees as EOF even while other
// descriptors (the same socket as stdin, the passenger client's own
// copies) keep it open; a pipe is closed. A terminal is left alone.
func shutdownWrite(f *os.File) {
	if term.IsTerminal(int(f.Fd())) {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		unix.Shutdown(int(f.Fd()), unix.SHUT_WR)
		return
	}
	f.Close()
}

// nonblockingStdio makes the passenger's descriptors that are not
// terminals non-blocking, as OpenSSH's channel_register_fds does for them,
// so that Go's poller serves them and closing one ends a read still
// waiting on it; the function returned puts back the flags they had (they
// are shared with the passenger and whatever else holds them).
func nonblockingStdio(fds []int) func() {
	type saved struct{ fd, flags int }
	var restore []saved
	for _, fd := range fds {
		if term.IsTerminal(fd) {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || flags&unix.O_NONBLOCK != 0 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags|unix.O_NONBLOCK); err == nil {
			restore = append(restore, saved{fd, flags})
		}
	}
	return func() {
		for _, s := range restore {
			unix.FcntlInt(uintptr(s.fd), unix.F_SETFL, s.flags)
		}
	}
}
