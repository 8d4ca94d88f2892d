package connect

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Credentials are what ec2ssh can offer a server: keys from the agent and
// from identity files (with their certificates), and, on a terminal,
// passwords and keyboard-interactive answers.
type Credentials struct {
	Signers  []ssh.Signer // in the order they are offered
	Keys     []KeyInfo    // the same keys, for checks that compare them with EC2's
	Agent    agent.ExtendedAgent
	Prompter Prompter
	cfg      *Config
	user     string
	host     string
	closers  []func()
}

// Prepend offers s before every other key (a one-time key pushed with EC2
// Instance Connect).
func (c *Credentials) Prepend(s ssh.Signer) {
	c.Signers = append([]ssh.Signer{s}, c.Signers...)
}

// KeyInfo describes one local key for comparison with an EC2 key pair.
type KeyInfo struct {
	Source  string // file path, or "agent"
	Type    string
	Blob    []byte            // SSH wire-format public key
	Public  crypto.PublicKey  // nil for key types without one
	Private crypto.PrivateKey // only for unencrypted identity files
}

func keyInfo(source string, pub ssh.PublicKey, priv crypto.PrivateKey) KeyInfo {
	k := KeyInfo{Source: source, Type: pub.Type(), Blob: pub.Marshal(), Private: priv}
	if cpk, ok := pub.(ssh.CryptoPublicKey); ok {
		k.Public = cpk.CryptoPublicKey()
	}
	if p, ok := priv.(*ed25519.PrivateKey); ok { // x/crypto hands ed25519 keys out by pointer
		k.Private = *p
	}
	return k
}

// Close releases the agent connection.
func (c *Credentials) Close() {
	for _, f := range c.closers {
		f()
	}
}

// LoadCredentials gathers the keys c allows. A missing identity file is
// skipped (as in ssh(1)); an unreadable or corrupt one is a Config error.
func LoadCredentials(c *Config, p Prompter, log func(string, ...any)) (*Credentials, error) {
	cr := &Credentials{Prompter: p, cfg: c, user: c.User, host: c.HostName}
	var agentKeys []ssh.Signer
	if sock := agentSocket(c); sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			log("debug1: could not reach the agent at %s: %v", sock, err)
		} else {
			cr.closers = append(cr.closers, func() { conn.Close() })
			cr.Agent = agent.NewClient(conn)
			if agentKeys, err = cr.Agent.Signers(); err != nil {
				log("debug1: agent listed no keys: %v", err)
			}
		}
	}
	inAgent := func(pub ssh.PublicKey) ssh.Signer {
		for _, s := range agentKeys {
			if bytes.Equal(s.PublicKey().Marshal(), pub.Marshal()) {
				return s
			}
		}
		return nil
	}

	tokens := c.tokens()
	var certs []*ssh.Certificate
	for _, f := range c.CertificateFiles {
		path := ExpandPath(expandTokens(f, tokens))
		cert, err := readCert(path)
		if err != nil {
			log("debug1: certificate file %s: %v", path, err)
			continue
		}
		certs = append(certs, cert)
	}

	var fileKeys []ssh.PublicKey
	for _, f := range c.IdentityFiles {
		if strings.EqualFold(f, "none") {
			continue
		}
		path := ExpandPath(expandTokens(f, tokens))
		s, err := loadIdentity(path, p)
		if errors.Is(err, os.ErrNotExist) {
			log("debug1: identity file %s: not found", path)
			continue
		}
		if err != nil {
			return nil, &failure.Error{Kind: failure.Config, Op: "load identity file", Target: path, Err: err,
				Hint: "check the file given with -i or IdentityFile"}
		}
		var priv crypto.PrivateKey
		if _, locked := s.(*lockedSigner); !locked {
			if pem, err := os.ReadFile(path); err == nil {
				priv, _ = ssh.ParseRawPrivateKey(pem)
			}
		}
		cr.Keys = append(cr.Keys, keyInfo(path, s.PublicKey(), priv))
		if a := inAgent(s.PublicKey()); a != nil {
			s = a
		}
		fileKeys = append(fileKeys, s.PublicKey())
		// A certificate next to the key (key-cert.pub) or named by
		// CertificateFile is offered before the bare key, as ssh(1) does.
		if cert, err := readCert(path + "-cert.pub"); err == nil {
			certs = append(certs, cert)
		}
		for _, cert := range certs {
			if bytes.Equal(cert.Key.Marshal(), s.PublicKey().Marshal()) {
				if cs, err := ssh.NewCertSigner(cert, s); err == nil {
					cr.Signers = append(cr.Signers, cs)
				}
			}
		}
		cr.Signers = append(cr.Signers, s)
	}
	if !c.IdentitiesOnly {
		for _, a := range agentKeys {
			dup := false
			for _, k := range fileKeys {
				if bytes.Equal(k.Marshal(), a.PublicKey().Marshal()) {
					dup = true
				}
			}
			if !dup {
				cr.Signers = append(cr.Signers, a)
				cr.Keys = append(cr.Keys, keyInfo("agent", a.PublicKey(), nil))
			}
		}
	}
	return cr, nil
}

func agentSocket(c *Config) string {
	switch v := c.IdentityAgent; {
	case strings.EqualFold(v, "none"):
		return ""
	case v == "" || v == "SSH_AUTH_SOCK":
		return os.Getenv("SSH_AUTH_SOCK")
	case strings.HasPrefix(v, "$"):
		return os.Getenv(v[1:])
	default:
		return ExpandPath(v)
	}
}

