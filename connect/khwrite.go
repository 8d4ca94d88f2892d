package connect

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// Writing known_hosts as OpenSSH keeps it (issue 25). Any number of ssh and
// ec2ssh processes may write the same file at once:
//   - a new key is appended as ssh(1)'s add_host_to_hostfile appends it:
//     the file opened with O_APPEND and the line (with the newline a
//     truncated last line lacks) written in one write(2), which the kernel
//     never interleaves with another process's and never puts anywhere but
//     at the end, so no line is lost or split;
//   - a rewrite (UpdateHostKeys) reads the file, writes the new contents
//     beside it and renames them into place, so a reader sees the old file
//     or the new one, never half of one. Rewrites and ec2ssh's appends hold
//     an exclusive lock on the file's directory meanwhile, so none of
//     ec2ssh's own writes can land in the old file after it was read; ssh's
//     appends take no lock, so what was appended to the old file by the
//     time of the rename is copied over after it.

// appendKnownHost adds line to file, creating the file (mode 0600) and its
// directory (0700) when they do not exist.
func appendKnownHost(file, line string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	// The lock keeps the line out of a file an ec2ssh rewrite has read and
	// is replacing; without it (a lock that cannot be had in time) the
	// append is still whole, as ssh's own are.
	if unlock, err := lockDir(filepath.Dir(file)); err == nil {
		defer unlock()
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	data := line + "\n"
	if !endsWithNewline(f) {
		data = "\n" + data
	}
	if _, err := f.Write([]byte(data)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// endsWithNewline reports whether f is empty or ends with a newline.
func endsWithNewline(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return true
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], st.Size()-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

// rewriteKnownHostsFile replaces file's contents with edit(old) under the
// directory's lock, by a temporary file beside it and a rename. A symbolic
// link is followed, so the file it names is rewritten and the link stays.
func rewriteKnownHostsFile(file string, edit func(old []byte) []byte) error {
	if real, err := filepath.EvalSymlinks(file); err == nil {
		file = real
	}
	unlock, err := lockDir(filepath.Dir(file))
	if err != nil {
		return err
	}
	defer unlock()
	old, err := os.Open(file)
	if err != nil {
		return err
	}
	defer old.Close()
	st, err := old.Stat()
	if err != nil {
		return err
	}
	content, err := io.ReadAll(old)
	if err != nil {
		return err
	}
	if err := writeAtomically(file, edit(content), st.Mode().Perm()); err != nil {
		return err
	}
	// What an unlocked writer (ssh) appended to the old file since it was
	// read goes to the new one.
	return copyTail(old, int64(len(content)), file)
}

// copyTail appends what old holds past offset to file.
func copyTail(old *os.File, offset int64, file string) error {
	st, err := old.Stat()
	if err != nil || st.Size() <= offset {
		return err
	}
	tail := make([]byte, st.Size()-offset)
	if _, err := old.ReadAt(tail, offset); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(tail); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeAtomically replaces file with data (mode mode) by a synced
// temporary file beside it and a rename.
func writeAtomically(file string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing is there
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
