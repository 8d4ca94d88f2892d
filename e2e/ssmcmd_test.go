package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Issue 28: with sshd down on an instance whose agent is online
// (sshd-stopped), a command over SSM behaves as over ssh. Each case runs
// beside OpenSSH's ssh on the working sshd of "healthy", in the same run,
// and what ssh gives is the reference. The lab's agent does what the real
// one does: its basic port session ends with nothing sent when sshd
// refuses, InteractiveCommands has no handshake, output waits a second and
// is rewritten by processStdoutData.

const ssmRungNotice = "sshd refuses connections, also from inside the instance; running the command over SSM"

// side is one way to run a command: ec2ssh to sshd-stopped, or OpenSSH's
// ssh to healthy.
type side struct {
	name string
	argv func(args ...string) []string
}

func sides() []side {
	healthy := world.Instances["healthy"]
	return []side{
		{"ec2ssh", func(args ...string) []string {
			return append([]string{bin, "-F", ec2Cfg}, insertHost(args, "sshd-stopped")...)
		}},
		{"openssh", func(args ...string) []string {
			return append([]string{"ssh", "-F", ec2Cfg}, insertHost(args, "ec2-user@"+healthy.IP)...)
		}},
	}
}

// insertHost puts host after the options (args that start with "-") and
// before the command.
func insertHost(args []string, host string) []string {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++
	}
	return append(append(append([]string(nil), args[:i]...), host), args[i:]...)
}

// stamped is output with the time each piece arrived.
type stamped struct {
	mu    sync.Mutex
	b     bytes.Buffer
	first map[string]time.Time // when each watched text was first seen
	watch []string
}

func (s *stamped) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	for _, w := range s.watch {
		if _, seen := s.first[w]; !seen && bytes.Contains(s.b.Bytes(), []byte(w)) {
			s.first[w] = time.Now()
		}
	}
	return len(p), nil
}

func (s *stamped) seen(w string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.first[w]
	return at, ok
}

// runSide runs one side with stdin, watching stdout and stderr for texts.
func runSide(t *testing.T, sd side, timeout time.Duration, stdin io.Reader, watch []string, args ...string) (result, *stamped, *stamped) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := sd.argv(args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append(cleanEnv(), world.AWSEnv()...), "XDG_CACHE_HOME="+t.TempDir())
	cmd.Stdin = stdin
	out := &stamped{first: map[string]time.Time{}, watch: watch}
	errb := &stamped{first: map[string]time.Time{}, watch: append([]string{ssmRungNotice}, watch...)}
	cmd.Stdout, cmd.Stderr = out, errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q ran past %v; stderr %q", sd.name, args, timeout, errb.b.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", sd.name, err)
	}
	return result{stdout: out.b.Bytes(), stderr: errb.b.Bytes(), code: code}, out, errb
}

