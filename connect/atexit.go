package connect

import "sync"

// What must be undone however ec2ssh ends: a terminal in raw mode or with
// echo off, a ProxyCommand child. A signal that arrives while ec2ssh is
// blocked where no context reaches (an agent that never answers, a
// question on the terminal) ends the process at once, as ssh(1) does, and
// runs these first.

var (
	exitMu    sync.Mutex
	exitFuncs = map[int]func(){}
	exitNext  int
)

// AtExit registers f to run if the process is ended early; the returned
// function unregisters it (call it once f's work is undone normally).
func AtExit(f func()) (unregister func()) {
	exitMu.Lock()
	defer exitMu.Unlock()
	id := exitNext
	exitNext++
	exitFuncs[id] = f
	return func() {
		exitMu.Lock()
		defer exitMu.Unlock()
		delete(exitFuncs, id)
	}
}

// RunAtExit runs what is registered, newest first, once.
func RunAtExit() {
	exitMu.Lock()
	fs := make([]func(), 0, len(exitFuncs))
	for id := exitNext - 1; id >= 0; id-- {
		if f, ok := exitFuncs[id]; ok {
			fs = append(fs, f)
			delete(exitFuncs, id)
		}
	}
	exitMu.Unlock()
	for _, f := range fs {
		f()
	}
}
