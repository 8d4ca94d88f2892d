package e2e

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestInstall runs install.sh as a person would, from a release build
// (EC2SSH_RELEASE naming a directory that holds the binary under test and
// its SHA256SUMS): as root under PREFIX, and as a user under their own data
// directory, man finds ec2ssh(1) each time; a release that is not there is
// an error that installs nothing (issue 21).
func TestInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("install.sh as root and as a user: a lab test (-short runs the unit subset)")
	}
	if os.Geteuid() != 0 {
		need(t, errors.New("not root"), "root (to install as root and as another user)")
	}
	for _, tool := range []string{"man", "setpriv", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			need(t, err, tool+" (lab/deps.sh installs man-db and util-linux)")
		}
	}
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Fatalf("install.sh's release names cover linux/amd64 and linux/arm64, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}

	// Everything a user other than root must read is in a directory of
	// the test's own, open to all: install.sh and the page beside it, as a
	// release's tree has them, and the release build.
	// (t.TempDir's parent is open to root alone.)
	top, err := os.MkdirTemp("", "ec2ssh-install-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(top, "src")
	release := filepath.Join(top, "release")
	for _, d := range []string{filepath.Join(src, "docs"), release} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, "../install.sh", filepath.Join(src, "install.sh"), 0o755)
	copyFile(t, "../docs/ec2ssh.1", filepath.Join(src, "docs", "ec2ssh.1"), 0o644)
	asset := "ec2ssh-linux-" + runtime.GOARCH
	copyFile(t, bin, filepath.Join(release, asset), 0o755)
	sum, err := os.ReadFile(filepath.Join(release, asset))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(release, "SHA256SUMS"), fmt.Appendf(nil, "%x  %s\n", sha256.Sum256(sum), asset), 0o644); err != nil {
		t.Fatal(err)
	}
	install := filepath.Join(src, "install.sh")
	basePath := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	t.Run("as root under PREFIX", func(t *testing.T) {
		prefix := filepath.Join(top, "prefix")
		env := []string{"PATH=" + basePath, "HOME=" + filepath.Join(top, "roothome"), "EC2SSH_RELEASE=" + release,
			"PREFIX=" + prefix, "BINDIR=" + filepath.Join(prefix, "bin")}
		r := runCmdEnv(t, env, nil, install)
		if r.code != 0 {
			t.Fatalf("install.sh as root = exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		page := filepath.Join(prefix, "share", "man", "man1", "ec2ssh.1")
		r = runCmdEnv(t, append(env, "MANPATH="+filepath.Join(prefix, "share", "man")), nil, "man", "-w", "ec2ssh")
		if got := strings.TrimSpace(string(r.stdout)); r.code != 0 || got != page {
			t.Errorf("MANPATH=%s/share/man man -w ec2ssh = %q (exit %d, %s), want %s", prefix, got, r.code, r.stderr, page)
		}
		for _, f := range []string{"bin/ec2ssh", "share/bash-completion/completions/ec2ssh", "share/zsh/site-functions/_ec2ssh",
			"share/fish/vendor_completions.d/ec2ssh.fish"} {
			if _, err := os.Stat(filepath.Join(prefix, f)); err != nil {
				t.Errorf("install.sh as root installed no %s: %v", f, err)
			}
		}
	})

	t.Run("as a user under their data directory", func(t *testing.T) {
		home := filepath.Join(top, "home")
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(home, 65534, 65534); err != nil { // nobody
			t.Fatal(err)
		}
		// man-db finds a user's pages from PATH: ~/.local/bin puts
		// ~/.local/share/man on the user's manual path.
		env := []string{"PATH=" + filepath.Join(home, ".local", "bin") + ":" + basePath, "HOME=" + home,
			"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"), "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
			"EC2SSH_RELEASE=" + release}
		asUser := func(name string, args ...string) result {
			return runCmdEnv(t, env, nil, "setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--", name}, args...)...)
		}
		r := asUser(install)
		if r.code != 0 {
			t.Fatalf("install.sh as a user = exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		page := filepath.Join(home, ".local", "share", "man", "man1", "ec2ssh.1")
		r = asUser("man", "-w", "ec2ssh")
		if got := strings.TrimSpace(string(r.stdout)); r.code != 0 || got != page {
			t.Errorf("man -w ec2ssh as the user = %q (exit %d, %s), want %s", got, r.code, r.stderr, page)
		}
		if _, err := os.Stat(filepath.Join(home, ".local", "bin", "ec2ssh")); err != nil {
			t.Errorf("install.sh as a user installed no ~/.local/bin/ec2ssh: %v", err)
		}
	})

	t.Run("a release that is not there", func(t *testing.T) {
		for _, missing := range []string{filepath.Join(top, "no-such-release"), filepath.Join(release, "ec2ssh-nowhere")} {
			prefix := filepath.Join(top, "empty-prefix")
			env := []string{"PATH=" + basePath, "HOME=" + filepath.Join(top, "roothome"), "EC2SSH_RELEASE=" + missing,
				"PREFIX=" + prefix, "BINDIR=" + filepath.Join(prefix, "bin")}
			r := runCmdEnv(t, env, nil, install)
			if r.code == 0 {
				t.Errorf("EC2SSH_RELEASE=%s install.sh = exit 0, want a failure\n%s%s", missing, r.stdout, r.stderr)
			}
			if !strings.Contains(string(r.stderr), "install.sh: error: ") || !strings.Contains(string(r.stderr), missing) {
				t.Errorf("EC2SSH_RELEASE=%s install.sh said %q, want an error: line naming it", missing, r.stderr)
			}
			if _, err := os.Stat(prefix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("EC2SSH_RELEASE=%s install.sh installed something under %s (%v)", missing, prefix, err)
			}
		}
	})
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(to, mode)
}
