//go:build !windows

package main

import (
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ec2ssh/ec2ssh/reach"
)

// What ec2ssh does as a process among processes, as ssh(1) does: -f's
// fork into the background, ControlPersist's background master, SIGPIPE.

// forkBackground runs ec2ssh again as a child that does the work, and
// returns once the child is connected (ssh -f), or with the child's status
// if it fails first (it has said why).
func forkBackground(argv []string, stdout, stderr *os.File) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 255, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 255, err
	}
	defer r.Close()
	cmd := exec.Command(self, argv...)
	cmd.Env = append(os.Environ(), forkEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, stdout, stderr
	if err := cmd.Start(); err != nil {
		w.Close()
		return 255, err
	}
	w.Close()
	if ready(r) != 0 {
		cmd.Process.Release()
		return 0, nil
	}
	return childStatus(cmd), nil
}

// ready reads the one byte a child reports readiness with; 0 when it
// closed the pipe without one (it ended).
func ready(r *os.File) byte {
	buf := make([]byte, 1)
	if n, _ := r.Read(buf); n == 1 {
		return buf[0]
	}
	return 0
}

// childStatus is how a child that did not get ready ended: its status, or
// 255 when it had none to give.
func childStatus(cmd *exec.Cmd) int {
	cmd.Wait()
	if c := cmd.ProcessState.ExitCode(); c > 0 {
		return c
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
	if noSession {
		toDevNull(keepStderr)
	}
}

// toDevNull points stdin, stdout and (unless kept) stderr at /dev/null.
func toDevNull(keepStderr bool) {
	if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		unix.Dup2(int(null.Fd()), 0)
		unix.Dup2(int(null.Fd()), 1)
		if !keepStderr {
			unix.Dup2(int(null.Fd()), 2)
		}
		null.Close()
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
func spawnMaster(argv []string, stderr *os.File) (up bool, code int, err error) {
	self, err := os.Executable()
	if err != nil {
		return false, 255, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return false, 255, err
	}
	defer r.Close()
	cmd := exec.Command(self, argv...)
	cmd.Env = append(os.Environ(), reach.MuxMasterEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, stderr
	if err := cmd.Start(); err != nil {
		w.Close()
		return false, 255, err
	}
	w.Close()
	if b := ready(r); b != 0 {
		cmd.Process.Release()
		return b == 1, 0, nil
	}
	return false, childStatus(cmd), nil
}

// masterReady tells the waiting parent how the background master fared
// and, once it is listening, leaves the terminal: a new session, and
// stdin, stdout and stderr on /dev/null (stderr kept with -v or -E).
func masterReady(listening, keepStderr bool) {
	fd, err := strconv.Atoi(os.Getenv(reach.MuxMasterEnv))
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
	toDevNull(keepStderr)
}
