package connect

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// gssapiKexDefault is Debian's OpenSSH default for GSSAPIKexAlgorithms,
// which ssh -G prints though nothing here uses it.
const gssapiKexDefault = "gss-group14-sha256-,gss-group16-sha512-,gss-nistp256-sha256-,gss-curve25519-sha256-,gss-group14-sha1-,gss-gex-sha1-"

// printG writes every keyword ssh -G prints, in its order, with its
// spelling of values (ssh(1) 9.2, readconf.c's dump_client_config).
func (c *Config) printG(w io.Writer) {
	g := &gPrinter{w: w, s: c.s}
	c.printFlags(g)
	c.printNumbers(g)
	c.printAlgorithms(g)
	c.printLists(g)
	c.printTail(g)
}

// gPrinter writes ssh -G's lines and reads settings as dump_client_config
// spells them.
type gPrinter struct {
	w io.Writer
	s *settings
}

func (g *gPrinter) p(k string, v any) { fmt.Fprintf(g.w, "%s %v\n", k, v) }

// raw is a keyword's arguments as given, and whether it was.
func (g *gPrinter) raw(k string) (string, bool) {
	v, ok := g.s.get(k)
	if !ok {
		return "", false
	}
	return strings.Join(v.args, " "), true
}

// yn is a flag ssh prints as yes/no.
func (g *gPrinter) yn(k string, def bool) string {
	v := strings.ToLower(g.s.value(k, ""))
	switch v {
	case "":
		return map[bool]string{true: "yes", false: "no"}[def]
	case "true":
		return "yes"
	case "false":
		return "no"
	}
	return v
}

// tf is a flag ssh prints as true/false.
func (g *gPrinter) tf(k string, def string) string {
	v := strings.ToLower(g.s.value(k, def))
	switch v {
	case "yes", "true":
		return "true"
	case "no", "false":
		return "false"
	}
	return v
}

// printFlags: the yes/no and true/false keywords, from host to
// enableescapecommandline.
func (c *Config) printFlags(g *gPrinter) {
	p, yn, tf, raw, s := g.p, g.yn, g.tf, g.raw, g.s
	p("host", c.Alias)
	p("user", c.User)
	p("hostname", c.HostName)
	p("port", c.Port)
	p("addressfamily", c.AddressFamily)
	p("batchmode", yn("BatchMode", false))
	p("canonicalizefallbacklocal", yn("CanonicalizeFallbackLocal", true))
	p("canonicalizehostname", tf("CanonicalizeHostname", "no"))
	p("checkhostip", yn("CheckHostIP", false))
	p("compression", yn("Compression", false))
	p("controlmaster", tf("ControlMaster", "no"))
	p("enablesshkeysign", yn("EnableSSHKeysign", false))
	p("clearallforwardings", map[bool]string{true: "yes", false: "no"}[c.ClearAllForwardings])
	p("exitonforwardfailure", map[bool]string{true: "yes", false: "no"}[c.ExitOnForwardFailure])
	p("fingerprinthash", strings.ToUpper(c.FingerprintHash))
	p("forwardx11", yn("ForwardX11", false))
	p("forwardx11trusted", yn("ForwardX11Trusted", true))
	p("gatewayports", yn("GatewayPorts", false))
	p("gssapiauthentication", yn("GSSAPIAuthentication", false))
	p("gssapikeyexchange", yn("GSSAPIKeyExchange", false))
	p("gssapidelegatecredentials", yn("GSSAPIDelegateCredentials", false))
	p("gssapitrustdns", yn("GSSAPITrustDns", false))
	p("gssapirenewalforcesrekey", yn("GSSAPIRenewalForcesRekey", false))
	if v, ok := raw("GSSAPIClientIdentity"); ok {
		p("gssapiclientidentity", v)
	}
	if v, ok := raw("GSSAPIServerIdentity"); ok {
		p("gssapiserveridentity", v)
	}
	p("gssapikexalgorithms", s.value("GSSAPIKexAlgorithms", gssapiKexDefault))
	p("hashknownhosts", yn("HashKnownHosts", false))
	p("hostbasedauthentication", yn("HostbasedAuthentication", false))
	p("identitiesonly", yn("IdentitiesOnly", false))
	p("kbdinteractiveauthentication", yn("KbdInteractiveAuthentication", true))
	p("nohostauthenticationforlocalhost", yn("NoHostAuthenticationForLocalhost", false))
	p("passwordauthentication", yn("PasswordAuthentication", true))
	p("permitlocalcommand", yn("PermitLocalCommand", false))
	p("proxyusefdpass", yn("ProxyUseFdpass", false))
	p("pubkeyauthentication", tf("PubkeyAuthentication", "yes"))
	p("requesttty", map[string]string{"auto": "auto", "yes": "true", "no": "false", "force": "force"}[c.RequestTTY])
	p("sessiontype", c.SessionType)
	p("stdinnull", yn("StdinNull", false))
	p("forkafterauthentication", yn("ForkAfterAuthentication", false))
	p("streamlocalbindunlink", yn("StreamLocalBindUnlink", false))
	p("stricthostkeychecking", map[string]string{"ask": "ask", "yes": "true", "no": "false", "accept-new": "accept-new"}[c.StrictHostKeyChecking])
	p("tcpkeepalive", yn("TCPKeepAlive", true))
	p("tunnel", tf("Tunnel", "no"))
	p("verifyhostkeydns", tf("VerifyHostKeyDNS", "no"))
	p("visualhostkey", yn("VisualHostKey", false))
	p("updatehostkeys", map[string]string{"yes": "true", "no": "false", "ask": "ask"}[c.UpdateHostKeys])
	p("enableescapecommandline", yn("EnableEscapeCommandline", false))
}

