package connect

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// UpdateHostKeys, as ssh(1) does it: after authentication OpenSSH's sshd
// sends every host key it has (hostkeys-00@openssh.com). When the key this
// connection was verified with is a plain line of the user's known_hosts,
// the keys that line's host lacks are asked for a proof of possession
// (hostkeys-prove-00@openssh.com, signed over this session's identifier),
// and once every proof checks out they are added and the host's keys the
// server no longer has are removed, in one atomic rewrite. Lines with
// several names or patterns are left alone, as ssh leaves them.

const (
	hostkeysAnnounce = "hostkeys-00@openssh.com"
	hostkeysProve    = "hostkeys-prove-00@openssh.com"
)

// learnHostKeys handles one announcement. It runs on its own goroutine:
// it sends a request and waits for the answer.
func (h *HostKeys) learnHostKeys(conn ssh.Conn, payload []byte) {
	if h.cfg == nil || h.cfg.UpdateHostKeys == "no" || h.verified == nil || h.NUser == 0 {
		return
	}
	if !slices.Contains(h.Files[:h.NUser], h.verified.file) {
		h.debug("debug1: UpdateHostKeys: the host key was found in %s, not in a file of yours; skipping", h.verified.file)
		return
	}
	offered, ok := h.announced(payload)
	if !ok || len(offered) == 0 {
		return
	}
	file := h.verified.file
	have, ok := h.recorded(file)
	if !ok {
		return
	}
	fresh, drop := keysDiff(offered, have)
	if len(fresh) == 0 && len(drop) == 0 {
		return
	}
	if len(fresh) > 0 {
		if err := proveHostKeys(conn, fresh); err != nil {
			h.Log("UpdateHostKeys: %v; known_hosts is left as it was", err)
			return
		}
	}
	if h.cfg.UpdateHostKeys == "ask" && !h.acceptUpdate(fresh) {
		return
	}
	var add []string
	for _, k := range fresh {
		n := h.lookupName()
		if h.Hash {
			n = hashName(n)
		}
		add = append(add, knownHostsLine(n, k))
	}
	if err := rewriteKnownHosts(file, drop, add); err != nil {
		h.Log("UpdateHostKeys: could not update %s: %v", file, err)
		return
	}
	h.debug("debug1: UpdateHostKeys: %s: %d keys added, %d removed", file, len(add), len(drop))
}

// announced reads the keys of an announcement that HostKeyAlgorithms
// allows, without certificates, types x/crypto does not know, or repeats;
// false for a malformed announcement.
func (h *HostKeys) announced(payload []byte) ([]ssh.PublicKey, bool) {
	var offered []ssh.PublicKey
	for rest := payload; len(rest) > 0; {
		blob, r, ok := sshString(rest)
		if !ok {
			h.debug("debug1: UpdateHostKeys: a malformed announcement")
			return nil, false
		}
		rest = r
		key, err := ssh.ParsePublicKey(blob)
		if err != nil {
			continue // a type x/crypto does not know
		}
		if _, isCert := key.(*ssh.Certificate); isCert {
			continue
		}
		if h.keyTypeAllowed(key) && !slices.ContainsFunc(offered, func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), key.Marshal()) }) {
			offered = append(offered, key)
		}
	}
	return offered, true
}

// recorded is what file holds for this host: plain lines naming it alone;
// false when a line names it among others or by a pattern, which ssh
// leaves alone.
func (h *HostKeys) recorded(file string) ([]knownHost, bool) {
	f, err := os.Open(file)
	if err != nil {
		return nil, false
	}
	entries, _ := parseKnownHosts(f, file)
	f.Close()
	var have []knownHost
	for _, e := range entries {
		if e.marker != "" || !e.matches(h.lookupName()) {
			continue
		}
		if len(e.hosts) != 1 || strings.ContainsAny(e.hosts[0], "*?!,") {
			h.debug("debug1: UpdateHostKeys: %s:%d names several hosts or a pattern; skipping", e.file, e.line)
			return nil, false
		}
		have = append(have, e)
	}
	return have, true
}

