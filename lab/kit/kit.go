// Package kit holds the lab's small tools that depend on nothing of
// ec2ssh's own, so that any package's tests can use them (the lab itself
// imports the product's packages, which those tests belong to).
package kit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
)

// Keygen makes a key pair with ssh-keygen: path and path.pub.
func Keygen(path, typ, passphrase string) error {
	os.Remove(path)
	os.Remove(path + ".pub")
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", filepath.Base(path), "-f", path}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	out, err := exec.Command("ssh-keygen", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen %s: %v: %s", typ, err, out)
	}
	return nil
}

// FreePort returns a TCP port free on addr just now.
func FreePort(addr string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// TB is the part of testing.TB the lab uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Require fails the test when a tool it needs is missing: make test
// installs them (lab/deps.sh), and a run that cannot try something must
// not pass as if it had.
func Require(t TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed and missing: make test installs it (lab/deps.sh)", tool)
		}
	}
}
