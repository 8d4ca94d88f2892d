package connect

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ec2ssh/ec2ssh/failure"
)

// interpreter reads typed values out of the settings; each step of
// interpret below fills one group of the Config's fields with it.
type interpreter struct {
	s      *settings
	tokens map[byte]string // set once User, Port and HostKeyAlias are known
}

// yesno reads a flag: yes/true or no/false, def when unset.
func (in *interpreter) yesno(key string, def bool) (bool, error) {
	v := strings.ToLower(in.s.value(key, ""))
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

// number reads a whole number, def when unset.
func (in *interpreter) number(key string, def int) (int, error) {
	v := in.s.value(key, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badValue(key, v, "a whole number")
	}
	return n, nil
}

// choice reads a keyword whose values are a closed set: v (lower-cased) is
// looked up in spellings, which maps each accepted spelling to the value
// kept (true → yes and the like).
func choice(key, v string, spellings map[string]string, want string) (string, error) {
	v = strings.ToLower(v)
	if canon, ok := spellings[v]; ok {
		return canon, nil
	}
	return "", badValue(key, v, want)
}

// Accepted spellings of the closed-set keywords.
var (
	yesNoSpellings  = map[string]string{"yes": "yes", "true": "yes", "no": "no", "false": "no"}
	strictSpellings = map[string]string{"ask": "ask", "accept-new": "accept-new", "yes": "yes", "true": "yes",
		"no": "no", "off": "no", "false": "no"}
	updateHostKeysSpellings = map[string]string{"yes": "yes", "true": "yes", "no": "no", "false": "no", "ask": "ask"}
	fingerprintSpellings    = map[string]string{"sha256": "sha256", "md5": "md5"}
	familySpellings         = map[string]string{"any": "any", "inet": "inet", "inet6": "inet6"}
	requestTTYSpellings     = map[string]string{"auto": "auto", "yes": "yes", "no": "no", "force": "force", "true": "yes", "false": "no"}
	sessionTypeSpellings    = map[string]string{"default": "default", "none": "none", "subsystem": "subsystem"}
	controlMasterSpellings  = map[string]string{"yes": "yes", "true": "yes", "no": "no", "false": "no",
		"auto": "auto", "ask": "ask", "autoask": "autoask"}
)

// expandPath expands a path as ssh(1)'s percent_dollar_expand gives it:
// ~, ${VAR} and %-tokens.
func (in *interpreter) expandPath(key, v string) (string, error) {
	v, err := expandDollar(ExpandPath(v))
	if err != nil {
		return "", failure.Configf("set the variable, or change "+key, "%s: %v", key, err)
	}
	return expandTokens(v, in.tokens), nil
}

// interpret turns the settings into the Config's fields, one group of
// keywords at a time, in the order each group's values depend on the
// ones before (tokens need the user, port and HostKeyAlias).
func (c *Config) interpret(args *Args, hostname string) error {
	in := &interpreter{s: c.s}
	c.HostName = hostname
	steps := []func(*Config, *interpreter, *Args) error{
		(*Config).interpretIdentity,
		(*Config).interpretAuth,
		(*Config).interpretHostKeys,
		(*Config).interpretAlgorithms,
		(*Config).interpretNetwork,
		(*Config).interpretSession,
		(*Config).interpretRouting,
		(*Config).interpretControl,
		(*Config).interpretForwards,
	}
	for _, step := range steps {
		if err := step(c, in, args); err != nil {
			return err
		}
	}
	c.unsupported = c.refuse()
	return nil
}

// interpretIdentity: who logs in, where, and with which files.
func (c *Config) interpretIdentity(in *interpreter, _ *Args) error {
	s := in.s
	var err error
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
	c.HostKeyAlias = s.value("HostKeyAlias", "")
	// Tokens as ssh(1) has them at this point of reading (%j is still
	// empty: ProxyJump is read later).
	in.tokens = c.tokens()
	return nil
}

// interpretAuth: the flags and counts of authentication and of the
// features -W turns on.
func (c *Config) interpretAuth(in *interpreter, args *Args) error {
	s := in.s
	var err error
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
		if *f.dst, err = in.yesno(f.key, f.def); err != nil {
			return err
		}
	}
	if c.PasswordPrompts, err = in.number("NumberOfPasswordPrompts", 3); err != nil {
		return err
	}
	if c.RequiredRSASize, err = in.number("RequiredRSASize", 1024); err != nil {
		return err
	}
	if v := s.value("PreferredAuthentications", ""); v != "" {
		c.PreferredAuthentications = strings.Split(v, ",")
	}
	if c.AddKeysToAgent, err = addKeysToAgent(s.value("AddKeysToAgent", "no")); err != nil {
		return err
	}
	c.IdentityAgent = s.value("IdentityAgent", "")
	if v := c.IdentityAgent; v != "" && !strings.EqualFold(v, "none") && v != "SSH_AUTH_SOCK" {
		if c.IdentityAgent, err = in.expandPath("IdentityAgent", v); err != nil {
			return err
		}
	}
	return nil
}

