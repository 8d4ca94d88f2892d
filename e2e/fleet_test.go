package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// The fleet (issue 13) in the lab: moto with ten instances tagged
// Fleet=lab (two behind a closed port 22, one stopped, one with the wrong
// key, one whose sshd is down) and one in a second region.

// runFleet runs ec2ssh on the EC2 lab's configuration: see runLab.
func runFleet(t *testing.T, cache string, stdin string, args ...string) result {
	t.Helper()
	return runLab(t, ec2Cfg, cache, stdin, args...)
}

// runLab runs ec2ssh -F cfg with the lab's AWS environment and a cache of
// the test's own; stdin as given (none for "").
func runLab(t *testing.T, cfg, cache, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-F", cfg}, args...)...)
	cmd.Env = append(append(cleanEnv(), world.AWSEnv()...), "XDG_CACHE_HOME="+cache)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ec2ssh %q ran past 3 minutes; stderr %q", args, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return result{[]byte(out.String()), []byte(errb.String()), code}
}

func TestFleetList(t *testing.T) {
	needWorld(t)
	cache := t.TempDir()
	r := runFleet(t, cache, "", "--list", "--json", "tag:Fleet=lab")
	if r.code != 0 {
		t.Fatalf("--list: exit %d: %s", r.code, r.stderr)
	}
	var got []struct {
		ID, Name, State string
		Reach           struct{ Via, Why string }
		Tags            map[string]string
	}
	if err := json.Unmarshal(r.stdout, &got); err != nil {
		t.Fatalf("--list --json: %v: %s", err, r.stdout)
	}
	via, why := map[string]string{}, map[string]string{}
	for _, g := range got {
		via[g.Name], why[g.Name] = g.Reach.Via, g.Reach.Why
		if g.Tags["Fleet"] != "lab" {
			t.Errorf("%s: tags %v", g.Name, g.Tags)
		}
	}
	if len(got) != 10 {
		t.Errorf("tag:Fleet=lab lists %d instances, want 10: %v", len(got), via)
	}
	for name, want := range map[string]string{"healthy": "direct", "sg-no-22": "ssm", "stopped": "none", "no-profile": "direct"} {
		if via[name] != want {
			t.Errorf("%s is reached via %q (%s), want %q", name, via[name], why[name], want)
		}
	}
	// A Name glob, as a table.
	r = runFleet(t, cache, "", "--list", "sg-*")
	if r.code != 0 || !strings.Contains(string(r.stdout), "NAME") || !strings.Contains(string(r.stdout), "sg-no-22") || strings.Contains(string(r.stdout), "healthy") {
		t.Errorf("--list sg-*: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Every enabled region: the far instance is found, with its region.
	r = runFleet(t, cache, "", "--list", "--region", "all", "far-*")
	if r.code != 0 || !strings.Contains(string(r.stdout), lab.FarRegion) || !strings.Contains(string(r.stdout), lab.FarInstance) {
		t.Errorf("--list --region all far-*: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// What was listed completes.
	r = runFleet(t, cache, "", "--complete-hosts")
	if !strings.Contains(string(r.stdout), "sg-no-22\n") {
		t.Errorf("--complete-hosts after --list lacks the listed names: %q", r.stdout)
	}
}

func TestFleetFindsAnotherRegion(t *testing.T) {
	needWorld(t)
	cache := t.TempDir()
	r := runFleet(t, cache, "", lab.FarInstance, "echo far; exit 4")
	if r.code != 4 || string(r.stdout) != "far\n" || !strings.Contains(string(r.stderr), "is in "+lab.FarRegion) {
		t.Fatalf("%s from %s: exit %d, %q, %q", lab.FarInstance, lab.Region, r.code, r.stdout, r.stderr)
	}
	// Again: the cache knows the region; no lookup line this time.
	r = runFleet(t, cache, "", lab.FarInstance, "echo again")
	if r.code != 0 || string(r.stdout) != "again\n" || strings.Contains(string(r.stderr), "is in ") {
		t.Errorf("second time: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	// --region pins the lookup: not found there is not found.
	r = runFleet(t, cache, "", "--region", lab.Region, "--no-cache", "--fallback=ssm", lab.FarInstance, "true")
	if r.code != 255 {
		t.Errorf("--region %s %s: exit %d, want 255: %s", lab.Region, lab.FarInstance, r.code, r.stderr)
	}
}

func TestFleetAll(t *testing.T) {
	needWorld(t)
	cache := t.TempDir()
	start := time.Now()
	r := runFleet(t, cache, "", "--all", "tag:Fleet=lab", "--", "echo ran; exit 3")
	took := time.Since(start)
	lines := strings.Split(strings.TrimSpace(string(r.stdout)), "\n")
	var ran []string
	for _, l := range lines {
		name, rest, ok := strings.Cut(l, " | ")
		if !ok || rest != "ran" {
			t.Errorf("stdout line %q is not NAME | ran", l)
			continue
		}
		ran = append(ran, strings.TrimSpace(name))
	}
	sort.Strings(ran)
	// Nine ran (two over SSM, one through Instance Connect, one in an SSM
	// shell); the stopped one did not, so the worst status is 255.
	if len(ran) != 9 || r.code != 255 {
		t.Errorf("--all: exit %d, ran on %v, want 9 and 255; stderr:\n%s", r.code, ran, r.stderr)
	}
	for _, w := range []string{"10 instances:", "9 exit 3", "1 not run", "stopped (i-", "the instance is stopped"} {
		if !strings.Contains(string(r.stderr), w) {
			t.Errorf("the summary lacks %q:\n%s", w, r.stderr)
		}
	}
	t.Logf("--all over 10 instances in %v", took.Round(time.Millisecond))

	// --json: one object per instance.
	r = runFleet(t, cache, "", "--all", "--json", "sg-*", "--", "echo j")
	dec := json.NewDecoder(strings.NewReader(string(r.stdout)))
	n := 0
	for dec.More() {
		// The fields --all --json promises (the manual, "--all").
		var res struct {
			ID, Name, Region, Stdout, Stderr string
			Exit                             int
			Ran                              bool
		}
		if err := dec.Decode(&res); err != nil {
			t.Fatalf("--json: %v: %s", err, r.stdout)
		}
		n++
		if res.Ran && res.Stdout != "j\n" {
			t.Errorf("--json %s: stdout %q", res.Name, res.Stdout)
		}
	}
	if n == 0 {
		t.Errorf("--all --json printed nothing: %s", r.stderr)
	}
}

func TestFleetStdin(t *testing.T) {
	needWorld(t)
	cache := t.TempDir()
	r := runFleet(t, cache, "to everyone\n", "--all", "healthy", "--", "cat")
	if r.code != 255 || !strings.Contains(string(r.stderr), "--stdin=broadcast") {
		t.Errorf("stdin with --all: exit %d, %q; want a refusal naming --stdin=broadcast", r.code, r.stderr)
	}
	r = runFleet(t, cache, "to everyone\n", "--all", "--stdin=broadcast", "sg-*", "--", "cat")
	if r.code != 0 || strings.Count(string(r.stdout), "| to everyone") < 2 {
		t.Errorf("--stdin=broadcast: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
}

func TestCompletionScripts(t *testing.T) {
	needLab(t)
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host web-1 db-*\n  HostName 10.0.0.1\nInclude more\n"), 0o600)
	os.WriteFile(filepath.Join(home, ".ssh", "more"), []byte("Host bastion\n"), 0o600)
	os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte("[gitlab.example]:2222,10.1.1.1 ssh-ed25519 AAAA\n|1|hashed ssh-ed25519 AAAA\n"), 0o600)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := runCmd(t, nil, bin, "--completion", shell)
		if r.code != 0 || !strings.Contains(string(r.stdout), "--complete-hosts") {
			t.Errorf("--completion %s: exit %d, %q", shell, r.code, r.stdout)
		}
	}
	env := append(cleanEnv(), "HOME="+home, "XDG_CACHE_HOME="+t.TempDir())
	env = append(env, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	lab.Require(t, "bash", "zsh", "fish")
	// Each shell's completion asked as the shell asks it: bash through the
	// function complete -F names, fish through complete -C; zsh's needs a
	// terminal to run, so it is parsed (zsh -n).
	scripts := filepath.Join(home, "completions")
	os.Mkdir(scripts, 0o700)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := runCmd(t, nil, bin, "--completion", shell)
		os.WriteFile(filepath.Join(scripts, shell), r.stdout, 0o600)
	}
	bash := func(words ...string) []string {
		t.Helper()
		script := fmt.Sprintf(`source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _ec2ssh; printf '%%s\n' "${COMPREPLY[@]}"`,
			filepath.Join(scripts, "bash"), strings.Join(words, " "), len(words)-1)
		r := runCmdEnv(t, env, nil, "bash", "--norc", "-c", script)
		if r.code != 0 {
			t.Fatalf("bash completion: exit %d, %s", r.code, r.stderr)
		}
		got := strings.Fields(string(r.stdout))
		slices.Sort(got)
		return got
	}
	fish := func(line string) []string {
		t.Helper()
		r := runCmdEnv(t, env, nil, "fish", "--no-config", "-c", "source "+filepath.Join(scripts, "fish")+"; complete -C '"+line+"'")
		if r.code != 0 {
			t.Fatalf("fish completion: exit %d, %s", r.code, r.stderr)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(r.stdout)), "\n") {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
		slices.Sort(got)
		return got
	}
	for _, tt := range []struct {
		bash []string
		fish string
		want []string
	}{
		{[]string{"ec2ssh", "we"}, "ec2ssh we", []string{"web-1"}},
		{[]string{"ec2ssh", "--vi"}, "ec2ssh --vi", []string{"--via"}},
		{[]string{"ec2ssh", "--via", "''"}, "ec2ssh --via ", []string{"direct", "ssm", "eice", "run-command"}},
		{[]string{"ec2ssh", "--completion", "f"}, "ec2ssh --completion f", []string{"fish"}},
	} {
		slices.Sort(tt.want) // fish sorts what it offers
		if got := bash(tt.bash...); !slices.Equal(got, tt.want) {
			t.Errorf("bash completes %v as %q, want %q", tt.bash, got, tt.want)
		}
		if got := fish(tt.fish); !slices.Equal(got, tt.want) {
			t.Errorf("fish completes %q as %q, want %q", tt.fish, got, tt.want)
		}
	}
	// --option=value, as typed with the "=" (bash splits the word there).
	if got := bash("ec2ssh", "--fallback", "=", "''"); !slices.Equal(got, []string{"auto", "never", "ssm"}) {
		t.Errorf("bash completes --fallback= as %q, want its values", got)
	}
	if got := fish("ec2ssh --fallback="); !slices.Equal(got, []string{"--fallback=auto", "--fallback=never", "--fallback=ssm"}) {
		t.Errorf("fish completes --fallback= as %q, want its values", got)
	}
	if got := bash("ec2ssh", "root@ba"); !slices.Equal(got, []string{"root@bastion"}) {
		t.Errorf("bash completes root@ba as %q", got)
	}
	if r := runCmdEnv(t, env, nil, "zsh", "-n", filepath.Join(scripts, "zsh")); r.code != 0 {
		t.Errorf("the zsh completion does not parse: %s", r.stderr)
	}
	r := runCmdEnv(t, env, nil, bin, "--complete-hosts")
	for _, w := range []string{"web-1\n", "bastion\n", "gitlab.example\n", "10.1.1.1\n"} {
		if !strings.Contains(string(r.stdout), w) {
			t.Errorf("--complete-hosts lacks %q: %q", w, r.stdout)
		}
	}
	if strings.Contains(string(r.stdout), "db-*") || strings.Contains(string(r.stdout), "|1|") {
		t.Errorf("--complete-hosts offers patterns or hashed names: %q", r.stdout)
	}
}
