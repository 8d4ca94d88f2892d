package connect

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/ec2ssh/ec2ssh/failure"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		dest string
		cmd  []string
		set  []Setting
		chk  func(*Args) bool
	}{
		{name: "plain", argv: []string{"web-1"}, dest: "web-1"},
		{name: "user at host", argv: []string{"ec2-user@web-1"}, dest: "web-1", set: []Setting{{"User", "ec2-user"}}},
		{name: "at in user", argv: []string{"a@b@host"}, dest: "host", set: []Setting{{"User", "a@b"}}},
		{name: "port attached", argv: []string{"-p22", "h"}, dest: "h", set: []Setting{{"Port", "22"}}},
		{name: "port separate", argv: []string{"-p", "2222", "h"}, dest: "h", set: []Setting{{"Port", "2222"}}},
		{name: "bundled flags", argv: []string{"-tt", "-vvv", "h"}, dest: "h", chk: func(a *Args) bool { return a.TTY == 2 && a.Verbose == 3 }},
		{name: "bundled flag then arg", argv: []string{"-vp2200", "h"}, dest: "h", set: []Setting{{"Port", "2200"}}, chk: func(a *Args) bool { return a.Verbose == 1 }},
		{name: "o equals", argv: []string{"-o", "User=bob", "h"}, dest: "h", set: []Setting{{"User", "bob"}}},
		{name: "o space", argv: []string{"-o", "ServerAliveInterval 5", "h"}, dest: "h", set: []Setting{{"ServerAliveInterval", "5"}}},
		{name: "o attached lower case", argv: []string{"-ostricthostkeychecking=no", "h"}, dest: "h", set: []Setting{{"StrictHostKeyChecking", "no"}}},
		{name: "o spaced equals", argv: []string{"-o", "Port = 99", "h"}, dest: "h", set: []Setting{{"Port", "99"}}},
		{name: "command words", argv: []string{"h", "echo", "a b", "c"}, dest: "h", cmd: []string{"echo", "a b", "c"}},
		{name: "options after host", argv: []string{"h", "-p", "23", "ls", "-la"}, dest: "h", cmd: []string{"ls", "-la"}, set: []Setting{{"Port", "23"}}},
		{name: "double dash", argv: []string{"--", "h", "-p", "23"}, dest: "h", cmd: []string{"-p", "23"}},
		{name: "double dash after host", argv: []string{"h", "--", "ls", "-la"}, dest: "h", cmd: []string{"ls", "-la"}},
		{name: "l then dest user", argv: []string{"-l", "alice", "bob@h"}, dest: "h", set: []Setting{{"User", "alice"}, {"User", "bob"}}},
		{name: "uri", argv: []string{"ssh://u@h:2022"}, dest: "h", set: []Setting{{"User", "u"}, {"Port", "2022"}}},
		{name: "identity files", argv: []string{"-i", "/dev/null", "-i/etc/hostname", "h"}, dest: "h", set: []Setting{{"IdentityFile", "/dev/null"}, {"IdentityFile", "/etc/hostname"}}},
		{name: "missing identity file", argv: []string{"-i", "/no/such/key", "h"}, dest: "h",
			chk: func(a *Args) bool {
				return len(a.Warnings) == 1 && strings.Contains(a.Warnings[0], "/no/such/key not accessible")
			}},
		{name: "forwards", argv: []string{"-L", "8080:localhost:80", "-R9000:x:90", "-D1080", "-N", "h"}, dest: "h",
			set: []Setting{{"LocalForward", "8080:localhost:80"}, {"RemoteForward", "9000:x:90"}, {"DynamicForward", "1080"}},
			chk: func(a *Args) bool { return a.NoCommand }},
		{name: "A then a", argv: []string{"-A", "-a", "h"}, dest: "h", set: []Setting{{"ForwardAgent", "no"}}},
		{name: "T after t", argv: []string{"-t", "-T", "h"}, dest: "h", chk: func(a *Args) bool { return a.NoTTY && a.TTY == 0 }},
		{name: "long options", argv: []string{"--region", "eu-west-1", "--profile=dev", "--fallback=never", "h"}, dest: "h",
			chk: func(a *Args) bool { return a.Region == "eu-west-1" && a.Profile == "dev" && a.Fallback == ModeDirect }},
		{name: "proxy", argv: []string{"--proxy", "web-1", "22"}, dest: "web-1", chk: func(a *Args) bool { return a.Proxy && a.ProxyPort == "22" }},
		{name: "W and J", argv: []string{"-W", "db:5432", "-J", "bastion", "h"}, dest: "h", set: []Setting{{"ProxyJump", "bastion"}},
			chk: func(a *Args) bool { return a.StdioFwd == "db:5432" }},
		{name: "version alone", argv: []string{"-V"}, chk: func(a *Args) bool { return a.Version }},
		{name: "lone dash is the host", argv: []string{"-"}, dest: "-", chk: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "lone dash is the host" {
				if _, err := ParseArgs(tt.argv); err == nil {
					t.Fatalf("ParseArgs(%q) accepted a host starting with -", tt.argv)
				}
				return
			}
			a, err := ParseArgs(tt.argv)
			if err != nil {
				t.Fatalf("ParseArgs(%q) = %v", tt.argv, err)
			}
			if a.Destination != tt.dest {
				t.Errorf("ParseArgs(%q).Destination = %q, want %q", tt.argv, a.Destination, tt.dest)
			}
			if !reflect.DeepEqual(a.Command, tt.cmd) && !(len(a.Command) == 0 && len(tt.cmd) == 0) {
				t.Errorf("ParseArgs(%q).Command = %q, want %q", tt.argv, a.Command, tt.cmd)
			}
			if !reflect.DeepEqual(a.Settings, tt.set) && !(len(a.Settings) == 0 && len(tt.set) == 0) {
				t.Errorf("ParseArgs(%q).Settings = %v, want %v", tt.argv, a.Settings, tt.set)
			}
			if tt.chk != nil && !tt.chk(a) {
				t.Errorf("ParseArgs(%q) = %+v: check failed", tt.argv, a)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"-1", "h"}, "SSH protocol v.1 is no longer supported"},
		{[]string{"-c", "frob", "h"}, "Unknown cipher type 'frob'"},
		{[]string{"-m", "frob", "h"}, "Unknown mac type 'frob'"},
		{[]string{"-e", "xx", "h"}, "Bad escape character 'xx'."},
		// OpenSSH's valid_ruser (CVE-2023-51385): %r reaches shells.
		{[]string{"x$(touch /tmp/p)@h"}, "remote username contains invalid characters"},
		{[]string{"a`id`@h"}, "remote username contains invalid characters"},
		{[]string{"-l", "a;b", "h"}, "remote username contains invalid characters"},
		{[]string{"-l", "a -oProxyCommand=x", "h"}, "remote username contains invalid characters"},
		{[]string{"-l", "a\\", "h"}, "remote username contains invalid characters"},
		{[]string{"u@h$(id)"}, "hostname contains invalid characters"},
		{[]string{"u@-oProxyCommand=x"}, "hostname contains invalid characters"},
		{[]string{"-O", "frob", "h"}, "Invalid multiplex command."},
		{[]string{"-P", "h"}, "option -P is not supported"},
		{[]string{"-Z", "h"}, "unknown option -Z"},
		{[]string{"-p"}, "requires an argument"},
		{[]string{"-p", "0", "h"}, "bad port"},
		{[]string{"-p", "x", "h"}, "bad port"},
		{[]string{"-o", "NoSuchOption=1", "h"}, "unknown -o option"},
		{[]string{"-o", "Port", "h"}, "bad -o option"},
		{[]string{"--frobnicate", "h"}, "unknown option --frobnicate"},
		{[]string{"--fallback=sometimes", "h"}, "bad --fallback"},
		{[]string{"--region"}, "requires an argument"},
		{[]string{"--json=1", "h"}, "takes no argument"},
		{[]string{"@h"}, "empty user"},
		{[]string{"u@"}, "empty host"},
		{[]string{"--proxy", "h"}, "exactly a host and a port"},
		{[]string{"-J", "a", "-J", "b", "h"}, "only one -J"},
		{[]string{}, "no destination"},
		// Run Command (issue 22): with --all only, and nothing of ssh's.
		{[]string{"--via", "run-command", "h", "uptime"}, "goes with --all"},
		{[]string{"--all", "--max-errors", "1", "web-*", "--", "x"}, "go with --all --via run-command"},
		{[]string{"--output-s3", "b", "h"}, "go with --all --via run-command"},
		{[]string{"--all", "--parallel", "10%", "web-*", "--", "x"}, "bad --parallel"},
		{[]string{"--all", "--parallel", "300", "web-*", "--", "x"}, "bad --parallel"},
		{[]string{"--all", "--via=run-command", "--stdin=broadcast", "web-*", "--", "x"}, "takes no input"},
		{[]string{"--all", "--via=run-command", "-l", "ec2-user", "web-*", "--", "x"}, "User does not apply"},
		{[]string{"--all", "--via=run-command", "root@web-*", "--", "x"}, "User does not apply"},
		{[]string{"--all", "--via=run-command", "-t", "web-*", "--", "x"}, "do not apply to --via run-command"},
		{[]string{"--all", "--via=run-command", "-F", "/dev/null", "web-*", "--", "x"}, "do not apply to --via run-command"},
	}
	for _, tt := range tests {
		_, err := ParseArgs(tt.argv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseArgs(%q) = %v, want an error containing %q", tt.argv, err, tt.want)
			continue
		}
		if k := failure.KindOf(err); k != failure.Config {
			t.Errorf("KindOf(ParseArgs(%q)) = %v, want Config", tt.argv, k)
		}
	}
}

