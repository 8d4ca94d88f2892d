package connect

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ec2ssh/ec2ssh/failure"
)

// HostKeys checks a server's host key against OpenSSH known_hosts files
// under a StrictHostKeyChecking policy, and records new keys the way ssh(1)
// does, so that OpenSSH accepts the file afterwards.
type HostKeys struct {
	Name     string   // the name keys are recorded under: HostKeyAlias or the host name
	Port     int      // 22 is recorded as a bare name, others as [name]:port
	Files    []string // UserKnownHostsFile(s) then GlobalKnownHostsFile(s); new keys go to Files[0]
	NUser    int      // how many of Files are the user's (writable) ones
	Policy   string   // "ask", "yes", "accept-new" or "no"
	Hash     bool     // HashKnownHosts
	Prompter Prompter // asks on the terminal for "ask"; nil: no terminal
	Log      func(format string, args ...any)
	// BeforePrompt is called before a question waits on the person, so that
	// handshake deadlines can be lifted.
	BeforePrompt func()
}

// NewHostKeys returns the known_hosts checker for c.
func NewHostKeys(c *Config, p Prompter, log func(string, ...any)) *HostKeys {
	return &HostKeys{
		Name:     c.KnownHostsName(),
		Port:     c.Port,
		Files:    append(append([]string(nil), c.UserKnownHostsFiles...), c.GlobalKnownHostsFiles...),
		NUser:    len(c.UserKnownHostsFiles),
		Policy:   c.StrictHostKeyChecking,
		Hash:     c.HashKnownHosts,
		Prompter: p,
		Log:      log,
	}
}

func (h *HostKeys) hostport() string { return net.JoinHostPort(h.Name, strconv.Itoa(h.Port)) }

// pseudoAddr stands in for the remote address: the key is looked up by
// name (the port may be a tunnel or a jump host's channel).
func (h *HostKeys) pseudoAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero, Port: h.Port} }

func (h *HostKeys) db() (ssh.HostKeyCallback, error) {
	var existing []string
	for _, f := range h.Files {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			existing = append(existing, f)
		}
	}
	if len(existing) == 0 {
		return nil, nil
	}
	cb, err := knownhosts.New(existing...)
	if err != nil {
		return nil, &failure.Error{Kind: failure.Config, Op: "read known hosts", Err: err,
			Hint: "fix or remove the malformed line in that file"}
	}
	return cb, nil
}

// Algorithms returns the host key algorithms to ask for, so that a server
// with several host keys shows the one already recorded (as ssh(1) orders
// them); nil when none is recorded.
func (h *HostKeys) Algorithms() []string {
	cb, err := h.db()
	if err != nil || cb == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(cb(h.hostport(), h.pseudoAddr(), probeKey{}), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		for _, a := range algorithmsForKeyType(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	}
	return []string{t}
}

// probeKey is a key no known_hosts line can hold; checking it lists the
// recorded keys in the KeyError.
type probeKey struct{}

func (probeKey) Type() string                        { return "ec2ssh-probe" }
func (probeKey) Marshal() []byte                     { return []byte("ec2ssh-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// Callback returns the ssh.HostKeyCallback enforcing the policy. Its errors
// are *failure.Error of kind HostKeyUnknown or HostKeyChanged.
func (h *HostKeys) Callback() ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		return h.check(key)
	}
}

func (h *HostKeys) check(key ssh.PublicKey) error {
	cb, err := h.db()
	if err != nil {
		return err
	}
	var ke *knownhosts.KeyError
	if cb != nil {
		err = cb(h.hostport(), h.pseudoAddr(), key)
		var re *knownhosts.RevokedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &re):
			return &failure.Error{Kind: failure.HostKeyChanged, Msg: fmt.Sprintf("host key for %s is marked as revoked in %s:%d", h.Name, re.Revoked.Filename, re.Revoked.Line),
				Hint: "the server's key was revoked: do not connect until its owner tells you the new key"}
		case !errors.As(err, &ke):
			return &failure.Error{Kind: failure.Config, Op: "check known hosts", Err: err}
		}
	}
	if ke != nil && len(ke.Want) > 0 {
		return h.changed(key, ke.Want)
	}
	return h.unknown(key)
}

