package connect

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ec2ssh/ec2ssh/failure"
)

// ssh_config as OpenSSH's readconf.c reads it: lines in order, Host and
// Match deciding which apply, Include, the first value of a keyword
// winning (some accumulate), and a second, final pass when a Match asks
// for one or the host name was canonicalised. Read as a stream, so a large
// file costs time in proportion and little memory.
//
// github.com/kevinburke/ssh_config is not used for this: it reads every
// word after "Match host" as a host pattern (so "Match host x exec false"
// always applies), refuses every other criterion, matches "?" as zero or
// one character, and takes seconds and a gigabyte on a 16 MB file.

// kw describes one keyword.
type kw struct {
	name string // canonical spelling
	kind kwKind
}

type kwKind int

const (
	kwSingle    kwKind = iota // the first value wins; one argument
	kwArgs                    // the first line wins; all its arguments (a list)
	kwRest                    // the first line wins; the rest of the line, raw (commands)
	kwMulti                   // every line adds (IdentityFile, LocalForward, …)
	kwMultiArgs               // every line adds all its arguments (SendEnv)
	kwIgnore                  // accepted and ignored by OpenSSH too (deprecated)
)

// keywords are OpenSSH 9.2's client keywords (ssh_config(5)), with the
// legacy spellings it still reads.
var kwTable = func() map[string]kw {
	m := map[string]kw{}
	add := func(kind kwKind, names ...string) {
		for _, n := range names {
			m[strings.ToLower(n)] = kw{n, kind}
		}
	}
	add(kwSingle, "AddKeysToAgent", "AddressFamily", "BatchMode", "BindAddress", "BindInterface", "CanonicalizeFallbackLocal",
		"CanonicalizeHostname", "CanonicalizeMaxDots", "CASignatureAlgorithms", "CheckHostIP", "Ciphers", "ClearAllForwardings",
		"Compression", "ConnectionAttempts", "ConnectTimeout", "ControlMaster", "ControlPath", "ControlPersist",
		"EnableEscapeCommandline", "EnableSSHKeysign", "EscapeChar", "ExitOnForwardFailure", "FingerprintHash",
		"ForkAfterAuthentication", "ForwardAgent", "ForwardX11", "ForwardX11Timeout", "ForwardX11Trusted", "GatewayPorts",
		"GSSAPIAuthentication", "GSSAPIClientIdentity", "GSSAPIDelegateCredentials", "GSSAPIKeyExchange", "GSSAPIRenewalForcesRekey",
		"GSSAPIServerIdentity", "GSSAPITrustDns", "GSSAPIKexAlgorithms", "HashKnownHosts", "HostbasedAcceptedAlgorithms",
		"HostbasedAuthentication", "HostKeyAlgorithms", "HostKeyAlias", "HostName", "IdentitiesOnly", "IdentityAgent",
		"KbdInteractiveAuthentication", "KbdInteractiveDevices", "KexAlgorithms", "LogLevel", "MACs",
		"NoHostAuthenticationForLocalhost", "NumberOfPasswordPrompts", "PasswordAuthentication", "PermitLocalCommand",
		"PKCS11Provider", "Port", "PreferredAuthentications", "ProxyJump", "ProxyUseFdpass", "PubkeyAcceptedAlgorithms",
		"PubkeyAuthentication", "RequestTTY", "RequiredRSASize", "RevokedHostKeys", "SecurityKeyProvider", "ServerAliveCountMax",
		"ServerAliveInterval", "SessionType", "StdinNull", "StreamLocalBindMask", "StreamLocalBindUnlink", "StrictHostKeyChecking",
		"SyslogFacility", "TCPKeepAlive", "Tunnel", "TunnelDevice", "UpdateHostKeys", "User", "VerifyHostKeyDNS", "VisualHostKey",
		"XAuthLocation", "Tag")
	add(kwArgs, "CanonicalDomains", "CanonicalizePermittedCNAMEs", "GlobalKnownHostsFile", "UserKnownHostsFile", "IgnoreUnknown",
		"IPQoS", "LogVerbose", "PermitRemoteOpen", "RekeyLimit", "SetEnv", "ChannelTimeout")
	add(kwRest, "ProxyCommand", "RemoteCommand", "LocalCommand", "KnownHostsCommand")
	add(kwMulti, "IdentityFile", "CertificateFile", "LocalForward", "RemoteForward", "DynamicForward")
	add(kwMultiArgs, "SendEnv")
	add(kwIgnore, "Protocol", "Cipher", "FallbackToRsh", "UseRsh", "UseRoaming", "UsePrivilegedPort", "RhostsAuthentication",
		"RSAAuthentication", "RhostsRSAAuthentication", "CompressionLevel", "GlobalKnownHostsFile2", "UserKnownHostsFile2",
		"UseBlacklistedKeys", "SmartcardDevice", "IdentityFile2", "DSAAuthentication")
	// Other spellings OpenSSH reads as the same keyword.
	m["challengeresponseauthentication"] = m["kbdinteractiveauthentication"]
	m["skeyauthentication"] = m["kbdinteractiveauthentication"]
	m["tisauthentication"] = m["kbdinteractiveauthentication"]
	m["pubkeyacceptedkeytypes"] = m["pubkeyacceptedalgorithms"]
	m["hostbasedkeytypes"] = m["hostbasedacceptedalgorithms"]
	m["dsaauthentication"] = m["pubkeyauthentication"]
	m["hostname"] = kw{"HostName", kwSingle}
	return m
}()

