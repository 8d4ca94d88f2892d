package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// The manual page, ec2ssh(1), is the contract a user reads (issue 21):
// docs/ec2ssh.1 is made from docs/ec2ssh.1.md by go-md2man (make man), and
// both are committed. These tests keep it whole and in step.

const (
	manPage   = "docs/ec2ssh.1"
	manSource = "docs/ec2ssh.1.md"
	md2man    = "github.com/cpuguy83/go-md2man/v2@v2.0.7" // as the Makefile's man target
)

// manText is the page's text with roff's font changes and escapes taken
// out, so that "\fB--region\fP" reads "--region".
func manText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatalf("read the manual page: %v (make man writes it)", err)
	}
	return strings.NewReplacer(`\fB`, "", `\fI`, "", `\fP`, "", `\fR`, "", `\&`, "", `\-`, "-", `\(en`, "-", `\e`, `\`).Replace(string(b))
}

// helpOptions are the long options --help lists.
func helpOptions(t *testing.T) []string {
	t.Helper()
	var opts []string
	for _, m := range regexp.MustCompile(`(?m)^  (--[a-z][a-z0-9-]*)`).FindAllStringSubmatch(connect.Usage(), -1) {
		opts = append(opts, m[1])
	}
	if len(opts) < len(connect.LongOptions) {
		t.Fatalf("--help lists %d long options, LongOptions has %d: %v", len(opts), len(connect.LongOptions), opts)
	}
	return opts
}

// checkIDs are every check id preflight defines: the CheckID constants
// of its source (a new id is one new constant) and the checks it runs.
func checkIDs(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("preflight/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok || vs.Type == nil {
				return true
			}
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "CheckID" {
				return true
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					ids = append(ids, s)
				}
			}
			return true
		})
	}
	for _, c := range preflight.Checks {
		if !slices.Contains(ids, string(c.ID)) {
			ids = append(ids, string(c.ID))
		}
	}
	if !slices.Contains(ids, "login-user") || len(ids) < len(preflight.Checks) {
		t.Fatalf("found check ids %v: the scan of preflight's CheckID constants is broken", ids)
	}
	return ids
}

// named reports whether text names word as a word of its own (not the
// front of a longer option or id).
func named(text, word string) bool {
	re := regexp.MustCompile(`(^|[^A-Za-z0-9-])` + regexp.QuoteMeta(word) + `($|[^A-Za-z0-9-])`)
	return re.MatchString(text)
}

// TestManualNamesEveryOptionAndCheck fails when --help lists a long option,
// or preflight defines a check id, that ec2ssh(1) does not name.
func TestManualNamesEveryOptionAndCheck(t *testing.T) {
	page := manText(t)
	for _, o := range helpOptions(t) {
		if !named(page, o) {
			t.Errorf("--help lists %s; %s does not name it", o, manPage)
		}
	}
	for _, id := range checkIDs(t) {
		if !named(page, id) {
			t.Errorf("preflight defines the check %q; %s does not name it", id, manPage)
		}
	}
}

// TestManualMatchesItsSource fails when docs/ec2ssh.1 was not made anew
// from docs/ec2ssh.1.md: every option and check id the source names is in
// the page, and where go-md2man can be run (offline under -short, from the
// module cache; fetched otherwise) the page is exactly what it makes.
func TestManualMatchesItsSource(t *testing.T) {
	src, err := os.ReadFile(manSource)
	if err != nil {
		t.Fatal(err)
	}
	page := manText(t)
	words := regexp.MustCompile(`--[a-z][a-z0-9-]+`).FindAllString(string(src), -1)
	words = append(words, checkIDs(t)...)
	for _, w := range words {
		if named(string(src), w) && !named(page, w) {
			t.Errorf("%s names %s and %s does not: run make man", manSource, w, manPage)
		}
	}

	out := filepath.Join(t.TempDir(), "ec2ssh.1")
	cmd := exec.Command("go", "run", md2man, "-in", manSource, "-out", out)
	if testing.Short() {
		// Offline: the module cache serves as the proxy.
		modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
		if err != nil {
			t.Fatalf("go env GOMODCACHE: %v", err)
		}
		cmd.Env = append(os.Environ(), "GOPROXY=file://"+filepath.ToSlash(filepath.Join(strings.TrimSpace(string(modcache)), "cache", "download")), "GOSUMDB=off")
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		if testing.Short() {
			t.Logf("go-md2man is not in the module cache (%v): the page was compared by its options and ids only", err)
			return
		}
		t.Fatalf("go run %s: %v\n%s", md2man, err, msg)
	}
	want, _ := os.ReadFile(out)
	got, _ := os.ReadFile(manPage)
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what go-md2man makes of %s: run make man and commit both", manPage, manSource)
	}
}

// TestManualGroff: groff -ww -z -man, all warnings on, says nothing about
// the page. groff is a tool the full suite installs (lab/deps.sh); only
// the unit subset (-short) goes without it.
func TestManualGroff(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		if testing.Short() {
			t.Skip("groff is not installed (lab/deps.sh installs groff-base); the full suite fails without it")
		}
		t.Fatal("groff is not installed: lab/deps.sh installs groff-base")
	}
	out, err := exec.Command(groff, "-ww", "-z", "-man", manPage).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("groff -ww -z -man %s: %v\n%s", manPage, err, out)
	}
}

// TestDocsLinks: README.md and the other Markdown files stand alone: no
// link leaves the repository, and every relative link names a file that
// is in it (issue 21: the README linked ../shared/SPEC.md).
func TestDocsLinks(t *testing.T) {
	files, _ := filepath.Glob("*.md")
	more, _ := filepath.Glob("docs/*.md")
	files = append(files, more...)
	if !slices.Contains(files, "README.md") {
		t.Fatalf("no README.md among %v", files)
	}
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)|(?i)href="([^"]+)"`)
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1] + m[2]
			switch {
			case strings.HasPrefix(target, "https://"), strings.HasPrefix(target, "http://"), strings.HasPrefix(target, "mailto:"),
				strings.HasPrefix(target, "#"):
				continue
			case filepath.IsAbs(target) || strings.Contains(target, "://"):
				t.Errorf("%s links %q: outside the repository", name, target)
				continue
			}
			path, _, _ := strings.Cut(target, "#")
			abs := filepath.Join(root, filepath.Dir(name), filepath.FromSlash(path))
			if rel, err := filepath.Rel(root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				t.Errorf("%s links %q: outside the repository", name, target)
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s links %q, which does not exist", name, target)
			}
		}
	}
}
