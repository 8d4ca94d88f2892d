package connect

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/failure"
)

// HostKeys checks a server's host key against OpenSSH known_hosts files
// (and KnownHostsCommand, RevokedHostKeys, host certificates under
// @cert-authority) under a StrictHostKeyChecking policy, and records new
// keys the way ssh(1) does, so that OpenSSH accepts the file afterwards.
type HostKeys struct {
	Name     string   // the name keys are recorded under: HostKeyAlias or the host name
	Port     int      // recorded as [name]:port when not 22 and there is no HostKeyAlias
	Files    []string // UserKnownHostsFile(s) then GlobalKnownHostsFile(s); new keys go to Files[0]
	NUser    int      // how many of Files are the user's (writable) ones
	Policy   string   // "ask", "yes", "accept-new" or "no"
	Hash     bool     // HashKnownHosts
	Prompter Prompter // asks on the terminal for "ask"; nil: no terminal
	Log      func(format string, args ...any)
	// BeforePrompt is called before a question waits on the person, so that
	// handshake deadlines can be lifted.
	BeforePrompt func()
	// Published holds the SHA256 fingerprints the host's operator publishes
	// for it (the EC2 serial console's, per region), and PublishedAt where.
	// A key among them is accepted as it is (not recorded: the table is the
	// record); a key known_hosts does not hold and that is not among them is
	// refused whatever StrictHostKeyChecking says: trusting it on first use
	// would throw the published answer away.
	Published   []string
	PublishedAt string

	cfg      *Config
	skipped  map[string]int // unreadable lines per file, said once with -v
	verified *knownHost     // the plain known_hosts line the server's key matched
}

// NewHostKeys returns the known_hosts checker for c.
func NewHostKeys(c *Config, p Prompter, log func(string, ...any)) *HostKeys {
	port := c.Port
	if c.HostKeyAlias != "" {
		// ssh(1) looks a HostKeyAlias up bare, whatever the port.
		port = 22
	}
	return &HostKeys{
		Name:     c.KnownHostsName(),
		Port:     port,
		Files:    append(append([]string(nil), c.UserKnownHostsFiles...), c.GlobalKnownHostsFiles...),
		NUser:    len(c.UserKnownHostsFiles),
		Policy:   c.StrictHostKeyChecking,
		Hash:     c.HashKnownHosts,
		Prompter: p,
		Log:      log,
		cfg:      c,
	}
}

// lookupName is the name known_hosts lines are matched against.
func (h *HostKeys) lookupName() string {
	if h.Port == 22 || h.Port == 0 {
		return h.Name
	}
	return "[" + h.Name + "]:" + strconv.Itoa(h.Port)
}

// entries reads the files and KnownHostsCommand's output (for key, which
// its tokens may name).
func (h *HostKeys) entries(key ssh.PublicKey) []knownHost {
	var all []knownHost
	for _, f := range h.Files {
		file, err := os.Open(f)
		if err != nil {
			continue
		}
		e, skipped := parseKnownHosts(file, f)
		file.Close()
		if skipped > 0 && h.cfg != nil && h.skipped == nil {
			h.skipped = map[string]int{}
		}
		if skipped > 0 && h.skipped[f] == 0 && h.skipped != nil {
			h.skipped[f] = skipped
			h.debug("debug1: %s: %d lines could not be read and were skipped", f, skipped)
		}
		all = append(all, e...)
	}
	if h.cfg != nil && h.cfg.KnownHostsCommand != "" {
		out, err := h.knownHostsCommand(key)
		if err != nil {
			h.Log("KnownHostsCommand failed: %v", err)
		} else {
			e, _ := parseKnownHosts(bytes.NewReader(out), "KnownHostsCommand")
			all = append(all, e...)
		}
	}
	return all
}

func (h *HostKeys) debug(format string, a ...any) {
	if h.cfg != nil && strings.HasPrefix(h.cfg.LogLevel, "DEBUG") && h.Log != nil {
		h.Log(format, a...)
	}
}