// lookupKeyword returns the keyword's entry.
func lookupKeyword(name string) (kw, bool) {
	k, ok := kwTable[strings.ToLower(name)]
	return k, ok
}

// setting is one keyword's value as read: its arguments and, for commands,
// the rest of the line as written.
type setting struct {
	args []string
	raw  string
	from string // file:line, for messages
	// typed is the option that set it on the command line as typed
	// ("-X"), "" for -o and the files: a refusal names what was written.
	typed string
}

// settings are what the configuration says about one destination.
type settings struct {
	first map[string]setting   // kwSingle, kwArgs, kwRest: the first value obtained
	multi map[string][]setting // kwMulti, kwMultiArgs: every value, in order
	// ignored are keywords read and accepted without effect (deprecated in
	// OpenSSH, or IgnoreUnknown), for -v.
	ignored []string
}

func newSettings() *settings {
	return &settings{first: map[string]setting{}, multi: map[string][]setting{}}
}

func (s *settings) get(key string) (setting, bool) {
	v, ok := s.first[strings.ToLower(key)]
	return v, ok
}

func (s *settings) value(key, def string) string {
	if v, ok := s.get(key); ok && len(v.args) > 0 {
		return v.args[0]
	}
	return def
}

func (s *settings) all(key string) []setting { return s.multi[strings.ToLower(key)] }

// put records a keyword's value: the first wins, or it adds.
func (s *settings) put(k kw, st setting) {
	key := strings.ToLower(k.name)
	switch k.kind {
	case kwMulti, kwMultiArgs:
		s.multi[key] = append(s.multi[key], st)
	case kwIgnore:
		s.ignored = append(s.ignored, k.name)
	default:
		if _, ok := s.first[key]; !ok {
			s.first[key] = st
		}
	}
}

