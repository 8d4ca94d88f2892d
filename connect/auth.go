package connect

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
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

	mu      sync.Mutex
	refusal error // a setting refused where a key needed it, for AuthCallback's end
}

// refuse keeps the first refusal a key met while signing.
func (c *Credentials) refuse(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refusal == nil {
		c.refusal = err
	}
}

func (c *Credentials) refused() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusal
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

// LoadCredentials gathers the keys c allows, in ssh(1)'s order:
// CertificateFile's certificates, identity files the agent holds (in the
// agent's order), then the agent's other keys (unless IdentitiesOnly), then
// the remaining identity files, each followed by its certificates
// (key-cert.pub, a certificate in key.pub); finally only the keys
// PubkeyAcceptedAlgorithms and
// RequiredRSASize allow. A missing identity file is skipped quietly, one
// that cannot be loaded (garbled, a FIDO key outside an agent, an
// unsupported type) with a warning through warn, as ssh(1) does; neither
// stops the connection.
func LoadCredentials(c *Config, p Prompter, log func(string, ...any)) (*Credentials, error) {
	return loadCredentials(c, p, log, log)
}

// LoadCredentialsWarn is LoadCredentials with warnings (ssh's "Load key")
// going to warn rather than the debug log.
func LoadCredentialsWarn(c *Config, p Prompter, debug, warn func(string, ...any)) (*Credentials, error) {
	return loadCredentials(c, p, debug, warn)
}

// identity is one key ssh(1) would offer.
type identity struct {
	source string        // file path, or "agent"
	pub    ssh.PublicKey // the key or certificate offered
	signer ssh.Signer    // nil until paired with a private key
	raw    crypto.PrivateKey
	why    error            // why a file's private key is unusable
	cert   *ssh.Certificate // a certificate found in path.pub
}

func loadCredentials(c *Config, p Prompter, log, warn func(string, ...any)) (*Credentials, error) {
	cr := &Credentials{Prompter: p, cfg: c, user: c.User, host: c.HostName}
	agentKeys := cr.connectAgent(c, log)
	tokens := c.tokens()
	files := cr.identityFiles(c, tokens, p, log, warn)
	ids := cr.order(c, tokens, agentKeys, files, log)
	pairCertificates(ids, agentKeys, log)
	for _, id := range ids {
		if id.signer == nil {
			if id.why != nil && id.pub != nil {
				warn("Load key \"%s\": %v", id.source, id.why)
			}
			continue
		}
		s, err := acceptedSigner(c, id)
		if err != nil {
			log("debug1: Skipping %s key %s: %v", keyTypeName(id.pub), id.source, err)
			continue
		}
		if c.AddKeysToAgent != "no" && cr.Agent != nil && id.source != "agent" {
			s = &addingSigner{Signer: s, id: id, cr: cr}
		}
		cr.Signers = append(cr.Signers, s)
	}
	return cr, nil
}

// connectAgent opens the agent IdentityAgent names, if any, and returns
// its keys. An agent that cannot be reached is noted under -v and left
// out, as ssh(1) does.
func (cr *Credentials) connectAgent(c *Config, log func(string, ...any)) []ssh.Signer {
	sock := agentSocket(c)
	if sock == "" {
		return nil
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		log("debug1: could not reach the agent at %s: %v", sock, err)
		return nil
	}
	cr.closers = append(cr.closers, func() { conn.Close() })
	cr.Agent = agent.NewClient(conn)
	keys, err := cr.Agent.Signers()
	if err != nil {
		log("debug1: agent listed no keys: %v", err)
	}
	return keys
}

// identityFiles loads IdentityFile's files, each followed by its
// certificates (a certificate in key.pub, then key-cert.pub).
func (cr *Credentials) identityFiles(c *Config, tokens map[byte]string, p Prompter, log, warn func(string, ...any)) []*identity {
	var files []*identity
	for _, f := range c.IdentityFiles {
		if strings.EqualFold(f, "none") {
			continue
		}
		path := ExpandPath(expandTokens(f, tokens))
		id, err := loadIdentityFile(path, p)
		if errors.Is(err, os.ErrNotExist) {
			log("debug1: identity file %s: not found", path)
			continue
		}
		if err != nil {
			warn("Load key \"%s\": %v", path, err)
			continue
		}
		if sk, ok := id.signer.(*securityKeySigner); ok {
			sk.provider, sk.cr = c.SecurityKeyProvider, cr
		}
		files = append(files, id)
		if id.pub != nil {
			cr.Keys = append(cr.Keys, keyInfo(path, id.pub, id.raw))
		}
		if id.cert != nil {
			files = append(files, &identity{source: path + ".pub", pub: id.cert})
		}
		// The certificate next to the key, as ssh(1) loads it.
		if cert, err := readCert(path + "-cert.pub"); err == nil {
			files = append(files, &identity{source: path + "-cert.pub", pub: cert})
		}
	}
	return files
}

