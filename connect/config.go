package connect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Config is what ssh_config(5) and the command line say about one
// destination, resolved the way ssh(1) resolves it: command-line values
// first, then the user's file (or -F), then the system file; for
// single-valued keywords the first value wins, multi-valued ones accumulate.
type Config struct {
	Alias    string // the destination as typed: what Host patterns match
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

	UserKnownHostsFiles   []string // expanded
	GlobalKnownHostsFiles []string
	StrictHostKeyChecking string // "ask", "yes", "accept-new" or "no"
	HostKeyAlias          string
	HashKnownHosts        bool

	ConnectTimeout      time.Duration // 0: the system's TCP timeout
	ConnectionAttempts  int
	ServerAliveInterval time.Duration
	ServerAliveSet      bool // ServerAliveInterval was given (or BatchMode set it)
	ServerAliveCountMax int
	AddressFamily       string // "any", "inet" or "inet6"

	RequestTTY    string // "auto", "yes", "no" or "force"
	SessionType   string // "default", "none" or "subsystem"
	RemoteCommand string
	StdinNull     bool
	ForkAfterAuth bool
	SendEnv       []string
	SetEnv        []string
	ForwardAgent  string // "no", "yes", or a socket path
	Compression   bool
	LogLevel      string
	ProxyJump     string
	ProxyCommand  string

	LocalForwards        []string
	RemoteForwards       []string
	DynamicForwards      []string
	ClearAllForwardings  bool
	ExitOnForwardFailure bool
	GatewayPorts         bool

	Ignored []string // keywords set for this host that ec2ssh does not act on, for -v
}

// source is one configuration file, parsed.
type source struct {
	name string
	cfg  *ssh_config.Config
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

func loadSources(files ConfigFiles, explicit bool) ([]source, error) {
	var out []source
	for i, name := range []string{files.User, files.System} {
		if name == "" || name == "none" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			// A missing default file is normal; a missing -F file is not.
			if errors.Is(err, os.ErrNotExist) && !(explicit && i == 0) {
				continue
			}
			return nil, &failure.Error{Kind: failure.Config, Op: "read ssh config", Target: name, Err: err,
				Hint: "check the -F path"}
		}
		cfg, err := decodeConfig(b)
		if err != nil {
			return nil, &failure.Error{Kind: failure.Config, Op: "parse ssh config", Target: name, Err: err,
				Hint: "fix that line, or point ec2ssh at another file with -F"}
		}
		out = append(out, source{name, cfg})
	}
	return out, nil
}

// decodeConfig parses b; the library panics on some malformed input, which
// must not take ec2ssh down with it.
func decodeConfig(b []byte) (cfg *ssh_config.Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return ssh_config.Decode(bytes.NewReader(b))
}

// ResolveConfig computes the Config for args' destination.
func ResolveConfig(args *Args) (*Config, error) {
	return resolveConfig(args, args.Destination, DefaultConfigFiles(args.ConfigFile), args.ConfigFile != "")
}

