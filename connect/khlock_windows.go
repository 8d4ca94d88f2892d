//go:build windows

package connect

import (
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
)

// knownHostsLockWait bounds the wait for another ec2ssh's known_hosts
// rewrite (a read, a write and a rename: milliseconds).
const knownHostsLockWait = 5 * time.Second

// lockDir takes an exclusive lock for the known_hosts files in dir: Windows
// cannot lock a directory handle, so a lock file beside them is locked
// (LockFileEx), the lock every ec2ssh writer shares.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".ec2ssh-known_hosts.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(knownHostsLockWait)
	ol := new(windows.Overlapped)
	for {
		err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
		if err == nil {
			return func() { windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, ol); f.Close() }, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, &os.PathError{Op: "lock", Path: f.Name(), Err: err}
		}
		time.Sleep(5 * time.Millisecond)
	}
}
