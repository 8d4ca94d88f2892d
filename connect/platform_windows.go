//go:build windows

package connect

import (
	"errors"
	"os"
	"os/exec"
)

// openTTY opens the console: CONIN$ and CONOUT$ stand for /dev/tty.
func openTTY() (in, out *os.File, err error) {
	in, err = os.OpenFile("CONIN$", os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	out, err = os.OpenFile("CONOUT$", os.O_RDWR, 0)
	if err != nil {
		in.Close()
		return nil, nil, err
	}
	return in, out, nil
}

func closeTTY(in, out *os.File) { in.Close(); out.Close() }

// shellCommand runs a ProxyCommand through cmd.exe, as Windows' OpenSSH
// does.
func shellCommand(command string) *exec.Cmd {
	return exec.Command("cmd.exe", "/c", command)
}

func umask(m int) int { return 0 }

func streamLocalMask(s string) int { return 0 }

func suspendSelf() error { return errors.New("Windows has no job control") }