// printNumbers: the numeric keywords and the bind addresses.
func (c *Config) printNumbers(g *gPrinter) {
	p, s := g.p, g.s
	p("canonicalizemaxdots", s.value("CanonicalizeMaxDots", "1"))
	p("connectionattempts", c.ConnectionAttempts)
	p("forwardx11timeout", secondsOf(s.value("ForwardX11Timeout", "1200")))
	p("numberofpasswordprompts", c.PasswordPrompts)
	p("serveralivecountmax", c.ServerAliveCountMax)
	p("serveraliveinterval", int(c.ServerAliveInterval.Seconds()))
	p("requiredrsasize", c.RequiredRSASize)
	if c.BindAddress != "" {
		p("bindaddress", c.BindAddress)
	}
	if c.BindInterface != "" {
		p("bindinterface", c.BindInterface)
	}
}

// printAlgorithms: the algorithm lists, with the single-valued keywords
// ssh prints among them.
func (c *Config) printAlgorithms(g *gPrinter) {
	p, raw, s := g.p, g.raw, g.s
	p("ciphers", strings.Join(c.Ciphers, ","))
	if c.ControlPath != "" {
		p("controlpath", ControlPathFor(c))
	}
	p("hostkeyalgorithms", strings.Join(c.HostKeyAlgorithms, ","))
	if c.HostKeyAlias != "" {
		p("hostkeyalias", c.HostKeyAlias)
	}
	p("hostbasedacceptedalgorithms", strings.Join(c.HostbasedAlgorithms, ","))
	if c.IdentityAgent != "" {
		p("identityagent", c.IdentityAgent)
	}
	if v, ok := raw("IgnoreUnknown"); ok {
		p("ignoreunknown", v)
	}
	if v, ok := raw("KbdInteractiveDevices"); ok {
		p("kbdinteractivedevices", v)
	}
	p("kexalgorithms", strings.Join(c.KexAlgorithms, ","))
	p("casignaturealgorithms", strings.Join(c.CASignatureAlgorithms, ","))
	if v, ok := s.get("LocalCommand"); ok {
		p("localcommand", v.raw)
	}
	if c.RemoteCommand != "" {
		p("remotecommand", c.RemoteCommand)
	}
	p("loglevel", c.LogLevel)
	p("macs", strings.Join(c.MACs, ","))
	if v, ok := raw("PKCS11Provider"); ok {
		p("pkcs11provider", v)
	}
	p("securitykeyprovider", s.value("SecurityKeyProvider", "internal"))
	if len(c.PreferredAuthentications) > 0 {
		p("preferredauthentications", strings.Join(c.PreferredAuthentications, ","))
	}
	p("pubkeyacceptedalgorithms", strings.Join(c.PubkeyAlgorithms, ","))
	if v, ok := raw("RevokedHostKeys"); ok {
		p("revokedhostkeys", v)
	}
	p("xauthlocation", s.value("XAuthLocation", "/usr/bin/xauth"))
	if v, ok := s.get("KnownHostsCommand"); ok {
		p("knownhostscommand", v.raw)
	}
}

