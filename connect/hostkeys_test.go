package connect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/failure"
)

// A host whose operator publishes its key's fingerprint (the EC2 serial
// console): the published key is accepted without known_hosts, any other
// key known_hosts does not hold is refused even under accept-new, and
// nothing is written either way.
func TestPublishedHostKey(t *testing.T) {
	dir := t.TempDir()
	_, user, _ := writeKey(t, dir, "id")
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{user.PublicKey()}})
	kh := filepath.Join(dir, "known_hosts")
	dial := func(policy string, published ...string) error {
		t.Helper()
		c := testConfigFor(srv.port, kh)
		c.IdentityAgent, c.IdentityFiles, c.IdentitiesOnly, c.StrictHostKeyChecking = "none", []string{filepath.Join(dir, "id")}, true, policy
		cr, err := LoadCredentials(c, nil, func(string, ...any) {})
		if err != nil {
			t.Fatal(err)
		}
		defer cr.Close()
		hk := NewHostKeys(c, nil, func(string, ...any) {})
		hk.Published, hk.PublishedAt = published, "https://example.test/fingerprints"
		client, err := Dial(t.Context(), c, cr, hk, nil, testEnv(&logSink{}))
		if client != nil {
			client.Close()
		}
		return err
	}
	mine := ssh.FingerprintSHA256(srv.hostKey.PublicKey())
	if err := dial("yes", "SHA256:someOtherKeyxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", mine); err != nil {
		t.Errorf("the published key with an empty known_hosts and StrictHostKeyChecking yes: %v", err)
	}
	other := "SHA256:someOtherKeyxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	for _, policy := range []string{"accept-new", "no", "ask"} {
		err := dial(policy, other)
		if failure.KindOf(err) != failure.HostKeyUnknown || !strings.Contains(err.Error(), other) {
			t.Errorf("StrictHostKeyChecking %s, a key that is not the published one: %v, want refused naming %s", policy, err, other)
		}
	}
	if b, _ := os.ReadFile(kh); len(b) != 0 {
		t.Errorf("known_hosts was written: %q", b)
	}
	// A key the user recorded (a stand-in, or a rotation the table does
	// not know yet) is theirs to trust.
	os.WriteFile(kh, []byte(recordedLine(t, srv)), 0o600)
	if err := dial("yes", other); err != nil {
		t.Errorf("a key known_hosts holds, another one published: %v", err)
	}
	// Without a published key, ssh's policy as ever: accept-new records it.
	os.WriteFile(kh, nil, 0o600)
	if err := dial("accept-new"); err != nil {
		t.Errorf("nothing published, accept-new: %v", err)
	}
	if b, _ := os.ReadFile(kh); !strings.Contains(string(b), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.hostKey.PublicKey())))) {
		t.Errorf("nothing published, accept-new did not record the key: %q", b)
	}
}

func recordedLine(t *testing.T, srv *xserver) string {
	b, err := os.ReadFile(knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
