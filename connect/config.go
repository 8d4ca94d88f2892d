package connect

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Config is what ssh_config(5) and the command line say about one
// destination, resolved the way ssh(1) resolves it (readconf.go):
// command-line values first, then the user's file (or -F), then the system
// file; for single-valued keywords the first value wins, multi-valued ones
// accumulate.
type Config struct {
	Alias    string // the destination as typed
	HostName string
	User     string
	UserSet  bool // User came from the command line or a file, not the local user name
	Port     int

	IdentityFiles    []string // unexpanded, in order; see ExpandPath
	IdentitiesOnly   bool
	IdentityAgent    string
	CertificateFiles []string
	PubkeyAuth       bool
	PasswordAuth     bool
	KbdInteractive   bool
	PasswordPrompts  int
	BatchMode        bool
	// PreferredAuthentications is the order methods are tried in; methods
	// it leaves out are not tried.
	PreferredAuthentications []string
	AddKeysToAgent           string // "no", "yes", "confirm", "ask", or a lifetime in seconds

	UserKnownHostsFiles   []string // expanded
	GlobalKnownHostsFiles []string
	StrictHostKeyChecking string // "ask", "yes", "accept-new" or "no"
	HostKeyAlias          string
	HashKnownHosts        bool
	KnownHostsCommand     string // unexpanded: its tokens name the key offered
	RevokedHostKeys       string // expanded
	UpdateHostKeys        string // "yes", "no" or "ask"
	NoHostAuthLocalhost   bool
	CheckHostIP           bool
	FingerprintHash       string // "sha256" or "md5"
	VisualHostKey         bool
	RequiredRSASize       int

	// Algorithms as OpenSSH resolves them (ssh -G prints these).
	Ciphers, MACs, KexAlgorithms, HostKeyAlgorithms, PubkeyAlgorithms, CASignatureAlgorithms, HostbasedAlgorithms []string
	HostKeyAlgorithmsSet                                                                                          bool // configured, so not reordered by the known keys
	RekeyBytes                                                                                                    int64
	RekeySeconds                                                                                                  int64

	ConnectTimeout      time.Duration // 0: the system's TCP timeout
	ConnectionAttempts  int
	ServerAliveInterval time.Duration
	ServerAliveSet      bool // ServerAliveInterval was given (or BatchMode set it)
	ServerAliveCountMax int
	AddressFamily       string // "any", "inet" or "inet6"
	BindAddress         string
	BindInterface       string

	RequestTTY    string // "auto", "yes", "no" or "force"
	SessionType   string // "default", "none" or "subsystem"
	RemoteCommand string
	StdinNull     bool
	ForkAfterAuth bool
	SendEnv       []string
	SetEnv        []string // NAME=VALUE, quotes removed
	ForwardAgent  string   // "no", "yes", or a socket path
	Compression   bool
	LogLevel      string
	ProxyJump     string
	ProxyCommand  string
	EscapeChar    string // "~", "none", or the character
	Tag           string

	LocalForwards         []string
	RemoteForwards        []string
	DynamicForwards       []string
	ClearAllForwardings   bool
	ExitOnForwardFailure  bool
	GatewayPorts          bool
	StreamLocalBindUnlink bool
	StreamLocalBindMask   string // octal, as ssh_config writes it

	ControlMaster, ControlPath, ControlPersist string

	// Ignored are keywords set for this host that ec2ssh does not act on
	// (optimisations, deprecated keywords, IgnoreUnknown), for -v.
	Ignored []string

	unsupported error

	// PermitRemoteOpen limits where a remote dynamic forwarding (-R port)
	// may connect: nil for any, empty for none, else host:port patterns.
	PermitRemoteOpen []string

	// LocalCommand runs here after the connection is made, when
	// PermitLocalCommand is yes ("" otherwise).
	LocalCommand string

	s *settings // everything read, for -G
}

// ConfigFiles are the files ssh_config is read from. Empty names are skipped.
type ConfigFiles struct {
	User   string // ~/.ssh/config, or the -F file
	System string // /etc/ssh/ssh_config; "" when -F is given, as in ssh(1)
}

