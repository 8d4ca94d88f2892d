package lab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/ec2ssh/ec2ssh/fallback"
)

// sessionType maps an SSM document to the session type the agent asks
// the client for in the handshake; "" for a document that does not exist.
func sessionType(document string) string {
	switch document {
	case "AWS-StartSSHSession", "AWS-StartPortForwardingSession", "AWS-StartPortForwardingSessionToRemoteHost":
		return "Port"
	case "AWS-StartNonInteractiveCommand":
		return "NonInteractiveCommands"
	case "AWS-StartInteractiveCommand":
		return "InteractiveCommands"
	case "", "SSM-SessionManagerRunShell":
		return "Standard_Stream"
	}
	return ""
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

// instanceCommand is a process on "the instance": run in the instance's
// own view of the files when the lab gives it one (see View).
func (a *agentSession) instanceCommand(name string, args ...string) *exec.Cmd {
	if a.s.opts.IgnoreHUP {
		// trap '' sets SIG_IGN, which exec keeps.
		name, args = "sh", append([]string{"-c", `trap '' HUP; exec "$@"`, "sh", name}, args...)
	}
	if v := a.s.opts.Views[a.target]; v != nil {
		return v.Command(name, args...)
	}
	return exec.Command(name, args...)
}

// sessionEnv is the environment the agent gives a session's process
// (shell/shell_unix.go StartCommandExecutor): its own, TERM, LANG when
// unset, and HOME of the user the session runs as.
func (a *agentSession) sessionEnv() ([]string, error) {
	home, err := a.s.sessionHome()
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "TERM=xterm-256color")
	if os.Getenv("LANG") == "" {
		env = append(env, "LANG=C.UTF-8")
	}
	return append(env, "HOME="+home), nil
}

// sessionHome is the home of the user sessions run as. The agent runs
// them as ssm-user, which it makes with `useradd -m` before the first
// session (utility.CreateLocalAdminUser), with HOME set to its home; the
// lab runs them as itself, so it makes such a home, from /etc/skel as
// useradd does, once per stand-in. A login shell then reads what a fresh
// user's reads on an instance, not the dotfiles of whoever runs the lab
// (a profile that waited a minute on a stale lock in ~/.pyenv held every
// terminal session's first command back that long).
func (s *ssmStandIn) sessionHome() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.home == "" && s.homeErr == nil {
		s.home, s.homeErr = makeHome()
	}
	return s.home, s.homeErr
}

func makeHome() (string, error) {
	dir, err := os.MkdirTemp("", "ec2ssh-lab-home-")
	if err != nil {
		return "", err
	}
	home := filepath.Join(dir, "ssm-user")
	err = os.CopyFS(home, os.DirFS("/etc/skel"))
	if errors.Is(err, fs.ErrNotExist) {
		err = os.Mkdir(home, 0o700)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("make ssm-user's home: %w", err)
	}
	return home, nil
}

// runTerminal runs a shell (Standard_Stream) or "sh -c COMMAND"
// (InteractiveCommands) on a terminal, as the agent's shell plugin does
// (shell/shell_unix.go StartCommandExecutor, shell.go writePump): TERM and
// LANG set, input rejected until the terminal has started, output read 1 KiB
// at a time after a first wait of a second and rewritten by
// processStdoutData (ProcessStdout), no exit status; the channel closes
// when the terminal's output ends.
func (a *agentSession) runTerminal(kind string) {
	m, slave, err := openPTY()
	if err != nil {
		a.closeChannel("Unable to start shell: " + err.Error())
		a.end(OutcomeFailed)
		return
	}
	var cmd *exec.Cmd
	if kind == "InteractiveCommands" {
		cmd = a.instanceCommand("sh", "-c", a.command)
	} else {
		// The agent runs plain sh; the lab's prompt says whose it is.
		cmd = a.instanceCommand("sh")
	}
	env, err := a.sessionEnv()
	if err != nil {
		slave.Close()
		m.Close()
		a.closeChannel("Unable to start shell: " + err.Error())
		a.end(OutcomeFailed)
		return
	}
	cmd.Env = append(env, "PS1=ssm$ ")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		m.Close()
		a.closeChannel("Unable to start command: " + err.Error())
		a.end(OutcomeFailed)
		return
	}
	slave.Close()
	a.mu.Lock()
	a.stdin, a.pty, a.cmdProc = m, m, cmd.Process
	a.cond.Broadcast()
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		// "Wait for all input commands to run" (writePump's first wait).
		select {
		case <-time.After(terminalFirstWait):
		case <-a.done:
		}
		a.pump(m, fallback.Output)
		close(done)
	}()
	cmd.Wait()
	<-done
	m.Close()
	a.waitAcked(10 * time.Second)
	a.closeChannel("")
	a.end(OutcomeSuccess)
}

