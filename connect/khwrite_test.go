package connect

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

func testKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Appends from many writers at once, while rewrites replace the file,
// keep every line whole and lose none (issue 25: the last writer used to
// win, 14 of 20 lines kept).
func TestKnownHostsConcurrentWriters(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ssh", "known_hosts")
	key := testKey(t)
	stale := knownHost{hosts: []string{"stale"}, key: testKey(t)}
	if err := appendKnownHost(file, knownHostsLine("stale", stale.key)); err != nil {
		t.Fatal(err)
	}
	const appenders, rewrites = 60, 15
	var wg sync.WaitGroup
	errs := make(chan error, appenders+rewrites)
	for i := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- appendKnownHost(file, knownHostsLine(fmt.Sprintf("host-%d", i), key))
		}()
	}
	for i := range rewrites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- rewriteKnownHosts(file, []knownHost{stale}, []string{knownHostsLine(fmt.Sprintf("rewritten-%d", i), key)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	entries, skipped := parseKnownHosts(strings.NewReader(string(b)), file)
	if skipped != 0 {
		t.Errorf("%d lines are not whole:\n%s", skipped, b)
	}
	got := map[string]int{}
	for _, e := range entries {
		got[e.hosts[0]]++
	}
	for i := range appenders {
		if n := got[fmt.Sprintf("host-%d", i)]; n != 1 {
			t.Errorf("host-%d recorded %d times, want 1", i, n)
		}
	}
	for i := range rewrites {
		if n := got[fmt.Sprintf("rewritten-%d", i)]; n != 1 {
			t.Errorf("rewritten-%d recorded %d times, want 1", i, n)
		}
	}
	if got["stale"] != 0 {
		t.Errorf("the stale line survived the rewrites")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".known_hosts.tmp-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

// An append to a file whose last line has no newline (cut short by a full
// disk) starts a line of its own, as ssh's add_host_to_hostfile does; a
// rewrite keeps what an unlocked writer appended to the old file.
func TestKnownHostsAppendAndRewriteEdges(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "known_hosts")
	key := testKey(t)
	os.WriteFile(file, []byte("# no newline"), 0o644)
	if err := appendKnownHost(file, knownHostsLine("a", key)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "# no newline\n"+knownHostsLine("a", key)+"\n" {
		t.Errorf("after append: %q", b)
	}
	st, _ := os.Stat(file)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("append changed the mode to %v", st.Mode().Perm())
	}

	// A symbolic link is followed: the file it names is rewritten.
	link := filepath.Join(dir, "link")
	os.Symlink(file, link)
	var foreign string
	err := rewriteKnownHostsFile(link, func(old []byte) []byte {
		// ssh appending while the rewrite is under way.
		foreign = knownHostsLine("foreign", key)
		f, _ := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
		f.WriteString(foreign + "\n")
		f.Close()
		return append(old, knownHostsLine("b", key)+"\n"...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file")
	}
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), foreign) || !strings.Contains(string(b), knownHostsLine("b", key)) {
		t.Errorf("after the rewrite: %q, want both the rewrite's and the foreign line", b)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o644 {
		t.Errorf("rewrite changed the mode to %v", st.Mode().Perm())
	}
}
