//go:build windows

package main

import (
	"os"

	"github.com/ec2ssh/ec2ssh/failure"
)

// forkBackground is ssh -f. Windows has no fork and no inheritable
// descriptors to report readiness on, so -f is refused by name.
func forkBackground(argv []string, stdout, stderr *os.File) (int, error) {
	return 255, failure.Configf("run ec2ssh -N in a separate window, or as a service", "-f is not supported on Windows")
}

func detach(noSession, keepStderr bool) {}

func ignoreSIGPIPE() {}

func keepForkFD() {}

func spawnMaster(argv []string, stderr *os.File) (bool, int, error) { return false, 0, nil }

func masterReady(listening, keepStderr bool) {}
