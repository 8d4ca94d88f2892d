package preflight

import (
	"github.com/ec2ssh/ec2ssh/failure"

	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The look inside an instance: when its SSM agent is online, a read-only
// script runs there (main runs it over an SSM session; see InsideRunner)
// and prints what sshd, the host firewall, the login user's files, the
// disks and sshd's log say. It changes nothing: every fix is printed, not
// applied. Parsing and judging happen here, as pure functions, so they are
// tested from text with no instance.

// InsideRunner runs a script on the instance and returns its stdout.
type InsideRunner interface {
	RunScript(ctx context.Context, instanceID, script string, args ...string) ([]byte, error)
	// How says how the script is run, for the evidence.
	How() string
}

// InsideScript is the script, run by sh with $1 the login user and $2 the
// SSH port. Commands that need root run under sudo -n when the session's
// user is not root (the agent's ssm-user has passwordless sudo).
const InsideScript = `U=$1 P=$2
S() { printf '\n@@ec2ssh:%s\n' "$1"; }
R() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
S sshd-active; { systemctl is-active sshd 2>/dev/null || systemctl is-active ssh 2>/dev/null; } | head -n 1
S listen; { R ss -ltnpH 2>/dev/null || R netstat -ltnp 2>/dev/null; } | grep -i 'sshd'
S ports; if ss -ltnH 2>/dev/null || netstat -ltn 2>/dev/null; then echo @listed; fi
S sshd-t; R sshd -t 2>&1; echo "exit=$?"
S sshd-T; R sshd -T 2>/dev/null | grep -iE '^(port|listenaddress|strictmodes|authorizedkeysfile|pubkeyauthentication|permitrootlogin|allowusers|denyusers|allowgroups|denygroups) '
S nft; R nft -a list ruleset 2>&1
S iptables; R iptables-save 2>&1
S ufw; R ufw status verbose 2>&1
S firewalld; if command -v firewall-cmd >/dev/null 2>&1; then firewall-cmd --state 2>&1 && R firewall-cmd --list-all 2>&1; fi
S user; getent passwd "$U"
S accounts; getent passwd | awk -F: '$3 >= 1000 && $3 < 60000 && $7 !~ /(nologin|false)$/ { print $1 }' | head -n 50
H=$(getent passwd "$U" | cut -d: -f6)
S files; if [ -n "$H" ]; then for f in "$H" "$H/.ssh" "$H/.ssh/authorized_keys"; do R stat -c '%a %U %G %n' "$f" 2>&1; done; fi
S authorized-keys; if [ -n "$H" ]; then R cat "$H/.ssh/authorized_keys" 2>/dev/null | head -n 200; fi
S df; df -P / /home /var /tmp 2>/dev/null
S dfi; df -Pi / /home /var /tmp 2>/dev/null
S log; J=$(R journalctl -u sshd -u ssh -n 20 --no-pager -o short 2>/dev/null | grep -v '^-- '); if [ -n "$J" ]; then printf '%s\n' "$J"; else R tail -n 20 /var/log/secure 2>/dev/null || R tail -n 20 /var/log/auth.log 2>/dev/null; fi
S end
`

// Inside is what the instance said about itself.
type Inside struct {
	How         string        `json:"how"`
	Took        time.Duration `json:"took_ns"`
	User        string        `json:"user"`
	Port        int           `json:"port"`
	Address     string        `json:"address"` // the instance's private address, for firewall rules
	SSHDActive  string        `json:"sshd_active,omitempty"`
	SSHDRunning bool          `json:"sshd_running"`
	Listening   []string      `json:"listening,omitempty"` // sshd's listening addresses, host:port
	// Ports is every listening TCP socket's address, whoever owns it
	// (ss -ltn needs no root); PortsListed says the list was made.
	Ports        []string       `json:"ports,omitempty"`
	PortsListed  bool           `json:"ports_listed,omitempty"`
	ConfigErrors []string       `json:"config_errors,omitempty"`
	ConfigPorts  []int          `json:"config_ports,omitempty"`
	StrictModes  bool           `json:"strict_modes"`
	Firewall     []FirewallRule `json:"firewall,omitempty"`
	UserExists   bool           `json:"user_exists"`
	Accounts     []string       `json:"accounts,omitempty"` // login accounts (uid 1000 up, a shell)
	Home         string         `json:"home,omitempty"`
	Files        []FileMode     `json:"files,omitempty"`
	Keys         []LocalKey     `json:"authorized_keys,omitempty"` // fingerprints of authorized_keys lines
	Disks        []Disk         `json:"disks,omitempty"`
	Log          []string       `json:"log,omitempty"`
	Complete     bool           `json:"complete"` // the script ran to its end
}

// PortState is what a look inside says of the SSH port, as an SSM port
// session's agent sees it: it connects to the port from the instance
// itself (localhost for the real agent, the instance's own address for the
// lab's).
type PortState int

const (
	PortUnknown   PortState = iota // the look inside could not tell
	PortRefused                    // nothing listens there: a connection is refused
	PortListening                  // something listens there
)

func (s PortState) String() string {
	return [...]string{"unknown", "refused", "listening"}[s]
}

// PortState says whether anything listens on port where the agent
// connects: from the list of listening sockets when there is one, else from
// sshd's own state (its service inactive and no sshd socket: refused). A
// script that did not run to its end tells nothing.
func (in *Inside) PortState(port int) PortState {
	if in == nil || !in.Complete {
		return PortUnknown
	}
	if in.PortsListed {
		for _, a := range in.Ports {
			if !strings.HasSuffix(a, ":"+strconv.Itoa(port)) {
				continue
			}
			for _, to := range []string{"127.0.0.1", "::1", in.Address} {
				if to != "" && listensFor(a, to) {
					return PortListening
				}
			}
		}
		return PortRefused
	}
	switch {
	case listensOn(in.Listening, port):
		return PortListening
	case in.SSHDActive != "" && in.SSHDActive != "active" && len(in.Listening) == 0:
		return PortRefused
	}
	return PortUnknown
}

// FirewallRule is a host firewall rule that stops the SSH port.
type FirewallRule struct {
	Firewall string `json:"firewall"` // nftables, iptables, ufw, firewalld
	Rule     string `json:"rule"`
	Fix      string `json:"fix"`
}

// FileMode is one of the login user's files as stat saw it.
type FileMode struct {
	Path    string `json:"path"`
	Mode    uint32 `json:"mode"`
	Owner   string `json:"owner"`
	Missing bool   `json:"missing,omitempty"`
}

// Disk is one file system's use.
type Disk struct {
	Mount   string `json:"mount"`
	UsedPct int    `json:"used_pct"`
	Inodes  bool   `json:"inodes,omitempty"` // the figure is inodes, not blocks
}

// ParseInside reads the script's output.
func ParseInside(out []byte, user string, port int, address string) *Inside {
	in := &Inside{User: user, Port: port, Address: address, StrictModes: true}
	sections := map[string][]string{}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "@@ec2ssh:"); ok {
			cur = name
			sections[cur] = []string{}
			continue
		}
		if cur != "" && strings.TrimSpace(line) != "" {
			sections[cur] = append(sections[cur], line)
		}
	}
	_, in.Complete = sections["end"]
	if s := sections["sshd-active"]; len(s) > 0 {
		in.SSHDActive = strings.TrimSpace(s[0])
	}
	for _, l := range sections["listen"] {
		if a := listenAddress(l); a != "" && listensFor(a, address) {
			in.Listening = append(in.Listening, a)
		}
	}
	for _, l := range sections["ports"] {
		if l == "@listed" {
			in.PortsListed = true
		} else if a := listenAddress(l); a != "" {
			in.Ports = append(in.Ports, a)
		}
	}
	// sshd runs when the service says so or it listens: a process list
	// would also show sshd's per-connection children.
	in.SSHDRunning = in.SSHDActive == "active" || len(in.Listening) > 0
	if t := sections["sshd-t"]; len(t) > 0 && t[len(t)-1] != "exit=0" {
		in.ConfigErrors = append(in.ConfigErrors, t[:len(t)-1]...)
	}
	for _, l := range sections["sshd-T"] {
		f := strings.Fields(strings.ToLower(l))
		if len(f) == 2 && f[0] == "port" {
			if n, err := strconv.Atoi(f[1]); err == nil {
				in.ConfigPorts = append(in.ConfigPorts, n)
			}
		}
		if len(f) == 2 && f[0] == "strictmodes" {
			in.StrictModes = f[1] != "no"
		}
	}
	in.Firewall = append(in.Firewall, nftRules(sections["nft"], port, address)...)
	in.Firewall = append(in.Firewall, iptablesRules(sections["iptables"], port, address)...)
	in.Firewall = append(in.Firewall, ufwRules(sections["ufw"], port)...)
	in.Firewall = append(in.Firewall, firewalldRules(sections["firewalld"], port)...)
	if u := sections["user"]; len(u) > 0 {
		if f := strings.Split(u[0], ":"); len(f) >= 6 {
			in.UserExists, in.Home = true, f[5]
		}
	}
	for _, l := range sections["accounts"] {
		if name := strings.TrimSpace(l); name != "" && !strings.ContainsAny(name, " :") {
			in.Accounts = append(in.Accounts, Sanitize(name))
		}
	}
	for _, l := range sections["files"] {
		in.Files = append(in.Files, statLine(l))
	}
	for _, l := range sections["authorized-keys"] {
		if k, ok := authorizedKey(l); ok {
			in.Keys = append(in.Keys, k)
		}
	}
	in.Disks = append(in.Disks, dfLines(sections["df"], false)...)
	in.Disks = append(in.Disks, dfLines(sections["dfi"], true)...)
	for _, l := range sections["log"] {
		in.Log = append(in.Log, Sanitize(l))
	}
	if len(in.Log) > 10 {
		in.Log = in.Log[len(in.Log)-10:]
	}
	return in
}