// TestSSHDDownCommandBesideOpenSSH: the small cases, each on both sides.
func TestSSHDDownCommandBesideOpenSSH(t *testing.T) {
	needWorld(t)
	awkward := []byte("nul\x00cr\r\ncrlf\r\n")
	for i := 0x80; i < 0x100; i++ {
		awkward = append(awkward, byte(i))
	}
	awkward = append(awkward, "\xef\xbf\xbd\x03\x04\x1c\xe2\x82"...) // EF BF BD, ^C ^D ^\, an incomplete UTF-8 sequence last
	awkSum := sha256.Sum256(awkward)
	tests := []struct {
		name   string
		stdin  []byte
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"stdout, stderr and status apart", nil, []string{"echo out; echo err >&2; exit 5"}, 5, "out\n", "err\n"},
		{"bytes in, then a checksum", awkward, []string{`f=$(mktemp) && cat > "$f" && sha256sum < "$f"; rm -f "$f"`}, 0,
			hex.EncodeToString(awkSum[:]) + "  -\n", ""},
		{"the same bytes back", awkward, []string{"cat"}, 0, string(awkward), ""},
		{"no final newline", nil, []string{"printf 'no newline'"}, 0, "no newline", ""},
		{"-n: no input", []byte("not for it\n"), []string{"-n", "wc -c"}, 0, "0\n", ""},
	}
	for _, tt := range tests {
		for _, sd := range sides() {
			var stdin io.Reader
			if tt.stdin != nil {
				stdin = bytes.NewReader(tt.stdin)
			}
			r, _, _ := runSide(t, sd, 90*time.Second, stdin, nil, tt.args...)
			if r.code != tt.code || string(r.stdout) != tt.stdout || !strings.Contains(string(r.stderr), tt.stderr) {
				t.Errorf("%s, %s: exit %d, stdout %q, stderr %q; want %d, %q, %q", tt.name, sd.name, r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
			if sd.name == "ec2ssh" && !strings.Contains(string(r.stderr), ssmRungNotice) {
				t.Errorf("%s: ec2ssh did not reach the command rung by itself: %q", tt.name, r.stderr)
			}
		}
	}
}

// TestSSHDDownReachesTheRung: the ladder gets there as on real AWS: the
// port session ends without a byte (no ConnectToPortError), the look
// inside finds nothing listening on port 22, and the command runs.
func TestSSHDDownReachesTheRung(t *testing.T) {
	needWorld(t)
	r, _, _ := runSide(t, sides()[0], 90*time.Second, nil, nil, "-v", "true")
	for _, want := range []string{"next: SSM port session", "next: look inside", "port 22 is refused", "next: SSM shell", ssmRungNotice} {
		if !strings.Contains(string(r.stderr), want) {
			t.Errorf("-v lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.code != 0 {
		t.Errorf("exit %d", r.code)
	}
}

// TestSSHDDownBigStreams: 64 MiB of random bytes into sha256sum, and cat of
// a 64 MiB random file, on both sides.
func TestSSHDDownBigStreams(t *testing.T) {
	needWorld(t)
	data := make([]byte, 64<<20)
	rand.Read(data)
	sum := sha256.Sum256(data)
	f, err := os.CreateTemp("", "ec2ssh-64m-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	f.Write(data)
	f.Close()
	os.Chmod(f.Name(), 0o644)
	for _, sd := range sides() {
		start := time.Now()
		r, _, _ := runSide(t, sd, 20*time.Minute, bytes.NewReader(data), nil, "sha256sum")
		if r.code != 0 || string(r.stdout) != hex.EncodeToString(sum[:])+"  -\n" {
			t.Errorf("%s: 64 MiB into sha256sum: exit %d, %q, stderr %q", sd.name, r.code, r.stdout, r.stderr)
		}
		t.Logf("%s: 64 MiB in: %v", sd.name, time.Since(start).Round(time.Millisecond))
		start = time.Now()
		r, _, _ = runSide(t, sd, 20*time.Minute, nil, nil, "cat "+f.Name())
		if got := sha256.Sum256(r.stdout); r.code != 0 || got != sum {
			t.Errorf("%s: cat of 64 MiB: exit %d, %d bytes, sha256 equal %v, stderr %q", sd.name, r.code, len(r.stdout), got == sum, r.stderr)
		}
		t.Logf("%s: 64 MiB out: %v", sd.name, time.Since(start).Round(time.Millisecond))
	}
}

// TestSSHDDownOutputStreams: "first" within 2 s of the command starting,
// long before "second".
func TestSSHDDownOutputStreams(t *testing.T) {
	needWorld(t)
	for _, sd := range sides() {
		start := time.Now()
		r, out, errb := runSide(t, sd, 90*time.Second, nil, []string{"first\n", "second\n"}, "echo first; sleep 4; echo second")
		if r.code != 0 || string(r.stdout) != "first\nsecond\n" {
			t.Fatalf("%s: exit %d, %q, %q", sd.name, r.code, r.stdout, r.stderr)
		}
		began := start
		if sd.name == "ec2ssh" {
			var ok bool
			if began, ok = errb.seen(ssmRungNotice); !ok {
				t.Fatalf("ec2ssh did not say it ran the command over SSM: %q", r.stderr)
			}
		}
		first, _ := out.seen("first\n")
		second, _ := out.seen("second\n")
		t.Logf("%s: first %v after the command started, second %v after first", sd.name, first.Sub(began).Round(time.Millisecond), second.Sub(first).Round(time.Millisecond))
		if first.Sub(began) > 2*time.Second || second.Sub(first) < 3*time.Second {
			t.Errorf("%s: first came %v after the start, %v before second: not streamed", sd.name, first.Sub(began), second.Sub(first))
		}
	}
}

// endless is input that never ends, like yes(1).
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'y'
	}
	return len(p), nil
}

// TestSSHDDownEndsWhileInputFlows: head -c 10 ends the session though
// input still flows.
func TestSSHDDownEndsWhileInputFlows(t *testing.T) {
	needWorld(t)
	for _, sd := range sides() {
		r, _, _ := runSide(t, sd, 60*time.Second, endless{}, nil, "head -c 10")
		if r.code != 0 || string(r.stdout) != "yyyyyyyyyy" {
			t.Errorf("%s: exit %d, %q, stderr %q", sd.name, r.code, r.stdout, r.stderr)
		}
	}
}

// TestSSHDDownInterrupt: SIGINT to ec2ssh during sleep 60 ends it as it
// ends ssh -tt, and the remote process is gone.
func TestSSHDDownInterrupt(t *testing.T) {
	needWorld(t)
	codes := map[string]int{}
	for i, sd := range sides() {
		for _, tty := range []string{"", "-tt"} {
			if sd.name == "openssh" && tty == "" {
				continue // ssh without a terminal leaves sleep running: not the reference
			}
			marker := fmt.Sprintf("sleep 60.%d%d", i, len(tty))
			args := []string{marker}
			if tty != "" {
				args = append([]string{tty}, args...)
			}
			argv := sd.argv(args...)
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(append(cleanEnv(), world.AWSEnv()...), "XDG_CACHE_HOME="+t.TempDir())
			// A pipe that stays open: an *os.File, so that Wait does not
			// wait on a copy of it.
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pw.Close()
			cmd.Stdin = pr
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pr.Close()
			if !waitProcess(marker, true, 60*time.Second) {
				cmd.Process.Kill()
				t.Fatalf("%s %s: %q never ran; stderr %q", sd.name, tty, marker, errb.String())
			}
			cmd.Process.Signal(os.Interrupt)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
				codes[sd.name+tty] = code
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				t.Errorf("%s %s: still running 5 s after SIGINT", sd.name, tty)
			}
			if !waitProcess(marker, false, 5*time.Second) {
				t.Errorf("%s %s: %q still runs on the instance after SIGINT", sd.name, tty, marker)
				exec.Command("pkill", "-f", marker).Run()
			}
		}
	}
	ref, ok := codes["openssh-tt"]
	if !ok {
		t.Fatal("no reference from ssh -tt")
	}
	for k, c := range codes {
		if c != ref {
			t.Errorf("%s exited %d after SIGINT; ssh -tt exits %d", k, c, ref)
		}
	}
	t.Logf("exit statuses after SIGINT: %v", codes)
}

// waitProcess waits until a process whose command line is marker exists
// (or is gone).
func waitProcess(marker string, exists bool, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		err := exec.Command("pgrep", "-f", "^"+marker+"$").Run()
		if (err == nil) == exists {
			return true
		}
	}
	return false
}

