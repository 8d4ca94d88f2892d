package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// Shell completion: the hosts ssh's own completion offers (ssh_config's
// Host names, known_hosts' plain names) and the Name tags ec2ssh has seen
// (its cache: connections and --list fill it), from --complete-hosts.

func completionScript(shell string) string {
	switch shell {
	case "bash":
		return `# ec2ssh completion for bash: eval "$(ec2ssh --completion bash)"
_ec2ssh() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	case $prev in
	-i|-F|-E|-S) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return ;;
	--fallback) COMPREPLY=($(compgen -W "auto ssm never" -- "$cur")); return ;;
	--address) COMPREPLY=($(compgen -W "auto public private" -- "$cur")); return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "--region --profile --fallback --address --source-ip --diagnose --json --no-cache --list --all --parallel --stdin --proxy --help --version" -- "$cur"))
		return
	fi
	local user=
	[[ $cur == *@* ]] && user=${cur%%@*}@ && cur=${cur#*@}
	COMPREPLY=($(compgen -P "$user" -W "$(ec2ssh --complete-hosts 2>/dev/null)" -- "$cur"))
}
complete -o default -F _ec2ssh ec2ssh
`
	case "zsh":
		return `#compdef ec2ssh
# ec2ssh completion for zsh: ec2ssh --completion zsh > "${fpath[1]}/_ec2ssh"
_ec2ssh() {
	local -a hosts
	hosts=(${(f)"$(ec2ssh --complete-hosts 2>/dev/null)"})
	_arguments -s \
		'--region[AWS region]:region:' '--profile[AWS profile]:profile:' \
		'--fallback[fallback]:mode:(auto ssm never)' '--address[address]:mode:(auto public private)' \
		'--diagnose[diagnose]' '--json[JSON output]' '--list[list instances]' '--all[run on many]' \
		'-i[identity file]:file:_files' '-F[config file]:file:_files' '-l[login name]:user:' '-p[port]:port:' \
		'1:host:{_describe host hosts}' '*::command:_normal'
}
_ec2ssh "$@"
`
	case "fish":
		return `# ec2ssh completion for fish: ec2ssh --completion fish > ~/.config/fish/completions/ec2ssh.fish
complete -c ec2ssh -f -a '(ec2ssh --complete-hosts 2>/dev/null)'
complete -c ec2ssh -l region -r -d 'AWS region'
complete -c ec2ssh -l profile -r -d 'AWS profile'
complete -c ec2ssh -l fallback -x -a 'auto ssm never'
complete -c ec2ssh -l address -x -a 'auto public private'
complete -c ec2ssh -l diagnose -d 'say what is wrong'
complete -c ec2ssh -l list -d 'list instances'
complete -c ec2ssh -l all -d 'run a command on many instances'
complete -c ec2ssh -l json -d 'JSON output'
complete -c ec2ssh -s i -r -F -d 'identity file'
complete -c ec2ssh -s F -r -F -d 'configuration file'
`
	}
	return ""
}

// completeHosts prints one candidate per line.
func completeHosts(args *connect.Args, w io.Writer) {
	seen := map[string]bool{}
	add := func(h string) {
		if h == "" || strings.ContainsAny(h, "*?!%") || seen[h] {
			return
		}
		seen[h] = true
	}
	home, _ := os.UserHomeDir()
	cfg := args.ConfigFile
	if cfg == "" {
		cfg = filepath.Join(home, ".ssh", "config")
	}
	configHosts(cfg, filepath.Join(home, ".ssh"), add, 0)
	for _, kh := range []string{filepath.Join(home, ".ssh", "known_hosts"), "/etc/ssh/ssh_known_hosts"} {
		knownHostNames(kh, add)
	}
	for _, n := range preflight.DefaultCache().Names() {
		add(n)
	}
	var out []string
	for h := range seen {
		out = append(out, h)
	}
	sort.Strings(out)
	for _, h := range out {
		fmt.Fprintln(w, h)
	}
}

// configHosts adds the plain names of Host lines, following Include.
func configHosts(path, dir string, add func(string), depth int) {
	f, err := os.Open(path)
	if err != nil || depth > 8 {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.ReplaceAll(sc.Text(), "=", " "))
		if len(fields) < 2 {
			continue
		}
		switch strings.ToLower(fields[0]) {
		case "host":
			for _, h := range fields[1:] {
				add(h)
			}
		case "include":
			for _, p := range fields[1:] {
				p = connect.ExpandPath(p)
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				matches, _ := filepath.Glob(p)
				for _, m := range matches {
					configHosts(m, dir, add, depth+1)
				}
			}
		}
	}
}

// knownHostNames adds known_hosts' plain names ([host]:port as host).
func knownHostNames(path string, add func(string)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "@") || strings.HasPrefix(fields[0], "|") || strings.HasPrefix(fields[0], "#") {
			continue
		}
		for _, h := range strings.Split(fields[0], ",") {
			if strings.HasPrefix(h, "[") {
				h = strings.TrimPrefix(h[:max(strings.Index(h, "]"), 1)], "[")
			}
			add(h)
		}
	}
}