var hostPort = regexp.MustCompile(`^(\[?[0-9a-fA-F:.*%]+\]?):(\d+)$`)

// listenAddress finds the local address in an ss or netstat line.
func listenAddress(l string) string {
	for _, f := range strings.Fields(l) {
		if hostPort.MatchString(f) {
			return f
		}
	}
	return ""
}

// listensFor reports whether a listening address host:port takes
// connections to addr: the address itself, or a wildcard.
func listensFor(hostport, addr string) bool {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return false
	}
	host := strings.Trim(hostport[:i], "[]")
	if host == "*" || host == "0.0.0.0" || host == "::" || addr == "" {
		return true
	}
	h, err1 := netip.ParseAddr(strings.SplitN(host, "%", 2)[0])
	a, err2 := netip.ParseAddr(addr)
	return err1 == nil && err2 == nil && h == a
}

// addressMatches reports whether a rule's address spec (an address or a
// prefix, maybe in braces) covers addr; an empty spec covers everything.
func addressMatches(spec, addr string) bool {
	if spec == "" {
		return true
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return true
	}
	for _, s := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == '{' || r == '}' || r == ' ' }) {
		if p, err := netip.ParsePrefix(s); err == nil && p.Contains(a) {
			return true
		}
		if b, err := netip.ParseAddr(s); err == nil && b == a {
			return true
		}
	}
	return false
}