// knownHostsCommand runs KnownHostsCommand with its tokens expanded (%H the
// name looked up, %I its hashed form, %K the key, %f its fingerprint, %t
// its type) and returns its output.
func (h *HostKeys) knownHostsCommand(key ssh.PublicKey) ([]byte, error) {
	t := h.cfg.tokens()
	t['H'] = h.lookupName()
	t['I'] = hashName(h.lookupName())
	if key != nil {
		t['K'] = strings.TrimSpace(strings.TrimPrefix(string(ssh.MarshalAuthorizedKey(key)), key.Type()+" "))
		t['f'] = ssh.FingerprintSHA256(key)
		t['t'] = key.Type()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Split as ssh(1) splits it (quotes removed), tokens expanded per
	// word, run without a shell.
	words, err := splitArgs(h.cfg.KnownHostsCommand)
	if err != nil || len(words) == 0 {
		return nil, err
	}
	for i := range words {
		words[i] = expandTokens(words[i], t)
	}
	cmd := exec.CommandContext(ctx, words[0], words[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if errors.Is(err, syscall.ENOEXEC) {
		// A script without #!: run it with sh, as execvp(3) would.
		cmd = exec.CommandContext(ctx, "/bin/sh", words...)
		cmd.Stderr = os.Stderr
		out, err = cmd.Output()
	}
	return out, err
}

// Algorithms returns the host key algorithms to ask for: HostKeyAlgorithms
// as configured; or, by default, ssh's order with the types already
// recorded for this host first, so that a server with several keys shows
// the one that is known. Only what x/crypto implements is offered.
func (h *HostKeys) Algorithms() ([]string, error) {
	var list []string
	if h.cfg != nil {
		list = h.cfg.HostKeyAlgorithms
	}
	list = algHostKeys.or(list)
	if h.cfg == nil || !h.cfg.HostKeyAlgorithmsSet {
		var known []string
		for _, e := range h.entries(nil) {
			if e.marker == "" && e.matches(h.lookupName()) {
				for _, a := range algorithmsForKeyType(e.key.Type()) {
					if slices.Contains(list, a) && !slices.Contains(known, a) {
						known = append(known, a)
					}
				}
			}
		}
		rest := slices.DeleteFunc(slices.Clone(list), func(a string) bool { return slices.Contains(known, a) })
		list = append(known, rest...)
	}
	return offered(algHostKeys, list, xcrypto.HostKeys)
}

func algorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01}
	}
	return []string{t}
}

// Callback returns the ssh.HostKeyCallback enforcing the policy. Its errors
// are *failure.Error of kind HostKeyUnknown or HostKeyChanged.
func (h *HostKeys) Callback() ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		return h.check(key)
	}
}

func (h *HostKeys) fingerprint(key ssh.PublicKey) string {
	if h.cfg != nil && h.cfg.FingerprintHash == "md5" {
		return "MD5:" + ssh.FingerprintLegacyMD5(key)
	}
	return ssh.FingerprintSHA256(key)
}

// check judges the server's key: revocations and size first, then the
// exemptions (NoHostAuthenticationForLocalhost, a published key), then
// known_hosts (a certificate by its CA, else as its plain key).
func (h *HostKeys) check(key ssh.PublicKey) error {
	plain := key
	cert, isCert := key.(*ssh.Certificate)
	if isCert {
		plain = cert.Key
	}
	if err := h.checkRevocationList(plain, cert); err != nil {
		return err
	}
	if err := h.checkRSASize(plain); err != nil {
		return err
	}
	if h.cfg != nil && h.cfg.NoHostAuthLocalhost && h.cfg.HostKeyAlias == "" && isLocalhost(h.cfg.HostName) {
		return nil // NoHostAuthenticationForLocalhost
	}
	if !isCert && slices.Contains(h.Published, ssh.FingerprintSHA256(plain)) {
		h.debug("debug1: host key %s %s is the one published at %s", keyName(plain), ssh.FingerprintSHA256(plain), h.PublishedAt)
		return nil
	}
	entries := h.entries(key)
	if err := h.checkRevokedMarker(plain, cert, entries); err != nil {
		return err
	}
	if isCert {
		err := h.checkCertificate(cert, entries)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errNoCA):
			h.debug("debug1: the host certificate's CA is not trusted here (%v); checking its plain key", err)
		default:
			// A trusted CA's certificate that does not hold is refused, never
			// downgraded to its plain key (ssh(1) does the same).
			return inWords(&failure.Error{Kind: failure.HostKeyChanged, Msg: fmt.Sprintf("the host certificate for %s is invalid: %v", h.Name, err),
				Hint: "the server shows a certificate its CA did not issue for this host, or one expired or revoked: do not connect until its owner fixes it"},
				fatalLine(hostKeyFailed))
		}
	}
	return h.checkKnown(plain, isCert, entries)
}

