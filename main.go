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

	"github.com/ec2ssh/ec2ssh/failure"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		cancel(fmt.Errorf("signal %v", s))
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// report is the one place an error becomes "ec2ssh: error:" and
// "ec2ssh: hint:" lines; it returns ssh(1)'s status for its own failures.
func report(stderr *os.File, err error, quiet bool) int {
	msg := err.Error()
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
