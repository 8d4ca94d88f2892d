package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ec2ssh/ec2ssh/lab"
)

// TestDemoTranscript: the README's demo transcript is what the demo prints
// (made stable), so the two cannot drift. `make demo-transcript` writes it
// anew.
func TestDemoTranscript(t *testing.T) {
	needWorld(t)
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- demo transcript -->\n```\n(.*?)```\n<!-- end of demo transcript -->").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no demo transcript between its markers")
	}
	var got string
	want := string(m[1])
	// A check moto did not answer within its budget (the machine busy with
	// the other packages' tests) is weather, not drift: the demo runs again,
	// at most twice more, and a third slow run is a failure.
	for try := 1; ; try++ {
		// Each run its own known_hosts and cache, as a first run has.
		cfg, env := lab.DemoEnv(world, t.TempDir(), bin, cleanEnv())
		var out strings.Builder
		if err := lab.Demo(&out, bin, cfg, env, false); err != nil {
			t.Fatal(err)
		}
		got = lab.Stabilise(out.String())
		slow := lab.Slow(got)
		if got == want || slow == "" || try == 3 {
			break
		}
		t.Logf("run %d: the stand-ins were slow (%s); again", try, slow)
	}
	if got != want {
		os.WriteFile(filepath.Join(os.TempDir(), "ec2ssh-demo.txt"), []byte(got), 0o644)
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("the demo and the README's transcript differ from line %d:\n demo:   %q\n README: %q\n(the demo's whole transcript is in %s; make demo-transcript writes it into the README)",
					i+1, g, w, filepath.Join(os.TempDir(), "ec2ssh-demo.txt"))
			}
		}
	}
}
