package lab

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"github.com/aws/session-manager-plugin/src/message"
	"golang.org/x/sys/unix"
)

// sessionType maps an SSM document to the session type the agent asks
// the client for in the handshake.
func sessionType(document string) string {
	switch document {
	case "AWS-StartSSHSession", "AWS-StartPortForwardingSession", "AWS-StartPortForwardingSessionToRemoteHost":
		return "Port"
	case "AWS-StartNonInteractiveCommand":
		return "NonInteractiveCommands"
	case "AWS-StartInteractiveCommand":
		return "InteractiveCommands"
	}
	return "Standard_Stream"
}

// openPTY allocates a pseudo-terminal: the master and the slave.
func openPTY() (*os.File, *os.File, error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// runShell runs the session's shell or command on this machine, standing
// in for the instance: a login shell on a PTY (Standard_Stream), or the
// command with its stdout, stderr and exit status kept apart
// (NonInteractiveCommands).
func (a *agentSession) runShell(kind string) {
	var cmd *exec.Cmd
	var stdin io.WriteCloser
	var master *os.File
	done := make(chan struct{})
	if kind == "NonInteractiveCommands" {
		cmd = exec.Command("/bin/sh", "-c", a.command)
		stdin, _ = cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		errp, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			a.closeChannel("Unable to start command: " + err.Error())
			return
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a.pump(out, message.Output) }()
		go func() { defer wg.Done(); a.pump(errp, message.StdErr) }()
		go func() { wg.Wait(); close(done) }()
	} else {
		m, slave, err := openPTY()
		if err != nil {
			a.closeChannel("Unable to start shell: " + err.Error())
			return
		}
		master = m
		cmd = exec.Command("/bin/bash", "--norc", "--noprofile", "-i")
		cmd.Env = append(os.Environ(), "PS1=ssm$ ", "TERM=xterm")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			a.closeChannel("Unable to start shell: " + err.Error())
			return
		}
		slave.Close()
		stdin = master
		go func() { a.pump(master, message.Output); close(done) }()
	}
	a.mu.Lock()
	a.stdin, a.pty = stdin, master
	a.cond.Broadcast()
	a.mu.Unlock()
	// Drain the output first: Wait closes the command's pipes, and the
	// PTY gives its last bytes before it reports the end (EIO).
	var err error
	if master == nil {
		<-done
		err = cmd.Wait()
	} else {
		err = cmd.Wait()
		<-done
		master.Close()
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	a.send(message.ExitCode, []byte(strconv.Itoa(code)))
	a.waitAcked()
	a.closeChannel("")
}

func (a *agentSession) pump(r io.Reader, ptype message.PayloadType) {
	buf := make([]byte, 1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			a.send(ptype, append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			return
		}
	}
}

// resize applies a terminal size frame to the PTY.
func (a *agentSession) resize(payload []byte) {
	var sz message.SizeData
	if json.Unmarshal(payload, &sz) != nil {
		return
	}
	a.mu.Lock()
	pty := a.pty
	a.mu.Unlock()
	if pty != nil {
		unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(sz.Rows), Col: uint16(sz.Cols)})
	}
}
