//go:build windows

package main

import (
	"os"

	"github.com/ec2ssh/ec2ssh/failure"
)

// forkBackground is ssh -f. Windows has no fork and no inheritable
// descriptors to report readiness on, so -f is refused by name.
func forkBackground(argv []string, stdout, stderr *os.File) int {
	return report(stderr, failure.Configf("run ec2ssh -N in a separate window, or as a service", "-f is not supported on Windows"), false)
}

func detach(noSession, keepStderr bool) {}

// watchHangup has no way to learn of a closed pipe without writing on
// Windows: the stream ends with the port's side, or a signal.
func watchHangup(f *os.File, gone func()) {}

func ignoreSIGPIPE() {}

func keepForkFD() {}

func spawnMaster(argv []string, stderr *os.File) (bool, int) { return false, 0 }

func masterReady(listening, keepStderr bool) {}
