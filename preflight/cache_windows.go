//go:build windows

package preflight

import "io/fs"

// ownedPrivately: on Windows the profile directory's ACL keeps other users
// out; a file that is not writable at all is not a cache entry.
func ownedPrivately(st fs.FileInfo) bool { return st.Mode().Perm()&0o200 != 0 }