func TestRemoteCommandJoinsLikeSSH(t *testing.T) {
	a, err := ParseArgs([]string{"h", "printf", "%s\\n", "a b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.RemoteCommand(), `printf %s\n a b c`; got != want {
		t.Errorf("RemoteCommand() = %q, want %q", got, want)
	}
}

// FuzzParseArgs checks that no command line panics the parser and that
// whatever it accepts names a destination without spaces or a leading dash.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"-p22 h", "-tt -vvv u@h ls -la", "-o User=x -- h cmd", "ssh://u@h:22", "--proxy h 22", "-L 1:h:2 -W h:1 h", "-oPort h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		argv := strings.Split(line, " ")
		a, err := ParseArgs(argv)
		if err != nil {
			if failure.KindOf(err) != failure.Config {
				t.Fatalf("ParseArgs(%q) error %v is not a Config error", argv, err)
			}
			return
		}
		if a.Destination != "" && (strings.ContainsAny(a.Destination, " \t\n") || strings.HasPrefix(a.Destination, "-")) {
			t.Fatalf("ParseArgs(%q).Destination = %q", argv, a.Destination)
		}
	})
}

func TestParseForward(t *testing.T) {
	tests := []struct {
		kind byte
		spec string
		want Forward
		bad  bool
	}{
		{'L', "8080:localhost:80", Forward{'L', "", 8080, "localhost", 80, "", ""}, false},
		{'L', "127.0.0.1:8080:db:5432", Forward{'L', "127.0.0.1", 8080, "db", 5432, "", ""}, false},
		{'L', "8080 localhost:80", Forward{'L', "", 8080, "localhost", 80, "", ""}, false},
		{'L', "[::1]:8080:[fe80::1]:80", Forward{'L', "::1", 8080, "fe80::1", 80, "", ""}, false},
		{'R', "0:localhost:22", Forward{'R', "", 0, "localhost", 22, "", ""}, false},
		{'D', "1080", Forward{'D', "", 1080, "", 0, "", ""}, false},
		{'D', "*:1080", Forward{'D', "*", 1080, "", 0, "", ""}, false},
		{'L', "/tmp/l.sock:db:5432", Forward{'L', "", 0, "db", 5432, "/tmp/l.sock", ""}, false},
		{'L', "8080:/run/app.sock", Forward{'L', "", 8080, "", 0, "", "/run/app.sock"}, false},
		{'L', "/tmp/l.sock:/run/app.sock", Forward{'L', "", 0, "", 0, "/tmp/l.sock", "/run/app.sock"}, false},
		{'R', "/tmp/r.sock:localhost:22", Forward{'R', "", 0, "localhost", 22, "/tmp/r.sock", ""}, false},
		{'R', "2222", Forward{'R', "", 2222, "", 0, "", ""}, false},
		{'R', "127.0.0.1:2222", Forward{'R', "127.0.0.1", 2222, "", 0, "", ""}, false},
		{'D', "/tmp/socks.sock", Forward{}, true},
		{'L', "8080", Forward{}, true},
		{'L', "x:h:80", Forward{}, true},
		{'L', "1:h:99999", Forward{}, true},
	}
	for _, tt := range tests {
		got, err := ParseForward(tt.kind, tt.spec)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseForward(%c, %q) = %+v, want an error", tt.kind, tt.spec, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseForward(%c, %q) = %+v, %v, want %+v", tt.kind, tt.spec, got, err, tt.want)
		}
	}
}