// checkRevocationList applies RevokedHostKeys (cert is nil for a plain key).
func (h *HostKeys) checkRevocationList(plain ssh.PublicKey, cert *ssh.Certificate) error {
	if h.cfg == nil || h.cfg.RevokedHostKeys == "" {
		return nil
	}
	r, err := revokedKeys(h.cfg.RevokedHostKeys)
	if err != nil {
		return &failure.Error{Kind: failure.Config, Op: "read RevokedHostKeys", Target: h.cfg.RevokedHostKeys, Err: err,
			Hint: "ssh(1) refuses to connect when it cannot read the revocation list; fix or remove it"}
	}
	if r.revoked(plain) || (cert != nil && r.revoked(cert.SignatureKey)) {
		return inWords(&failure.Error{Kind: failure.HostKeyChanged,
			Msg:  fmt.Sprintf("host key %s %s for %s is revoked by %s", keyName(plain), h.fingerprint(plain), h.Name, h.cfg.RevokedHostKeys),
			Hint: "the server's key was revoked: do not connect until its owner tells you the new key"},
			append(errorLines(fmt.Sprintf("Host key %s %s revoked by file %s", keyName(plain), h.fingerprint(plain), h.cfg.RevokedHostKeys)),
				fatalLine(hostKeyFailed))...)
	}
	if cert != nil && r.certs {
		return &failure.Error{Kind: failure.HostKeyChanged,
			Msg:  "the server shows a host certificate and " + h.cfg.RevokedHostKeys + " revokes certificates, which ec2ssh cannot check",
			Hint: "use OpenSSH's ssh for this host, or a revocation list of plain keys"}
	}
	return nil
}

// checkRSASize applies RequiredRSASize to the host key.
func (h *HostKeys) checkRSASize(plain ssh.PublicKey) error {
	if h.cfg == nil || h.cfg.RequiredRSASize <= 0 {
		return nil
	}
	ck, ok := plain.(ssh.CryptoPublicKey)
	if !ok {
		return nil
	}
	if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < h.cfg.RequiredRSASize {
		return &failure.Error{Kind: failure.Algorithms, Msg: fmt.Sprintf("the server's RSA host key is %d bits, less than RequiredRSASize %d", rk.N.BitLen(), h.cfg.RequiredRSASize),
			Hint: "the server needs a larger host key"}
	}
	return nil
}

// checkRevokedMarker applies known_hosts' @revoked lines.
func (h *HostKeys) checkRevokedMarker(plain ssh.PublicKey, cert *ssh.Certificate, entries []knownHost) error {
	name := h.lookupName()
	for _, e := range entries {
		if e.marker != "@revoked" || !e.matches(name) {
			continue
		}
		if bytes.Equal(e.key.Marshal(), plain.Marshal()) || cert != nil && bytes.Equal(e.key.Marshal(), cert.SignatureKey.Marshal()) {
			fe := &failure.Error{Kind: failure.HostKeyChanged, Msg: fmt.Sprintf("host key for %s is marked as revoked in %s:%d", h.Name, e.file, e.line),
				Hint: "the server's key was revoked: do not connect until its owner tells you the new key"}
			return inWords(fe, append(errorLines(append(revokedKeyWords(name, keyName(plain)),
				fmt.Sprintf("%s host key for %s was revoked and you have requested strict checking.", keyName(plain), name))...),
				fatalLine(hostKeyFailed))...)
		}
	}
	return nil
}

// checkKnown looks the plain key up: known, changed (another key of its
// type is recorded), or unknown.
func (h *HostKeys) checkKnown(plain ssh.PublicKey, isCert bool, entries []knownHost) error {
	var same *knownHost
	var other []knownHost
	for i, e := range entries {
		if e.marker != "" || !e.matches(h.lookupName()) {
			continue
		}
		if bytes.Equal(e.key.Marshal(), plain.Marshal()) {
			if !isCert {
				h.verified = &entries[i]
			}
			return nil
		}
		if e.key.Type() == plain.Type() && same == nil {
			same = &entries[i]
		} else {
			other = append(other, e)
		}
	}
	if same != nil {
		return h.changed(plain, *same)
	}
	return h.unknown(plain, other)
}