// DefaultConfigFiles returns the files ssh(1) reads for the -F value given.
func DefaultConfigFiles(dashF string) ConfigFiles {
	if dashF != "" {
		return ConfigFiles{User: dashF}
	}
	return ConfigFiles{User: filepath.Join(homeDir(), ".ssh", "config"), System: "/etc/ssh/ssh_config"}
}

// ResolveConfig computes the Config for args' destination.
func ResolveConfig(args *Args) (*Config, error) {
	return resolveConfig(args, args.Destination, DefaultConfigFiles(args.ConfigFile), args.ConfigFile != "")
}

// readPass reads the command line and the files once.
func readPass(args *Args, st *readState, files ConfigFiles, explicit bool) error {
	if args != nil {
		for _, set := range args.Settings {
			k, ok := lookupKeyword(set.Key)
			if !ok {
				continue
			}
			a, err := splitArgs(set.Value)
			if err != nil || len(a) == 0 {
				a = []string{set.Value}
			}
			if k.kind == kwMulti {
				a = []string{set.Value}
			}
			st.out.put(k, setting{args: a, raw: set.Value, from: "command-line"})
		}
	}
	for i, name := range []string{files.User, files.System} {
		if name == "" || name == "none" {
			continue
		}
		if err := st.readFile(name, i == 0 && !explicit, 0, true, false); err != nil {
			// A missing default file is normal; a missing -F file is not.
			if errors.Is(err, os.ErrNotExist) && !(explicit && i == 0) {
				continue
			}
			var fe *failure.Error
			if errors.As(err, &fe) {
				return err
			}
			return &failure.Error{Kind: failure.Config, Op: "read ssh config", Target: name, Err: err, Hint: "check the -F path"}
		}
	}
	return nil
}

