// Command ec2ssh is a drop-in ssh for Amazon EC2: it finds the instance you
// mean, connects natively, and when that fails says why (see SPEC.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
)

// signalGrace is how long ec2ssh lets the context end what it reaches
// (connections closed, the remote side told) after SIGINT, SIGTERM or
// SIGHUP, before it ends anything still blocked with status 255.
const signalGrace = 300 * time.Millisecond

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	ignoreSIGPIPE()
	go func() {
		s := <-sigs
		cancel(fmt.Errorf("signal %v", s))
		select {
		case <-time.After(signalGrace):
		case <-sigs:
		}
		connect.RunAtExit()
		os.Exit(255)
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
	if lines := connect.SSHLines(err); lines != nil && !quiet {
		// ssh's own words, which callers parse; ec2ssh's hint follows.
		for _, l := range lines {
			fmt.Fprintf(stderr, "%s\r\n", l)
		}
	} else {
		fmt.Fprintf(stderr, "ec2ssh: error: %s\n", msg)
	}
	if hint := failure.HintOf(err); hint != "" && !quiet {
		fmt.Fprintf(stderr, "ec2ssh: hint: %s\n", hint)
	}
	return 255
}
