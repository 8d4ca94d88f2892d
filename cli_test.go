package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runInProcess runs ec2ssh's run function with argv and returns its exit
// status, stdout and stderr. It needs no lab: these are the cases decided
// before anything is dialled.
func runInProcess(t *testing.T, argv ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	open := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, stderr := open("stdout"), open("stderr")
	code := run(context.Background(), argv, stdin, stdout, stderr)
	out, _ := os.ReadFile(stdout.Name())
	errb, _ := os.ReadFile(stderr.Name())
	return code, string(out), string(errb)
}

// TestCommandLineInProcess covers what ec2ssh decides from its arguments
// alone: usage, version, refusals and their exit status (ssh(1): 255).
func TestCommandLineInProcess(t *testing.T) {
	tests := []struct {
		name       string
		argv       []string
		code       int
		stdout     string // a substring, "" for empty
		stderr     string // a substring, "" for empty
		wantNoHint bool
	}{
		{"help", []string{"--help"}, 0, "usage: ec2ssh", "", false},
		{"version", []string{"-V"}, 0, "", "ec2ssh ", false},
		{"no destination", []string{"-F", "none"}, 255, "", "ec2ssh: error: no destination given", false},
		{"unknown short option", []string{"-Z", "host"}, 255, "", "ec2ssh: error: unknown option -Z", false},
		{"unknown long option", []string{"--frobnicate", "host"}, 255, "", "unknown option --frobnicate", false},
		{"unknown -o keyword", []string{"-F", "none", "-o", "Frobnicate=yes", "host"}, 255, "", `unknown -o option "Frobnicate"`, false},
		{"X11 refused by name", []string{"-F", "none", "-o", "ForwardX11=yes", "host"}, 255, "", "ForwardX11 yes is not supported by ec2ssh", false},
		{"-X refused as typed", []string{"-F", "none", "-X", "host"}, 255, "", "ec2ssh: error: option -X is not supported by ec2ssh (no X11 forwarding)", false},
		{"json alone", []string{"-F", "none", "--json", "host"}, 255, "", "--json goes with --diagnose", false},
		{"bad fallback", []string{"--fallback=maybe", "host"}, 255, "", `bad --fallback value "maybe"`, false},
		{"bad port", []string{"-p", "70000", "host"}, 255, "", `bad port "70000"`, false},
		{"proxy without port", []string{"--proxy", "host"}, 255, "", "--proxy takes exactly a host and a port", false},
		{"bad destination", []string{"-F", "none", "a;b"}, 255, "", "hostname contains invalid characters", false},
		{"-G prints the resolved configuration", []string{"-F", "none", "-G", "-p", "2222", "-l", "bob", "web-1"}, 0, "hostname web-1\nport 2222\n", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errb := runInProcess(t, tt.argv...)
			if code != tt.code {
				t.Errorf("run(%q) = %d, want %d; stderr %q", tt.argv, code, tt.code, errb)
			}
			if tt.stdout == "" && tt.code != 0 && out != "" {
				t.Errorf("run(%q) wrote to stdout: %q", tt.argv, out)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tt.argv, out, tt.stdout)
			}
			if !strings.Contains(errb, tt.stderr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.argv, errb, tt.stderr)
			}
			if tt.code == 255 && !tt.wantNoHint && !strings.Contains(errb, "ec2ssh: hint:") {
				t.Errorf("run(%q) stderr = %q: an error without a hint", tt.argv, errb)
			}
			if tt.wantNoHint && strings.Contains(errb, "hint:") {
				t.Errorf("run(%q) stderr = %q: -q keeps hints", tt.argv, errb)
			}
		})
	}
}