func resolveConfig(args *Args, alias string, files ConfigFiles, explicit bool) (*Config, error) {
	c := &Config{Alias: alias}
	s := newSettings()
	st := &readState{host: alias, originalHost: alias, localUser: localUser(), home: homeDir(), out: s, exec: runMatchExec}
	// What Match user and Match host see while reading: the values read so
	// far, as ssh's options structure holds them.
	st.userSoFar = func() string { return s.value("User", localUser()) }
	st.hostSoFar = func() string {
		if h, ok := s.get("HostName"); ok && len(h.args) > 0 {
			return strings.ToLower(expandTokens(h.args[0], map[byte]string{'h': alias}))
		}
		return ""
	}
	st.tagSoFar = func() string { return s.value("Tag", "") }
	st.tokens = func(cmd string) string {
		host := alias
		if h := st.hostSoFar(); h != "" {
			host = h
		}
		port := s.value("Port", "22")
		u := st.userSoFar()
		return expandTokens(cmd, map[byte]string{'h': host, 'n': alias, 'p': port, 'r': u, 'u': localUser(), 'l': hostnameFQ(),
			'L': shortHostname(), 'd': homeDir(), 'i': strconv.Itoa(os.Getuid()), 'C': connectionHash(hostnameFQ(), host, atoiOr(port, 22), u),
			'k': s.value("HostKeyAlias", alias)})
	}
	if err := readPass(args, st, files, explicit); err != nil {
		return nil, err
	}
	// The host name ssh connects to: HostName with %h, lower-cased unless
	// it is an address; then canonicalised if asked.
	hostname := alias
	if h := st.hostSoFar(); h != "" {
		hostname = h
	}
	if net.ParseIP(hostname) == nil {
		hostname = strings.ToLower(hostname)
	}
	canonical := false
	if ch := strings.ToLower(s.value("CanonicalizeHostname", "no")); (ch == "yes" || ch == "always") && s.value("ProxyJump", "") == "" &&
		(ch == "always" || s.value("ProxyCommand", "none") == "none") {
		if h, ok := canonicalize(hostname, s); ok {
			hostname, canonical = h, true
		}
	}
	if st.wantFinal || canonical {
		// The final pass: the same files again, Host patterns now against
		// the host name, "Match canonical" and "Match final" true. What
		// the first pass set stays (the first value wins).
		st.host, st.final, st.canonical = hostname, true, canonical
		if err := readPass(nil, st, files, explicit); err != nil {
			return nil, err
		}
		if h := st.hostSoFar(); h != "" && !canonical {
			hostname = h
			if net.ParseIP(hostname) == nil {
				hostname = strings.ToLower(hostname)
			}
		}
	}
	c.s = s
	return c, c.interpret(args, hostname)
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

// canonicalize tries the host in each CanonicalDomains, as ssh does for a
// name with at most CanonicalizeMaxDots dots.
func canonicalize(host string, s *settings) (string, bool) {
	domains, ok := s.get("CanonicalDomains")
	if !ok || net.ParseIP(host) != nil || strings.HasSuffix(host, ".") {
		return host, false
	}
	if strings.Count(host, ".") > atoiOr(s.value("CanonicalizeMaxDots", "1"), 1) {
		return host, false
	}
	for _, d := range domains.args {
		if d == "none" {
			break
		}
		name := host + "." + strings.TrimSuffix(d, ".")
		if addrs, err := net.LookupHost(name); err == nil && len(addrs) > 0 {
			return name, true
		}
	}
	return host, false
}

// interpret turns the settings into the Config's fields.
func (c *Config) interpret(args *Args, hostname string) error {
	s := c.s
	var err error
	c.HostName = hostname
	c.User = s.value("User", "")
	c.UserSet = c.User != ""
	if c.User == "" {
		c.User = localUser()
	}
	if c.Port, err = parsePort(s.value("Port", "22")); err != nil {
		return err
	}
	for _, v := range s.all("IdentityFile") {
		c.IdentityFiles = append(c.IdentityFiles, v.args[0])
	}
	if len(c.IdentityFiles) == 0 {
		for _, n := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"} {
			c.IdentityFiles = append(c.IdentityFiles, "~/.ssh/"+n)
		}
	}
	for _, v := range s.all("CertificateFile") {
		c.CertificateFiles = append(c.CertificateFiles, v.args[0])
	}
	yesno := func(key string, def bool) (bool, error) {
		v := strings.ToLower(s.value(key, ""))
		switch v {
		case "":
			return def, nil
		case "yes", "true":
			return true, nil
		case "no", "false":
			return false, nil
		}
		return false, badValue(key, v, "yes or no")
	}
	number := func(key string, def int) (int, error) {
		v := s.value(key, "")
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, badValue(key, v, "a whole number")
		}
		return n, nil
	}
	// -W makes these default to yes, as in ssh(1).
	stdioFwd := args != nil && args.StdioFwd != ""
	for _, f := range []struct {
		dst *bool
		key string
		def bool
	}{{&c.IdentitiesOnly, "IdentitiesOnly", false}, {&c.PubkeyAuth, "PubkeyAuthentication", true}, {&c.PasswordAuth, "PasswordAuthentication", true},
		{&c.KbdInteractive, "KbdInteractiveAuthentication", true}, {&c.BatchMode, "BatchMode", false}, {&c.HashKnownHosts, "HashKnownHosts", false},
		{&c.StdinNull, "StdinNull", false}, {&c.ForkAfterAuth, "ForkAfterAuthentication", false}, {&c.Compression, "Compression", false},
		{&c.ClearAllForwardings, "ClearAllForwardings", stdioFwd}, {&c.ExitOnForwardFailure, "ExitOnForwardFailure", stdioFwd},
		{&c.GatewayPorts, "GatewayPorts", false}, {&c.NoHostAuthLocalhost, "NoHostAuthenticationForLocalhost", false},
		{&c.CheckHostIP, "CheckHostIP", false}, {&c.VisualHostKey, "VisualHostKey", false},
		{&c.StreamLocalBindUnlink, "StreamLocalBindUnlink", false}} {
		if *f.dst, err = yesno(f.key, f.def); err != nil {
			return err
		}
	}
	if c.PasswordPrompts, err = number("NumberOfPasswordPrompts", 3); err != nil {
		return err
	}
	if c.RequiredRSASize, err = number("RequiredRSASize", 1024); err != nil {
		return err
	}
	c.IdentityAgent = s.value("IdentityAgent", "")
	if v := s.value("PreferredAuthentications", ""); v != "" {
		c.PreferredAuthentications = strings.Split(v, ",")
	}
	switch v := strings.ToLower(s.value("AddKeysToAgent", "no")); v {
	case "yes", "true", "no", "false", "ask", "confirm":
		c.AddKeysToAgent = map[string]string{"true": "yes", "false": "no"}[v]
		if c.AddKeysToAgent == "" {
			c.AddKeysToAgent = v
		}
	default:
		secs, err := parseSeconds(v)
		if err != nil || secs <= 0 {
			return badValue("AddKeysToAgent", v, "yes, no, ask, confirm or a lifetime")
		}
		c.AddKeysToAgent = strconv.Itoa(int(secs / time.Second))
	}

	c.HostKeyAlias = s.value("HostKeyAlias", "")
	tokens := c.tokens()
	// Paths take ~, ${VAR} and %-tokens, as ssh(1)'s percent_dollar_expand
	// gives them.
	expandPath := func(key, v string) (string, error) {
		v, err := expandDollar(ExpandPath(v))
		if err != nil {
			return "", failure.Configf("set the variable, or change "+key, "%s: %v", key, err)
		}
		return expandTokens(v, tokens), nil
	}
	if v := c.IdentityAgent; v != "" && !strings.EqualFold(v, "none") && v != "SSH_AUTH_SOCK" {
		if c.IdentityAgent, err = expandPath("IdentityAgent", v); err != nil {
			return err
		}
	}
	ukh := "~/.ssh/known_hosts ~/.ssh/known_hosts2"
	if v, ok := s.get("UserKnownHostsFile"); ok {
		ukh = strings.Join(v.args, " ")
	}
	for _, f := range strings.Fields(ukh) {
		p, err := expandPath("UserKnownHostsFile", f)
		if err != nil {
			return err
		}
		c.UserKnownHostsFiles = append(c.UserKnownHostsFiles, p)
	}
	gkh := "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"
	if v, ok := s.get("GlobalKnownHostsFile"); ok {
		gkh = strings.Join(v.args, " ")
	}
	for _, f := range strings.Fields(gkh) {
		c.GlobalKnownHostsFiles = append(c.GlobalKnownHostsFiles, ExpandPath(expandTokens(f, tokens)))
	}
	switch v := strings.ToLower(s.value("StrictHostKeyChecking", "ask")); v {
	case "ask", "accept-new":
		c.StrictHostKeyChecking = v
	case "yes", "true":
		c.StrictHostKeyChecking = "yes"
	case "no", "off", "false":
		c.StrictHostKeyChecking = "no"
	default:
		return badValue("StrictHostKeyChecking", v, "ask, yes, accept-new or no")
	}
	if v, ok := s.get("KnownHostsCommand"); ok && !strings.EqualFold(v.raw, "none") {
		c.KnownHostsCommand = v.raw
	}
	if v := s.value("RevokedHostKeys", ""); v != "" && !strings.EqualFold(v, "none") {
		c.RevokedHostKeys = ExpandPath(expandTokens(v, tokens))
	}
	c.UpdateHostKeys = "yes" // ssh(1): yes unless known_hosts files are configured or host keys come from elsewhere
	if _, ok := s.get("UserKnownHostsFile"); ok {
		c.UpdateHostKeys = "no"
	}
	if _, ok := s.get("GlobalKnownHostsFile"); ok {
		c.UpdateHostKeys = "no"
	}
	if v := strings.ToLower(s.value("VerifyHostKeyDNS", "no")); v == "yes" || v == "ask" {
		c.UpdateHostKeys = "no"
	}
	if v, ok := s.get("UpdateHostKeys"); ok {
		switch strings.ToLower(v.args[0]) {
		case "yes", "true":
			c.UpdateHostKeys = "yes"
		case "no", "false":
			c.UpdateHostKeys = "no"
		case "ask":
			c.UpdateHostKeys = "ask"
		default:
			return badValue("UpdateHostKeys", v.args[0], "yes, no or ask")
		}
	}
	switch v := strings.ToLower(s.value("FingerprintHash", "sha256")); v {
	case "sha256", "md5":
		c.FingerprintHash = v
	default:
		return badValue("FingerprintHash", v, "sha256 or md5")
	}

	for _, a := range []struct {
		dst  *[]string
		kind algorithmKind
	}{{&c.Ciphers, algCiphers}, {&c.MACs, algMACs}, {&c.KexAlgorithms, algKex}, {&c.HostKeyAlgorithms, algHostKeys},
		{&c.PubkeyAlgorithms, algPubkeys}, {&c.CASignatureAlgorithms, algCASigs}, {&c.HostbasedAlgorithms, algHostbased}} {
		if *a.dst, err = a.kind.assemble(s.value(a.kind.keyword, "")); err != nil {
			return err
		}
	}
	_, c.HostKeyAlgorithmsSet = s.get("HostKeyAlgorithms")
	if v, ok := s.get("RekeyLimit"); ok {
		if c.RekeyBytes, err = parseBytes(v.args[0]); err != nil {
			return badValue("RekeyLimit", v.args[0], "a size (1G, 500M) or default")
		}
		if len(v.args) > 1 && v.args[1] != "none" {
			secs, err := parseSeconds(v.args[1])
			if err != nil {
				return badValue("RekeyLimit", v.args[1], "a time (1h) or none")
			}
			c.RekeySeconds = int64(secs / time.Second)
		}
	}

	if c.ConnectTimeout, err = secondsSetting(s, "ConnectTimeout"); err != nil {
		return err
	}
	if c.ConnectionAttempts, err = number("ConnectionAttempts", 1); err != nil {
		return err
	}
	c.ServerAliveSet = s.value("ServerAliveInterval", "") != "" || c.BatchMode
	if v := s.value("ServerAliveInterval", ""); v == "" && c.BatchMode {
		// ssh(1): in batch mode a dead server is noticed after 300 s × ServerAliveCountMax.
		c.ServerAliveInterval = 300 * time.Second
	} else if c.ServerAliveInterval, err = secondsSetting(s, "ServerAliveInterval"); err != nil {
		return err
	}
	if c.ServerAliveCountMax, err = number("ServerAliveCountMax", 3); err != nil {
		return err
	}
	switch v := strings.ToLower(s.value("AddressFamily", "any")); v {
	case "any", "inet", "inet6":
		c.AddressFamily = v
	default:
		return badValue("AddressFamily", v, "any, inet or inet6")
	}
	c.BindAddress = s.value("BindAddress", "")
	c.StreamLocalBindMask = s.value("StreamLocalBindMask", "0177")
	if _, err := strconv.ParseUint(c.StreamLocalBindMask, 8, 32); err != nil {
		return badValue("StreamLocalBindMask", c.StreamLocalBindMask, "an octal mask such as 0177")
	}
	c.BindInterface = s.value("BindInterface", "")

	requestTTY := s.value("RequestTTY", "auto")
	if args != nil {
		// -T, -t and -tt are assigned directly by ssh(1), ahead of any file.
		switch {
		case args.NoTTY, args.StdioFwd != "", args.NoCommand:
			requestTTY = "no"
		case args.TTY >= 2:
			requestTTY = "force"
		case args.TTY == 1:
			requestTTY = "yes"
		}
	}
	switch v := strings.ToLower(requestTTY); v {
	case "auto", "yes", "no", "force":
		c.RequestTTY = v
	case "true":
		c.RequestTTY = "yes"
	case "false":
		c.RequestTTY = "no"
	default:
		return badValue("RequestTTY", v, "auto, yes, no or force")
	}
	sessionType := s.value("SessionType", "default")
	if args != nil {
		// -N, -W and -s are assigned directly by ssh(1).
		switch {
		case args.NoCommand || args.StdioFwd != "":
			sessionType = "none"
		case args.Subsystem:
			sessionType = "subsystem"
		}
	}
	switch v := strings.ToLower(sessionType); v {
	case "default", "none", "subsystem":
		c.SessionType = v
	default:
		return badValue("SessionType", v, "default, none or subsystem")
	}
	if v, ok := s.get("RemoteCommand"); ok && !strings.EqualFold(v.raw, "none") {
		c.RemoteCommand = expandTokens(v.raw, tokens)
	}
	for _, v := range s.all("SendEnv") {
		c.SendEnv = append(c.SendEnv, v.args...)
	}
	if v, ok := s.get("SetEnv"); ok {
		for _, a := range v.args {
			if !strings.Contains(a, "=") {
				return badValue("SetEnv", a, "NAME=VALUE")
			}
			// The first value of a name wins, as in ssh(1).
			name, _, _ := strings.Cut(a, "=")
			if !slices.ContainsFunc(c.SetEnv, func(e string) bool { return strings.HasPrefix(e, name+"=") }) {
				c.SetEnv = append(c.SetEnv, a)
			}
		}
	}
	c.ForwardAgent = s.value("ForwardAgent", "no")
	switch strings.ToLower(c.ForwardAgent) {
	case "yes", "true":
		c.ForwardAgent = "yes"
	case "no", "false":
		c.ForwardAgent = "no"
	default:
		if c.ForwardAgent, err = expandPath("ForwardAgent", c.ForwardAgent); err != nil {
			return err
		}
	}
	c.LogLevel = strings.ToUpper(s.value("LogLevel", "INFO"))
	c.ProxyJump = s.value("ProxyJump", "")
	if strings.EqualFold(c.ProxyJump, "none") {
		c.ProxyJump = ""
	}
	if v, ok := s.get("ProxyCommand"); ok && !strings.EqualFold(v.raw, "none") {
		c.ProxyCommand = expandTokens(v.raw, tokens)
	}
	switch v := s.value("EscapeChar", "~"); {
	case strings.EqualFold(v, "none"):
		c.EscapeChar = "none"
	case len(v) == 1:
		c.EscapeChar = v
	case len(v) == 2 && v[0] == '^':
		c.EscapeChar = string(rune(v[1] & 31))
	default:
		return badValue("EscapeChar", v, "a single character, ^X or none")
	}
	c.Tag = s.value("Tag", "")
	switch v := strings.ToLower(s.value("ControlMaster", "no")); v {
	case "yes", "true":
		c.ControlMaster = "yes"
	case "no", "false":
		c.ControlMaster = "no"
	case "auto", "ask", "autoask":
		c.ControlMaster = v
	default:
		return badValue("ControlMaster", v, "yes, no, auto, ask or autoask")
	}
	if pl := strings.ToLower(s.value("PermitLocalCommand", "no")); pl == "yes" || pl == "true" {
		if v, ok := s.get("LocalCommand"); ok && !strings.EqualFold(v.raw, "none") {
			c.LocalCommand = v.raw
		}
	}
	if v, ok := s.get("PermitRemoteOpen"); ok {
		switch strings.ToLower(v.args[0]) {
		case "any":
		case "none":
			c.PermitRemoteOpen = []string{}
		default:
			for _, a := range v.args {
				if _, _, err := net.SplitHostPort(a); err != nil {
					return badValue("PermitRemoteOpen", a, "any, none or host:port")
				}
				c.PermitRemoteOpen = append(c.PermitRemoteOpen, a)
			}
		}
	}
	c.ControlPath = s.value("ControlPath", "")
	if c.ControlPath != "" && !strings.EqualFold(c.ControlPath, "none") {
		if _, err := expandPath("ControlPath", c.ControlPath); err != nil {
			return err
		}
	}
	c.ControlPersist = strings.ToLower(s.value("ControlPersist", "no"))
	if _, err := ControlPersistTime(c); err != nil {
		return err
	}

	if !c.ClearAllForwardings {
		// Unix socket paths in forwardings take ~, ${VAR} and tokens.
		fwd := func(kind byte, raw string) (string, error) {
			f, err := ParseForward(kind, raw)
			if err != nil || f.BindPath == "" && f.TargetPath == "" {
				return raw, nil // a bad one is reported where it is used
			}
			if f.BindPath != "" {
				if f.BindPath, err = expandPath(map[byte]string{'L': "LocalForward", 'R': "RemoteForward"}[kind], f.BindPath); err != nil {
					return "", err
				}
			}
			if f.TargetPath != "" {
				if f.TargetPath, err = expandPath(map[byte]string{'L': "LocalForward", 'R': "RemoteForward"}[kind], f.TargetPath); err != nil {
					return "", err
				}
			}
			return f.String(), nil
		}
		for _, v := range s.all("LocalForward") {
			spec, err := fwd('L', v.raw)
			if err != nil {
				return err
			}
			c.LocalForwards = append(c.LocalForwards, spec)
		}
		for _, v := range s.all("RemoteForward") {
			spec, err := fwd('R', v.raw)
			if err != nil {
				return err
			}
			c.RemoteForwards = append(c.RemoteForwards, spec)
		}
		for _, v := range s.all("DynamicForward") {
			c.DynamicForwards = append(c.DynamicForwards, v.raw)
		}
	}
	c.unsupported = c.refuse()
	return nil
}