// order puts the identities in ssh(1)'s order: CertificateFile's
// certificates first; then identity files the agent holds, signed by the
// agent; then the agent's other keys (unless IdentitiesOnly); then the
// rest of the files.
func (cr *Credentials) order(c *Config, tokens map[byte]string, agentKeys []ssh.Signer, files []*identity, log func(string, ...any)) []*identity {
	var preferred, fromAgent []*identity
	for _, f := range c.CertificateFiles {
		path := ExpandPath(expandTokens(f, tokens))
		cert, err := readCert(path)
		if err != nil {
			log("debug1: certificate file %s: %v", path, err)
			continue
		}
		preferred = append(preferred, &identity{source: path, pub: cert})
	}
	for _, a := range agentKeys {
		i := slices.IndexFunc(files, func(id *identity) bool {
			return id.pub != nil && bytes.Equal(id.pub.Marshal(), a.PublicKey().Marshal())
		})
		switch {
		case i >= 0:
			files[i].signer, files[i].why = a, nil
			preferred = append(preferred, files[i])
			files = slices.Delete(files, i, i+1)
		case !c.IdentitiesOnly:
			fromAgent = append(fromAgent, &identity{source: "agent", pub: a.PublicKey(), signer: a})
			cr.Keys = append(cr.Keys, keyInfo("agent", a.PublicKey(), nil))
		}
	}
	return append(append(preferred, fromAgent...), files...)
}

// pairCertificates gives each user certificate the signer of its key's
// private half: the agent's, or an identity file's.
func pairCertificates(ids []*identity, agentKeys []ssh.Signer, log func(string, ...any)) {
	privateFor := func(key ssh.PublicKey) ssh.Signer {
		for _, a := range agentKeys {
			if bytes.Equal(a.PublicKey().Marshal(), key.Marshal()) {
				return a
			}
		}
		for _, id := range ids {
			if id.signer != nil && bytes.Equal(id.signer.PublicKey().Marshal(), key.Marshal()) {
				return id.signer
			}
		}
		return nil
	}
	for _, id := range ids {
		cert, ok := id.pub.(*ssh.Certificate)
		if !ok || id.signer != nil && id.source == "agent" {
			continue
		}
		if cert.CertType != ssh.UserCert {
			log("debug1: %s is not a user certificate", id.source)
			continue
		}
		if base := privateFor(cert.Key); base != nil {
			id.signer = base
		} else if id.why == nil {
			id.why = fmt.Errorf("no private key for the certificate")
		}
	}
}

func keyTypeName(k ssh.PublicKey) string {
	if k == nil {
		return "unknown"
	}
	return k.Type()
}

// acceptedSigner limits id's signer to the signature algorithms
// PubkeyAcceptedAlgorithms allows (a certificate by its certificate
// algorithms), and refuses RSA keys smaller than RequiredRSASize.
func acceptedSigner(c *Config, id *identity) (ssh.Signer, error) {
	allowed := algPubkeys.or(c.PubkeyAlgorithms)
	cert, isCert := id.pub.(*ssh.Certificate)
	base := id.pub
	if isCert {
		base = cert.Key
	}
	if cpk, ok := base.(ssh.CryptoPublicKey); ok {
		if rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey); ok && c.RequiredRSASize > 0 && rk.N.BitLen() < c.RequiredRSASize {
			return nil, fmt.Errorf("RSA key too small (%d bits, RequiredRSASize is %d)", rk.N.BitLen(), c.RequiredRSASize)
		}
	}
	var algs []string
	for _, a := range algorithmsForKeyType(id.pub.Type()) {
		if slices.Contains(allowed, a) {
			algs = append(algs, underlyingAlgorithm(a))
		}
	}
	if base.Type() == ssh.KeyAlgoRSA {
		// ssh-rsa (SHA-1) is offered only when asked for by name.
		name := ssh.KeyAlgoRSA
		if isCert {
			name = ssh.CertAlgoRSAv01
		}
		if slices.Contains(allowed, name) {
			algs = append(algs, ssh.KeyAlgoRSA)
		}
	}
	if len(algs) == 0 {
		return nil, fmt.Errorf("its algorithm is not in PubkeyAcceptedAlgorithms")
	}
	s := id.signer
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		ms, err := ssh.NewSignerWithAlgorithms(as, algs)
		if err != nil {
			return nil, err
		}
		s = ms
	}
	if isCert {
		return ssh.NewCertSigner(cert, s)
	}
	return s, nil
}

