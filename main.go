// Command ec2ssh is a drop-in ssh for Amazon EC2: it finds the instance you
// mean, connects natively, and when that fails says why (see SPEC.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fleet"
)

// signalGrace is how long ec2ssh lets the context end what it reaches
// (connections closed, the remote side told) after SIGINT, SIGTERM or
// SIGHUP, before it ends anything still blocked with status 255.
const signalGrace = 300 * time.Millisecond

// fleetSignals is set once --all --via run-command has sent, or is about
// to send, a command: then the first SIGINT or SIGTERM cancels it and the
// engine waits up to fleet.CancelWait for the instances to report before
// it prints the summary and ends with 130; SIGHUP (the terminal gone)
// leaves the command running in AWS (fleet.ErrDetach); a second signal
// leaves at once, with 130.
var fleetSignals atomic.Bool

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	ignoreSIGPIPE()
	go func() {
		s := <-sigs
		var cause error = fmt.Errorf("signal %v", s)
		grace, code := signalGrace, 255
		if fleetSignals.Load() {
			grace, code = fleet.CancelWait+2*time.Second, fleet.ExitInterrupted
			if s == syscall.SIGHUP {
				cause = fleet.ErrDetach
			}
		}
		cancel(cause)
		select {
		case <-time.After(grace):
		case <-sigs:
		}
		connect.RunAtExit()
		os.Exit(code)
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	connect.RunAtExit()
	os.Exit(code)
}

// logFile is -E's file, once open.
var logFile *os.File

// report is the one place an error becomes "ec2ssh: error:" and
// "ec2ssh: hint:" lines; it returns ssh(1)'s status for its own failures.
func report(stderr *os.File, err error, quiet bool) int {
	if logFile != nil {
		// -E: ssh(1) writes its own errors to the log file too.
		stderr = logFile
	}
	msg := err.Error()
	if quiet && failure.KindOf(err) != failure.Config {
		// ssh -q says nothing about a connection that failed; mistakes in
		// the command line or the configuration are still shown.
		return 255
	}
	var fe *failure.Error
	if errors.As(err, &fe) && fe.Kind == failure.Canceled && !quiet {
		msg = "interrupted"
	}
	fmt.Fprintf(stderr, "ec2ssh: error: %s\n", msg)
	if hint := failure.HintOf(err); hint != "" && !quiet {
		fmt.Fprintf(stderr, "ec2ssh: hint: %s\n", hint)
	}
	return 255
}