// Supported is nil when ec2ssh can connect as this configuration says, or
// the error naming the first setting it would otherwise have to ignore.
// ssh -G prints a configuration whatever it holds; connecting checks this.
func (c *Config) Supported() error { return c.unsupported }

// tokens are the %-tokens of ssh_config(5) for this destination.
func (c *Config) tokens() map[byte]string {
	k := c.HostKeyAlias
	if k == "" {
		k = c.Alias
	}
	return map[byte]string{'h': c.HostName, 'n': c.Alias, 'p': strconv.Itoa(c.Port), 'r': c.User,
		'u': localUser(), 'l': hostnameFQ(), 'L': shortHostname(), 'd': homeDir(), 'i': strconv.Itoa(os.Getuid()),
		'C': connectionHash(hostnameFQ(), c.HostName, c.Port, c.User), 'k': k, 'j': c.ProxyJump, 'T': "NONE"}
}

// Refusals and acceptances for the keywords ec2ssh does not act on as ssh
// does (SPEC.md, "Honour or refuse"): what would change the connection's
// security or meaning is an error naming it; pure optimisations and
// settings for features that are not in use are listed for -v.
func (c *Config) refuse() error {
	s := c.s
	val := func(k string) string { return strings.ToLower(s.value(k, "")) }
	refuseIf := func(k string, bad bool, why string) error {
		if bad {
			v, _ := s.get(k)
			return failure.Configf("run OpenSSH's ssh directly for this host, or drop the option", "%s %s is not supported by ec2ssh (%s)%s",
				k, strings.Join(v.args, " "), why, fromWhere(v.from))
		}
		return nil
	}
	isYes := func(k string) bool { v := val(k); return v == "yes" || v == "true" }
	for _, r := range []error{
		refuseIf("ForwardX11", isYes("ForwardX11"), "no X11 forwarding"),
		refuseIf("Tunnel", val("Tunnel") != "" && val("Tunnel") != "no", "no tun/tap forwarding"),
		refuseIf("PKCS11Provider", val("PKCS11Provider") != "" && val("PKCS11Provider") != "none", "no PKCS#11 tokens"),
		refuseIf("SecurityKeyProvider", val("SecurityKeyProvider") != "" && val("SecurityKeyProvider") != "internal", "no security-key middleware"),
		refuseIf("HostbasedAuthentication", isYes("HostbasedAuthentication"), "no host-based authentication"),
		refuseIf("EnableSSHKeysign", isYes("EnableSSHKeysign"), "no ssh-keysign"),
		refuseIf("VerifyHostKeyDNS", val("VerifyHostKeyDNS") == "yes" || val("VerifyHostKeyDNS") == "ask", "no SSHFP lookups"),
		refuseIf("ProxyUseFdpass", isYes("ProxyUseFdpass"), "ProxyCommand's output is used as a stream"),
		refuseIf("GSSAPIKeyExchange", isYes("GSSAPIKeyExchange"), "no GSSAPI key exchange"),
		refuseIf("GSSAPIDelegateCredentials", isYes("GSSAPIDelegateCredentials"), "no Kerberos credentials to delegate"),
		refuseIf("BindInterface", val("BindInterface") != "", "no binding to an interface"),
		refuseIf("RekeyLimit", c.RekeySeconds > 0, "x/crypto rekeys by volume only; keep the size and set the time to none"),
		refuseIf("KbdInteractiveDevices", val("KbdInteractiveDevices") != "", "the server's devices are used"),
	} {
		if r != nil {
			return r
		}
	}
	// Accepted without effect: optimisations, and settings of features
	// that are off (X11, local commands, Kerberos with no ticket to use).
	for _, k := range []string{"Compression", "IPQoS", "TCPKeepAlive", "CheckHostIP",
		"VisualHostKey", "SyslogFacility", "LogVerbose", "ForwardX11Trusted", "ForwardX11Timeout", "XAuthLocation",
		"GSSAPIAuthentication",
		"GSSAPIClientIdentity", "GSSAPIServerIdentity", "GSSAPITrustDns", "GSSAPIRenewalForcesRekey", "GSSAPIKexAlgorithms",
		"HostbasedAcceptedAlgorithms", "ChannelTimeout", "TunnelDevice"} {
		if v, ok := s.get(k); ok {
			c.Ignored = append(c.Ignored, k+" "+strings.Join(v.args, " "))
		}
	}
	for _, k := range s.ignored {
		c.Ignored = append(c.Ignored, k+" (deprecated or IgnoreUnknown)")
	}
	return nil
}