var (
	nftTable  = regexp.MustCompile(`^table (ip|ip6|inet|arp|bridge|netdev) (\S+) \{`)
	nftChain  = regexp.MustCompile(`^\s*chain (\S+) \{`)
	nftHook   = regexp.MustCompile(`type filter hook (\w+) .*policy (\w+);`)
	nftDaddr  = regexp.MustCompile(`ip6? daddr (!= )?(\{[^}]*\}|\S+)`)
	nftHandle = regexp.MustCompile(`# handle (\d+)\s*$`)
)

// portIn reports whether a port spec ("22", "{ 22, 80 }", "20-30", "ssh")
// names port.
func portIn(spec string, port int) bool {
	for _, s := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == '{' || r == '}' || r == ' ' }) {
		if s == "ssh" && port == 22 {
			return true
		}
		if lo, hi, ok := strings.Cut(s, "-"); ok {
			l, e1 := strconv.Atoi(lo)
			h, e2 := strconv.Atoi(hi)
			if e1 == nil && e2 == nil && l <= port && port <= h {
				return true
			}
			continue
		}
		if n, err := strconv.Atoi(s); err == nil && n == port {
			return true
		}
	}
	return false
}

var nftDport = regexp.MustCompile(`tcp dport (\{[^}]*\}|\S+)`)

