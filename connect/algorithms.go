package connect

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Algorithm lists as ssh_config(5) reads them, against OpenSSH 9.2's
// defaults: a plain list replaces the default, "+" appends to it, "-"
// removes from it (wildcards allowed), "^" puts at its head. ssh -G prints
// the result; the connection offers the part x/crypto implements, in that
// order, and one that implements none of it is refused by name.

type algorithmKind struct {
	keyword  string
	defaults []string
	known    []string // every name OpenSSH knows
	errWord  string   // ssh's word in "Bad SSH2 … spec"
}

var hostKeyDefaults = []string{"ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
	"ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521-cert-v01@openssh.com", "sk-ssh-ed25519-cert-v01@openssh.com",
	"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com",
	"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
	"sk-ecdsa-sha2-nistp256@openssh.com", "rsa-sha2-512", "rsa-sha2-256"}

// keyAlgorithmsKnown is every key and signature algorithm OpenSSH 9.2
// knows, in ssh -Q key-sig's order (patterns expand in this order).
var keyAlgorithmsKnown = []string{"ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com", "sk-ssh-ed25519@openssh.com",
	"sk-ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
	"sk-ecdsa-sha2-nistp256@openssh.com", "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
	"ssh-dss", "ssh-dss-cert-v01@openssh.com", "ssh-rsa", "ssh-rsa-cert-v01@openssh.com", "rsa-sha2-256", "rsa-sha2-256-cert-v01@openssh.com",
	"rsa-sha2-512", "rsa-sha2-512-cert-v01@openssh.com"}

var (
	algCiphers = algorithmKind{"Ciphers", []string{"chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
		"aes128-gcm@openssh.com", "aes256-gcm@openssh.com"},
		[]string{"3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com",
			"aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"}, "cipher"}
	algMACs = algorithmKind{"MACs", []string{"umac-64-etm@openssh.com", "umac-128-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
		"hmac-sha2-512-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com", "umac-128@openssh.com", "hmac-sha2-256",
		"hmac-sha2-512", "hmac-sha1"},
		[]string{"hmac-sha1", "hmac-sha1-96", "hmac-sha2-256", "hmac-sha2-512", "hmac-md5", "hmac-md5-96", "umac-64@openssh.com",
			"umac-128@openssh.com", "hmac-sha1-etm@openssh.com", "hmac-sha1-96-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
			"hmac-sha2-512-etm@openssh.com", "hmac-md5-etm@openssh.com", "hmac-md5-96-etm@openssh.com", "umac-64-etm@openssh.com",
			"umac-128-etm@openssh.com"}, "MAC"}
	algKex = algorithmKind{"KexAlgorithms", []string{"sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
		"curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group-exchange-sha256",
		"diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512", "diffie-hellman-group14-sha256"},
		[]string{"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512",
			"diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha1", "diffie-hellman-group-exchange-sha256", "ecdh-sha2-nistp256",
			"ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "curve25519-sha256", "curve25519-sha256@libssh.org", "sntrup761x25519-sha512",
			"sntrup761x25519-sha512@openssh.com", "mlkem768x25519-sha256"}, "KEX algorithms"}
	algHostKeys  = algorithmKind{"HostKeyAlgorithms", hostKeyDefaults, keyAlgorithmsKnown, "host key algorithms"}
	algPubkeys   = algorithmKind{"PubkeyAcceptedAlgorithms", hostKeyDefaults, keyAlgorithmsKnown, "key types"}
	algHostbased = algorithmKind{"HostbasedAcceptedAlgorithms", hostKeyDefaults, keyAlgorithmsKnown, "key types"}
	algCASigs    = algorithmKind{"CASignatureAlgorithms", []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
		"ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com", "rsa-sha2-512", "rsa-sha2-256"},
		keyAlgorithmsKnown, "key types"}
)

// assemble applies a configured spec to the defaults, as OpenSSH's
// kex_assemble_names does: every name may be a pattern (ssh-ed25519*, *),
// which expands to the known names it matches, in ssh -Q's order. A name
// that is not known, or a pattern that matches none, is an error naming
// the spec.
func (k algorithmKind) assemble(spec string) ([]string, error) {
	if spec == "" {
		return slices.Clone(k.defaults), nil
	}
	op := spec[0]
	list := spec
	if op == '+' || op == '-' || op == '^' {
		list = spec[1:]
	}
	names := strings.Split(list, ",")
	bad := func() error {
		return failure.Configf("see ssh_config(5) and ssh -Q", "Bad SSH2 %s spec '%s'.", k.errWord, spec)
	}
	if op != '-' {
		for _, n := range names {
			if strings.ContainsAny(n, "*?") && k.keyTypes() {
				if !slices.ContainsFunc(k.known, func(a string) bool { return matchPattern(a, n) }) {
					return nil, bad()
				}
			} else if !slices.Contains(k.known, n) {
				return nil, bad()
			}
		}
	}
	var want []string
	switch op {
	case '-':
		for _, d := range k.defaults {
			if matchPatternList(d, list, false) != 1 {
				want = append(want, d)
			}
		}
		if len(want) == 0 {
			return nil, bad()
		}
		return want, nil
	case '+':
		want = append(slices.Clone(k.defaults), names...)
	case '^':
		want = append(slices.Clone(names), k.defaults...)
	default:
		want = names
	}
	var out []string
	for _, pat := range want {
		for _, a := range k.known {
			if matchPattern(a, pat) && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	if len(out) == 0 {
		return nil, bad()
	}
	return out, nil
}

// keyTypes: lists of key types take patterns in any form (OpenSSH's
// sshkey_names_valid2 with wildcards); ciphers, MACs and key exchanges
// only after "-".
func (k algorithmKind) keyTypes() bool {
	return k.errWord == "key types" || k.errWord == "host key algorithms"
}

// or is what a Config holds for kind: its list, or the defaults when the
// Config was built without one (assemble never leaves a list empty).
func (k algorithmKind) or(list []string) []string {
	if len(list) == 0 {
		return k.defaults
	}
	return list
}

// implemented returns the part of list x/crypto implements, in order.
func implemented(list []string, have ...[]string) []string {
	var out []string
	for _, a := range list {
		for _, h := range have {
			if slices.Contains(h, a) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// xcrypto is what x/crypto implements, the algorithms with known weaknesses
// included: they are offered only when the configuration asks for them.
var xcrypto = func() ssh.Algorithms {
	s, in := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	return ssh.Algorithms{
		KeyExchanges:   append(append(s.KeyExchanges, in.KeyExchanges...), "curve25519-sha256@libssh.org"),
		Ciphers:        append(s.Ciphers, in.Ciphers...),
		MACs:           append(s.MACs, in.MACs...),
		HostKeys:       append(s.HostKeys, in.HostKeys...),
		PublicKeyAuths: append(s.PublicKeyAuths, in.PublicKeyAuths...),
	}
}()

// offered is what a connection offers for one kind, or an error that
// names the keyword when none of what it allows is implemented here.
func offered(kind algorithmKind, list []string, have []string) ([]string, error) {
	out := implemented(list, have)
	if len(out) == 0 {
		return nil, failure.Configf(fmt.Sprintf("allow one of %s in %s, or use OpenSSH's ssh for this host", strings.Join(have, ","), kind.keyword),
			"%s %s: ec2ssh implements none of these", kind.keyword, strings.Join(list, ","))
	}
	return out, nil
}