// The long-option table the completions are made from agrees with the
// parser: every option is known, each choice offered is accepted, and a
// value outside the choices is refused.
func TestLongOptionTable(t *testing.T) {
	for _, o := range LongOptions {
		argv := []string{"--" + o.Name}
		if o.Arg != "" {
			argv = append(argv, "1")
		}
		if len(o.Choices) > 0 {
			for _, c := range o.Choices {
				rest := []string{"host"}
				if c == "run-command" {
					rest = []string{"--all", "web-*", "--", "uptime"}
				}
				if _, err := ParseArgs(append([]string{"--" + o.Name + "=" + c}, rest...)); err != nil {
					t.Errorf("--%s=%s, offered by completion, is refused: %v", o.Name, c, err)
				}
			}
			argv[1] = "bogus"
			if _, err := ParseArgs(append(argv, "host")); err == nil {
				t.Errorf("--%s bogus was accepted; its choices are %v", o.Name, o.Choices)
			}
			continue
		}
		runCommand := []string{"--all", "--via", "run-command", "web-*", "--", "uptime"}
		rest := map[string][]string{"proxy": {"host", "22"}, "all": {"web-*", "--", "uptime"}, "max-errors": runCommand, "output-s3": runCommand}[o.Name]
		if rest == nil {
			rest = []string{"host"}
		}
		if _, err := ParseArgs(append(argv, rest...)); err != nil {
			t.Errorf("--%s: %v", o.Name, err)
		}
	}
}

// -V names the OpenSSH whose command line ec2ssh follows, as the tools that
// read `ssh -V` match it, without claiming to be OpenSSH.
func TestVersionLine(t *testing.T) {
	line := VersionLine("1.2.3")
	m := regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`).FindStringSubmatch(line)
	if m == nil || m[1]+"."+m[2] != "9.2" {
		t.Errorf("VersionLine(%q) = %q, want an OpenSSH_9.2 token", "1.2.3", line)
	}
	if !strings.HasPrefix(line, "ec2ssh 1.2.3") || strings.HasPrefix(line, "OpenSSH") || !strings.Contains(line, "not OpenSSH") {
		t.Errorf("VersionLine(%q) = %q, want ec2ssh's version first and no claim to be OpenSSH", "1.2.3", line)
	}
}
