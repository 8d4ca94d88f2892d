package reach

import (
	"os"

	"golang.org/x/sys/unix"
)

// bytesWaiting is how many bytes a pipe holds (FIONREAD), or -1.
func bytesWaiting(f *os.File) int {
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ)
	if err != nil {
		return -1
	}
	return n
}