func (h *HostKeys) changed(key ssh.PublicKey, want []knownhosts.KnownKey) error {
	w := want[0]
	if h.Policy == "no" {
		h.Log("Warning: the %s host key for %s has changed (was %s in %s:%d); continuing because StrictHostKeyChecking is no.",
			keyName(key), h.Name, ssh.FingerprintSHA256(w.Key), w.Filename, w.Line)
		return nil
	}
	return &failure.Error{Kind: failure.HostKeyChanged,
		Msg: fmt.Sprintf("host key for %s has changed: the server sent %s %s, %s:%d has %s %s",
			displayHostport(h.Name, h.Port), keyName(key), ssh.FingerprintSHA256(key), w.Filename, w.Line, keyName(w.Key), ssh.FingerprintSHA256(w.Key)),
		Hint: fmt.Sprintf("someone may be intercepting the connection, or the host was rebuilt; if you trust the new key, run: ssh-keygen -R '%s' -f %s",
			knownhosts.Normalize(h.hostport()), w.Filename)}
}

func (h *HostKeys) unknown(key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	switch h.Policy {
	case "accept-new", "no":
		return h.record(key)
	case "ask":
		if h.Prompter != nil {
			if h.BeforePrompt != nil {
				h.BeforePrompt()
			}
			q := fmt.Sprintf("The authenticity of host '%s' can't be established.\r\n%s key fingerprint is %s.\r\n"+
				"Are you sure you want to continue connecting (yes/no/[fingerprint])? ", displayHostport(h.Name, h.Port), keyName(key), fp)
			for {
				ans, err := h.Prompter.Ask(q, true)
				if err != nil {
					break
				}
				ans = strings.TrimSpace(ans)
				switch {
				case strings.EqualFold(ans, "yes") || ans == fp:
					return h.record(key)
				case strings.EqualFold(ans, "no"):
					return &failure.Error{Kind: failure.HostKeyUnknown, Msg: "host key verification failed: you answered no",
						Hint: "compare " + fp + " with the key the host's owner gives you, then connect again"}
				}
				q = "Please type 'yes', 'no' or the fingerprint: "
			}
		}
	}
	return &failure.Error{Kind: failure.HostKeyUnknown,
		Msg:  fmt.Sprintf("host key for %s is not known (%s %s) and StrictHostKeyChecking is %s", displayHostport(h.Name, h.Port), keyName(key), fp, h.Policy),
		Hint: "check the fingerprint with the host's owner, then connect once with -o StrictHostKeyChecking=accept-new"}
}

// record appends key to the first user known_hosts file with one write, so
// that a failure leaves no half-written line behind.
func (h *HostKeys) record(key ssh.PublicKey) error {
	if h.NUser == 0 || h.Files[0] == "/dev/null" {
		return nil
	}
	file := h.Files[0]
	name := knownhosts.Normalize(h.hostport())
	if h.Hash {
		name = knownhosts.HashHostname(name)
	}
	line := knownhosts.Line([]string{name}, key) + "\n"
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		h.Log("Failed to add the host to the list of known hosts (%s): %v", file, err)
		return nil
	}
	if err := appendLine(file, line); err != nil {
		// ssh(1) connects anyway and says so; the key was accepted.
		h.Log("Failed to add the host to the list of known hosts (%s): %v", file, err)
		return nil
	}
	h.Log("Warning: Permanently added '%s' (%s) to the list of known hosts.", knownhosts.Normalize(h.hostport()), keyName(key))
	return nil
}

func appendLine(file, line string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// A file that does not end in a newline would glue our line onto its last.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		if last, err := lastByte(file); err == nil && last != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func lastByte(file string) (byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	b := make([]byte, 1)
	_, err = f.ReadAt(b, st.Size()-1)
	return b[0], err
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