// nftRules finds the rules of the host's input chains that drop or reject
// TCP to port. Only ip, ip6 and inet tables are a host firewall: netdev
// tables filter below the host (as a network does).
func nftRules(lines []string, port int, addr string) []FirewallRule {
	var out []FirewallRule
	var family, table, chain, hook, policy string
	accepted := false
	flushPolicy := func() {
		if hook == "input" && policy == "drop" && !accepted && (family == "ip" || family == "ip6" || family == "inet") {
			out = append(out, FirewallRule{Firewall: "nftables",
				Rule: fmt.Sprintf("table %s %s chain %s: policy drop, and no rule accepts tcp port %d", family, table, chain, port),
				Fix:  fmt.Sprintf("sudo nft add rule %s %s %s tcp dport %d accept", family, table, chain, port)})
		}
	}
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if m := nftTable.FindStringSubmatch(l); m != nil {
			family, table, chain, hook = m[1], m[2], "", ""
			continue
		}
		if m := nftChain.FindStringSubmatch(l); m != nil {
			flushPolicy()
			chain, hook, policy, accepted = m[1], "", "", false
			continue
		}
		if m := nftHook.FindStringSubmatch(t); m != nil {
			hook, policy = m[1], m[2]
			continue
		}
		if hook != "input" || (family != "ip" && family != "ip6" && family != "inet") {
			continue
		}
		dp := nftDport.FindStringSubmatch(t)
		if dp == nil || !portIn(dp[1], port) {
			continue
		}
		if d := nftDaddr.FindStringSubmatch(t); d != nil && (d[1] == "") != addressMatches(d[2], addr) {
			continue // a rule for another address
		}
		rule := strings.TrimSpace(nftHandle.ReplaceAllString(t, ""))
		switch {
		case strings.Contains(t, " accept"):
			if !strings.Contains(t, "saddr") {
				accepted = true
			}
		case strings.Contains(t, " drop") || strings.Contains(t, " reject"):
			fix := "remove the rule from the firewall's configuration (/etc/nftables.conf)"
			if h := nftHandle.FindStringSubmatch(t); h != nil {
				fix = fmt.Sprintf("sudo nft delete rule %s %s %s handle %s", family, table, chain, h[1])
			}
			out = append(out, FirewallRule{Firewall: "nftables", Rule: fmt.Sprintf("table %s %s chain %s: %s", family, table, chain, rule), Fix: fix})
		}
	}
	flushPolicy()
	return out
}

// iptablesRules reads iptables-save's filter table for INPUT rules that
// drop or reject TCP to port, and a DROP policy with no accepting rule.
func iptablesRules(lines []string, port int, addr string) []FirewallRule {
	var out []FirewallRule
	inFilter, policyDrop, accepted := false, false, false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "*"):
			inFilter = l == "*filter"
		case inFilter && strings.HasPrefix(l, ":INPUT "):
			policyDrop = strings.HasPrefix(l, ":INPUT DROP")
		case inFilter && strings.HasPrefix(l, "-A INPUT "):
			f := strings.Fields(l)
			var dport, dest, target string
			for i := 0; i+1 < len(f); i++ {
				switch f[i] {
				case "--dport", "--dports":
					dport = strings.ReplaceAll(f[i+1], ":", "-")
				case "-d", "--destination":
					dest = strings.TrimSuffix(f[i+1], "/32")
				case "-j":
					target = f[i+1]
				}
			}
			if dport == "" || !portIn(dport, port) || !addressMatches(dest, addr) {
				continue
			}
			switch target {
			case "ACCEPT":
				if !strings.Contains(l, " -s ") {
					accepted = true
				}
			case "DROP", "REJECT":
				out = append(out, FirewallRule{Firewall: "iptables", Rule: l, Fix: "sudo iptables " + strings.Replace(l, "-A INPUT", "-D INPUT", 1)})
			}
		}
	}
	if policyDrop && !accepted {
		out = append(out, FirewallRule{Firewall: "iptables", Rule: fmt.Sprintf(":INPUT DROP, and no rule accepts tcp port %d", port),
			Fix: fmt.Sprintf("sudo iptables -I INPUT -p tcp --dport %d -j ACCEPT", port)})
	}
	return out
}

