package connect

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
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

	// Settings refused where they would be used ("" when unset): a
	// security-key middleware, a PKCS#11 token, keyboard-interactive
	// devices.
	SecurityKeyProvider, PKCS11Provider, KbdInteractiveDevices string

	s *settings // everything read, for -G
}

// ConfigFiles are the files ssh_config is read from. Empty names are skipped.
type ConfigFiles struct {
	User   string // ~/.ssh/config, or the -F file
	System string // /etc/ssh/ssh_config (%ProgramData%\ssh\ssh_config); "" when -F is given, as in ssh(1)
}

// DefaultConfigFiles returns the files ssh(1) reads for the -F value given.
func DefaultConfigFiles(dashF string) ConfigFiles {
	if dashF != "" {
		return ConfigFiles{User: dashF}
	}
	return ConfigFiles{User: filepath.Join(homeDir(), ".ssh", "config"), System: filepath.Join(sshDir(), "ssh_config")}
}

// ResolveConfig computes the Config for args' destination.
func ResolveConfig(args *Args) (*Config, error) {
	return resolveConfig(args, args.Destination, DefaultConfigFiles(args.ConfigFile), args.ConfigFile != "")
}

// readPass reads the command line and the files once.
func readPass(args *Args, st *readState, files ConfigFiles, explicit bool) error {
	if args != nil {
		seen := map[string]bool{}
		for _, set := range args.Settings {
			k, ok := lookupKeyword(set.Key)
			if !ok {
				continue
			}
			// A flag's value comes first for its keyword (setFlag).
			typed := ""
			if key := strings.ToLower(k.name); !seen[key] {
				seen[key], typed = true, args.Typed(k.name)
			}
			a, err := splitArgs(set.Value)
			if err != nil || len(a) == 0 {
				a = []string{set.Value}
			}
			if k.kind == kwMulti {
				a = []string{set.Value}
			}
			st.out.put(k, setting{args: a, raw: set.Value, from: "command-line", typed: typed})
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

// refusal is a keyword ec2ssh cannot honour as ssh does: set is whether
// this configuration asks for the feature, inUse whether this connection
// would use it. Asked for and used, the keyword is refused by name; asked
// for and unused (a provider for keys nobody offers), it is accepted and
// -v says so (issue 25: "honour or refuse at the point of use").
type refusal struct {
	key        string
	set, inUse bool
	why        string // what ec2ssh lacks
	unused     string // why it does not matter here
}

// Refusals and acceptances for the keywords ec2ssh does not act on as ssh
// does (SPEC.md, "Honour or refuse"): what would change the connection's
// security or meaning is an error naming it; pure optimisations and
// settings for features that are not in use are listed for -v. Two are
// refused later, where they would be used: SecurityKeyProvider when a
// security-key identity file must sign, PKCS11Provider when the server
// has accepted none of the other keys (auth.go), and KbdInteractiveDevices
// when keyboard-interactive authentication starts.
func (c *Config) refuse() error {
	s := c.s
	val := func(k string) string { return strings.ToLower(s.value(k, "")) }
	isYes := func(k string) bool { v := val(k); return v == "yes" || v == "true" }
	session := c.SessionType != "none"
	c.SecurityKeyProvider = providerSetting(s, "SecurityKeyProvider", "internal")
	c.PKCS11Provider = providerSetting(s, "PKCS11Provider", "none")
	c.KbdInteractiveDevices = s.value("KbdInteractiveDevices", "")
	for _, r := range []refusal{
		{"ForwardX11", isYes("ForwardX11"), session, "no X11 forwarding", "no session is opened"},
		{"Tunnel", val("Tunnel") != "" && val("Tunnel") != "no", true, "no tun/tap forwarding", ""},
		{"HostbasedAuthentication", isYes("HostbasedAuthentication"), true, "no host-based authentication", ""},
		{"EnableSSHKeysign", isYes("EnableSSHKeysign"), isYes("HostbasedAuthentication"), "no ssh-keysign", "host-based authentication is off"},
		{"VerifyHostKeyDNS", val("VerifyHostKeyDNS") == "yes" || val("VerifyHostKeyDNS") == "ask", true, "no SSHFP lookups", ""},
		{"ProxyUseFdpass", isYes("ProxyUseFdpass"), c.ProxyCommand != "", "ProxyCommand's output is used as a stream", "there is no ProxyCommand"},
		{"GSSAPIKeyExchange", isYes("GSSAPIKeyExchange"), true, "no GSSAPI key exchange", ""},
		{"GSSAPIDelegateCredentials", isYes("GSSAPIDelegateCredentials"), isYes("GSSAPIAuthentication"), "no Kerberos credentials to delegate",
			"GSSAPIAuthentication is off"},
		{"BindInterface", val("BindInterface") != "", true, "no binding to an interface", ""},
		{"RekeyLimit", c.RekeySeconds > 0, true, "x/crypto rekeys by volume only; keep the size and set the time to none", ""},
		{"SecurityKeyProvider", c.SecurityKeyProvider != "", false, "no security-key middleware",
			"no security-key identity file is offered; refused by name if one must sign"},
		{"PKCS11Provider", c.PKCS11Provider != "", false, "no PKCS#11 tokens",
			"its token's keys are not offered; refused by name if the server accepts none of the others"},
		{"KbdInteractiveDevices", c.KbdInteractiveDevices != "", false, "the server's devices are used",
			"refused by name if keyboard-interactive authentication is used"},
		// Asked for by name (-M, ControlMaster yes or ask), a master is
		// refused where passengers cannot hand it their descriptors
		// (Windows); auto and autoask only share when they can.
		{"ControlMaster", !descriptorPassing && (c.ControlMaster == "yes" || c.ControlMaster == "ask"), ControlPathFor(c) != "",
			"connection sharing passes descriptors, which Windows cannot", "there is no ControlPath"},
	} {
		if err := c.refuseOne(r); err != nil {
			return err
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

// refuseOne refuses r when it is set and in use, and notes it for -v when
// it is set and unused.
func (c *Config) refuseOne(r refusal) error {
	if !r.set {
		return nil
	}
	v, _ := c.s.get(r.key)
	if r.inUse {
		return c.refused(r.key, strings.Join(v.args, " "), r.why)
	}
	c.Ignored = append(c.Ignored, fmt.Sprintf("%s %s (unused: %s)", r.key, strings.Join(v.args, " "), r.why+"; "+r.unused))
	return nil
}

// refused is the error that names a setting ec2ssh cannot honour as it
// was written: the option as typed (-X) when a flag set it, else the
// keyword and its value (-o ForwardX11=yes, a file's ForwardX11 yes).
func (c *Config) refused(key, value, why string) error {
	var v setting
	if c.s != nil {
		v, _ = c.s.get(key)
	}
	if v.typed != "" {
		return failure.Configf("run OpenSSH's ssh directly for this host, or drop the option", "option %s is not supported by ec2ssh (%s)", v.typed, why)
	}
	return refused(key, value, why, v.from)
}

// refused is the error that names a keyword ec2ssh cannot honour.
func refused(key, value, why, from string) error {
	return failure.Configf("run OpenSSH's ssh directly for this host, or drop the option", "%s %s is not supported by ec2ssh (%s)%s",
		key, value, why, fromWhere(from))
}

// providerSetting is a provider keyword's value, "" when it names the
// default (internal, none).
func providerSetting(s *settings, key, def string) string {
	v := s.value(key, def)
	if strings.EqualFold(v, def) {
		return ""
	}
	return v
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
// expands ~ (it does not read $HOME), or on Windows %USERPROFILE%.
func homeDir() string {
	u, _ := user.Current()
	return userProfileDir(runtime.GOOS, os.Getenv, u)
}

// localUser is the name ssh logs in as when no User is given.
func localUser() string { return platformLocalUser(runtime.GOOS) }

// sshDir is ssh's system directory: /etc/ssh, or %ProgramData%\ssh.
func sshDir() string { return systemSSHDir(runtime.GOOS, os.Getenv) }

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