// underlyingAlgorithm is the signature algorithm of a certificate
// algorithm (rsa-sha2-512-cert-v01@openssh.com signs with rsa-sha2-512).
func underlyingAlgorithm(a string) string {
	switch a {
	case ssh.CertAlgoRSASHA512v01:
		return ssh.KeyAlgoRSASHA512
	case ssh.CertAlgoRSASHA256v01:
		return ssh.KeyAlgoRSASHA256
	case ssh.CertAlgoRSAv01:
		return ssh.KeyAlgoRSA
	}
	return strings.Replace(a, "-cert-v01@openssh.com", "", 1)
}

// loadIdentityFile reads an identity as ssh(1) does: its public key from
// the file or from path.pub (so that a key the agent holds can be named by
// its .pub alone), its private key when it can be read. os.ErrNotExist
// when neither exists; another error when nothing usable is there.
func loadIdentityFile(path string, p Prompter) (*identity, error) {
	id := &identity{source: path}
	pemBytes, err := os.ReadFile(path)
	pubBytes, pubErr := os.ReadFile(path + ".pub")
	if err != nil && pubErr != nil {
		return nil, err
	}
	if pubErr == nil {
		if pub, _, _, _, err := ssh.ParseAuthorizedKey(pubBytes); err == nil {
			id.pub = pub
		}
	}
	if err != nil {
		// Only path.pub: usable if the agent holds the key.
		id.why = fmt.Errorf("no private key (only %s.pub)", path)
		if id.pub == nil {
			return nil, fmt.Errorf("%s.pub: invalid format", path)
		}
		return id, nil
	}
	// The file itself may be a public key (IdentityFile ~/.ssh/key.pub,
	// as agents that keep keys elsewhere have it set up).
	if pub, _, _, _, err := ssh.ParseAuthorizedKey(pemBytes); err == nil {
		id.pub = pub
		id.why = fmt.Errorf("it is a public key and the agent does not hold its private key")
		if cert, ok := pub.(*ssh.Certificate); ok {
			id.pub = cert
		}
		return id, nil
	}
	signer, err := loadIdentity(path, pemBytes, p)
	if err != nil && isSecurityKey(id.pub, pemBytes) {
		return securityKeyIdentity(id, pemBytes), nil
	}
	if err != nil {
		why := err
		if strings.Contains(err.Error(), "unsupported key type") || strings.Contains(err.Error(), "unhandled key type") {
			why = fmt.Errorf("ec2ssh cannot use this key type from a file (%v); add it to your agent with ssh-add", err)
		} else if !strings.Contains(err.Error(), "encrypted") {
			why = errors.New("invalid format")
		}
		if id.pub == nil {
			return nil, why
		}
		id.why = why
		return id, nil
	}
	if pubCert, ok := id.pub.(*ssh.Certificate); ok && bytes.Equal(pubCert.Key.Marshal(), signer.PublicKey().Marshal()) {
		// key.pub holds the key's certificate: offered after the key.
		id.cert = pubCert
	}
	id.pub, id.signer = signer.PublicKey(), signer
	if _, locked := signer.(*lockedSigner); !locked {
		id.raw, _ = ssh.ParseRawPrivateKey(pemBytes)
	}
	return id, nil
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

// loadIdentity parses a private key. An encrypted key becomes a signer
// that asks for its passphrase only when the server has accepted its
// public key, which is when ssh(1) asks too.
func loadIdentity(path string, pem []byte, p Prompter) (ssh.Signer, error) {
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
	raw    crypto.PrivateKey
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
			l.raw, _ = ssh.ParseRawPrivateKeyWithPassphrase(l.pem, []byte(pass))
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

// addingSigner adds an identity file's key to the agent the first time it
// signs, as AddKeysToAgent asks: with a lifetime, with confirmation, or
// after asking the person.
type addingSigner struct {
	ssh.Signer
	id   *identity
	cr   *Credentials
	once sync.Once
}

func (a *addingSigner) add() {
	a.once.Do(func() {
		raw := a.id.raw
		if l, ok := a.id.signer.(*lockedSigner); ok {
			l.mu.Lock()
			raw = l.raw
			l.mu.Unlock()
		}
		if raw == nil {
			return
		}
		if p, ok := raw.(*ed25519.PrivateKey); ok {
			raw = *p
		}
		mode := a.cr.cfg.AddKeysToAgent
		key := agent.AddedKey{PrivateKey: raw, Comment: a.id.source}
		switch mode {
		case "confirm":
			key.ConfirmBeforeUse = true
		case "ask":
			if a.cr.Prompter == nil {
				return
			}
			ans, err := a.cr.Prompter.Ask(fmt.Sprintf("Add key %s (%s) to agent? (yes/no) ", a.id.source, ssh.FingerprintSHA256(a.id.pub)), true)
			if err != nil || !strings.EqualFold(strings.TrimSpace(ans), "yes") {
				return
			}
		case "yes":
		default:
			n, _ := strconv.Atoi(mode)
			key.LifetimeSecs = uint32(n)
		}
		if cert, ok := a.id.pub.(*ssh.Certificate); ok {
			key.Certificate = cert
		}
		a.cr.Agent.Add(key)
	})
}

// Algorithms keeps the algorithms acceptedSigner chose.
func (a *addingSigner) Algorithms() []string {
	if ms, ok := a.Signer.(ssh.MultiAlgorithmSigner); ok {
		return ms.Algorithms()
	}
	return algorithmsForKeyType(a.PublicKey().Type())
}

func (a *addingSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	sig, err := a.Signer.Sign(rand, data)
	if err == nil {
		a.add()
	}
	return sig, err
}

func (a *addingSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	as, ok := a.Signer.(ssh.AlgorithmSigner)
	if !ok {
		return a.Sign(rand, data)
	}
	sig, err := as.SignWithAlgorithm(rand, data, algorithm)
	if err == nil {
		a.add()
	}
	return sig, err
}

// DefaultPreferredAuthentications is ssh(1)'s order of methods.
var DefaultPreferredAuthentications = []string{"gssapi-with-mic", "hostbased", "publickey", "keyboard-interactive", "password"}

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
	available := map[string]method{}
	if c.cfg.PubkeyAuth && len(c.Signers) > 0 {
		available["publickey"] = method{"publickey", 1, ssh.PublicKeys(c.Signers...)}
	}
	if c.Prompter != nil && c.cfg.KbdInteractive {
		available["keyboard-interactive"] = method{"keyboard-interactive", c.cfg.PasswordPrompts, ssh.KeyboardInteractive(c.keyboardInteractive)}
	}
	if c.Prompter != nil && c.cfg.PasswordAuth {
		available["password"] = method{"password", c.cfg.PasswordPrompts, ssh.PasswordCallback(c.password)}
	}
	// PreferredAuthentications sets the order, and a method it leaves out
	// is never used (ssh(1)'s default order is gssapi-with-mic, hostbased,
	// publickey, keyboard-interactive, password).
	order := c.cfg.PreferredAuthentications
	if len(order) == 0 {
		order = DefaultPreferredAuthentications
	}
	var methods []method
	for _, name := range order {
		if m, ok := available[strings.TrimSpace(name)]; ok {
			methods = append(methods, m)
			delete(available, name)
		}
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
			if m.name == "password" && !c.cfg.PasswordAuth || m.name == "keyboard-interactive" && !c.cfg.KbdInteractive {
				continue // turned off since, by a changed host key (HostKeys.continueUnsafe)
			}
			if allowed[m.name] && tried[m.name] < m.tries {
				if m.name == "keyboard-interactive" && c.cfg.KbdInteractiveDevices != "" {
					// Refused where it would be used (Config.refuse).
					return nil, c.cfg.refused("KbdInteractiveDevices", c.cfg.KbdInteractiveDevices, "the server's devices are used")
				}
				return m.m, nil
			}
		}
		if err := c.refused(); err != nil {
			return nil, err // the server accepted a key ec2ssh cannot sign with
		}
		if c.cfg.PKCS11Provider != "" && allowed["publickey"] && c.cfg.PubkeyAuth {
			// ssh(1) would offer the token's keys too: the connection
			// needs the provider ec2ssh cannot load.
			return nil, c.cfg.refused("PKCS11Provider", c.cfg.PKCS11Provider, "no PKCS#11 tokens; the server accepted none of the other keys")
		}
		return nil, inWords(&failure.Error{Kind: failure.AuthRejected,
			Msg:  fmt.Sprintf("%s@%s: permission denied (%s)", c.user, c.host, strings.Join(ctx.AllowedMethods, ",")),
			Hint: c.authHint(ctx.AllowedMethods)},
			fatalLine(fmt.Sprintf("%s@%s: Permission denied (%s).", c.user, c.host, strings.Join(ctx.AllowedMethods, ","))))
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