// addKeysToAgent reads AddKeysToAgent: yes, no, ask, confirm, or a
// lifetime (kept in seconds).
func addKeysToAgent(v string) (string, error) {
	v = strings.ToLower(v)
	switch v {
	case "yes", "true", "no", "false", "ask", "confirm":
		if canon, ok := yesNoSpellings[v]; ok {
			return canon, nil
		}
		return v, nil
	}
	secs, err := parseSeconds(v)
	if err != nil || secs <= 0 {
		return "", badValue("AddKeysToAgent", v, "yes, no, ask, confirm or a lifetime")
	}
	return strconv.Itoa(int(secs / time.Second)), nil
}

// interpretHostKeys: where host keys are kept and how they are checked.
func (c *Config) interpretHostKeys(in *interpreter, _ *Args) error {
	s := in.s
	var err error
	ukh := "~/.ssh/known_hosts ~/.ssh/known_hosts2"
	if v, ok := s.get("UserKnownHostsFile"); ok {
		ukh = strings.Join(v.args, " ")
	}
	for _, f := range strings.Fields(ukh) {
		p, err := in.expandPath("UserKnownHostsFile", f)
		if err != nil {
			return err
		}
		c.UserKnownHostsFiles = append(c.UserKnownHostsFiles, p)
	}
	gkh := []string{sshDir() + "/ssh_known_hosts", sshDir() + "/ssh_known_hosts2"}
	if v, ok := s.get("GlobalKnownHostsFile"); ok {
		gkh = strings.Fields(strings.Join(v.args, " "))
	}
	for _, f := range gkh {
		c.GlobalKnownHostsFiles = append(c.GlobalKnownHostsFiles, ExpandPath(expandTokens(f, in.tokens)))
	}
	if c.StrictHostKeyChecking, err = choice("StrictHostKeyChecking", s.value("StrictHostKeyChecking", "ask"), strictSpellings,
		"ask, yes, accept-new or no"); err != nil {
		return err
	}
	if v, ok := s.get("KnownHostsCommand"); ok && !strings.EqualFold(v.raw, "none") {
		c.KnownHostsCommand = v.raw
	}
	if v := s.value("RevokedHostKeys", ""); v != "" && !strings.EqualFold(v, "none") {
		c.RevokedHostKeys = ExpandPath(expandTokens(v, in.tokens))
	}
	if c.UpdateHostKeys, err = updateHostKeys(s); err != nil {
		return err
	}
	c.FingerprintHash, err = choice("FingerprintHash", s.value("FingerprintHash", "sha256"), fingerprintSpellings, "sha256 or md5")
	return err
}

