package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ec2ssh/ec2ssh/lab"
)

// Differential tests for issue 14: the same command line, the same
// ssh_config and the same sshd, through OpenSSH's ssh and through ec2ssh.
// Each case is one that ec2ssh got wrong before, most of them security
// settings it used to accept and ignore.

// multiKeySSHD is an sshd with ed25519, RSA and ECDSA host keys that
// accepts the lab's key and the environment variables the tests send.
type multiKeySSHD struct {
	srv  *lab.SSHD
	dir  string
	keys map[string]string // type -> "type base64" of each host key
}

func startMultiKeySSHD(t *testing.T, extra ...string) *multiKeySSHD {
	t.Helper()
	needLab(t)
	dir := t.TempDir()
	m := &multiKeySSHD{dir: dir, keys: map[string]string{}}
	lines := []string{"AcceptEnv FID_*"}
	for _, typ := range []string{"rsa", "ecdsa"} {
		p := filepath.Join(dir, "host_"+typ)
		if err := lab.Keygen(p, typ, ""); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, "HostKey "+p)
		m.keys[typ] = pubFields(t, p+".pub")
	}
	// A key the server does not have: known_hosts holding it means the
	// server's key has changed.
	if err := lab.Keygen(filepath.Join(dir, "other"), "ed25519", ""); err != nil {
		t.Fatal(err)
	}
	m.keys["changed"] = pubFields(t, filepath.Join(dir, "other.pub"))
	srv, err := lab.StartSSHD(filepath.Join(dir, "sshd"), lab.SSHDOptions{AuthorizedKeys: []string{mustRead(keyFile + ".pub")},
		Extra: append(lines, extra...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	m.srv = srv
	f := strings.Fields(srv.HostKeyPub)
	m.keys["ed25519"] = f[0] + " " + f[1]
	return m
}

func pubFields(t *testing.T, path string) string {
	t.Helper()
	f := strings.Fields(mustRead(path))
	return f[0] + " " + f[1]
}

// config writes an ssh_config for Host fid with known_hosts holding the
// given host key types, and more lines before the Host block (so that they
// come first).
func (m *multiKeySSHD) config(t *testing.T, knownTypes []string, more ...string) (cfg, kh string) {
	t.Helper()
	dir := t.TempDir()
	kh = filepath.Join(dir, "known_hosts")
	var lines []string
	for _, typ := range knownTypes {
		lines = append(lines, fmt.Sprintf("[127.0.0.1]:%d %s", m.srv.Port, m.keys[typ]))
	}
	os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	cfg = filepath.Join(dir, "config")
	text := fmt.Sprintf("%s\nHost fid\n  HostName 127.0.0.1\n  Port %d\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n"+
		"  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
		strings.Join(more, "\n"), m.srv.Port, keyFile, kh)
	os.WriteFile(cfg, []byte(text), 0o600)
	return cfg, kh
}

// both runs argv through ssh and ec2ssh (each with a fresh copy of the
// known_hosts file when one is given) and returns their results.
func both(t *testing.T, stdin []byte, kh string, argv ...string) (openssh, ours result) {
	t.Helper()
	var orig []byte
	if kh != "" {
		orig, _ = os.ReadFile(kh)
	}
	openssh = runCmd(t, stdin, "ssh", argv...)
	if kh != "" {
		os.WriteFile(kh, orig, 0o600)
	}
	ours = runCmd(t, stdin, bin, argv...)
	return openssh, ours
}

func TestFidelitySecuritySettings(t *testing.T) {
	m := startMultiKeySSHD(t, "Ciphers aes256-ctr,chacha20-poly1305@openssh.com", "MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256")
	revoked := filepath.Join(t.TempDir(), "revoked")
	os.WriteFile(revoked, []byte(m.keys["ed25519"]+"\n"), 0o600)
	tests := []struct {
		name    string
		known   []string
		more    []string
		args    []string
		success bool
	}{
		// Only the ED25519 key is known and only RSA is allowed: ssh
		// refuses to go on; ec2ssh used to connect.
		{"HostKeyAlgorithms limits the keys accepted", []string{"ed25519"}, nil, []string{"-o", "HostKeyAlgorithms=rsa-sha2-512"}, false},
		{"HostKeyAlgorithms that include the known key", []string{"rsa"}, nil, []string{"-o", "HostKeyAlgorithms=rsa-sha2-512,rsa-sha2-256"}, true},
		{"Ciphers the server lacks", []string{"ed25519"}, nil, []string{"-o", "Ciphers=aes128-ctr"}, false},
		{"-c the server has", []string{"ed25519"}, nil, []string{"-c", "aes256-ctr"}, true},
		{"MACs the server lacks", []string{"ed25519"}, nil, []string{"-o", "Ciphers=aes256-ctr", "-o", "MACs=hmac-sha2-256-etm@openssh.com"}, false},
		{"-m the server has", []string{"ed25519"}, nil, []string{"-c", "aes256-ctr", "-m", "hmac-sha2-256"}, true},
		{"KexAlgorithms the server lacks", []string{"ed25519"}, []string{"KexAlgorithms diffie-hellman-group1-sha1"}, nil, false},
		{"KexAlgorithms with ^", []string{"ed25519"}, []string{"KexAlgorithms ^diffie-hellman-group14-sha256"}, nil, true},
		// PreferredAuthentications=password in batch mode: the key is
		// never offered, so the login is denied.
		{"PreferredAuthentications", []string{"ed25519"}, nil, []string{"-o", "PreferredAuthentications=password"}, false},
		{"PubkeyAcceptedAlgorithms without the key's type", []string{"ed25519"}, nil, []string{"-o", "PubkeyAcceptedAlgorithms=-ssh-ed25519"}, false},
		{"RevokedHostKeys", []string{"ed25519"}, []string{"RevokedHostKeys " + revoked}, nil, false},
		// Match with exec false does not apply: StrictHostKeyChecking no
		// must not let a changed key through.
		{"Match exec false does not apply its block", []string{"changed"}, []string{"Match host fid exec false", "  StrictHostKeyChecking no"}, nil, false},
		{"Match exec true applies its block", []string{"changed"}, []string{"Match host fid exec true", "  StrictHostKeyChecking no"}, nil, true},
		{"Match user with a later criterion", []string{"changed"}, []string{"Match user root exec \"test %n = fid\"", "  StrictHostKeyChecking no"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, kh := m.config(t, tt.known, tt.more...)
			argv := append(append([]string{"-F", cfg}, tt.args...), "fid", "echo in")
			o, e := both(t, nil, kh, argv...)
			if (o.code == 0) != tt.success {
				t.Fatalf("OpenSSH: exit %d (%s); the case expects success=%v", o.code, o.stderr, tt.success)
			}
			if (e.code == 0) != (o.code == 0) || string(e.stdout) != string(o.stdout) {
				t.Errorf("ec2ssh: exit %d, stdout %q, stderr %q; OpenSSH: exit %d, stdout %q", e.code, e.stdout, e.stderr, o.code, o.stdout)
			}
			if !tt.success && e.code != 255 {
				t.Errorf("ec2ssh exit %d, want 255", e.code)
			}
		})
	}
}

// UpdateHostKeys yes: after one connection known_hosts holds every key
// the server has, as OpenSSH leaves it, and a key the server dropped is gone.
func TestFidelityUpdateHostKeys(t *testing.T) {
	m := startMultiKeySSHD(t)
	old := filepath.Join(t.TempDir(), "old")
	if err := lab.Keygen(old, "ecdsa", ""); err != nil {
		t.Fatal(err)
	}
	for _, client := range []string{"ssh", bin} {
		t.Run(filepath.Base(client), func(t *testing.T) {
			cfg, kh := m.config(t, []string{"ed25519"}, "Host fid", "  UpdateHostKeys yes")
			f, _ := os.OpenFile(kh, os.O_APPEND|os.O_WRONLY, 0)
			fmt.Fprintf(f, "[127.0.0.1]:%d %s\n", m.srv.Port, pubFields(t, old+".pub"))
			f.Close()
			if r := runCmd(t, nil, client, "-F", cfg, "fid", "true"); r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(mustRead(kh)), "\n") {
				f := strings.Fields(l)
				got = append(got, f[1]+" "+f[2])
			}
			want := []string{m.keys["ed25519"], m.keys["rsa"], m.keys["ecdsa"]}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("known_hosts holds %q, want the server's three keys", got)
			}
		})
	}
}