// splitConfigLine splits a line into its keyword and arguments as
// OpenSSH does: "Keyword args", "Keyword=args" or "Keyword = args"; args
// are split on white space, "double" or 'single' quotes keep white space,
// a backslash escapes a quote, a backslash or (outside quotes) a space,
// and an unquoted # starts a comment. raw is the rest of the line after
// the keyword (for ProxyCommand and the like).
func splitConfigLine(line string) (keyword string, args []string, raw string, err error) {
	s := strings.TrimLeft(line, " \t")
	s = strings.TrimRight(s, " \t\r\n")
	if s == "" || s[0] == '#' {
		return "", nil, "", nil
	}
	i := strings.IndexAny(s, " \t=")
	if i < 0 {
		return s, nil, "", nil
	}
	keyword = s[:i]
	rest := strings.TrimLeft(s[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	args, err = splitArgs(rest)
	return keyword, args, rest, err
}

// splitArgs is OpenSSH's argv_split for a configuration line.
func splitArgs(s string) ([]string, error) {
	var out []string
	var cur []byte
	inArg := false
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == 0 && (c == ' ' || c == '\t'):
			if inArg {
				out = append(out, string(cur))
				cur, inArg = nil, false
			}
		case quote == 0 && c == '#' && !inArg:
			return out, nil // a comment to the end of the line
		case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')):
			i++
			cur, inArg = append(cur, s[i]), true
		case quote == 0 && (c == '"' || c == '\''):
			quote, inArg = c, true
		case quote != 0 && c == quote:
			quote = 0
		default:
			cur, inArg = append(cur, c), true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inArg {
		out = append(out, string(cur))
	}
	return out, nil
}

// matchPattern is OpenSSH's match_pattern: * matches any run, ? one
// character. Host names compare without regard to case.
func matchPattern(s, pattern string) bool {
	for {
		if pattern == "" {
			return s == ""
		}
		switch pattern[0] {
		case '*':
			for pattern != "" && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if matchPattern(s[i:], pattern) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			s, pattern = s[1:], pattern[1:]
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			s, pattern = s[1:], pattern[1:]
		}
	}
}

// matchPatternList is OpenSSH's match_pattern_list: comma-separated
// patterns, each maybe negated with "!"; a negated match vetoes. It returns
// 1 for a match, -1 for a negated match, 0 for none. lower lower-cases the
// patterns (not the string), as ssh does for host names: "Host web-*"
// does not match WEB-1.
func matchPatternList(s, list string, lower bool) int {
	if lower {
		list = strings.ToLower(list)
	}
	got := 0
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if p == "" || !matchPattern(s, p) {
			continue
		}
		if neg {
			return -1
		}
		got = 1
	}
	return got
}

// matchHostPatterns applies the patterns of a Host line: any negated match
// vetoes, else any match applies.
func matchHostPatterns(host string, patterns []string) bool {
	matched := false
	for _, p := range patterns {
		switch matchPatternList(host, p, true) {
		case -1:
			return false
		case 1:
			matched = true
		}
	}
	return matched
}

// readState is what one pass of reading needs.
type readState struct {
	host         string // what Host patterns match
	originalHost string // the destination as typed
	final        bool   // the final pass
	canonical    bool   // the host name was canonicalised
	localUser    string
	home         string
	tokens       func(s string) string // %-tokens for Match exec
	wantFinal    bool                  // a Match final or canonical was seen
	out          *settings
	ignoreUnk    string // IgnoreUnknown patterns in force
	// current is what Match user/host see: the User and HostName read so far.
	userSoFar func() string
	hostSoFar func() string
	tagSoFar  func() string
	exec      func(cmd string) bool
}

// ConfigError is a configuration file's complaint, as ssh words it.
func configError(where, format string, a ...any) error {
	return &failure.Error{Kind: failure.Config, Msg: where + ": " + fmt.Sprintf(format, a...),
		Hint: "fix that line, or point ec2ssh at another file with -F"}
}

const maxIncludeDepth = 16

// readFile reads one configuration file (or "-": none) in this pass.
// user marks the user's file (Include is relative to ~/.ssh), system the
// system's (relative to /etc/ssh).
func (st *readState) readFile(path string, user bool, depth int, active, neverMatch bool) error {
	if depth > maxIncludeDepth {
		return configError(path, "Include nested too deeply")
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return st.read(f, path, user, depth, active, neverMatch)
}

// neverMatch is OpenSSH's SSHCONF_NEVERMATCH: a file Included from an
// inactive section is read and checked, but none of its sections applies.
func (st *readState) read(r io.Reader, name string, user bool, depth int, active, neverMatch bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	lineNo := 0
	for {
		line, err := br.ReadString('\n')
		if line == "" && err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		lineNo++
		where := fmt.Sprintf("%s line %d", name, lineNo)
		keyword, args, raw, perr := splitConfigLine(line)
		if perr != nil {
			return configError(where, "%v", perr)
		}
		switch strings.ToLower(keyword) {
		case "":
		case "host":
			if len(args) == 0 {
				return configError(where, "Missing Host criteria")
			}
			active = matchHostPatterns(st.host, args) && !neverMatch
		case "match":
			a, err := st.match(args, where)
			if err != nil {
				return err
			}
			active = a && !neverMatch
		case "include":
			if err := st.include(args, where, user, depth, active, neverMatch); err != nil {
				return err
			}
		default:
			if err := st.keyword(keyword, args, raw, where, active); err != nil {
				return err
			}
		}
	}
}

// include reads the files an Include line names (relative to ~/.ssh for
// the user's file, to ssh's system directory for the system's), in order.
func (st *readState) include(args []string, where string, user bool, depth int, active, neverMatch bool) error {
	if len(args) == 0 {
		return configError(where, "Include missing argument")
	}
	for _, pat := range args {
		pat = ExpandPath(pat)
		if !filepath.IsAbs(pat) {
			base := sshDir()
			if user {
				base = filepath.Join(st.home, ".ssh")
			}
			pat = filepath.Join(base, pat)
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return configError(where, "bad Include pattern %q", pat)
		}
		sort.Strings(matches)
		for _, m := range matches {
			if err := st.readFile(m, user, depth+1, active, neverMatch || !active); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// keyword takes one keyword line: checked always, recorded when active.
func (st *readState) keyword(keyword string, args []string, raw, where string, active bool) error {
	k, ok := lookupKeyword(keyword)
	if !ok {
		if st.ignoreUnk != "" && matchPatternList(strings.ToLower(keyword), st.ignoreUnk, true) == 1 {
			if active {
				st.out.ignored = append(st.out.ignored, keyword)
			}
			return nil
		}
		return configError(where, "Bad configuration option: %s", keyword)
	}
	if (k.kind == kwSingle || k.kind == kwMulti) && len(args) > 1 && !singleTakesMore[strings.ToLower(k.name)] {
		return configError(where, "keyword %s extra arguments at end of line", strings.ToLower(keyword))
	}
	if len(args) == 0 && k.kind != kwIgnore {
		return configError(where, "%s: missing argument", keyword)
	}
	if strings.EqualFold(k.name, "IgnoreUnknown") && active && st.ignoreUnk == "" {
		st.ignoreUnk = strings.Join(args, ",")
	}
	if active {
		st.out.put(k, setting{args: args, raw: raw, from: where})
	}
	return nil
}

// matchArgument evaluates a criterion that takes an argument. run is
// false when it was not evaluated: OpenSSH runs "exec" only while the line
// could still apply.
func (st *readState) matchArgument(crit, arg string, result bool) (ok, run bool) {
	switch crit {
	case "host":
		h := st.host
		if st.hostSoFar != nil {
			if hn := st.hostSoFar(); hn != "" {
				h = hn
			}
		}
		return matchPatternList(h, arg, true) == 1, true
	case "originalhost":
		return matchPatternList(st.originalHost, arg, true) == 1, true
	case "user":
		return matchPatternList(st.userSoFar(), arg, false) == 1, true
	case "localuser":
		return matchPatternList(st.localUser, arg, false) == 1, true
	case "tagged":
		return matchPatternList(st.tagSoFar(), arg, false) == 1, true
	case "localnetwork":
		return localNetworkMatches(arg), true
	case "exec":
		if !result {
			return false, false
		}
		return st.exec(st.tokens(arg)), true
	}
	return false, true
}

// singleTakesMore are keywords of one value that may be more than one word:
// forwardings ("8080 localhost:80").
var singleTakesMore = map[string]bool{"localforward": true, "remoteforward": true}

// match evaluates a Match line's criteria (ssh_config(5), "Match"): all of
// them must hold; "!" negates one.
func (st *readState) match(args []string, where string) (bool, error) {
	if len(args) == 0 {
		return false, configError(where, "Missing Match criteria")
	}
	result := true
	for i := 0; i < len(args); i++ {
		crit := strings.ToLower(args[i])
		neg := strings.HasPrefix(crit, "!")
		crit = strings.TrimPrefix(crit, "!")
		var ok bool
		switch crit {
		case "all":
			if len(args) > 1 && !(len(args) == 2 && (strings.EqualFold(args[1], "canonical") || strings.EqualFold(args[1], "final")) ||
				i > 0 && (strings.EqualFold(args[0], "canonical") || strings.EqualFold(args[0], "final"))) {
				return false, configError(where, "Match all must appear alone or with canonical or final")
			}
			ok = true
		case "canonical":
			st.wantFinal = true
			ok = st.canonical
		case "final":
			st.wantFinal = true
			ok = st.final
		case "host", "originalhost", "user", "localuser", "exec", "localnetwork", "tagged":
			if i+1 >= len(args) {
				return false, configError(where, "Match keyword %s requires argument", crit)
			}
			i++
			var run bool
			if ok, run = st.matchArgument(crit, args[i], result); !run {
				continue
			}
		default:
			return false, configError(where, "Unsupported Match attribute %s", args[i])
		}
		if neg {
			ok = !ok
		}
		result = result && ok
	}
	return result, nil
}

// localNetworkMatches reports whether an address of a local interface lies
// in one of the comma-separated CIDR blocks.
func localNetworkMatches(list string) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		for _, c := range strings.Split(list, ",") {
			neg := strings.HasPrefix(c, "!")
			_, block, err := net.ParseCIDR(strings.TrimPrefix(c, "!"))
			if err == nil && block.Contains(ipn.IP) {
				return !neg
			}
		}
	}
	return false
}

// runMatchExec runs a Match exec command through the user's shell, as ssh
// does: true when it exits 0.
func runMatchExec(cmd string) bool {
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	c := exec.Command(shell, "-c", cmd)
	c.Stdin, c.Stdout, c.Stderr = nil, nil, nil
	return c.Run() == nil
}

// connectionHash is %C: the SHA-1 of %l%h%p%r, in hex.
func connectionHash(local, host string, port int, user string) string {
	sum := sha1.Sum([]byte(local + host + strconv.Itoa(port) + user))
	return hex.EncodeToString(sum[:])
}