// keysDiff is what the server has that the file lacks, and the file's
// lines for keys the server no longer has.
func keysDiff(offered []ssh.PublicKey, have []knownHost) (fresh []ssh.PublicKey, drop []knownHost) {
	for _, k := range offered {
		if !slices.ContainsFunc(have, func(e knownHost) bool { return bytes.Equal(e.key.Marshal(), k.Marshal()) }) {
			fresh = append(fresh, k)
		}
	}
	for _, e := range have {
		if !slices.ContainsFunc(offered, func(k ssh.PublicKey) bool { return bytes.Equal(e.key.Marshal(), k.Marshal()) }) {
			drop = append(drop, e)
		}
	}
	return fresh, drop
}

// acceptUpdate asks the person, for UpdateHostKeys ask.
func (h *HostKeys) acceptUpdate(fresh []ssh.PublicKey) bool {
	if h.Prompter == nil {
		return false
	}
	var list []string
	for _, k := range fresh {
		list = append(list, "  "+keyName(k)+" "+h.fingerprint(k))
	}
	ans, err := h.Prompter.Ask(fmt.Sprintf("The server has updated its host keys.\n%s\nAccept updated hostkeys? (yes/no): ", strings.Join(list, "\n")), true)
	return err == nil && strings.EqualFold(strings.TrimSpace(ans), "yes")
}

// keyTypeAllowed: a key HostKeyAlgorithms would accept.
func (h *HostKeys) keyTypeAllowed(k ssh.PublicKey) bool {
	list := algHostKeys.or(h.cfg.HostKeyAlgorithms)
	for _, a := range algorithmsForKeyType(k.Type()) {
		if slices.Contains(list, a) {
			return true
		}
	}
	return false
}

// proveHostKeys asks the server to sign for keys and checks each
// signature against this session's identifier.
func proveHostKeys(conn ssh.Conn, keys []ssh.PublicKey) error {
	var req []byte
	for _, k := range keys {
		req = append(req, ssh.Marshal(struct{ B []byte }{k.Marshal()})...)
	}
	ok, reply, err := conn.SendRequest(hostkeysProve, true, req)
	if err != nil || !ok {
		return fmt.Errorf("the server did not prove its new host keys (%v)", err)
	}
	for _, k := range keys {
		blob, rest, ok := sshString(reply)
		if !ok {
			return errors.New("the server's proof is short")
		}
		reply = rest
		var sig ssh.Signature
		if err := ssh.Unmarshal(blob, &sig); err != nil {
			return fmt.Errorf("the server's proof is malformed: %v", err)
		}
		signed := ssh.Marshal(struct {
			Name    string
			Session []byte
			Key     []byte
		}{hostkeysProve, conn.SessionID(), k.Marshal()})
		if err := k.Verify(signed, &sig); err != nil {
			return fmt.Errorf("the server's proof for its %s key does not verify", keyName(k))
		}
	}
	return nil
}

// rewriteKnownHosts drops the lines that record drop's keys under drop's
// names and appends add, in one atomic rename under the known_hosts lock
// (khwrite.go). Lines are matched by what they say, not by number, so a
// line another writer added meanwhile moves nothing.
func rewriteKnownHosts(file string, drop []knownHost, add []string) error {
	dropped := func(line string) bool {
		e, ok := parseKnownHostLine(strings.TrimSpace(line))
		return ok && e.marker == "" && slices.ContainsFunc(drop, func(d knownHost) bool {
			return slices.Equal(d.hosts, e.hosts) && bytes.Equal(d.key.Marshal(), e.key.Marshal())
		})
	}
	return rewriteKnownHostsFile(file, func(old []byte) []byte {
		var out []string
		for _, l := range strings.Split(strings.TrimRight(string(old), "\n"), "\n") {
			if !dropped(l) {
				out = append(out, l)
			}
		}
		out = append(out, add...)
		return []byte(strings.Join(out, "\n") + "\n")
	})
}
