package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportRules: the packages import each other only as ARCHITECTURE.md
// says (tests excepted).
func TestImportRules(t *testing.T) {
	const mod = "github.com/ec2ssh/ec2ssh"
	allowed := map[string][]string{
		".":         {"reach", "fleet", "connect", "preflight", "failure"},
		"fleet":     {"reach", "connect", "preflight", "failure"},
		"reach":     {"fallback", "connect", "preflight", "failure"},
		"fallback":  {"connect", "preflight", "failure"},
		"connect":   {"failure"},
		"preflight": {"failure"},
		"failure":   {},
	}
	for dir, ok := range allowed {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		if len(files) == 0 {
			t.Errorf("no Go files in %s", dir)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			file, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range file.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if !strings.HasPrefix(path, mod+"/") {
					continue
				}
				pkg := strings.TrimPrefix(path, mod+"/")
				permitted := false
				for _, a := range ok {
					permitted = permitted || a == pkg
				}
				if !permitted {
					t.Errorf("%s imports %s, which ARCHITECTURE.md does not allow", f, pkg)
				}
			}
		}
	}
}
