package preflight_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ec2ssh/ec2ssh/lab"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// TestFingerprintsMatchAWSRecipes computes fingerprints the way AWS's
// documentation says to check them (openssl, ssh-keygen) and requires
// Fingerprints to produce each.
func TestFingerprintsMatchAWSRecipes(t *testing.T) {
	lab.Require(t, "openssl", "ssh-keygen")
	dir := t.TempDir()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	der := x509.MarshalPKCS1PrivateKey(rsaKey)
	rsaFile := filepath.Join(dir, "rsa.pem")
	os.WriteFile(rsaFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600)

	sh := func(script string) string {
		out, err := exec.Command("sh", "-c", script).Output()
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		f := strings.Fields(string(out))
		return f[len(f)-1]
	}
	imported := sh("openssl rsa -in " + rsaFile + " -pubout -outform DER 2>/dev/null | openssl md5 -c")
	created := sh("openssl pkcs8 -in " + rsaFile + " -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c")
	got := preflight.Fingerprints([]preflight.KeyMaterial{{Source: "rsa", Public: &rsaKey.PublicKey, Private: rsaKey}})[0].Fingerprints
	for name, want := range map[string]string{"imported RSA (MD5 of DER public key)": imported, "AWS-made RSA (SHA-1 of PKCS#8)": created} {
		if !containsFP(got, want) {
			t.Errorf("%s: %s not among %q", name, want, got)
		}
	}

	edFile := filepath.Join(dir, "ed")
	if err := lab.Keygen(edFile, "ed25519", ""); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ssh-keygen", "-l", "-f", edFile).Output()
	want := strings.Fields(string(out))[1] // SHA256:…
	pubLine, _ := os.ReadFile(edFile + ".pub")
	blob := decodeBlob(t, string(pubLine))
	pub := ed25519.PublicKey(blob[len(blob)-32:])
	got = preflight.Fingerprints([]preflight.KeyMaterial{{Source: "ed", Blob: blob, Public: pub}})[0].Fingerprints
	if !containsFP(got, want) {
		t.Errorf("ED25519: %s not among %q", want, got)
	}
	if containsFP(got, imported) || containsFP(got, created) {
		t.Errorf("the ED25519 key matches the RSA key's fingerprints")
	}
}

func containsFP(list []string, want string) bool {
	for _, s := range list {
		if preflight.NormFingerprint(s) == preflight.NormFingerprint(want) {
			return true
		}
	}
	return false
}

func decodeBlob(t *testing.T, line string) []byte {
	f := strings.Fields(line)
	b, err := base64Decode(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