func fromWhere(from string) string {
	if from == "" || from == "command-line" {
		return ""
	}
	return "; " + from
}

func secondsSetting(s *settings, key string) (time.Duration, error) {
	v := strings.ToLower(s.value(key, ""))
	if v == "" || v == "none" || v == "0" {
		return 0, nil
	}
	d, err := parseSeconds(v)
	if err != nil {
		return 0, badValue(key, v, "a number of seconds")
	}
	return d, nil
}

// parseSeconds reads an ssh_config time value: a number of seconds, or the
// sshd_config(5) TIME FORMATS (1h30m, 90s).
func parseSeconds(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	var total time.Duration
	num := ""
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch >= '0' && ch <= '9' {
			num += string(ch)
			continue
		}
		u, ok := units[ch|0x20]
		if !ok || num == "" {
			return 0, errors.New("bad time")
		}
		n, _ := strconv.Atoi(num)
		total += time.Duration(n) * u
		num = ""
	}
	if num != "" {
		n, _ := strconv.Atoi(num)
		total += time.Duration(n) * time.Second
	}
	return total, nil
}

// parseBytes reads a size: a number with an optional K, M or G; "default"
// is 0.
func parseBytes(v string) (int64, error) {
	if strings.EqualFold(v, "default") || strings.EqualFold(v, "none") {
		return 0, nil
	}
	mult := int64(1)
	switch strings.ToUpper(v[len(v)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	}
	if mult != 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("bad size")
	}
	return n * mult, nil
}

