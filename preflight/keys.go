package preflight

import (
	"crypto"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// KeyMaterial is a local key as the connect room hands it over: the public
// key, its SSH wire form, and the private key when it is at hand unencrypted
// (EC2's fingerprint of a key pair it generated is a hash of the private
// key).
type KeyMaterial struct {
	Source  string // file path or "agent"
	Type    string // ssh-ed25519, ssh-rsa, …
	Blob    []byte // the SSH wire-format public key
	Public  crypto.PublicKey
	Private crypto.PrivateKey // may be nil
}

// Fingerprints returns, for each key, every fingerprint EC2 may have
// recorded for it:
//   - key pairs EC2 made, RSA: SHA-1 of the PKCS#8 DER private key;
//   - imported RSA: MD5 of the DER public key (SubjectPublicKeyInfo);
//   - ED25519: SHA-256 of the SSH public key, base64, as ssh-keygen -l;
//
// and the forms moto's emulator computes (SHA-1 and SHA-256 of the DER
// public key), so that the lab's answers match too. The hashes differ, so
// accepting them all cannot make one key match another's fingerprint.
func Fingerprints(keys []KeyMaterial) []LocalKey {
	var out []LocalKey
	for _, k := range keys {
		lk := LocalKey{Source: k.Source, Type: k.Type}
		add := func(s string) { lk.Fingerprints = append(lk.Fingerprints, s) }
		if len(k.Blob) > 0 {
			sum := sha256.Sum256(k.Blob)
			add("SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]))
			m := md5.Sum(k.Blob)
			add(colonHex(m[:]))
		}
		if k.Public != nil {
			if der, err := x509.MarshalPKIXPublicKey(k.Public); err == nil {
				m := md5.Sum(der)
				add(colonHex(m[:]))
				s1 := sha1.Sum(der)
				add(colonHex(s1[:]))
				s256 := sha256.Sum256(der)
				add(colonHex(s256[:]))
			}
		}
		if k.Private != nil {
			if der, err := x509.MarshalPKCS8PrivateKey(k.Private); err == nil {
				s1 := sha1.Sum(der)
				add(colonHex(s1[:]))
			}
		}
		out = append(out, lk)
	}
	return out
}

func colonHex(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}
