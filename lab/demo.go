package lab

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The demo (make demo) shows ec2ssh the way a user meets it, on the lab's
// world; its transcript, made stable (Stabilise), is the one the README
// shows, and a test compares the two so that they cannot drift.

// DemoEnv is the ssh_config and environment the demo runs ec2ssh in: the
// lab's keys, a known_hosts and a cache of its own under dir, the lab's
// AWS, bin's directory first on PATH.
func DemoEnv(w *World, dir, bin string, base []string) (cfg string, env []string) {
	cfg = filepath.Join(dir, "ssh_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf("Host *\n  IdentityFile %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s/known_hosts\n  StrictHostKeyChecking accept-new\n",
		w.ED25519Key, w.RSAKey, dir)), 0o600)
	env = append(append([]string{}, base...), w.AWSEnv()...)
	env = append(env, "XDG_CACHE_HOME="+dir+"/cache", "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	return cfg, env
}

// DemoScene is one command of the demo and what it shows.
type DemoScene struct {
	Caption string
	Args    []string
}

// DemoScenes are the demo's commands. Where SSM carries a session, the
// command lasts a moment, so that the checks beside it can say why before
// it ends (the line never holds the exit).
var DemoScenes = []DemoScene{
	{"A healthy instance, by its Name tag: the AMI's login user, the remote exit status.",
		[]string{"healthy", "echo hello from $(whoami)@$(hostname); exit 3"}},
	{"The security group has no rule for port 22: SSM races the silent dial and carries the session; the checks beside it say why.",
		[]string{"sg-no-22", "sleep 2; echo still got in; exit 7"}},
	{"The same instance, diagnosed.", []string{"--diagnose", "sg-no-22"}},
	{"Without the fallback (--fallback=never): the diagnosis and the fix, at once instead of after a TCP timeout.",
		[]string{"--fallback=never", "sg-no-22", "true"}},
	{"The network ACL drops the replies to the client's ephemeral ports (NACLs are stateless).", []string{"--diagnose", "nacl-egress"}},
	{"The instance's key pair is not one of the local keys: a one-time key pushed with EC2 Instance Connect.",
		[]string{"wrong-key", "echo in as $(whoami) with a one-time key"}},
	{"sshd is stopped: the command runs over SSM, with its stdin, stdout, stderr and exit status.",
		[]string{"sshd-stopped", "echo out; sleep 1; echo err >&2; exit 5"}},
	{"Two instances share a Name tag: ec2ssh lists them and asks for the id.", []string{"twin", "true"}},
	{"The fleet: how each instance would be reached now.", []string{"--list", "tag:Fleet=lab"}},
	{"As JSON, for scripts.", []string{"--diagnose", "--json", "no-profile"}},
}

// Demo runs the scenes with bin (-F cfg, in env), writing what a person
// would see to w: the caption, the command, its output and its exit
// status. bold wraps captions for a terminal.
func Demo(w io.Writer, bin, cfg string, env []string, bold bool) error {
	for _, s := range DemoScenes {
		caption := "# " + s.Caption
		if bold {
			caption = "\033[1m" + caption + "\033[0m"
		}
		fmt.Fprintf(w, "\n%s\n$ ec2ssh %s\n", caption, ShellWords(s.Args))
		var out bytes.Buffer
		cmd := exec.Command(bin, append([]string{"-F", cfg}, s.Args...)...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			return err
		}
		w.Write(out.Bytes())
		fmt.Fprintf(w, "(exit %d, %.1fs)\n", code, time.Since(start).Seconds())
	}
	return nil
}

// ShellWords writes args as a shell would need them typed.
func ShellWords(args []string) string {
	var out []string
	for _, a := range args {
		if strings.ContainsAny(a, " $;()&>*") {
			a = "'" + a + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// stabilise: what differs from one run of the lab to the next.
var stabilise = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b(i|sg|acl|vpc|subnet|eni|rtb|igw|nat|eice|eipalloc|vpce|ami|pl)-[0-9a-f]{8,17}\b`), "$1-…"},
	{regexp.MustCompile(`\(exit (\d+), [0-9.]+s\)`), "(exit $1)"},
	{regexp.MustCompile(`\b\d+(\.\d+)?(ms|µs|s)\b`), "…"}, // "383ms" one run, "1.2s" the next
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "…"},
	{regexp.MustCompile(`SHA256:[A-Za-z0-9+/]{43}`), "SHA256:…"},
	{regexp.MustCompile(`\b[0-9a-f]{2}(:[0-9a-f]{2}){15,}\b`), "…"},    // a key pair's fingerprint: the lab's keys are new each run
	{regexp.MustCompile(`/tmp/ec2ssh-[a-z0-9-]+/(world/)?`), "~/lab/"}, // make demo's lab, or the e2e tests' world
	{regexp.MustCompile(`"took_ns": \d+`), `"took_ns": …`},
	{regexp.MustCompile(`\x1b\[[0-9;]*m`), ""},
	{regexp.MustCompile(`[ \t]+\n`), "\n"},
}

// Slow says why a transcript is not the demo's fair weather: a check the
// stand-ins did not answer within its budget (AWS answers those calls in
// tens of milliseconds; moto on a loaded machine can take seconds), so the
// transcript shows "could not be checked" where a quiet run shows the
// answer. "" when none.
func Slow(transcript string) string {
	for _, line := range strings.Split(transcript, "\n") {
		if strings.Contains(line, "did not answer in") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// Stabilise makes a transcript comparable between runs: ids, times and
// temporary paths replaced with "…", colours and trailing blanks dropped.
func Stabilise(s string) string {
	for _, r := range stabilise {
		s = r.re.ReplaceAllString(s, r.with)
	}
	return strings.TrimSpace(s) + "\n"
}
