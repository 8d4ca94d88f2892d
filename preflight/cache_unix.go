//go:build unix

package preflight

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedPrivately: owned by this user and writable by no one else.
func ownedPrivately(st fs.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == os.Getuid() && st.Mode().Perm()&0o022 == 0
}