// runNonInteractive runs a NonInteractiveCommands session as the agent
// does: the command line is split into words and executed without a
// shell, with no stdin; stdout and stderr go to one file, which is sent
// once the command has ended; no exit status is sent (the AWS document does
// not set separateOutputStream).
func (a *agentSession) runNonInteractive() {
	words, err := splitWords(a.command)
	if err != nil || len(words) == 0 {
		a.send(fallback.Output, []byte("Failed to parse commands input: "+errString(err)+"\n"))
		a.waitAcked(10 * time.Second)
		a.closeChannel("")
		a.end(OutcomeFailed)
		return
	}
	dir, err := os.MkdirTemp("", "ssm-orchestration-")
	if err != nil {
		a.closeChannel("Unable to start command: " + err.Error())
		a.end(OutcomeFailed)
		return
	}
	defer os.RemoveAll(dir)
	outPath := filepath.Join(dir, "stdout")
	out, err := os.Create(outPath)
	if err != nil {
		a.closeChannel("Unable to start command: " + err.Error())
		a.end(OutcomeFailed)
		return
	}
	env, err := a.sessionEnv()
	if err != nil {
		out.Close()
		a.closeChannel("Unable to start command: " + err.Error())
		a.end(OutcomeFailed)
		return
	}
	cmd := a.instanceCommand(words[0], words[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		a.send(fallback.Output, []byte("Error occurred starting the command: "+err.Error()+"\n"))
		a.waitAcked(10 * time.Second)
		a.closeChannel("")
		a.end(OutcomeFailed)
		return
	}
	a.mu.Lock()
	a.cmdProc = cmd.Process
	a.mu.Unlock()
	cmd.Wait()
	out.Close()
	f, err := os.Open(outPath)
	if err == nil {
		a.pump(bufio.NewReaderSize(f, agentReadSize), fallback.Output)
		f.Close()
	}
	a.waitAcked(10 * time.Second)
	a.closeChannel("")
	a.end(OutcomeSuccess)
}

func errString(err error) string {
	if err == nil {
		return "empty command"
	}
	return err.Error()
}

// terminalFirstWait is the shell plugin's wait before it first reads a
// terminal's output (executeCommandsWithPty: initialWaitSecond 1).
const terminalFirstWait = time.Second

// pump sends what r gives, 1 KiB and a 1 ms pause at a time, through
// processStdoutData's rewriting (a frame for every read, empty or not, as
// the agent sends them); what it holds back at the end is lost.
func (a *agentSession) pump(r interface{ Read([]byte) (int, error) }, ptype fallback.PayloadType) {
	buf := make([]byte, agentReadSize)
	var rw ProcessStdout
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		a.send(ptype, rw.Process(buf[:n]))
		time.Sleep(agentReadPause)
	}
}

// ProcessStdout does to output what the agent's processStdoutData does
// (agent/session/shell/shell.go) to every shell-type session's output: it
// reads the bytes as UTF-8, passes a valid rune on and an invalid byte on
// alone, except that a rune error within the last three bytes is held back
// for the next read (and lost at the end). The valid encoding of U+FFFD,
// EF BF BD, decodes as the rune error too, so it leaves as its first byte,
// EF. Raw binary does not survive a shell-type session.
type ProcessStdout struct{ held []byte }

// Process returns what the agent sends for the bytes p, read after those
// given before.
func (r *ProcessStdout) Process(p []byte) []byte {
	buf := append(r.held, p...)
	out := make([]byte, 0, len(buf))
	i := 0
	for i < len(buf) {
		ru, size := utf8.DecodeRune(buf[i:])
		if ru == utf8.RuneError {
			if len(buf)-i < utf8.UTFMax {
				break
			}
			out = append(out, buf[i])
		} else {
			out = utf8.AppendRune(out, ru)
		}
		i += size
	}
	r.held = append([]byte(nil), buf[i:]...)
	return out
}

// resize applies a terminal size frame to the PTY.
func (a *agentSession) resize(payload []byte) {
	var sz fallback.SizeData
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

// controlSignals is a NonInteractiveCommands session's input handling
// (shell_unix.go InputStreamMessageHandler): every byte is dropped, except
// that the first ^C or ^\ in a frame sends SIGINT or SIGQUIT to the
// command's process, not its children.
func (a *agentSession) controlSignals(p []byte) {
	for _, c := range p {
		sig := map[byte]os.Signal{3: syscall.SIGINT, 0x1c: syscall.SIGQUIT}[c]
		if sig == nil {
			continue
		}
		a.mu.Lock()
		proc := a.cmdProc
		a.mu.Unlock()
		if proc != nil {
			proc.Signal(sig)
		}
		return
	}
}