func readCert(path string) (*ssh.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, err
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%s is not a certificate", path)
	}
	return cert, nil
}

// loadIdentity reads a private key. An encrypted key becomes a signer that
// asks for its passphrase only when the server has accepted its public key,
// which is when ssh(1) asks too.
func loadIdentity(path string, p Prompter) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		pub := missing.PublicKey
		if pub == nil {
			b, err := os.ReadFile(path + ".pub")
			if err != nil {
				return nil, fmt.Errorf("the key is encrypted and %s.pub is missing", path)
			}
			if pub, _, _, _, err = ssh.ParseAuthorizedKey(b); err != nil {
				return nil, fmt.Errorf("%s.pub: %w", path, err)
			}
		}
		return &lockedSigner{path: path, pem: pem, pub: pub, prompter: p}, nil
	}
	return s, err
}

// lockedSigner is an encrypted identity: its public key is known, its
// private key is decrypted on first use.
type lockedSigner struct {
	path     string
	pem      []byte
	pub      ssh.PublicKey
	prompter Prompter

	mu     sync.Mutex
	signer ssh.Signer
	err    error
}

func (l *lockedSigner) PublicKey() ssh.PublicKey { return l.pub }

func (l *lockedSigner) unlock() (ssh.Signer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.signer != nil || l.err != nil {
		return l.signer, l.err
	}
	if l.prompter == nil {
		l.err = &failure.Error{Kind: failure.AuthRejected, Msg: "identity " + l.path + " is encrypted and there is no terminal to ask for its passphrase",
			Hint: "add it to your agent with ssh-add " + l.path}
		return nil, l.err
	}
	for range 3 {
		pass, err := l.prompter.Ask("Enter passphrase for key '"+l.path+"': ", false)
		if err != nil {
			l.err = err
			return nil, err
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(l.pem, []byte(pass))
		if err == nil {
			l.signer = s
			return s, nil
		}
		if errors.Is(err, x509.IncorrectPasswordError) {
			continue
		}
		l.err = err
		return nil, err
	}
	l.err = &failure.Error{Kind: failure.AuthRejected, Msg: "wrong passphrase for " + l.path + ", three times"}
	return nil, l.err
}

func (l *lockedSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s, err := l.unlock()
	if err != nil {
		return nil, err
	}
	return s.Sign(rand, data)
}

// SignWithAlgorithm lets RSA keys use rsa-sha2-256/512 once unlocked.
func (l *lockedSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	s, err := l.unlock()
	if err != nil {
		return nil, err
	}
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	return s.Sign(rand, data)
}

// AuthCallback returns the ssh.ClientAuthCallback that offers the methods
// the server allows in ssh(1)'s order (publickey, keyboard-interactive,
// password) and ends with a failure.AuthRejected error naming what the
// server would take when nothing is left to try.
func (c *Credentials) AuthCallback() ssh.ClientAuthCallback {
	type method struct {
		name  string
		tries int
		m     ssh.AuthMethod
	}
	var methods []method
	if c.cfg.PubkeyAuth && len(c.Signers) > 0 {
		methods = append(methods, method{"publickey", 1, ssh.PublicKeys(c.Signers...)})
	}
	if c.Prompter != nil && c.cfg.KbdInteractive {
		methods = append(methods, method{"keyboard-interactive", c.cfg.PasswordPrompts, ssh.KeyboardInteractive(c.keyboardInteractive)})
	}
	if c.Prompter != nil && c.cfg.PasswordAuth {
		methods = append(methods, method{"password", c.cfg.PasswordPrompts, ssh.PasswordCallback(c.password)})
	}
	return func(ctx *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
		allowed := map[string]bool{}
		for _, a := range ctx.AllowedMethods {
			allowed[a] = true
		}
		tried := map[string]int{}
		for _, t := range ctx.TriedMethods {
			tried[t]++
		}
		for _, m := range methods {
			if allowed[m.name] && tried[m.name] < m.tries {
				return m.m, nil
			}
		}
		return nil, &failure.Error{Kind: failure.AuthRejected,
			Msg:  fmt.Sprintf("%s@%s: permission denied (%s)", c.user, c.host, strings.Join(ctx.AllowedMethods, ",")),
			Hint: c.authHint(ctx.AllowedMethods)}
	}
}

func (c *Credentials) authHint(allowed []string) string {
	if len(c.Signers) == 0 {
		return "no key was offered: give one with -i, or add it to your agent with ssh-add"
	}
	if c.Prompter == nil && (contains(allowed, "password") || contains(allowed, "keyboard-interactive")) && len(allowed) > 0 && !contains(allowed, "publickey") {
		return "the server wants a password and there is no terminal to ask on"
	}
	return fmt.Sprintf("the server accepted none of the %d keys offered for user %q: check the login user (-l) and the key (-i)", len(c.Signers), c.user)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *Credentials) password() (string, error) {
	return c.Prompter.Ask(fmt.Sprintf("%s@%s's password: ", c.user, c.host), false)
}

func (c *Credentials) keyboardInteractive(name, instruction string, questions []string, echos []bool) ([]string, error) {
	// The server's name and instruction go before its first question.
	preface := strings.TrimSpace(name + "\n" + instruction)
	if preface != "" {
		preface += "\n"
	}
	answers := make([]string, len(questions))
	for i, q := range questions {
		if i == 0 {
			q = preface + q
		}
		a, err := c.Prompter.Ask(q, echos[i])
		if err != nil {
			return nil, err
		}
		answers[i] = a
	}
	return answers, nil
}