// updateHostKeys is UpdateHostKeys as ssh(1) defaults it: yes unless
// known_hosts files are configured or host keys come from elsewhere.
func updateHostKeys(s *settings) (string, error) {
	if v, ok := s.get("UpdateHostKeys"); ok {
		canon, ok := updateHostKeysSpellings[strings.ToLower(v.args[0])]
		if !ok {
			return "", badValue("UpdateHostKeys", v.args[0], "yes, no or ask")
		}
		return canon, nil
	}
	_, user := s.get("UserKnownHostsFile")
	_, global := s.get("GlobalKnownHostsFile")
	dns := strings.ToLower(s.value("VerifyHostKeyDNS", "no"))
	if user || global || dns == "yes" || dns == "ask" {
		return "no", nil
	}
	return "yes", nil
}

// interpretAlgorithms: the algorithm lists as OpenSSH assembles them, and
// RekeyLimit.
func (c *Config) interpretAlgorithms(in *interpreter, _ *Args) error {
	s := in.s
	var err error
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
	v, ok := s.get("RekeyLimit")
	if !ok {
		return nil
	}
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
	return nil
}

// interpretNetwork: timeouts, keepalives and the local end of the socket.
func (c *Config) interpretNetwork(in *interpreter, _ *Args) error {
	s := in.s
	var err error
	if c.ConnectTimeout, err = secondsSetting(s, "ConnectTimeout"); err != nil {
		return err
	}
	if c.ConnectionAttempts, err = in.number("ConnectionAttempts", 1); err != nil {
		return err
	}
	c.ServerAliveSet = s.value("ServerAliveInterval", "") != "" || c.BatchMode
	if v := s.value("ServerAliveInterval", ""); v == "" && c.BatchMode {
		// ssh(1): in batch mode a dead server is noticed after 300 s × ServerAliveCountMax.
		c.ServerAliveInterval = 300 * time.Second
	} else if c.ServerAliveInterval, err = secondsSetting(s, "ServerAliveInterval"); err != nil {
		return err
	}
	if c.ServerAliveCountMax, err = in.number("ServerAliveCountMax", 3); err != nil {
		return err
	}
	if c.AddressFamily, err = choice("AddressFamily", s.value("AddressFamily", "any"), familySpellings, "any, inet or inet6"); err != nil {
		return err
	}
	c.BindAddress = s.value("BindAddress", "")
	c.StreamLocalBindMask = s.value("StreamLocalBindMask", "0177")
	if _, err := strconv.ParseUint(c.StreamLocalBindMask, 8, 32); err != nil {
		return badValue("StreamLocalBindMask", c.StreamLocalBindMask, "an octal mask such as 0177")
	}
	c.BindInterface = s.value("BindInterface", "")
	return nil
}

