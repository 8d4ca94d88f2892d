package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

var cmdMiB = flag.Int("ssmcmd-mib", 64, "MiB each way for the SSM command path rows")

// ssmCommand is the "ssmcmd" section (issue 28): with sshd down, a command
// over SSM (ec2ssh to sshd-stopped: the ladder's port session, its look
// inside, then the command under AWS-StartInteractiveCommand in the
// wrapper), beside SSH over an SSM port session to a working sshd (OpenSSH
// with ec2ssh --proxy as its ProxyCommand), the same bytes each way in the
// same run. Each side's own start (a command running true, median of 3) is
// taken off, so the rows compare the data paths; every transfer's result is
// checked (sha256) and a wrong one is reported, not timed.
func (e *env) ssmCommand(dir string, say func(row)) {
	healthy := e.w.Instances["healthy"]
	port := []string{"ssh", "-F", e.cfg, "-o", "ProxyCommand=" + e.bin + " --fallback=ssm --proxy %h %p", "root@" + healthy.ID}
	command := []string{e.bin, "-F", e.cfg, "sshd-stopped"}
	n := *cmdMiB << 20
	payload := filepath.Join(dir, "ssmcmd-payload")
	writeRandom(payload, n)
	os.Chmod(payload, 0o644)
	b, _ := os.ReadFile(payload)
	sum := sha256.Sum256(b)
	want := hex.EncodeToString(sum[:])

	var cs, ps []time.Duration
	for range 3 {
		d, _, _ := e.checked(append(command, "echo x"), "")
		cs = append(cs, d)
		d, _, _ = e.checked(append(port, "echo x"), "")
		ps = append(ps, d)
	}
	cStart, pStart := median(cs), median(ps)
	say(row{what: "sshd down: first output of a command over SSM (port session, look inside, command) vs a command over an SSM port session",
		ours: ms(cStart), theirs: ms(pStart), ratio: fmt.Sprintf("%.2f×", float64(cStart)/float64(pStart))})

	rate := func(d, start time.Duration) string {
		return fmt.Sprintf("%.2f", float64(n)/max(d-start, time.Millisecond).Seconds()/1e6)
	}
	up := func(argv []string) (time.Duration, bool) {
		d, out, ok := e.checked(append(argv, "sha256sum"), payload)
		return d, ok && strings.HasPrefix(out, want+" ")
	}
	cu, cok := up(command)
	pu, pok := up(port)
	say(row{what: fmt.Sprintf("sshd down: %d MiB into sha256sum over the SSM command path vs an SSM port session (MB/s)", *cmdMiB),
		ours: rate(cu, cStart) + okText(cok), theirs: rate(pu, pStart) + okText(pok), ratio: fmt.Sprintf("%.2f×", float64(pu-pStart)/float64(max(cu-cStart, 1)))})
	down := func(argv []string) (time.Duration, bool) {
		d, out, ok := e.checked(append(argv, "cat "+payload+" | sha256sum >&2; cat "+payload), "")
		_ = out
		return d, ok
	}
	cd, cok := down(command)
	pd, pok := down(port)
	say(row{what: fmt.Sprintf("sshd down: cat of %d MiB over the SSM command path vs an SSM port session (MB/s; the agent reads 1 KiB per ms)", *cmdMiB),
		ours: rate(cd, cStart) + okText(cok), theirs: rate(pd, pStart) + okText(pok), ratio: fmt.Sprintf("%.2f×", float64(pd-pStart)/float64(max(cd-cStart, 1)))})
}

func okText(ok bool) string {
	if ok {
		return ""
	}
	return " (WRONG)"
}

// checked runs argv with stdin from a file (or none) and returns its time,
// its stdout when small, and whether it exited 0 with a stdout whose sha256
// is what its stderr's last line says (for the download rows) or any
// stdout (the others).
func (e *env) checked(argv []string, stdin string) (time.Duration, string, bool) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = e.environ
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return 0, "", false
		}
		defer f.Close()
		cmd.Stdin = f
	}
	h := sha256.New()
	var small bytes.Buffer
	var errb bytes.Buffer
	cmd.Stdout = io.MultiWriter(h, &limited{&small, 4096})
	cmd.Stderr = &errb
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%q: %v %s\n", argv, err, errb.String())
		return d, small.String(), false
	}
	if lines := strings.Fields(errb.String()); len(lines) >= 2 && lines[len(lines)-1] == "-" {
		return d, small.String(), lines[len(lines)-2] == hex.EncodeToString(h.Sum(nil))
	}
	return d, small.String(), true
}

type limited struct {
	b *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