func resolveConfig(args *Args, alias string, files ConfigFiles, explicit bool) (*Config, error) {
	srcs, err := loadSources(files, explicit)
	if err != nil {
		return nil, err
	}
	r := &resolver{args: args, alias: alias, srcs: srcs}
	c := &Config{Alias: alias}

	hostname := r.first("HostName", "")
	if hostname == "" {
		hostname = alias
	}
	hostname = expandTokens(hostname, map[byte]string{'h': alias})
	// ssh(1) lower-cases the host name it will connect to.
	c.HostName = strings.ToLower(hostname)

	c.User = r.first("User", "")
	c.UserSet = c.User != ""
	if c.User == "" {
		c.User = localUser()
	}
	port := r.first("Port", "22")
	if c.Port, err = parsePort(port); err != nil {
		return nil, err
	}

	c.IdentityFiles = r.all("IdentityFile")
	if len(c.IdentityFiles) == 0 {
		for _, n := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"} {
			c.IdentityFiles = append(c.IdentityFiles, "~/.ssh/"+n)
		}
	}
	c.CertificateFiles = r.all("CertificateFile")
	if c.IdentitiesOnly, err = r.yesno("IdentitiesOnly", false); err != nil {
		return nil, err
	}
	c.IdentityAgent = r.first("IdentityAgent", "")
	if c.PubkeyAuth, err = r.yesno("PubkeyAuthentication", true); err != nil {
		return nil, err
	}
	if c.PasswordAuth, err = r.yesno("PasswordAuthentication", true); err != nil {
		return nil, err
	}
	if c.KbdInteractive, err = r.yesno("KbdInteractiveAuthentication", true); err != nil {
		return nil, err
	}
	if c.PasswordPrompts, err = r.number("NumberOfPasswordPrompts", 3); err != nil {
		return nil, err
	}
	if c.BatchMode, err = r.yesno("BatchMode", false); err != nil {
		return nil, err
	}

	tokens := map[byte]string{'h': c.HostName, 'n': alias, 'p': strconv.Itoa(c.Port), 'r': c.User,
		'u': localUser(), 'l': shortHostname(), 'L': shortHostname(), 'd': homeDir(), 'i': strconv.Itoa(os.Getuid())}
	ukh := r.first("UserKnownHostsFile", "~/.ssh/known_hosts ~/.ssh/known_hosts2")
	for _, f := range strings.Fields(ukh) {
		c.UserKnownHostsFiles = append(c.UserKnownHostsFiles, ExpandPath(expandTokens(f, tokens)))
	}
	for _, f := range strings.Fields(r.first("GlobalKnownHostsFile", "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2")) {
		c.GlobalKnownHostsFiles = append(c.GlobalKnownHostsFiles, ExpandPath(expandTokens(f, tokens)))
	}
	switch v := strings.ToLower(r.first("StrictHostKeyChecking", "ask")); v {
	case "ask", "accept-new":
		c.StrictHostKeyChecking = v
	case "yes", "true":
		c.StrictHostKeyChecking = "yes"
	case "no", "off", "false":
		c.StrictHostKeyChecking = "no"
	default:
		return nil, badValue("StrictHostKeyChecking", v, "ask, yes, accept-new or no")
	}
	c.HostKeyAlias = r.first("HostKeyAlias", "")
	if c.HashKnownHosts, err = r.yesno("HashKnownHosts", false); err != nil {
		return nil, err
	}

	if c.ConnectTimeout, err = r.seconds("ConnectTimeout"); err != nil {
		return nil, err
	}
	if c.ConnectionAttempts, err = r.number("ConnectionAttempts", 1); err != nil {
		return nil, err
	}
	c.ServerAliveSet = r.first("ServerAliveInterval", "") != "" || c.BatchMode
	if v := r.first("ServerAliveInterval", ""); v == "" && c.BatchMode {
		// ssh(1): in batch mode a dead server is noticed after 300 s × ServerAliveCountMax.
		c.ServerAliveInterval = 300 * time.Second
	} else if c.ServerAliveInterval, err = r.seconds("ServerAliveInterval"); err != nil {
		return nil, err
	}
	if c.ServerAliveCountMax, err = r.number("ServerAliveCountMax", 3); err != nil {
		return nil, err
	}
	switch v := strings.ToLower(r.first("AddressFamily", "any")); v {
	case "any", "inet", "inet6":
		c.AddressFamily = v
	default:
		return nil, badValue("AddressFamily", v, "any, inet or inet6")
	}

	requestTTY := r.first("RequestTTY", "auto")
	if args != nil {
		// -T, -t and -tt are assigned directly by ssh(1), ahead of any file.
		switch {
		case args.NoTTY:
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
		return nil, badValue("RequestTTY", v, "auto, yes, no or force")
	}
	switch v := strings.ToLower(r.first("SessionType", "default")); v {
	case "default", "none", "subsystem":
		c.SessionType = v
	default:
		return nil, badValue("SessionType", v, "default, none or subsystem")
	}
	c.RemoteCommand = r.first("RemoteCommand", "")
	if strings.EqualFold(c.RemoteCommand, "none") {
		c.RemoteCommand = ""
	}
	c.RemoteCommand = expandTokens(c.RemoteCommand, tokens)
	if c.StdinNull, err = r.yesno("StdinNull", false); err != nil {
		return nil, err
	}
	if c.ForkAfterAuth, err = r.yesno("ForkAfterAuthentication", false); err != nil {
		return nil, err
	}
	for _, v := range r.all("SendEnv") {
		c.SendEnv = append(c.SendEnv, strings.Fields(v)...)
	}
	c.SetEnv = r.all("SetEnv")
	c.ForwardAgent = r.first("ForwardAgent", "no")
	switch strings.ToLower(c.ForwardAgent) {
	case "yes", "true":
		c.ForwardAgent = "yes"
	case "no", "false":
		c.ForwardAgent = "no"
	}
	if c.Compression, err = r.yesno("Compression", false); err != nil {
		return nil, err
	}
	c.LogLevel = strings.ToUpper(r.first("LogLevel", "INFO"))
	c.ProxyJump = r.first("ProxyJump", "")
	if strings.EqualFold(c.ProxyJump, "none") {
		c.ProxyJump = ""
	}
	c.ProxyCommand = r.first("ProxyCommand", "")
	if strings.EqualFold(c.ProxyCommand, "none") {
		c.ProxyCommand = ""
	}
	if c.ProxyCommand != "" {
		c.ProxyCommand = expandTokens(c.ProxyCommand, tokens)
	}

	if c.ClearAllForwardings, err = r.yesno("ClearAllForwardings", false); err != nil {
		return nil, err
	}
	if !c.ClearAllForwardings {
		c.LocalForwards = r.all("LocalForward")
		c.RemoteForwards = r.all("RemoteForward")
		c.DynamicForwards = r.all("DynamicForward")
	}
	if c.ExitOnForwardFailure, err = r.yesno("ExitOnForwardFailure", false); err != nil {
		return nil, err
	}
	if c.GatewayPorts, err = r.yesno("GatewayPorts", false); err != nil {
		return nil, err
	}
	c.Ignored = r.ignored()
	return c, nil
}