// ufwRules reads `ufw status verbose`.
func ufwRules(lines []string, port int) []FirewallRule {
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "Status: active") {
		return nil
	}
	var out []FirewallRule
	denyIn, allowed := false, false
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "Default:") && strings.Contains(l, "deny (incoming)") || strings.Contains(l, "reject (incoming)") {
			denyIn = true
			continue
		}
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		p, _, _ := strings.Cut(f[0], "/")
		if !(portIn(p, port) || (port == 22 && strings.EqualFold(p, "OpenSSH"))) {
			continue
		}
		switch strings.ToUpper(f[1]) {
		case "ALLOW":
			allowed = true
		case "DENY", "REJECT":
			out = append(out, FirewallRule{Firewall: "ufw", Rule: l, Fix: fmt.Sprintf("sudo ufw delete deny %d/tcp", port)})
		}
	}
	if denyIn && !allowed {
		out = append(out, FirewallRule{Firewall: "ufw", Rule: fmt.Sprintf("default deny (incoming), and no rule allows %d/tcp", port),
			Fix: fmt.Sprintf("sudo ufw allow %d/tcp", port)})
	}
	return out
}

// firewalldRules reads `firewall-cmd --state` and `--list-all`.
func firewalldRules(lines []string, port int) []FirewallRule {
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "running" {
		return nil
	}
	for _, l := range lines[1:] {
		t := strings.TrimSpace(l)
		if s, ok := strings.CutPrefix(t, "services:"); ok && port == 22 && strings.Contains(" "+s+" ", " ssh ") {
			return nil
		}
		if s, ok := strings.CutPrefix(t, "ports:"); ok && strings.Contains(" "+s+" ", fmt.Sprintf(" %d/tcp ", port)) {
			return nil
		}
	}
	fix := fmt.Sprintf("sudo firewall-cmd --permanent --add-port=%d/tcp && sudo firewall-cmd --reload", port)
	if port == 22 {
		fix = "sudo firewall-cmd --permanent --add-service=ssh && sudo firewall-cmd --reload"
	}
	return []FirewallRule{{Firewall: "firewalld", Rule: fmt.Sprintf("the active zone allows neither the ssh service nor %d/tcp", port), Fix: fix}}
}

// statLine reads "MODE OWNER GROUP PATH" from stat -c '%a %U %G %n', or
// stat's complaint about a missing file.
func statLine(l string) FileMode {
	f := strings.Fields(l)
	if len(f) >= 4 {
		if m, err := strconv.ParseUint(f[0], 8, 32); err == nil {
			return FileMode{Mode: uint32(m), Owner: f[1], Path: strings.Join(f[3:], " ")}
		}
	}
	fm := FileMode{Missing: true, Path: l}
	if i := strings.Index(l, "'"); i >= 0 {
		if j := strings.Index(l[i+1:], "'"); j >= 0 {
			fm.Path = l[i+1 : i+1+j]
		}
	}
	// GNU stat quotes with ‘…’ in some locales.
	if i := strings.Index(l, "‘"); i >= 0 {
		if j := strings.Index(l[i:], "’"); j >= 0 {
			fm.Path = l[i+len("‘") : i+j]
		}
	}
	return fm
}

// authorizedKey reads one authorized_keys line (options may come first)
// into the fingerprints EC2 may have recorded for it.
func authorizedKey(l string) (LocalKey, bool) {
	f := strings.Fields(l)
	for i := 0; i+1 < len(f); i++ {
		if !strings.HasPrefix(f[i], "ssh-") && !strings.HasPrefix(f[i], "ecdsa-") && !strings.HasPrefix(f[i], "sk-") {
			continue
		}
		blob, err := base64.StdEncoding.DecodeString(f[i+1])
		if err != nil {
			continue
		}
		keys := Fingerprints([]KeyMaterial{{Source: "authorized_keys", Type: f[i], Blob: blob}})
		if len(keys) == 1 {
			return keys[0], true
		}
	}
	return LocalKey{}, false
}

// dfLines reads df -P (or -Pi) output.
func dfLines(lines []string, inodes bool) []Disk {
	var out []Disk
	seen := map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 6 || f[0] == "Filesystem" {
			continue
		}
		pct, err := strconv.Atoi(strings.TrimSuffix(f[4], "%"))
		if err != nil || seen[f[5]] {
			continue
		}
		seen[f[5]] = true
		out = append(out, Disk{Mount: f[5], UsedPct: pct, Inodes: inodes})
	}
	return out
}

// Sanitize makes text from elsewhere (a log line, a Name tag, a banner)
// safe to print on one line: see failure.Vis.
func Sanitize(s string) string { return failure.Vis(s) }