// interpretSession: the terminal, the session type, the command and its
// environment.
func (c *Config) interpretSession(in *interpreter, args *Args) error {
	s := in.s
	var err error
	if c.RequestTTY, err = choice("RequestTTY", requestTTY(s, args), requestTTYSpellings, "auto, yes, no or force"); err != nil {
		return err
	}
	if c.SessionType, err = choice("SessionType", sessionType(s, args), sessionTypeSpellings, "default, none or subsystem"); err != nil {
		return err
	}
	if v, ok := s.get("RemoteCommand"); ok && !strings.EqualFold(v.raw, "none") {
		c.RemoteCommand = expandTokens(v.raw, in.tokens)
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
	if canon, ok := yesNoSpellings[strings.ToLower(c.ForwardAgent)]; ok {
		c.ForwardAgent = canon
	} else if c.ForwardAgent, err = in.expandPath("ForwardAgent", c.ForwardAgent); err != nil {
		return err
	}
	c.LogLevel = strings.ToUpper(s.value("LogLevel", "INFO"))
	if c.EscapeChar, err = escapeChar(s.value("EscapeChar", "~")); err != nil {
		return err
	}
	c.Tag = s.value("Tag", "")
	return nil
}

// requestTTY: -T, -t and -tt are assigned directly by ssh(1), ahead of any
// file.
func requestTTY(s *settings, args *Args) string {
	switch {
	case args == nil:
	case args.NoTTY, args.StdioFwd != "", args.NoCommand:
		return "no"
	case args.TTY >= 2:
		return "force"
	case args.TTY == 1:
		return "yes"
	}
	return s.value("RequestTTY", "auto")
}

// sessionType: -N, -W and -s are assigned directly by ssh(1).
func sessionType(s *settings, args *Args) string {
	switch {
	case args == nil:
	case args.NoCommand || args.StdioFwd != "":
		return "none"
	case args.Subsystem:
		return "subsystem"
	}
	return s.value("SessionType", "default")
}

func escapeChar(v string) (string, error) {
	switch {
	case strings.EqualFold(v, "none"):
		return "none", nil
	case len(v) == 1:
		return v, nil
	case len(v) == 2 && v[0] == '^':
		return string(rune(v[1] & 31)), nil
	}
	return "", badValue("EscapeChar", v, "a single character, ^X or none")
}

// interpretRouting: how the connection gets there (ProxyJump,
// ProxyCommand) and where a remote dynamic forwarding may go.
func (c *Config) interpretRouting(in *interpreter, _ *Args) error {
	s := in.s
	c.ProxyJump = s.value("ProxyJump", "")
	if strings.EqualFold(c.ProxyJump, "none") {
		c.ProxyJump = ""
	}
	if v, ok := s.get("ProxyCommand"); ok && !strings.EqualFold(v.raw, "none") {
		c.ProxyCommand = expandTokens(v.raw, in.tokens)
	}
	v, ok := s.get("PermitRemoteOpen")
	if !ok {
		return nil
	}
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
	return nil
}

// interpretControl: connection sharing and LocalCommand.
func (c *Config) interpretControl(in *interpreter, _ *Args) error {
	s := in.s
	var err error
	if c.ControlMaster, err = choice("ControlMaster", s.value("ControlMaster", "no"), controlMasterSpellings,
		"yes, no, auto, ask or autoask"); err != nil {
		return err
	}
	if pl := strings.ToLower(s.value("PermitLocalCommand", "no")); pl == "yes" || pl == "true" {
		if v, ok := s.get("LocalCommand"); ok && !strings.EqualFold(v.raw, "none") {
			c.LocalCommand = v.raw
		}
	}
	c.ControlPath = s.value("ControlPath", "")
	if c.ControlPath != "" && !strings.EqualFold(c.ControlPath, "none") {
		if _, err := in.expandPath("ControlPath", c.ControlPath); err != nil {
			return err
		}
	}
	c.ControlPersist = strings.ToLower(s.value("ControlPersist", "no"))
	_, err = ControlPersistTime(c)
	return err
}

// interpretForwards: -L, -R and -D, with their Unix socket paths expanded
// (~, ${VAR} and tokens), unless ClearAllForwardings.
func (c *Config) interpretForwards(in *interpreter, _ *Args) error {
	if c.ClearAllForwardings {
		return nil
	}
	s := in.s
	for _, set := range []struct {
		kind byte
		dst  *[]string
	}{{'L', &c.LocalForwards}, {'R', &c.RemoteForwards}} {
		for _, v := range s.all(forwardKeyword[set.kind]) {
			spec, err := in.expandForward(set.kind, v.raw)
			if err != nil {
				return err
			}
			*set.dst = append(*set.dst, spec)
		}
	}
	for _, v := range s.all("DynamicForward") {
		c.DynamicForwards = append(c.DynamicForwards, v.raw)
	}
	return nil
}

var forwardKeyword = map[byte]string{'L': "LocalForward", 'R': "RemoteForward"}

// expandForward expands the socket paths of one forwarding; a bad one is
// kept as written and reported where it is used.
func (in *interpreter) expandForward(kind byte, raw string) (string, error) {
	f, err := ParseForward(kind, raw)
	if err != nil || f.BindPath == "" && f.TargetPath == "" {
		return raw, nil
	}
	for _, p := range []*string{&f.BindPath, &f.TargetPath} {
		if *p == "" {
			continue
		}
		if *p, err = in.expandPath(forwardKeyword[kind], *p); err != nil {
			return "", err
		}
	}
	return f.String(), nil
}
