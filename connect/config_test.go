package connect

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ec2ssh/ec2ssh/lab/kit"
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

// matchConfig exercises Match as OpenSSH evaluates it: every criterion,
// host against the HostName, the final pass, Include, IgnoreUnknown.
const matchConfig = `IgnoreUnknown UseKeychain,Frob*
UseKeychain yes
Host alias-*
  HostName target-%h.example.net
Match host target-alias-1.example.net
  User matched-by-hostname
Match originalhost alias-2
  User matched-by-original
Match host alias-3 exec "false"
  Port 1111
Match host alias-3 exec "test %h = target-alias-3.example.net && test %n = alias-3"
  Port 3333
Match user bob
  ServerAliveInterval 42
Match localuser root
  ConnectionAttempts 7
Match !localuser root
  ConnectionAttempts 8
Match final host alias-4
  Compression yes
Match final host target-alias-4.example.net
  IdentitiesOnly yes
Match all
  ServerAliveCountMax 9
Match localuser root,nobody
  HashKnownHosts yes
Host ?x
  Port 77
Include included-%d.conf included.conf
Host *
  Ciphers +aes128-cbc
  MACs -umac*
  KexAlgorithms ^curve25519-sha256
  HostKeyAlgorithms ssh-ed25519,rsa-sha2-512
  SetEnv ONE=1 "TWO=two words"
  RekeyLimit 1G 1h
  EscapeChar ^A
  AddKeysToAgent 1h
  ControlPersist 10m
  ControlPath ~/.ssh/cm-%C
`

const includedConfig = `Host alias-5
  User from-include
`

// TestConfigMatchesOpenSSH resolves the same command lines against the same
// files with ec2ssh and with ssh -G, and requires the same output, line for
// line: every keyword ssh prints, with its value.
func TestConfigMatchesOpenSSH(t *testing.T) {
	kit.Require(t, "ssh")
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	matchFile := filepath.Join(dir, "match")
	if err := os.WriteFile(matchFile, []byte(strings.ReplaceAll(matchConfig, "Include included", "Include "+dir+"/included")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "included.conf"), []byte(includedConfig), 0o600); err != nil {
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
		{"-o", "Ciphers=aes256-gcm@openssh.com", "-o", "MACs=+hmac-sha1-96", "-o", "PubkeyAcceptedAlgorithms=-ssh-rsa*", "plain"},
		{"-o", "HostKeyAlgorithms=*", "-o", "PubkeyAcceptedAlgorithms=ssh-ed25519*,rsa-sha2-512", "-o", "MACs=-*etm*", "-o", "KexAlgorithms=^curve25519-sha256", "plain"},
		{"-W", "a:1", "-o", "LocalCommand=echo %k %j", "-o", "PermitLocalCommand=yes", "plain"},
		{"-o", "UpdateHostKeys=ask", "-o", "VerifyHostKeyDNS=no", "-o", "CheckHostIP=yes", "-o", "FingerprintHash=md5", "plain"},
		{"-o", "ProxyCommand=nc %h %p", "-o", "RemoteCommand=echo %h %p", "plain"},
		{"-F", matchFile, "alias-1"},
		{"-F", matchFile, "alias-2"},
		{"-F", matchFile, "alias-3"},
		{"-F", matchFile, "-l", "bob", "alias-4"},
		{"-F", matchFile, "alias-5"},
		{"-F", matchFile, "ax"},
		{"-F", matchFile, "-o", "User=bob", "127.0.0.1"},
	}
	for _, argv := range cases {
		t.Run(strings.Join(argv, " "), func(t *testing.T) {
			full := argv
			if argv[0] != "-F" {
				full = append([]string{"-F", cfgFile}, argv...)
			}
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
			if got.String() != string(want) {
				wl, gl := strings.Split(string(want), "\n"), strings.Split(got.String(), "\n")
				for i := 0; i < max(len(wl), len(gl)); i++ {
					w, g := "", ""
					if i < len(wl) {
						w = wl[i]
					}
					if i < len(gl) {
						g = gl[i]
					}
					if w != g {
						t.Errorf("%q: line %d: ec2ssh -G says %q, ssh -G says %q", argv, i+1, g, w)
					}
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
		{[]string{"-F", write("bad-match", "Match frobnicate x\n User x\n"), "h"}, "Unsupported Match attribute frobnicate"},
		{[]string{"-F", write("bad-keyword", "Host *\n Frobnicate yes\n"), "h"}, "line 2: Bad configuration option: Frobnicate"},
		{[]string{"-F", write("x11", "Host *\n ForwardX11 yes\n"), "h"}, "ForwardX11 yes is not supported by ec2ssh"},
		{[]string{"-F", write("garbage", "Host *\n Port 22 33\n"), "h"}, "keyword port extra arguments at end of line"},
		{[]string{"-F", write("bad-time", "Host *\n ConnectTimeout soon\n"), "h"}, "bad ConnectTimeout"},
		{[]string{"-F", write("rekey-time", "Host *\n RekeyLimit 1G 1h\n"), "h"}, "RekeyLimit 1G 1h is not supported"},
		{[]string{"-F", write("no-ciphers", "Host *\n Ciphers -*\n"), "h"}, "Bad SSH2 cipher spec '-*'"},
		{[]string{"-F", write("bad-hka", "Host *\n HostKeyAlgorithms ssh-frob\n"), "h"}, "Bad SSH2 host key algorithms spec"},
	}
	for _, tt := range tests {
		args, err := ParseArgs(tt.argv)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ResolveConfig(args)
		if err == nil {
			err = c.Supported()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ResolveConfig(%q) = %v, want an error containing %q", tt.argv, err, tt.want)
		}
	}
}
