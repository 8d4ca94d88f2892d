//go:build windows

package reach

import "os"

// refusePendingInput cannot look at a Windows pipe without reading it; the
// SSM command path runs with no input there, as -n would.
func refusePendingInput(stdin *os.File) error { return nil }