func TestFidelitySessions(t *testing.T) {
	m := startMultiKeySSHD(t)
	cfg, kh := m.config(t, []string{"ed25519"})
	t.Run("SetEnv with several variables, the first of a name wins", func(t *testing.T) {
		o, e := both(t, nil, kh, "-F", cfg, "-o", "SetEnv=FID_A=1 FID_A=11 FID_B=2", "fid", "echo $FID_A-$FID_B")
		if string(o.stdout) != "1-2\n" || string(e.stdout) != string(o.stdout) {
			t.Errorf("OpenSSH %q, ec2ssh %q (%s)", o.stdout, e.stdout, e.stderr)
		}
	})
	t.Run("RemoteCommand and a command", func(t *testing.T) {
		o, e := both(t, nil, kh, "-F", cfg, "-o", "RemoteCommand=echo rc", "fid", "echo cmd")
		if o.code != 255 || e.code != 255 || !strings.Contains(string(e.stderr), "Cannot execute command-line and remote command.") {
			t.Errorf("OpenSSH exit %d (%s), ec2ssh exit %d (%s)", o.code, o.stderr, e.code, e.stderr)
		}
	})
	t.Run("-q says nothing about a failed connection", func(t *testing.T) {
		o, e := both(t, nil, "", "-q", "-F", cfg, "-p", "1", "fid", "true")
		if o.code != 255 || e.code != 255 || len(e.stderr) != 0 || len(o.stderr) != 0 {
			t.Errorf("OpenSSH exit %d %q, ec2ssh exit %d %q", o.code, o.stderr, e.code, e.stderr)
		}
	})
	t.Run("stdout closed early", func(t *testing.T) {
		status := func(client string) string {
			out, _ := exec.Command("bash", "-c", fmt.Sprintf("%s -F %s fid yes | head -1 >/dev/null; echo ${PIPESTATUS[0]}", client, cfg)).Output()
			return strings.TrimSpace(string(out))
		}
		if o, e := status("ssh"), status(bin); o != "255" || e != o {
			t.Errorf("exit status: OpenSSH %s, ec2ssh %s (it used to die of SIGPIPE, 141)", o, e)
		}
	})
	t.Run("banner byte for byte, escapes made visible", func(t *testing.T) {
		banner := filepath.Join(t.TempDir(), "banner")
		os.WriteFile(banner, []byte("line one\nline two \x1b[31mred\n"), 0o644)
		m2 := startMultiKeySSHD(t, "Banner "+banner)
		cfg2, kh2 := m2.config(t, []string{"ed25519"})
		o, e := both(t, nil, kh2, "-F", cfg2, "fid", "true")
		if string(o.stderr) != "line one\nline two \\033[31mred\n" || string(e.stderr) != string(o.stderr) {
			t.Errorf("OpenSSH stderr %q, ec2ssh stderr %q", o.stderr, e.stderr)
		}
	})
}
