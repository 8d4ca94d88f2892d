package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// Issue 25: ec2ssh cross-built for Windows, run under Wine (Debian's wine64)
// against the lab's sshd: it behaves as Win32-OpenSSH does. The user is the
// bare name (Go names it COMPUTER\name), the system configuration is
// %ProgramData%\ssh\ssh_config, a session's exit status comes back, and
// -S path -O check tries the socket rather than saying no ControlPath was
// given. Wine 8.0 lacks two things Windows 10 has: bcryptprimitives.dll,
// which Go's runtime needs (a stand-in is built from testdata), and AF_UNIX
// sockets, so -O there ends with the socket's connect error.
const wine64 = "/usr/lib/wine/wine64"

func TestWindowsBinaryUnderWine(t *testing.T) {
	needLab(t)
	lab.Require(t, wine64, "x86_64-w64-mingw32-gcc", "ssh")
	dir := t.TempDir()
	exe := filepath.Join(dir, "ec2ssh.exe")
	build := exec.Command("go", "build", "-o", exe, "..")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cross-build: %v\n%s", err, out)
	}
	prefix := filepath.Join(dir, "wine")
	env := append(cleanEnv(), "WINEPREFIX="+prefix, "WINEDEBUG=-all")
	wine := func(limit time.Duration, args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		cmd := exec.CommandContext(ctx, wine64, append([]string{exe}, args...)...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.WaitDelay = 5 * time.Second
		cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("wine ec2ssh.exe %q ran past %v: %s", args, limit, errb.String())
		}
		return result{out.Bytes(), errb.Bytes(), cmd.ProcessState.ExitCode()}
	}
	// The prefix, then the DLL Go's runtime loads from system32.
	boot := exec.Command(wine64, "wineboot", "--init")
	boot.Env = env
	if out, err := boot.CombinedOutput(); err != nil {
		t.Fatalf("wineboot: %v %s", err, out)
	}
	dll := filepath.Join(prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll")
	if out, err := exec.Command("x86_64-w64-mingw32-gcc", "-shared", "-O2", "-o", dll, "testdata/bcryptprimitives.c",
		"testdata/bcryptprimitives.def", "-lbcrypt").CombinedOutput(); err != nil {
		t.Fatalf("bcryptprimitives.dll: %v %s", err, out)
	}

	if r := wine(2*time.Minute, "-V"); r.code != 0 || !regexp.MustCompile(`OpenSSH_9\.2`).Match(r.stderr) {
		t.Fatalf("-V under Wine: exit %d, %q", r.code, r.stderr)
	}
	// The system configuration from %ProgramData%\ssh, the bare user name.
	sys := filepath.Join(prefix, "drive_c", "ProgramData", "ssh", "ssh_config")
	os.MkdirAll(filepath.Dir(sys), 0o755)
	os.WriteFile(sys, []byte("Host winsys\n  Port 2345\n"), 0o644)
	g := wine(time.Minute, "-G", "winsys")
	want := map[string]string{"port": "2345", "user": whoami(t), "globalknownhostsfile": `C:\ProgramData\ssh/ssh_known_hosts C:\ProgramData\ssh/ssh_known_hosts2`}
	for _, l := range strings.Split(string(g.stdout), "\n") {
		k, v, _ := strings.Cut(strings.TrimRight(l, "\r"), " ")
		if w, ok := want[k]; ok {
			if v != w {
				t.Errorf("-G under Wine: %s %q, want %q", k, v, w)
			}
			delete(want, k)
		}
	}
	if len(want) > 0 || g.code != 0 {
		t.Errorf("-G under Wine: exit %d, missing %v:\n%s%s", g.code, want, g.stdout, g.stderr)
	}
	// A session, with the lab's files named as Windows names them.
	winCfg := filepath.Join(dir, "config")
	os.WriteFile(winCfg, []byte(regexp.MustCompile(` /[^ \n]*`).ReplaceAllStringFunc(mustRead(cfgFile), func(p string) string {
		return " Z:" + strings.ReplaceAll(p[1:], "/", `\`)
	})), 0o600)
	r := wine(time.Minute, "-F", `Z:`+strings.ReplaceAll(winCfg, "/", `\`), "lab", "echo from-windows; exit 3")
	if r.code != 3 || string(r.stdout) != "from-windows\n" {
		t.Errorf("a session under Wine: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	// -S path -O check reaches for the socket (an OpenSSH master there).
	ctl := ctlPath(t)
	if m := runCmd(t, nil, "ssh", "-F", cfgFile, "-nNf", "-o", "ControlMaster=yes", "-o", "ControlPath="+ctl, "lab"); m.code != 0 {
		t.Fatalf("OpenSSH master: %s", m.stderr)
	}
	defer runCmd(t, nil, "ssh", "-F", cfgFile, "-O", "exit", "-o", "ControlPath="+ctl, "lab")
	r = wine(time.Minute, "-S", `Z:`+strings.ReplaceAll(ctl, "/", `\`), "-O", "check", "lab")
	if strings.Contains(string(r.stderr), "No ControlPath") ||
		!(r.code == 0 && strings.Contains(string(r.stderr), "Master running")) && !(r.code == 255 && strings.Contains(string(r.stderr), "Control socket connect(")) {
		t.Errorf("-S path -O check under Wine: exit %d, %q; want the master's answer or the socket's connect error", r.code, r.stderr)
	}
	// A master asked for by name is refused, as typed (-M): passengers cannot pass descriptors.
	r = wine(time.Minute, "-M", "-S", `Z:\tmp\nowhere`, "lab", "true")
	if r.code != 255 || !strings.Contains(string(r.stderr), "option -M is not supported by ec2ssh") {
		t.Errorf("-M under Wine: exit %d, %q", r.code, r.stderr)
	}
}

func whoami(t *testing.T) string {
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(strings.TrimSpace(string(out)))
}
