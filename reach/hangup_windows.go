//go:build windows

package reach

import "os"

// watchHangup has no way to learn of a closed pipe without writing on
// Windows: the stream ends with the port's side, or a signal.
func watchHangup(f *os.File, gone func(), done <-chan struct{}) { <-done }
