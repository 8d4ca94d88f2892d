//go:build unix && !linux && !darwin

package connect

import "os"

// getPeerUID: without a peer-credentials call here, the socket's 0600 mode
// in a directory others cannot write is what keeps other users out.
func getPeerUID(fd int) (int, error) { return os.Getuid(), nil }
