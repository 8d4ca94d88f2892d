//go:build !windows

package connect

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// knownHostsLockWait bounds the wait for another ec2ssh's known_hosts
// rewrite (a read, a write and a rename: milliseconds).
const knownHostsLockWait = 5 * time.Second

// lockDir takes an exclusive flock(2) on dir, the lock ec2ssh's
// known_hosts writers share (a lock on the file itself would not survive
// the rename that replaces it). It fails after knownHostsLockWait.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(knownHostsLockWait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) || time.Now().After(deadline) {
			f.Close()
			return nil, &os.PathError{Op: "lock", Path: dir, Err: err}
		}
		time.Sleep(5 * time.Millisecond)
	}
}
