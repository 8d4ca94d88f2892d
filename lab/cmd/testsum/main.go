// Command testsum reads `go test -json` on stdin and prints what a person
// needs from it: each package's result line, the output of every test that
// failed or skipped, and a closing "N passed, N failed, N skipped" line. It
// exits 1 when a test failed, a package failed to build, or (unless
// -allow-skip) a test skipped: make test must not pass by skipping.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	allowSkip := flag.Bool("allow-skip", false, "a skipped test is not a failure (the unit subset)")
	flag.Parse()
	outputs := map[string][]string{} // package/test -> its output lines
	var passed, failed, skipped int
	var skippedNames, failedNames []string
	badPackage := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if json.Unmarshal(line, &e) != nil {
			fmt.Println(string(line)) // build errors come as plain text
			continue
		}
		key := e.Package + "/" + e.Test
		switch e.Action {
		case "output":
			if e.Test == "" {
				// Package-level lines: "ok pkg 1.2s", "FAIL pkg", build output.
				out := e.Output
				if strings.HasPrefix(out, "ok ") || strings.HasPrefix(out, "FAIL") || strings.HasPrefix(out, "?") ||
					strings.HasPrefix(out, "panic:") || (!strings.HasPrefix(out, "=== ") && !strings.HasPrefix(out, "PASS") &&
					!strings.HasPrefix(out, "--- ") && strings.TrimSpace(out) != "") {
					fmt.Print(out)
				}
				continue
			}
			outputs[key] = append(outputs[key], e.Output)
		case "pass":
			if e.Test != "" {
				passed++
			}
			delete(outputs, key)
		case "fail":
			if e.Test == "" {
				badPackage = true
				continue
			}
			failed++
			failedNames = append(failedNames, key)
			for _, l := range outputs[key] {
				fmt.Print(l)
			}
			delete(outputs, key)
		case "skip":
			if e.Test == "" {
				continue
			}
			skipped++
			skippedNames = append(skippedNames, key)
			if !*allowSkip {
				for _, l := range outputs[key] {
					fmt.Print(l)
				}
			}
			delete(outputs, key)
		}
	}
	// Tests that never ended: the package was killed (a -timeout panic is
	// written as the running test's output, and no "fail" follows it).
	var unfinished []string
	for key, lines := range outputs {
		if strings.HasSuffix(key, "/") || len(lines) == 0 {
			continue
		}
		unfinished = append(unfinished, key)
	}
	sort.Strings(unfinished)
	for _, key := range unfinished {
		if !badPackage {
			break
		}
		fmt.Printf("did not finish: %s\n", key)
		for _, l := range outputs[key] {
			fmt.Print(l)
		}
	}
	sort.Strings(failedNames)
	sort.Strings(skippedNames)
	if len(failedNames) > 0 {
		fmt.Printf("failed: %s\n", strings.Join(failedNames, " "))
	}
	if len(skippedNames) > 0 && !*allowSkip {
		fmt.Printf("skipped (make test must not skip): %s\n", strings.Join(skippedNames, " "))
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || badPackage || (skipped > 0 && !*allowSkip) {
		os.Exit(1)
	}
}