// TestSSHDDownTerminalExitStatus: ec2ssh -t host on a real terminal, typing
// exit 3, ends with 3, as ssh -t does.
func TestSSHDDownTerminalExitStatus(t *testing.T) {
	needWorld(t)
	for _, sd := range sides() {
		s := newTmux(t)
		argv := sd.argv("-t")
		envs := strings.Join(world.AWSEnv(), " ")
		s.send(fmt.Sprintf("env %s XDG_CACHE_HOME=%s %s; echo \"S\"\"TATUS=$?\"", envs, t.TempDir(), strings.Join(argv, " ")))
		s.enter()
		time.Sleep(500 * time.Millisecond)
		// The remote shell's prompt differs by side; wait for any, then type.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			scr := s.screen()
			lines := strings.Split(strings.TrimRight(scr, "\n "), "\n")
			if last := strings.TrimSpace(lines[len(lines)-1]); strings.HasSuffix(last, "$") || strings.HasSuffix(last, "#") {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		s.send("echo inside-$((40+2))")
		s.enter()
		s.waitFor("inside-42", 10*time.Second)
		s.send("exit 3")
		s.enter()
		scr := s.waitFor("STATUS=", 15*time.Second)
		if !strings.Contains(scr, "STATUS=3") {
			t.Errorf("%s -t: typing exit 3:\n%s", sd.name, scr)
		}
		s.saneTerminal("after-" + sd.name)
	}
}