// checkCertificate accepts a host certificate signed by a CA that a
// matching @cert-authority line names, valid now, for this host name, with
// a signature algorithm CASignatureAlgorithms allows.
// errNoCA: no @cert-authority line names the certificate's CA, so the
// certificate is judged as its plain key (as ssh(1) does).
var errNoCA = errors.New("no @cert-authority line trusts its CA")

func (h *HostKeys) checkCertificate(cert *ssh.Certificate, entries []knownHost) error {
	name := h.lookupName()
	trusted := false
	for _, e := range entries {
		if e.marker == "@cert-authority" && e.matches(name) && bytes.Equal(e.key.Marshal(), cert.SignatureKey.Marshal()) {
			trusted = true
		}
	}
	if !trusted {
		return fmt.Errorf("%w for %s", errNoCA, name)
	}
	if cert.CertType != ssh.HostCert {
		return fmt.Errorf("the server's certificate is not a host certificate")
	}
	if h.cfg != nil && cert.Signature != nil && !slices.Contains(algCASigs.or(h.cfg.CASignatureAlgorithms), cert.Signature.Format) {
		return fmt.Errorf("its CA signed with %s, which CASignatureAlgorithms does not allow", cert.Signature.Format)
	}
	checker := &ssh.CertChecker{IsHostAuthority: func(ssh.PublicKey, string) bool { return true }}
	return checker.CheckCert(h.Name, cert)
}

func (h *HostKeys) changed(key ssh.PublicKey, w knownHost) error {
	warning := changedKeyWords(h.lookupName(), keyName(key), h.fingerprint(key), h.Files[0], w)
	if h.Policy == "no" {
		// ssh(1) warns and connects, without what a man in the middle
		// could use.
		for _, l := range warning {
			h.Log("%s", l)
		}
		return h.continueUnsafe()
	}
	fe := &failure.Error{Kind: failure.HostKeyChanged,
		Msg: fmt.Sprintf("host key for %s has changed: the server sent %s %s, %s:%d has %s %s",
			h.lookupName(), keyName(key), h.fingerprint(key), w.file, w.line, keyName(w.key), h.fingerprint(w.key)),
		Hint: fmt.Sprintf("someone may be intercepting the connection, or the host was rebuilt; if you trust the new key, run: ssh-keygen -R '%s' -f %s",
			h.lookupName(), w.file)}
	return inWords(fe, append(errorLines(append(warning,
		fmt.Sprintf("Host key for %s has changed and you have requested strict checking.", h.lookupName()))...),
		fatalLine(hostKeyFailed))...)
}

// continueUnsafe is sshconnect.c's continue_unsafe: a connection whose
// host key changed goes on, under StrictHostKeyChecking no, without
// password or keyboard-interactive authentication, agent or port
// forwarding, or UpdateHostKeys; with ExitOnForwardFailure and forwarding
// asked for, it stops.
func (h *HostKeys) continueUnsafe() error {
	c := h.cfg
	if c == nil {
		return nil
	}
	cancelled := false
	for _, d := range []struct {
		on   bool
		off  func()
		line string
	}{
		{c.PasswordAuth, func() { c.PasswordAuth = false }, "Password authentication is disabled to avoid man-in-the-middle attacks."},
		{c.KbdInteractive, func() { c.KbdInteractive = false }, "Keyboard-interactive authentication is disabled to avoid man-in-the-middle attacks."},
		{c.ForwardAgent != "no", func() { c.ForwardAgent = "no" }, "Agent forwarding is disabled to avoid man-in-the-middle attacks."},
		{len(c.LocalForwards)+len(c.RemoteForwards) > 0, func() { c.LocalForwards, c.RemoteForwards = nil, nil },
			"Port forwarding is disabled to avoid man-in-the-middle attacks."},
	} {
		if d.on {
			d.off()
			h.Log("%s", d.line)
			cancelled = true
		}
	}
	if c.UpdateHostKeys != "no" {
		c.UpdateHostKeys = "no"
		h.Log("UpdateHostkeys is disabled because the host key is not trusted.")
	}
	if c.ExitOnForwardFailure && cancelled {
		return inWords(&failure.Error{Kind: failure.HostKeyChanged, Msg: "forwarding disabled due to host key check failure",
			Hint: "the host key changed: check it with the host's owner"}, fatalLine("Error: forwarding disabled due to host key check failure"))
	}
	return nil
}

