//go:build windows

package connect

import "os"

// shutdownWrite ends what is written to f at the channel's EOF: closed, as
// OpenSSH closes a channel's output that is not a socket.
func shutdownWrite(f *os.File) { f.Close() }
