//go:build windows

package connect

import (
	"os"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/failure"
)

// consolePoll is how often the console's size is checked: Windows has no
// SIGWINCH.
const consolePoll = 250 * time.Millisecond

// RawTerminal puts the console in raw mode with virtual-terminal input and
// output (the remote side speaks VT100), reports size changes by polling,
// and returns the function that restores both modes.
func RawTerminal(f *os.File, resize func(cols, rows int)) (func(), error) {
	fd := int(f.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, &failure.Error{Kind: failure.Unknown, Op: "set the console to raw mode", Err: err}
	}
	out := windows.Handle(os.Stdout.Fd())
	var outMode uint32
	outOK := windows.GetConsoleMode(out, &outMode) == nil
	if outOK {
		windows.SetConsoleMode(out, outMode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING|windows.DISABLE_NEWLINE_AUTO_RETURN)
	}
	stop := make(chan struct{})
	go func() {
		w, h, _ := term.GetSize(int(out))
		t := time.NewTicker(consolePoll)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if nw, nh, err := term.GetSize(int(out)); err == nil && (nw != w || nh != h) {
					w, h = nw, nh
					resize(w, h)
				}
			case <-stop:
				return
			}
		}
	}()
	return func() {
		close(stop)
		if outOK {
			windows.SetConsoleMode(out, outMode)
		}
		term.Restore(fd, old)
	}, nil
}

// watchResize has nothing to watch on Windows: connection sharing, its one
// user, is off there.
func watchResize(f *os.File, resize func(cols, rows int)) func() { return func() {} }
