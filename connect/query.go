package connect

import (
	"slices"
	"strings"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Query answers ssh -Q: the algorithms of one kind that ec2ssh implements,
// in OpenSSH's order, so that scripts (and OpenSSH's own tests) that ask
// before they choose get what will work here. ssh(1) lists what it was
// built with; ec2ssh lists the part of that x/crypto implements.
func Query(what string) ([]string, error) {
	switch strings.ToLower(what) {
	case "cipher", "ciphers":
		return implemented(algCiphers.known, xcrypto.Ciphers), nil
	case "cipher-auth":
		return implemented([]string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"}, xcrypto.Ciphers), nil
	case "mac", "macs":
		return implemented(algMACs.known, xcrypto.MACs), nil
	case "kex", "kexalgorithms":
		// OpenSSH 9.2's names: the version whose configuration language
		// ec2ssh reads and whose sshd it is tested against.
		return slices.DeleteFunc(implemented(algKex.known, xcrypto.KeyExchanges), func(k string) bool { return k == "mlkem768x25519-sha256" }), nil
	case "kex-gss":
		return nil, nil // no GSSAPI key exchange
	case "key", "key-sig", "hostkeyalgorithms", "hostbasedacceptedalgorithms", "pubkeyacceptedalgorithms", "casignaturealgorithms":
		return queryKeys(strings.ToLower(what)), nil
	case "key-plain":
		return slices.DeleteFunc(queryKeys("key"), isCertAlgorithm), nil
	case "key-cert":
		return slices.DeleteFunc(queryKeys("key"), func(a string) bool { return !isCertAlgorithm(a) }), nil
	case "sig":
		return queryKeys("sig"), nil
	case "protocol-version":
		return []string{"2"}, nil
	case "compression":
		return []string{"none"}, nil // x/crypto has no zlib
	case "help":
		return []string{"cipher", "cipher-auth", "compression", "kex", "kex-gss", "key", "key-cert", "key-plain", "key-sig", "mac",
			"protocol-version", "sig"}, nil
	}
	return nil, failure.Configf("see ssh -Q help", "Unsupported query \"%s\"", what)
}

func isCertAlgorithm(a string) bool { return strings.Contains(a, "-cert-v01@openssh.com") }

// keyTypes are the key types ec2ssh can use, in ssh -Q key's order:
// ssh-dss is left out because x/crypto cannot read a DSA key in the
// format ssh-keygen writes, and FIDO (sk-) keys because they work only as
// user keys held by an agent, never from a file or as host keys.
var keyTypes = []string{"ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com",
	"ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384-cert-v01@openssh.com",
	"ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521-cert-v01@openssh.com", "ssh-rsa", "ssh-rsa-cert-v01@openssh.com"}

var sigTypes = []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"}

func queryKeys(what string) []string {
	switch what {
	case "key":
		return slices.Clone(keyTypes)
	case "sig":
		return slices.Clone(sigTypes)
	}
	// key-sig and the algorithm keywords: key types and signature
	// algorithms, certificates included.
	var out []string
	for _, k := range keyTypes {
		out = append(out, k)
		if k == "ssh-rsa-cert-v01@openssh.com" {
			out = append(out, "rsa-sha2-256", "rsa-sha2-256-cert-v01@openssh.com", "rsa-sha2-512", "rsa-sha2-512-cert-v01@openssh.com")
		}
	}
	return out
}