func (h *HostKeys) unknown(key ssh.PublicKey, other []knownHost) error {
	fp := h.fingerprint(key)
	if len(h.Published) > 0 {
		// ssh's words are its one line; what was compared is in the hint,
		// the line under them.
		published := fmt.Sprintf("the host key of %s (%s %s) is not the one published for it (%s)", h.lookupName(), keyName(key), ssh.FingerprintSHA256(key), strings.Join(h.Published, ", "))
		return inWords(&failure.Error{Kind: failure.HostKeyUnknown, Msg: published,
			Hint: published + ": someone may be intercepting the connection; compare with " + h.PublishedAt + " and do not add this key unless its operator confirms it"},
			fatalLine(hostKeyFailed))
	}
	switch h.Policy {
	case "accept-new", "no":
		return h.record(key)
	case "ask":
		if h.Prompter != nil {
			if h.BeforePrompt != nil {
				h.BeforePrompt()
			}
			q := fmt.Sprintf("The authenticity of host '%s' can't be established.\r\n%s key fingerprint is %s.\r\n", h.lookupName(), keyName(key), fp)
			for _, o := range other {
				q += fmt.Sprintf("Host key known by the name %s of type %s in %s:%d.\r\n", h.lookupName(), keyName(o.key), o.file, o.line)
			}
			q += "Are you sure you want to continue connecting (yes/no/[fingerprint])? "
			for {
				ans, err := h.Prompter.Ask(q, true)
				if err != nil {
					return &failure.Error{Kind: failure.Canceled, Msg: "host key verification failed: " + err.Error(), Err: err}
				}
				ans = strings.TrimSpace(ans)
				switch {
				case strings.EqualFold(ans, "yes") || ans == fp:
					return h.record(key)
				case strings.EqualFold(ans, "no"):
					return inWords(&failure.Error{Kind: failure.HostKeyUnknown, Msg: "host key verification failed: you answered no",
						Hint: "compare " + fp + " with the key the host's owner gives you, then connect again"}, fatalLine(hostKeyFailed))
				}
				q = "Please type 'yes', 'no' or the fingerprint: "
			}
		}
	}
	msg := fmt.Sprintf("host key for %s is not known (%s %s) and StrictHostKeyChecking is %s", h.lookupName(), keyName(key), fp, h.Policy)
	if len(other) > 0 {
		msg = fmt.Sprintf("no %s host key is known for %s (%s %s; a %s key is, in %s:%d) and StrictHostKeyChecking is %s",
			keyName(key), h.lookupName(), keyName(key), fp, keyName(other[0].key), other[0].file, other[0].line, h.Policy)
	}
	fe := &failure.Error{Kind: failure.HostKeyUnknown, Msg: msg,
		Hint: "check the fingerprint with the host's owner, then connect once with -o StrictHostKeyChecking=accept-new"}
	if h.Policy == "yes" {
		return inWords(fe, append(errorLines(fmt.Sprintf("No %s host key is known for %s and you have requested strict checking.", keyName(key), h.lookupName())),
			fatalLine(hostKeyFailed))...)
	}
	return inWords(fe, fatalLine(hostKeyFailed))
}

// record adds key to the first user known_hosts file in one appending
// write, as ssh(1) does (khwrite.go).
func (h *HostKeys) record(key ssh.PublicKey) error {
	if h.NUser == 0 || h.Files[0] == "/dev/null" {
		return nil
	}
	file := h.Files[0]
	name := h.lookupName()
	if h.Hash {
		name = hashName(name)
	}
	if err := appendKnownHost(file, knownHostsLine(name, key)); err != nil {
		// ssh(1) connects anyway and says so; the key was accepted.
		h.Log("Failed to add the host to the list of known hosts (%s): %v", file, err)
		return nil
	}
	h.Log("Warning: Permanently added '%s' (%s) to the list of known hosts.", h.lookupName(), keyName(key))
	return nil
}

func displayHostport(name string, port int) string {
	if port == 22 {
		return name
	}
	return "[" + name + "]:" + strconv.Itoa(port)
}

// keyName is the key type as ssh(1) prints it: ED25519, ECDSA, RSA.
func keyName(k ssh.PublicKey) string {
	t := k.Type()
	switch {
	case strings.Contains(t, "ed25519"):
		return "ED25519"
	case strings.Contains(t, "ecdsa"):
		return "ECDSA"
	case strings.Contains(t, "rsa"):
		return "RSA"
	case strings.Contains(t, "dss"):
		return "DSA"
	}
	return strings.ToUpper(t)
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
