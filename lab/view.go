package lab

import (
	"os/exec"
	"sort"
	"strings"
)

// View is what a process "on an instance" sees of its files. Every lab
// instance is this machine, so the agent runs an instance's commands in a
// private mount namespace where the instance's own directories are bound
// over the paths a real instance keeps them at (/etc/ssh, the login user's
// home, /var/log): its sshd_config, its authorized_keys, its sshd log.
type View struct {
	Binds map[string]string // path on the instance -> directory here
}

// Command is name run in the view, as root, in a mount namespace of its
// own (unshare -m): the binds exist only there.
func (v *View) Command(name string, args ...string) *exec.Cmd {
	var targets []string
	for t := range v.Binds {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	var script strings.Builder
	for _, t := range targets {
		script.WriteString("mount --bind " + shellQuote(v.Binds[t]) + " " + shellQuote(t) + " || exit 126\n")
	}
	script.WriteString(`exec "$@"`)
	return exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script.String(), "sh", name}, args...)...)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