// KnownHostsName is the name host keys are recorded under: HostKeyAlias, or
// the host name.
func (c *Config) KnownHostsName() string {
	if c.HostKeyAlias != "" {
		return c.HostKeyAlias
	}
	return c.HostName
}

// Print writes the resolved values in ssh -G's format (lower-case keyword,
// space, value), for the keywords ec2ssh acts on.
func (c *Config) Print(w io.Writer) {
	p := func(k string, v any) { fmt.Fprintf(w, "%s %v\n", k, v) }
	yn := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	secs := func(d time.Duration) string {
		if d == 0 {
			return "none"
		}
		return strconv.Itoa(int(d / time.Second))
	}
	p("host", c.Alias)
	p("user", c.User)
	p("hostname", c.HostName)
	p("port", c.Port)
	p("addressfamily", c.AddressFamily)
	p("batchmode", yn(c.BatchMode))
	p("compression", yn(c.Compression))
	p("clearallforwardings", yn(c.ClearAllForwardings))
	p("exitonforwardfailure", yn(c.ExitOnForwardFailure))
	p("gatewayports", yn(c.GatewayPorts))
	p("hashknownhosts", yn(c.HashKnownHosts))
	p("identitiesonly", yn(c.IdentitiesOnly))
	p("requesttty", map[string]string{"yes": "true", "no": "false"}[c.RequestTTY]+strings.TrimPrefix(strings.TrimPrefix(c.RequestTTY, "yes"), "no"))
	p("sessiontype", c.SessionType)
	p("stdinnull", yn(c.StdinNull))
	p("forkafterauthentication", yn(c.ForkAfterAuth))
	p("stricthostkeychecking", map[string]string{"yes": "true", "no": "false"}[c.StrictHostKeyChecking]+strings.TrimPrefix(strings.TrimPrefix(c.StrictHostKeyChecking, "yes"), "no"))
	p("connectionattempts", c.ConnectionAttempts)
	p("numberofpasswordprompts", c.PasswordPrompts)
	p("serveralivecountmax", c.ServerAliveCountMax)
	p("serveraliveinterval", int(c.ServerAliveInterval/time.Second))
	p("loglevel", c.LogLevel)
	for _, set := range []struct {
		kind  byte
		name  string
		specs []string
	}{{'L', "localforward", c.LocalForwards}, {'R', "remoteforward", c.RemoteForwards}, {'D', "dynamicforward", c.DynamicForwards}} {
		for _, s := range set.specs {
			if f, err := ParseForward(set.kind, s); err == nil {
				p(set.name, f.String())
			} else {
				p(set.name, s)
			}
		}
	}
	for _, f := range c.IdentityFiles {
		p("identityfile", f)
	}
	for _, f := range c.CertificateFiles {
		p("certificatefile", f)
	}
	p("globalknownhostsfile", strings.Join(c.GlobalKnownHostsFiles, " "))
	p("userknownhostsfile", strings.Join(c.UserKnownHostsFiles, " "))
	for _, e := range c.SendEnv {
		p("sendenv", e)
	}
	p("forwardagent", c.ForwardAgent)
	p("connecttimeout", secs(c.ConnectTimeout))
	if c.HostKeyAlias != "" {
		p("hostkeyalias", c.HostKeyAlias)
	}
	if c.ProxyJump != "" {
		p("proxyjump", c.ProxyJump)
	}
	if c.ProxyCommand != "" {
		p("proxycommand", c.ProxyCommand)
	}
	if c.RemoteCommand != "" {
		p("remotecommand", c.RemoteCommand)
	}
}

