package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ec2ssh/ec2ssh/lab"
)

// Issue 25: 50 first connections at once, half through ec2ssh and half
// through OpenSSH's ssh, all with StrictHostKeyChecking=accept-new and one
// known_hosts file, each under a name of its own (HostKeyAlias): every one
// records its line whole (20 used to keep 14: read, copy, rename, the last
// writer won), and then every name passes StrictHostKeyChecking=yes, for
// both clients.
func TestKnownHostsParallelFirstConnects(t *testing.T) {
	needLab(t)
	lab.Require(t, "ssh", "ssh-keygen")
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	cfg := writeConfig(filepath.Join(dir, "config"), kh, "accept-new")
	const n = 50
	clients := []string{bin, "ssh"}
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runCmd(t, nil, clients[i%2], "-F", cfg, "-o", fmt.Sprintf("HostKeyAlias=host-%02d", i), "lab", "true")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("first connect %d (%s): exit %d, %s", i, clients[i%2], r.code, r.stderr)
		}
	}
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) != n {
		t.Errorf("known_hosts has %d lines after %d first connects, want %d:\n%s", len(lines), n, n, b)
	}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) != 3 || !strings.HasPrefix(f[0], "host-") || f[1] != "ssh-ed25519" {
			t.Errorf("a line not whole: %q", l)
		}
	}
	// Then every name passes strict checking, through both clients (in
	// parallel too: only reads now).
	strict := writeConfig(filepath.Join(dir, "strict"), kh, "yes")
	for _, client := range clients {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = runCmd(t, nil, client, "-F", strict, "-o", fmt.Sprintf("HostKeyAlias=host-%02d", i), "lab", "true")
			}()
		}
		wg.Wait()
		for i, r := range results {
			if r.code != 0 {
				t.Errorf("%s with StrictHostKeyChecking=yes for host-%02d: exit %d, %s", client, i, r.code, r.stderr)
			}
		}
	}
	for i := range n {
		if out, err := exec.Command("ssh-keygen", "-F", fmt.Sprintf("host-%02d", i), "-f", kh).CombinedOutput(); err != nil {
			t.Errorf("ssh-keygen -F host-%02d: %v %s", i, err, out)
		}
	}
}
