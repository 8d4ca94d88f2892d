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
	var b strings.Builder
	switch shell {
	case "bash":
		b.WriteString(`# ec2ssh completion for bash: eval "$(ec2ssh --completion bash)"
_ec2ssh() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	# --option=value: bash splits the word at "=" (COMP_WORDBREAKS).
	if [[ $cur == = ]]; then
		cur=
	elif [[ $prev == = ]]; then
		prev=${COMP_WORDS[COMP_CWORD-2]}
	fi
	case $prev in
	-i|-F|-E|-S) COMPREPLY=($(compgen -f -- "$cur")); return ;;
`)
		var names, free []string
		for _, o := range connect.LongOptions {
			names = append(names, "--"+o.Name)
			switch {
			case len(o.Choices) > 0:
				fmt.Fprintf(&b, "\t--%s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", o.Name, strings.Join(o.Choices, " "))
			case o.Arg != "":
				free = append(free, "--"+o.Name)
			}
		}
		fmt.Fprintf(&b, "\t%s) return ;;\n", strings.Join(free, "|"))
		fmt.Fprintf(&b, `	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W %q -- "$cur"))
		return
	fi
	local user=
	[[ $cur == *@* ]] && user=${cur%%%%@*}@ && cur=${cur#*@}
	COMPREPLY=($(compgen -P "$user" -W "$(ec2ssh --complete-hosts 2>/dev/null)" -- "$cur"))
}
complete -o default -F _ec2ssh ec2ssh
`, strings.Join(names, " "))
	case "zsh":
		b.WriteString(`#compdef ec2ssh
# ec2ssh completion for zsh, in a directory of your own on fpath:
#   mkdir -p ~/.zfunc && ec2ssh --completion zsh > ~/.zfunc/_ec2ssh
#   and in ~/.zshrc, before compinit: fpath=(~/.zfunc $fpath)
_ec2ssh() {
	local -a hosts
	hosts=(${(f)"$(ec2ssh --complete-hosts 2>/dev/null)"})
	_arguments -s \
`)
		for _, o := range connect.LongOptions {
			spec := "--" + o.Name + "[" + zshQuote(o.About) + "]"
			if o.Arg != "" {
				// --name=value and --name value alike.
				spec = "--" + o.Name + "=-[" + zshQuote(o.About) + "]"
			}
			switch {
			case len(o.Choices) > 0:
				spec += ":" + o.Arg + ":(" + strings.Join(o.Choices, " ") + ")"
			case o.Arg != "":
				spec += ":" + o.Arg + ":"
			}
			fmt.Fprintf(&b, "\t\t'%s' \\\n", spec)
		}
		b.WriteString(`		'-i[identity file]:file:_files' '-F[configuration file]:file:_files' '-l[login name]:user:' '-p[port]:port:' \
		'1:host:{_describe host hosts}' '*::command:_normal'
}
_ec2ssh "$@"
`)
	case "fish":
		b.WriteString(`# ec2ssh completion for fish: ec2ssh --completion fish > ~/.config/fish/completions/ec2ssh.fish
complete -c ec2ssh -f -a '(ec2ssh --complete-hosts 2>/dev/null)'
`)
		for _, o := range connect.LongOptions {
			fmt.Fprintf(&b, "complete -c ec2ssh -l %s", o.Name)
			switch {
			case len(o.Choices) > 0:
				fmt.Fprintf(&b, " -x -a '%s'", strings.Join(o.Choices, " "))
			case o.Arg != "":
				b.WriteString(" -x")
			}
			fmt.Fprintf(&b, " -d '%s'\n", strings.ReplaceAll(o.About, "'", `\'`))
		}
		b.WriteString(`complete -c ec2ssh -s i -r -F -d 'identity file'
complete -c ec2ssh -s F -r -F -d 'configuration file'
complete -c ec2ssh -s l -x -d 'login name'
complete -c ec2ssh -s p -x -d 'port'
`)
	}
	return b.String()
}

// zshQuote escapes what _arguments reads in a description ([, ], :) and
// the single quote the spec is written in.
func zshQuote(s string) string {
	return strings.NewReplacer("[", `\[`, "]", `\]`, ":", `\:`, "'", `'\''`).Replace(s)
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