// resolver looks keywords up: the command line first, then each file.
type resolver struct {
	args  *Args
	alias string
	srcs  []source
}

func (r *resolver) first(key, def string) string {
	if r.args != nil {
		if v, ok := r.args.Setting(key); ok {
			return v
		}
	}
	for _, s := range r.srcs {
		if v, err := s.cfg.Get(r.alias, key); err == nil && v != "" {
			return v
		}
	}
	return def
}

func (r *resolver) all(key string) []string {
	var out []string
	if r.args != nil {
		for _, s := range r.args.Settings {
			if strings.EqualFold(s.Key, key) {
				out = append(out, s.Value)
			}
		}
	}
	for _, s := range r.srcs {
		vs, _ := s.cfg.GetAll(r.alias, key)
		out = append(out, vs...)
	}
	return out
}

func (r *resolver) yesno(key string, def bool) (bool, error) {
	v := strings.ToLower(r.first(key, ""))
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

func (r *resolver) number(key string, def int) (int, error) {
	v := r.first(key, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badValue(key, v, "a whole number")
	}
	return n, nil
}

// seconds reads an ssh_config time value: a number of seconds, or the
// sshd_config(5) TIME FORMATS (1h30m, 90s), or "none".
func (r *resolver) seconds(key string) (time.Duration, error) {
	v := strings.ToLower(r.first(key, ""))
	if v == "" || v == "none" || v == "0" {
		return 0, nil
	}
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
		u, ok := units[ch]
		if !ok || num == "" {
			return 0, badValue(key, v, "a number of seconds")
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

// ignored lists keywords set for this host that ec2ssh does not act on.
func (r *resolver) ignored() []string {
	var out []string
	for _, k := range ignorableKeys {
		if v := r.first(k, ""); v != "" {
			out = append(out, k+" "+v)
		}
	}
	return out
}

func badValue(key, val, want string) error {
	return failure.Configf("see ssh_config(5)", "bad %s value %q: want %s", key, val, want)
}

// expandTokens replaces ssh_config's %-tokens; %% is a literal percent and an
// unknown token is left as it is.
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
	if p == "~" {
		return homeDir()
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(homeDir(), p[2:])
	}
	return p
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
