//go:build !windows

package connect

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/failure"
)

// RawTerminal puts the local terminal in raw mode, calls resize on every
// change of its size (SIGWINCH), and returns the function that restores
// it. The caller defers it, so every way out restores the terminal.
func RawTerminal(f *os.File, resize func(cols, rows int)) (func(), error) {
	fd := int(f.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, &failure.Error{Kind: failure.Unknown, Op: "set the terminal to raw mode", Err: err}
	}
	stopWatch := watchResize(f, resize)
	unregister := AtExit(func() { term.Restore(fd, old) })
	return func() {
		stopWatch()
		term.Restore(fd, old)
		unregister()
	}, nil
}

// watchResize calls resize with f's terminal size on every SIGWINCH until
// the returned function is called.
func watchResize(f *os.File, resize func(cols, rows int)) func() {
	fd := int(f.Fd())
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-winch:
				if w, h, err := term.GetSize(fd); err == nil {
					resize(w, h)
				}
			case <-stop:
				return
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		close(stop)
	}
}
