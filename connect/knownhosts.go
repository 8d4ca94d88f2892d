package connect

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// OpenSSH's known_hosts (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT), read as
// ssh reads it: a line it cannot parse (a half-written line, a key type it
// does not know) is skipped, never fatal to every later connection.

// knownHost is one usable line.
type knownHost struct {
	marker string   // "", "@cert-authority" or "@revoked"
	hosts  []string // patterns, or one hashed name
	key    ssh.PublicKey
	file   string
	line   int
}

// parseKnownHosts reads r; lines that cannot be read are counted, not kept.
func parseKnownHosts(r io.Reader, file string) (entries []knownHost, skipped int) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		e, ok := parseKnownHostLine(line)
		if !ok {
			skipped++
			continue
		}
		e.file, e.line = file, n
		entries = append(entries, e)
	}
	return entries, skipped
}

func parseKnownHostLine(line string) (knownHost, bool) {
	var e knownHost
	f := strings.Fields(line)
	if len(f) > 0 && strings.HasPrefix(f[0], "@") {
		switch f[0] {
		case "@cert-authority", "@revoked":
			e.marker = f[0]
		default:
			return e, false
		}
		f = f[1:]
	}
	if len(f) < 3 {
		return e, false
	}
	blob, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil {
		return e, false
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil || key.Type() != f[1] && !(strings.HasPrefix(f[1], "ssh-rsa") && strings.HasPrefix(key.Type(), "ssh-rsa")) {
		return e, false
	}
	e.key = key
	e.hosts = strings.Split(f[0], ",")
	return e, true
}

// matches reports whether the line is for name ("host" or "[host]:port").
func (e knownHost) matches(name string) bool {
	if len(e.hosts) == 1 && strings.HasPrefix(e.hosts[0], "|1|") {
		return hashedMatches(e.hosts[0], name)
	}
	matched := false
	for _, h := range e.hosts {
		neg := strings.HasPrefix(h, "!")
		h = strings.TrimPrefix(h, "!")
		if matchPattern(strings.ToLower(name), strings.ToLower(h)) {
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}

// hashedMatches checks a HashKnownHosts name: |1|salt|HMAC-SHA1(salt, name).
func hashedMatches(entry, name string) bool {
	parts := strings.Split(entry, "|")
	if len(parts) != 4 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	want, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(name))
	return hmac.Equal(mac.Sum(nil), want)
}

// hashName is HashKnownHosts' spelling of name.
func hashName(name string) string {
	salt := make([]byte, sha1.Size)
	rand.Read(salt)
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(name))
	return "|1|" + base64.StdEncoding.EncodeToString(salt) + "|" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// knownHostsLine is the line that records key for name.
func knownHostsLine(name string, key ssh.PublicKey) string {
	return name + " " + key.Type() + " " + base64.StdEncoding.EncodeToString(key.Marshal())
}

// revokedKeys reads a RevokedHostKeys file: public keys, one per line, or
// an OpenSSH key revocation list (ssh-keygen -k).
func revokedKeys(path string) (*revocations, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(b, []byte(krlMagic)) {
		return parseKRL(b)
	}
	r := &revocations{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			continue
		}
		// A certificate listed revokes its key, as in ssh(1).
		if cert, ok := key.(*ssh.Certificate); ok {
			key = cert.Key
		}
		r.keys = append(r.keys, key.Marshal())
	}
	return r, nil
}

// revocations are revoked keys by their blobs and fingerprints.
type revocations struct {
	keys   [][]byte
	sha1   [][]byte
	sha256 [][]byte
	certs  bool // the KRL has certificate sections, which ec2ssh does not read
}

func (r *revocations) revoked(key ssh.PublicKey) bool {
	blob := key.Marshal()
	s1 := sha1.Sum(blob)
	for _, k := range r.keys {
		if bytes.Equal(k, blob) {
			return true
		}
	}
	for _, f := range r.sha1 {
		if bytes.Equal(f, s1[:]) {
			return true
		}
	}
	s256 := sha256Sum(blob)
	for _, f := range r.sha256 {
		if bytes.Equal(f, s256) {
			return true
		}
	}
	return false
}

// The key revocation list (OpenSSH's PROTOCOL.krl): a header, then
// sections of a type byte and a length-prefixed body.
const krlMagic = "SSHKRL\n\x00"

const (
	krlSectionCertificates = 1
	krlSectionExplicitKey  = 2
	krlSectionSHA1         = 3
	krlSectionSignature    = 4
	krlSectionSHA256       = 5
)

func parseKRL(b []byte) (*revocations, error) {
	bad := errors.New("malformed key revocation list")
	b = b[len(krlMagic):]
	// format version u32, krl_version u64, generated_date u64, flags u64,
	// reserved string, comment string
	if len(b) < 28 {
		return nil, bad
	}
	b = b[28:]
	for i := 0; i < 2; i++ {
		s, rest, ok := sshString(b)
		if !ok {
			return nil, bad
		}
		_, b = s, rest
	}
	r := &revocations{}
	for len(b) > 0 {
		typ := b[0]
		body, rest, ok := sshString(b[1:])
		if !ok {
			return nil, bad
		}
		b = rest
		switch typ {
		case krlSectionCertificates:
			r.certs = true
		case krlSectionExplicitKey, krlSectionSHA1, krlSectionSHA256:
			for len(body) > 0 {
				v, more, ok := sshString(body)
				if !ok {
					return nil, bad
				}
				body = more
				switch typ {
				case krlSectionExplicitKey:
					r.keys = append(r.keys, v)
				case krlSectionSHA1:
					r.sha1 = append(r.sha1, v)
				case krlSectionSHA256:
					r.sha256 = append(r.sha256, v)
				}
			}
		case krlSectionSignature:
			// Signatures over the list: not checked, as ssh does not for
			// RevokedHostKeys.
		default:
			return nil, fmt.Errorf("key revocation list: unknown section %d", typ)
		}
	}
	return r, nil
}

// sshString reads a uint32-length-prefixed string.
func sshString(b []byte) ([]byte, []byte, bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if n < 0 || len(b)-4 < n {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// isLocalhost is NoHostAuthenticationForLocalhost's test.
func isLocalhost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