// printLists: forwardings, identity and certificate files, known_hosts
// files and the environment.
func (c *Config) printLists(g *gPrinter) {
	p, raw := g.p, g.raw
	for _, set := range []struct {
		kind  byte
		name  string
		specs []string
	}{{'D', "dynamicforward", c.DynamicForwards}, {'L', "localforward", c.LocalForwards}, {'R', "remoteforward", c.RemoteForwards}} {
		for _, spec := range set.specs {
			if f, err := ParseForward(set.kind, spec); err == nil {
				p(set.name, f.String())
			} else {
				p(set.name, spec)
			}
		}
	}
	for _, f := range c.IdentityFiles {
		p("identityfile", f)
	}
	p("canonicaldomains", orNone(raw("CanonicalDomains")))
	for _, f := range c.CertificateFiles {
		p("certificatefile", f)
	}
	p("globalknownhostsfile", strings.Join(c.GlobalKnownHostsFiles, " "))
	p("userknownhostsfile", strings.Join(c.UserKnownHostsFiles, " "))
	for _, e := range c.SendEnv {
		p("sendenv", e)
	}
	for _, e := range c.SetEnv {
		p("setenv", e)
	}
	p("logverbose", orNone(raw("LogVerbose")))
}

// printTail: the keywords dump_client_config prints last.
func (c *Config) printTail(g *gPrinter) {
	p, raw, s := g.p, g.raw, g.s
	v, ok := raw("PermitRemoteOpen")
	if !ok {
		v = "any"
	}
	p("permitremoteopen", v)
	p("addkeystoagent", map[string]string{"yes": "true", "no": "false"}[c.AddKeysToAgent]+addKeysOther(c.AddKeysToAgent))
	p("forwardagent", c.ForwardAgent)
	if c.ConnectTimeout == 0 {
		p("connecttimeout", "none")
	} else {
		p("connecttimeout", int(c.ConnectTimeout.Seconds()))
	}
	p("tunneldevice", s.value("TunnelDevice", "any:any"))
	p("canonicalizePermittedcnames", orNone(raw("CanonicalizePermittedCNAMEs")))
	cp := c.ControlPersist
	if n, err := parseSeconds(cp); err == nil && cp != "" && cp != "yes" && cp != "no" {
		cp = strconv.Itoa(int(n.Seconds()))
	}
	p("controlpersist", cp)
	esc := c.EscapeChar
	if len(esc) == 1 && esc[0] < 32 {
		esc = `\^` + string(rune(esc[0]+'@')) // strvis(3), as ssh prints it
	}
	p("escapechar", esc)
	ipqos := []string{"lowdelay", "throughput"}
	if v, ok := s.get("IPQoS"); ok {
		ipqos = []string{v.args[0], v.args[0]}
		if len(v.args) > 1 {
			ipqos[1] = v.args[1]
		}
	}
	p("ipqos", strings.Join(ipqos, " "))
	p("rekeylimit", fmt.Sprintf("%d %d", c.RekeyBytes, c.RekeySeconds))
	p("streamlocalbindmask", s.value("StreamLocalBindMask", "0177"))
	p("syslogfacility", strings.ToUpper(s.value("SyslogFacility", "USER")))
	if c.ProxyJump != "" {
		p("proxyjump", c.ProxyJump)
	}
	if v, ok := s.get("ProxyCommand"); ok && !strings.EqualFold(v.raw, "none") {
		p("proxycommand", v.raw)
	}
}

func orNone(v string, ok bool) string {
	if !ok || v == "" {
		return "none"
	}
	return v
}

func addKeysOther(v string) string {
	if v == "yes" || v == "no" {
		return ""
	}
	return v
}

func secondsOf(v string) int {
	d, err := parseSeconds(strings.ToLower(v))
	if err != nil {
		return 0
	}
	return int(d.Seconds())
}
