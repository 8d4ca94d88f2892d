package connect

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ec2ssh/ec2ssh/lab"
)

const testConfig = `# ec2ssh's ssh_config test: OpenSSH must read it the same way.
Host web-*
  User ec2-user
  IdentityFile ~/.ssh/web_%h
  IdentitiesOnly yes
  ServerAliveInterval 15

Host web-1
  HostName 10.0.1.5
  Port 2200
  User ignored-first-one-wins

Host alias-tokens
  HostName %h.example.com
  UserKnownHostsFile ~/kh_%h %d/kh2_%n
  HostKeyAlias stable-%%name

Host fwd
  LocalForward 8080 localhost:80
  LocalForward 127.0.0.1:5432 db:5432
  RemoteForward 9000 localhost:9000
  DynamicForward 1080
  RequestTTY force
  ConnectTimeout 7
  StrictHostKeyChecking accept-new

Host bastioned
  ProxyJump jump@bastion:2222
  ForwardAgent yes
  SendEnv LANG LC_*
  BatchMode yes

Host !excluded *.internal
  User internal-user
  Compression yes

Host cleared
  LocalForward 1 a:2
  ClearAllForwardings yes

Host *
  ServerAliveCountMax 5
  ConnectionAttempts 2
`

// compared are the keywords ec2ssh resolves and prints as ssh -G does.
var compared = []string{"user", "hostname", "port", "identityfile", "identitiesonly", "serveraliveinterval",
	"serveralivecountmax", "connectionattempts", "userknownhostsfile", "hostkeyalias", "localforward",
	"remoteforward", "dynamicforward", "requesttty", "connecttimeout", "stricthostkeychecking", "proxyjump",
	"forwardagent", "sendenv", "batchmode", "compression", "clearallforwardings", "addressfamily", "sessiontype",
	"stdinnull", "forkafterauthentication", "gatewayports", "exitonforwardfailure", "hashknownhosts"}

func pick(out []byte) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		for _, c := range compared {
			if k == c {
				m[k] = append(m[k], v)
			}
		}
	}
	return m
}

// TestConfigMatchesOpenSSH resolves the same command lines against the same
// file with ec2ssh and with `ssh -G`, and compares the values.
func TestConfigMatchesOpenSSH(t *testing.T) {
	lab.Require(t, "ssh")
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		{"web-1"},
		{"web-2"},
		{"-p", "2", "-l", "cli-user", "web-1"},
		{"-o", "Port=3", "-p", "4", "web-1"},
		{"other@web-1"},
		{"-l", "first", "second@web-1"},
		{"-i", "/k1", "-i", "/k2", "web-3"},
		{"alias-tokens"},
		{"fwd"},
		{"-L", "1:h:2", "-o", "ConnectTimeout=9", "fwd"},
		{"bastioned"},
		{"-J", "other-jump", "bastioned"},
		{"db.internal"},
		{"excluded"},
		{"cleared"},
		{"-T", "-o", "RequestTTY=yes", "plain-host"},
		{"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "10.1.2.3"},
		{"ssh://u@uri-host:2022"},
		{"-4", "-A", "-C", "WEB-1"},
	}
	for _, argv := range cases {
		t.Run(strings.Join(argv, " "), func(t *testing.T) {
			full := append([]string{"-F", cfgFile}, argv...)
			cmd := exec.Command("ssh", append([]string{"-G"}, full...)...)
			cmd.Stdin = nil
			want, err := cmd.Output()
			if err != nil {
				t.Fatalf("ssh -G %q: %v", full, err)
			}
			args, err := ParseArgs(full)
			if err != nil {
				t.Fatalf("ParseArgs(%q) = %v", full, err)
			}
			cfg, err := ResolveConfig(args)
			if err != nil {
				t.Fatalf("ResolveConfig(%q) = %v", full, err)
			}
			var got bytes.Buffer
			cfg.Print(&got)
			w, g := pick(want), pick(got.Bytes())
			for _, k := range compared {
				if strings.Join(w[k], "|") != strings.Join(g[k], "|") {
					t.Errorf("%q: %s = %q, ssh -G says %q", argv, k, g[k], w[k])
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o600)
		return p
	}
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"-F", filepath.Join(dir, "missing"), "h"}, "read ssh config"},
		{[]string{"-F", write("bad-port", "Host *\n Port nope\n"), "h"}, "bad port"},
		{[]string{"-F", write("bad-shkc", "Host *\n StrictHostKeyChecking perhaps\n"), "h"}, "bad StrictHostKeyChecking"},
		{[]string{"-F", write("bad-exec", "Match exec true\n User x\n"), "h"}, "parse ssh config"},
		{[]string{"-F", write("bad-time", "Host *\n ConnectTimeout soon\n"), "h"}, "bad ConnectTimeout"},
	}
	for _, tt := range tests {
		args, err := ParseArgs(tt.argv)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ResolveConfig(args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ResolveConfig(%q) = %v, want an error containing %q", tt.argv, err, tt.want)
		}
	}
}
