package connect

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Security keys (FIDO authenticators: sk-ecdsa-sha2-nistp256@openssh.com,
// sk-ssh-ed25519@openssh.com) sign through a middleware library
// (SecurityKeyProvider) or OpenSSH's built-in FIDO support; ec2ssh has
// neither, and signs with such keys only through ssh-agent. An identity
// file holding one is still offered as ssh(1) offers it, and refused by
// name only when the server accepts it and a signature is needed (issue
// 25: honour or refuse at the point of use); until then a
// SecurityKeyProvider setting is accepted, and -v says it is unused.

// securityKeySigner is a security-key identity file.
type securityKeySigner struct {
	path     string
	pub      ssh.PublicKey
	provider string       // SecurityKeyProvider, "" for OpenSSH's built-in support
	cr       *Credentials // where the refusal is kept for AuthCallback
}

func (s *securityKeySigner) PublicKey() ssh.PublicKey { return s.pub }

// Sign refuses: the key needs the authenticator. x/crypto goes on to the
// next key (as ssh does when signing fails); the refusal is what the
// connection ends with if no other key or method is accepted.
func (s *securityKeySigner) Sign(io.Reader, []byte) (*ssh.Signature, error) {
	var err error
	if s.provider != "" {
		err = refused("SecurityKeyProvider", s.provider, "no security-key middleware; the server accepted security key "+s.path, "")
	} else {
		err = failure.Configf("add it to your agent (ssh-add "+s.path+"), through which ec2ssh signs with security keys",
			"identity file %s is a FIDO security key, which ec2ssh signs with only through ssh-agent", s.path)
	}
	if s.cr != nil {
		s.cr.refuse(err)
	}
	return nil, err
}

// isSecurityKey reports whether an identity is a security key, by its
// public key (from key.pub) or by the private key file's own public part.
func isSecurityKey(pub ssh.PublicKey, privatePEM []byte) bool {
	if pub == nil {
		pub, _ = openSSHPublicKey(privatePEM)
	}
	return pub != nil && strings.HasPrefix(pub.Type(), "sk-")
}

// securityKeyIdentity completes id as a security-key identity.
func securityKeyIdentity(id *identity, privatePEM []byte) *identity {
	if id.pub == nil {
		id.pub, _ = openSSHPublicKey(privatePEM)
	}
	id.signer, id.why = &securityKeySigner{path: id.source, pub: id.pub}, nil
	return id
}

// openSSHPublicKey reads the public key an "openssh-key-v1" private key
// file carries in the clear (PROTOCOL.key): magic, cipher, KDF and its
// options, the number of keys, then the first public key.
func openSSHPublicKey(privatePEM []byte) (ssh.PublicKey, error) {
	block, _ := pem.Decode(privatePEM)
	if block == nil || block.Type != "OPENSSH PRIVATE KEY" {
		return nil, errors.New("not an OpenSSH private key")
	}
	const magic = "openssh-key-v1\x00"
	b, ok := bytes.CutPrefix(block.Bytes, []byte(magic))
	if !ok {
		return nil, errors.New("not an OpenSSH private key")
	}
	for range 3 { // cipher name, KDF name, KDF options
		if _, b, ok = sshString(b); !ok {
			return nil, errors.New("truncated private key")
		}
	}
	if len(b) < 4 {
		return nil, errors.New("truncated private key")
	}
	blob, _, ok := sshString(b[4:])
	if !ok {
		return nil, errors.New("truncated private key")
	}
	return ssh.ParsePublicKey(blob)
}
