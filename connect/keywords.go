package connect

import "strings"

// keywords are ssh_config(5)'s keywords in their canonical spelling: the
// ones ec2ssh acts on and the ones it accepts without acting on.
var keywords = []string{
	// Acted on (see Config).
	"HostName", "User", "Port", "IdentityFile", "IdentitiesOnly", "IdentityAgent", "CertificateFile",
	"PubkeyAuthentication", "PasswordAuthentication", "KbdInteractiveAuthentication",
	"ChallengeResponseAuthentication", "NumberOfPasswordPrompts", "BatchMode",
	"UserKnownHostsFile", "GlobalKnownHostsFile", "StrictHostKeyChecking", "HostKeyAlias", "HashKnownHosts",
	"ConnectTimeout", "ConnectionAttempts", "ServerAliveInterval", "ServerAliveCountMax", "AddressFamily",
	"RequestTTY", "SessionType", "RemoteCommand", "StdinNull", "ForkAfterAuthentication",
	"SendEnv", "SetEnv", "ForwardAgent", "Compression", "LogLevel", "ProxyJump", "ProxyCommand",
	"LocalForward", "RemoteForward", "DynamicForward", "ClearAllForwardings", "ExitOnForwardFailure",
	"GatewayPorts",
}

// ignorableKeys change nothing ec2ssh's behaviour must honour: connection
// sharing is an optimisation, X11 and local commands are off unless asked
// for, and algorithm lists fall back to x/crypto's safe defaults. -v lists
// the ones a host sets.
var ignorableKeys = []string{
	"AddKeysToAgent", "BindAddress", "BindInterface", "CanonicalDomains", "CanonicalizeFallbackLocal",
	"CanonicalizeHostname", "CanonicalizeMaxDots", "CanonicalizePermittedCNAMEs", "CASignatureAlgorithms",
	"CheckHostIP", "Ciphers", "ControlMaster", "ControlPath", "ControlPersist", "EnableEscapeCommandline",
	"EnableSSHKeysign", "EscapeChar", "FingerprintHash", "ForwardX11", "ForwardX11Timeout",
	"ForwardX11Trusted", "GSSAPIAuthentication", "GSSAPIDelegateCredentials", "HostbasedAcceptedAlgorithms",
	"HostbasedAuthentication", "HostKeyAlgorithms", "IgnoreUnknown", "IPQoS", "KexAlgorithms",
	"KnownHostsCommand", "LocalCommand", "MACs", "NoHostAuthenticationForLocalhost",
	"ObscureKeystrokeTiming", "PermitLocalCommand", "PermitRemoteOpen", "PKCS11Provider",
	"PreferredAuthentications", "Protocol", "ProxyUseFdpass", "PubkeyAcceptedAlgorithms",
	"PubkeyAcceptedKeyTypes", "RekeyLimit", "RequiredRSASize", "RevokedHostKeys", "SecurityKeyProvider",
	"StreamLocalBindMask", "StreamLocalBindUnlink", "TCPKeepAlive", "Tag", "Tunnel", "TunnelDevice",
	"UpdateHostKeys", "UseKeychain", "UseRoaming", "UsePrivilegedPort", "UserKnownHostsFile2",
	"VerifyHostKeyDNS", "VisualHostKey", "XAuthLocation",
}

// refused are keyword values that ask for something ec2ssh cannot do; given
// with -o they are an error rather than a silent ignore.
var refused = map[string]func(v string) bool{
	"ForwardX11":        isYes,
	"Tunnel":            func(v string) bool { return !strings.EqualFold(v, "no") },
	"PKCS11Provider":    func(v string) bool { return !strings.EqualFold(v, "none") },
	"LocalCommand":      func(string) bool { return true },
	"KnownHostsCommand": func(v string) bool { return !strings.EqualFold(v, "none") },
}

func isYes(v string) bool { return strings.EqualFold(v, "yes") || strings.EqualFold(v, "true") }

// canonicalKey returns key in its canonical spelling and whether it is a
// keyword ssh_config(5) knows.
func canonicalKey(key string) (string, bool) {
	for _, set := range [][]string{keywords, ignorableKeys} {
		for _, k := range set {
			if strings.EqualFold(k, key) {
				if k == "ChallengeResponseAuthentication" {
					k = "KbdInteractiveAuthentication"
				}
				return k, true
			}
		}
	}
	return "", false
}
