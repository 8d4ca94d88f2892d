package connect

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/ec2ssh/ec2ssh/failure"
)

// These pin how keys are chosen and offered, against x/crypto's server and
// agent: the order and filters of ssh(1), and keys that cannot be loaded
// being skipped rather than stopping the connection (issue 14).

// writeKey writes an unencrypted OpenSSH private key and its .pub.
func writeKey(t *testing.T, dir, name string) (string, ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
	s, _ := ssh.NewSignerFromKey(priv)
	os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(s.PublicKey()), 0o644)
	return path, s, priv
}

// startAgent serves an in-memory agent on a Unix socket.
func startAgent(t *testing.T) (string, agent.Agent) {
	t.Helper()
	keyring := agent.NewKeyring()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go agent.ServeAgent(keyring, c)
		}
	}()
	return sock, keyring
}

func dialWith(t *testing.T, c *Config, p Prompter) (*logSink, error) {
	t.Helper()
	logs := &logSink{}
	cr, err := LoadCredentialsWarn(c, p, func(string, ...any) {}, logs.log)
	if err != nil {
		return logs, err
	}
	defer cr.Close()
	client, err := Dial(t.Context(), c, cr, NewHostKeys(c, p, logs.log), nil, testEnv(logs))
	if client != nil {
		client.Close()
	}
	return logs, err
}

func TestIdentitiesThatCannotBeLoadedAreSkipped(t *testing.T) {
	dir := t.TempDir()
	good, key, _ := writeKey(t, dir, "id_good")
	garbled := filepath.Join(dir, "id_garbled")
	os.WriteFile(garbled, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600)
	// A FIDO key in a file: x/crypto can read its public half only.
	sk := filepath.Join(dir, "id_ed25519_sk")
	os.WriteFile(sk, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAASgAAABpzay1zc2gtZWQyNTUxOUBvcGVuc3NoLmNvbQAAACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAARzc2g6AAAAgAAAAAAAAAAAAAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABHNzaDoBAAAAAAAAAAAAAAAAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600)
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
	c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
	c.IdentityAgent = "none"
	c.IdentityFiles = []string{garbled, sk, filepath.Join(dir, "id_missing"), good}
	logs, err := dialWith(t, c, nil)
	if err != nil {
		t.Fatalf("Dial = %v; one unloadable identity must not stop the others", err)
	}
	if !strings.Contains(logs.String(), `Load key "`+garbled+`": invalid format`) {
		t.Errorf("logs %q: want ssh's warning for the garbled key", logs)
	}
	if strings.Contains(logs.String(), "id_missing") {
		t.Errorf("logs %q: a missing identity file is skipped quietly", logs)
	}
}

func TestPreferredAuthentications(t *testing.T) {
	dir := t.TempDir()
	path, key, _ := writeKey(t, dir, "id")
	t.Run("password only, in batch mode, is denied though the key would do", func(t *testing.T) {
		srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}, password: "pw"})
		c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
		c.IdentityAgent, c.IdentityFiles = "none", []string{path}
		c.PreferredAuthentications = []string{"password"}
		if _, err := dialWith(t, c, nil); failure.KindOf(err) != failure.AuthRejected {
			t.Fatalf("Dial = %v, want AuthRejected: publickey is not a preferred method", err)
		}
	})
	t.Run("order", func(t *testing.T) {
		srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}, password: "pw"})
		c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
		c.IdentityAgent, c.IdentityFiles = "none", []string{path}
		c.PreferredAuthentications = []string{"password", "publickey"}
		p := &scripted{answers: []string{"pw"}}
		if _, err := dialWith(t, c, p); err != nil {
			t.Fatal(err)
		}
		if len(p.asked) != 1 {
			t.Errorf("asked %q: password comes before publickey", p.asked)
		}
	})
}

func TestPubkeyAcceptedAlgorithms(t *testing.T) {
	dir := t.TempDir()
	path, key, _ := writeKey(t, dir, "id")
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
	c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
	c.IdentityAgent, c.IdentityFiles = "none", []string{path}
	var err error
	if c.PubkeyAlgorithms, err = algPubkeys.assemble("-ssh-ed25519*"); err != nil {
		t.Fatal(err)
	}
	if _, err := dialWith(t, c, nil); failure.KindOf(err) != failure.AuthRejected {
		t.Fatalf("Dial = %v, want AuthRejected: the ed25519 key is not an accepted algorithm", err)
	}
}

func TestAgentBackedIdentities(t *testing.T) {
	dir := t.TempDir()
	path, key, priv := writeKey(t, dir, "id")
	sock, keyring := startAgent(t)
	keyring.Add(agent.AddedKey{PrivateKey: priv})
	// The private key lives only in the agent; IdentityFile names the .pub
	// (the usual set-up of agents that keep keys elsewhere).
	os.Remove(path)
	t.Run(".pub named, agent signs", func(t *testing.T) {
		srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
		c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
		c.IdentityAgent, c.IdentityFiles, c.IdentitiesOnly = sock, []string{path + ".pub"}, true
		if logs, err := dialWith(t, c, nil); err != nil {
			t.Fatalf("Dial = %v (%s)", err, logs)
		}
	})
	t.Run("CertificateFile paired with the agent's key", func(t *testing.T) {
		ca := newSigner(t)
		cert := &ssh.Certificate{Key: key.PublicKey(), CertType: ssh.UserCert, ValidPrincipals: []string{"tester"},
			ValidBefore: ssh.CertTimeInfinity, KeyId: "test"}
		if err := cert.SignCert(rand.Reader, ca); err != nil {
			t.Fatal(err)
		}
		certPath := filepath.Join(dir, "user-cert.pub")
		os.WriteFile(certPath, ssh.MarshalAuthorizedKey(cert), 0o644)
		checker := &ssh.CertChecker{IsUserAuthority: func(auth ssh.PublicKey) bool {
			return bytes.Equal(auth.Marshal(), ca.PublicKey().Marshal())
		}}
		// Set before the server starts: its goroutines read the config.
		srv := startXServer(t, xopts{publicKey: checker.Authenticate})
		c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
		c.IdentityAgent, c.IdentityFiles, c.CertificateFiles, c.IdentitiesOnly = sock, []string{"none"}, []string{certPath}, true
		if logs, err := dialWith(t, c, nil); err != nil {
			t.Fatalf("Dial = %v (%s)", err, logs)
		}
	})
}

func TestAddKeysToAgent(t *testing.T) {
	dir := t.TempDir()
	path, key, _ := writeKey(t, dir, "id")
	sock, keyring := startAgent(t)
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
	c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
	c.IdentityAgent, c.IdentityFiles, c.AddKeysToAgent = sock, []string{path}, "3600"
	if _, err := dialWith(t, c, nil); err != nil {
		t.Fatal(err)
	}
	keys, _ := keyring.List()
	if len(keys) != 1 || !bytes.Equal(keys[0].Marshal(), key.PublicKey().Marshal()) {
		t.Fatalf("agent holds %v after the connection, want the identity file's key", keys)
	}
	c.AddKeysToAgent = "no"
	keyring.RemoveAll()
	if _, err := dialWith(t, c, nil); err != nil {
		t.Fatal(err)
	}
	if keys, _ := keyring.List(); len(keys) != 0 {
		t.Errorf("AddKeysToAgent no added %v", keys)
	}
}