// KnownHostsName is the name host keys are recorded under: HostKeyAlias, or
// the host name.
func (c *Config) KnownHostsName() string {
	if c.HostKeyAlias != "" {
		return c.HostKeyAlias
	}
	return c.HostName
}

func badValue(key, val, want string) error {
	return failure.Configf("see ssh_config(5)", "bad %s value %q: want %s", key, val, want)
}

// expandTokens replaces ssh_config's %-tokens; %% is a literal percent and an
// unknown token is left as it is.
// expandDollar replaces ${NAME} with the environment variable, which must
// be set (ssh(1): "env var ${NAME} not defined").
func expandDollar(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		name := s[i+2 : i+j]
		v, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("env var ${%s} not defined", name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

func expandTokens(s string, tokens map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
		} else if v, ok := tokens[s[i]]; ok {
			b.WriteString(v)
		} else {
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// ExpandPath expands a leading ~ or ~/ to the home directory.
func ExpandPath(p string) string {
	if !strings.HasPrefix(p, "~") {
		return p
	}
	// As ssh's tilde_expand_filename: "~" and "~/x" from this user's home,
	// "~name/x" from name's, joined without cleaning ("~" is "HOME/").
	name, rest, _ := strings.Cut(p[1:], "/")
	home := homeDir()
	if name != "" {
		u, err := user.Lookup(name)
		if err != nil {
			return p
		}
		home = u.HomeDir
	}
	return strings.TrimSuffix(home, "/") + "/" + rest
}

// homeDir is the home directory from the password database, as ssh(1)
// expands ~ (it does not read $HOME).
func homeDir() string {
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		return u.HomeDir
	}
	if h := os.Getenv("HOME"); h != "" {
		return h
	}
	return "/"
}

func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

func shortHostname() string {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(h, ".")
	return h
}

// hostnameFQ is %l as ssh uses it in %C: the local host name.
func hostnameFQ() string {
	h, _ := os.Hostname()
	return h
}

// Print writes the resolved configuration as ssh -G does: every keyword
// ssh prints, in its order and spelling.
func (c *Config) Print(w io.Writer) { c.printG(w) }
