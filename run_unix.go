//go:build !windows

package main

import (
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// forkBackground runs ec2ssh again as a child that does the work, and
// returns once the child is connected (ssh -f), or with the child's status
// if it fails first.
func forkBackground(argv []string, stdout, stderr *os.File) int {
	self, err := os.Executable()
	if err != nil {
		return report(stderr, err, false)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return report(stderr, err, false)
	}
	cmd := exec.Command(self, argv...)
	cmd.Env = append(os.Environ(), forkEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, stdout, stderr
	if err := cmd.Start(); err != nil {
		return report(stderr, err, false)
	}
	w.Close()
	buf := make([]byte, 1)
	if n, _ := r.Read(buf); n == 1 {
		cmd.Process.Release()
		return 0
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code > 0 {
		return code
	}
	return 255
}

// detach tells the parent of a -f child that it may go, and leaves the
// parent's session so that the terminal closing does not end the child.
// With no session (-N), stdin, stdout and stderr go to /dev/null as ssh(1)
// does (stderr stays with -v or -E), so that whoever waits on the parent's
// output is not kept waiting by the child.
func detach(noSession, keepStderr bool) {
	if fd, err := strconv.Atoi(os.Getenv(forkEnv)); err == nil {
		os.Unsetenv(forkEnv) // once: the descriptor is closed after this
		f := os.NewFile(uintptr(fd), "ready")
		f.Write([]byte{1})
		f.Close()
		syscall.Setsid()
	}
	if !noSession {
		return
	}
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		unix.Dup2(int(null.Fd()), 0)
		unix.Dup2(int(null.Fd()), 1)
		if !keepStderr {
			unix.Dup2(int(null.Fd()), 2)
		}
		null.Close()
	}
}

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

// ignoreSIGPIPE makes a write to a closed stdout (ec2ssh … | head -1) an
// EPIPE error that ends the session with status 255 and the terminal
// restored, as in ssh(1), rather than a death by SIGPIPE (status 141).
func ignoreSIGPIPE() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}

// keepForkFD stops the -f child's readiness pipe from leaking into
// processes it starts (a ProxyCommand), which would keep the parent
// waiting until they exit.
func keepForkFD() {
	if fd, err := strconv.Atoi(os.Getenv(forkEnv)); err == nil {
		syscall.CloseOnExec(fd)
	}
}

// spawnMaster starts this command again as the background master that
// ControlPersist asks for, and waits until it is listening (up), has
// connected but could not listen (up false, code 0: connect without it),
// or has failed (its status; it has said why).
func spawnMaster(argv []string, stderr *os.File) (up bool, code int) {
	self, err := os.Executable()
	if err != nil {
		return false, report(stderr, err, false)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return false, report(stderr, err, false)
	}
	defer r.Close()
	cmd := exec.Command(self, argv...)
	cmd.Env = append(os.Environ(), muxMasterEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, stderr
	if err := cmd.Start(); err != nil {
		w.Close()
		return false, report(stderr, err, false)
	}
	w.Close()
	buf := make([]byte, 1)
	if n, _ := r.Read(buf); n == 1 {
		cmd.Process.Release()
		return buf[0] == 1, 0
	}
	cmd.Wait()
	if c := cmd.ProcessState.ExitCode(); c > 0 {
		return false, c
	}
	return false, 255
}

// masterReady tells the waiting parent how the background master fared
// and, once it is listening, leaves the terminal: a new session, and
// stdin, stdout and stderr on /dev/null (stderr kept with -v or -E).
func masterReady(listening, keepStderr bool) {
	fd, err := strconv.Atoi(os.Getenv(muxMasterEnv))
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	b := byte(2)
	if listening {
		b = 1
	}
	f.Write([]byte{b})
	f.Close()
	if !listening {
		return
	}
	syscall.Setsid()
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		unix.Dup2(int(null.Fd()), 0)
		unix.Dup2(int(null.Fd()), 1)
		if !keepStderr {
			unix.Dup2(int(null.Fd()), 2)
		}
		null.Close()
	}
}
