package connect

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/failure"
)

// writeSecurityKey writes an sk-ssh-ed25519@openssh.com identity file as
// ssh-keygen -t ed25519-sk writes it (PROTOCOL.key, PROTOCOL.u2f), without
// its .pub: the private file's own public part names it.
func writeSecurityKey(t *testing.T, dir string) (string, ssh.PublicKey) {
	t.Helper()
	pk, _, _ := ed25519.GenerateKey(rand.Reader)
	str := func(b []byte) []byte { return ssh.Marshal(struct{ B []byte }{b}) }
	pubBlob := append(append(str([]byte("sk-ssh-ed25519@openssh.com")), str(pk)...), str([]byte("ssh:"))...)
	pub, err := ssh.ParsePublicKey(pubBlob)
	if err != nil {
		t.Fatal(err)
	}
	priv := []byte{0, 0, 0, 7, 0, 0, 0, 7}
	priv = append(priv, pubBlob...)
	priv = append(priv, 1)                        // flags: user presence
	priv = append(priv, str([]byte("handle"))...) // key handle
	priv = append(priv, str(nil)...)              // reserved
	priv = append(priv, str([]byte("sk"))...)     // comment
	for i := byte(1); len(priv)%8 != 0; i++ {
		priv = append(priv, i)
	}
	body := []byte("openssh-key-v1\x00")
	body = append(body, str([]byte("none"))...)
	body = append(body, str([]byte("none"))...)
	body = append(body, str(nil)...)
	body = append(body, 0, 0, 0, 1)
	body = append(body, str(pubBlob)...)
	body = append(body, str(priv)...)
	path := filepath.Join(dir, "id_ed25519_sk")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: body}), 0o600)
	return path, pub
}

// Issue 25, honour or refuse at the point of use: OpenSSH's default build
// names a SecurityKeyProvider for every host (its regress suite does), and
// a user's ssh_config may; ec2ssh has no security-key middleware. The
// setting is accepted while no security-key identity must sign (-v says
// so); a security-key identity file is offered as ssh offers it, and when
// the server accepts it the connection is refused naming the provider.
func TestSecurityKeyProviderAtThePointOfUse(t *testing.T) {
	dir := t.TempDir()
	skPath, skPub := writeSecurityKey(t, dir)
	keyPath, key, _ := writeKey(t, dir, "id")
	cfgFile := filepath.Join(dir, "config")
	os.WriteFile(cfgFile, []byte("Host *\n  SecurityKeyProvider /opt/sk-dummy.so\n  PKCS11Provider /opt/p11.so\n"), 0o600)
	args, _ := ParseArgs([]string{"-F", cfgFile, "h"})
	c, err := ResolveConfig(args)
	if err != nil || c.Supported() != nil {
		t.Fatalf("ResolveConfig: %v, Supported() = %v; want the providers accepted while unused", err, c.Supported())
	}
	ignored := strings.Join(c.Ignored, "\n")
	if !strings.Contains(ignored, "SecurityKeyProvider /opt/sk-dummy.so (unused:") || !strings.Contains(ignored, "PKCS11Provider /opt/p11.so (unused:") {
		t.Errorf("-v's list of settings not acted on: %q; want both providers named as unused", ignored)
	}

	dial := func(t *testing.T, accept ssh.PublicKey, files []string, sk, p11 string) error {
		t.Helper()
		srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{accept}})
		c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
		c.IdentityAgent, c.IdentityFiles, c.IdentitiesOnly, c.PasswordAuth, c.KbdInteractive = "none", files, true, false, false
		c.SecurityKeyProvider, c.PKCS11Provider = sk, p11
		logs := &logSink{}
		cr, err := LoadCredentials(c, nil, logs.log)
		if err != nil {
			t.Fatal(err)
		}
		defer cr.Close()
		client, err := Dial(context.Background(), c, cr, NewHostKeys(c, nil, logs.log), nil, testEnv(logs))
		if client != nil {
			client.Close()
		}
		return err
	}
	t.Run("a security key the server accepts needs the provider", func(t *testing.T) {
		err := dial(t, skPub, []string{keyPath, skPath}, "/opt/sk-dummy.so", "")
		if failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "SecurityKeyProvider /opt/sk-dummy.so is not supported by ec2ssh") {
			t.Errorf("Dial = %v (%v), want the provider refused by name", err, failure.KindOf(err))
		}
		err = dial(t, skPub, []string{skPath}, "", "")
		if failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "is a FIDO security key") {
			t.Errorf("Dial with the built-in support = %v, want the security key refused by name", err)
		}
	})
	t.Run("another key accepted first: the provider is never needed", func(t *testing.T) {
		if err := dial(t, key.PublicKey(), []string{keyPath, skPath}, "/opt/sk-dummy.so", ""); err != nil {
			t.Errorf("Dial = %v, want a connection", err)
		}
	})
	t.Run("PKCS11Provider refused only when no other key is accepted", func(t *testing.T) {
		if err := dial(t, key.PublicKey(), []string{keyPath}, "", "/opt/p11.so"); err != nil {
			t.Errorf("Dial with an accepted key = %v, want a connection", err)
		}
		err := dial(t, newSigner(t).PublicKey(), []string{keyPath}, "", "/opt/p11.so")
		if failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "PKCS11Provider /opt/p11.so is not supported by ec2ssh") {
			t.Errorf("Dial = %v, want PKCS11Provider refused by name", err)
		}
	})
	if got, err := openSSHPublicKey(pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte("openssh-key-v1\x00")})); err == nil {
		t.Errorf("a truncated key file gave %v", got)
	}
	if b, _ := os.ReadFile(skPath); !bytes.Contains(b, []byte("OPENSSH PRIVATE KEY")) {
		t.Fatal("the test's key file is not PEM")
	}
}
