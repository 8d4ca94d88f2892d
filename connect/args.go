package connect

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Args is a parsed ec2ssh command line: ssh(1)'s options with their meaning,
// ec2ssh's own long options, the destination and the remote command.
//
// Options that map onto ssh_config keywords are kept as ordered Settings, the
// way ssh(1) applies them: command-line values are read before any
// configuration file, and for single-valued keywords the first value wins.
type Args struct {
	Settings []Setting // from -o and from flags that stand for a keyword (-p, -l, -i, -L, …)

	ConfigFile  string // -F
	Verbose     int    // count of -v
	Quiet       bool   // -q
	TTY         int    // count of -t; -T sets it to 0 and NoTTY
	NoTTY       bool   // -T
	NoCommand   bool   // -N
	NullStdin   bool   // -n
	Background  bool   // -f
	Subsystem   bool   // -s
	StdioFwd    string // -W host:port
	LogFile     string // -E
	PrintConfig bool   // -G
	Version     bool   // -V
	Query       string // -Q
	ControlCmd  string // -O: check, forward, cancel, exit, stop, proxy
	masters     int    // count of -M

	// ec2ssh's own long options.
	Region   string
	Profile  string
	Fallback Mode   // --fallback and --via
	Address  string // auto | public | private
	SourceIP string
	Diagnose bool
	JSON     bool
	NoCache  bool
	Help     bool
	Proxy    bool // --proxy HOST PORT: Destination and ProxyPort hold them

	Serial bool // --serial: the EC2 serial console

	// The fleet (SPEC.md, "Fleet"): --list [FILTER], --all FILTER -- CMD.
	List     bool
	All      bool
	Parallel int // --parallel N for --all
	// Run Command (issue 22): --via run-command with --all.
	RunCommand    bool
	ParallelSpec  string // --parallel as given: N, or N% with --via run-command
	MaxErrors     string // --max-errors N or N%
	OutputS3      string // --output-s3 BUCKET[/PREFIX]
	Stdin         string // --stdin=broadcast for --all ("" or none: no input)
	Completion    string // --completion bash|zsh|fish
	CompleteHosts bool   // --complete-hosts (what completion offers)
	// DestIndex is where the destination (or filter) was in argv.
	DestIndex int

	Syslog bool // -y: logging to syslog, which ec2ssh refuses

	Warnings []string // ssh(1)'s parse-time warnings, printed even with -q

	// typed is the option as typed (-X, -w, …) for a keyword a flag set,
	// so that a refusal names what the person wrote (issue 21).
	typed map[string]string

	Destination string   // the host part, as typed (an alias, a name, an address)
	ProxyPort   string   // with --proxy
	Command     []string // the remote command's words, as given
}

// Setting is one ssh_config keyword given on the command line.
type Setting struct {
	Key   string // canonical spelling, e.g. "Port"
	Value string
}

// RemoteCommand returns the command as ssh(1) sends it: the words joined by
// single spaces, with no quoting (the remote shell splits them again).
func (a *Args) RemoteCommand() string { return strings.Join(a.Command, " ") }

// Setting returns the first command-line value of key, as ssh(1) keeps it.
func (a *Args) Setting(key string) (string, bool) {
	for _, s := range a.Settings {
		if strings.EqualFold(s.Key, key) {
			return s.Value, true
		}
	}
	return "", false
}

// ssh(1)'s getopt string (OpenSSH 9): letters followed by ':' take an argument.
const sshOptstring = "1246ab:c:e:fgi:kl:m:no:p:qstvxAB:CD:E:F:GI:J:KL:MNO:PQ:R:S:TVw:W:XYy"

// supported are the ssh options ec2ssh implements (SPEC.md, "Command line").
// The others in sshOptstring are recognised so that they can be refused by
// name instead of being mistaken for a destination.
const supported = "ilpFovqtTNnfsLRDWJAax46CEVGcmbBegkKQXYIwy12MSO"

// LongOption is one of ec2ssh's own options (ssh(1) has no long ones).
// The shell completions are made from this table.
type LongOption struct {
	Name    string
	Arg     string   // what its argument is, "" when it takes none
	Choices []string // the values it takes, when they are a fixed set
	About   string
}

// LongOptions are ec2ssh's long options.
var LongOptions = []LongOption{
	{Name: "region", Arg: "region", About: "AWS region (all: every enabled region, with --list)"},
	{Name: "profile", Arg: "profile", About: "AWS profile"},
	{Name: "fallback", Arg: "mode", Choices: []string{"auto", "ssm", "never"}, About: "when to leave direct SSH for another way in"},
	{Name: "via", Arg: "way", Choices: []string{"direct", "ssm", "eice", "run-command"}, About: "the one way in to use (run-command: SSM Run Command, with --all)"},
	{Name: "address", Arg: "which", Choices: []string{"auto", "public", "private"}, About: "which address of the instance to dial"},
	{Name: "source-ip", Arg: "address", About: "the address AWS sees the connection come from"},
	{Name: "diagnose", About: "check what would break SSH, and say how to fix it"},
	{Name: "json", About: "JSON output (--diagnose, --list, --all)"},
	{Name: "no-cache", About: "resolve the destination afresh"},
	{Name: "proxy", About: "be a ProxyCommand: ec2ssh --proxy %h %p"},
	{Name: "serial", About: "open the instance's EC2 serial console"},
	{Name: "list", About: "list instances (FILTER, below) and how each would be reached"},
	{Name: "all", About: "run a command on many instances: FILTER -- COMMAND"},
	{Name: "parallel", Arg: "count", About: "how many instances --all runs on at once (default 10; with --via run-command N or N%, default 50)"},
	{Name: "max-errors", Arg: "count", About: "--all --via run-command: errors (N or N%) after which no more instances get the command (default 100%: all do)"},
	{Name: "output-s3", Arg: "bucket", About: "--all --via run-command: BUCKET[/PREFIX] the agents write whole outputs to, read past SSM's 24,000-character cut"},
	{Name: "stdin", Arg: "mode", Choices: []string{"none", "broadcast"}, About: "what --all does with its input"},
	{Name: "completion", Arg: "shell", Choices: []string{"bash", "zsh", "fish"}, About: "print a shell completion script"},
	{Name: "complete-hosts", About: "print the host names completion offers"},
	{Name: "help", About: "say how to use ec2ssh"},
	{Name: "version", About: "print the version"},
}

var longOptions = func() map[string]bool { // name -> takes an argument
	m := map[string]bool{}
	for _, o := range LongOptions {
		m[o.Name] = o.Arg != ""
	}
	return m
}()

const usageHint = "see 'ec2ssh --help'"

// ParseArgs parses argv (without the program name) as ssh(1) does: options,
// then the destination, then options again unless "--" was seen, then the
// command. It fails with a failure.Config error naming the bad option.
func ParseArgs(argv []string) (*Args, error) {
	a := &Args{}
	args := argv
	terminated := false
	var err error
	args, terminated, err = a.parseOptions(args)
	if err != nil {
		return nil, err
	}
	if a.Proxy {
		if len(args) != 2 {
			return nil, failure.Configf("use it as: ProxyCommand ec2ssh --proxy %h %p", "--proxy takes exactly a host and a port, got %d arguments", len(args))
		}
		a.Destination, a.ProxyPort = args[0], args[1]
		if _, err := parsePort(a.ProxyPort); err != nil {
			return nil, err
		}
		return a, nil
	}
	if len(args) > 0 {
		a.DestIndex = len(argv) - len(args)
		switch {
		case a.List:
			// A FILTER, EC2's (issue 24: spaces, backslashes and all), not
			// a host: taken as typed.
			a.Destination = args[0]
		case a.All:
			if err := a.setFilter(args[0]); err != nil {
				return nil, err
			}
		default:
			if err := a.setDestination(args[0]); err != nil {
				return nil, err
			}
		}
		args = args[1:]
		// ssh(1) parses options after the destination too, unless "--" came first.
		if len(args) > 0 && !terminated {
			args, _, err = a.parseOptions(args)
			if err != nil {
				return nil, err
			}
		}
		a.Command = args
	}
	if a.All && a.Destination == "" {
		return nil, failure.Configf("use it as: ec2ssh --all FILTER -- COMMAND", "--all needs a filter (a Name pattern such as 'web-*', tag:Key=Value, or '*')")
	}
	if a.All && len(a.Command) == 0 {
		return nil, failure.Configf("use it as: ec2ssh --all FILTER -- COMMAND", "--all needs a command to run")
	}
	if err := a.checkRunCommand(); err != nil {
		return nil, err
	}
	if a.Destination == "" && !a.Version && !a.Help && a.Query == "" && !a.List && a.Completion == "" && !a.CompleteHosts {
		return nil, failure.Configf(usageHint, "no destination given")
	}
	return a, nil
}

// parseOptions consumes options from the front of args, getopt-style, and
// returns what is left and whether "--" ended them.
func (a *Args) parseOptions(args []string) (rest []string, terminated bool, err error) {
	for len(args) > 0 {
		arg := args[0]
		switch {
		case arg == "--":
			return args[1:], true, nil
		case strings.HasPrefix(arg, "--"):
			args, err = a.parseLong(args)
			if err != nil {
				return nil, false, err
			}
			continue
		case len(arg) < 2 || arg[0] != '-':
			return args, false, nil
		}
		args = args[1:]
		for i := 1; i < len(arg); i++ {
			c := arg[i]
			at := strings.IndexByte(sshOptstring, c)
			if c == ':' || at < 0 {
				return nil, false, failure.Configf(usageHint, "unknown option -%c", c)
			}
			if strings.IndexByte(supported, c) < 0 {
				return nil, false, failure.Configf("run OpenSSH's ssh directly for this one", "option -%c is not supported by ec2ssh", c)
			}
			if c == '1' {
				return nil, false, failure.Configf("ec2ssh, like ssh(1), speaks protocol 2 only", "SSH protocol v.1 is no longer supported")
			}
			takesArg := at+1 < len(sshOptstring) && sshOptstring[at+1] == ':'
			if !takesArg {
				a.flag(c)
				continue
			}
			var val string
			if i+1 < len(arg) {
				val = arg[i+1:]
			} else if len(args) > 0 {
				val, args = args[0], args[1:]
			} else {
				return nil, false, failure.Configf(usageHint, "option -%c requires an argument", c)
			}
			if err := a.option(c, val); err != nil {
				return nil, false, err
			}
			break
		}
	}
	return args, false, nil
}

func (a *Args) parseLong(args []string) ([]string, error) {
	name, val, hasVal := strings.Cut(args[0][2:], "=")
	takesArg, ok := longOptions[name]
	if !ok {
		return nil, failure.Configf(usageHint, "unknown option --%s", name)
	}
	args = args[1:]
	if takesArg && !hasVal {
		if len(args) == 0 {
			return nil, failure.Configf(usageHint, "option --%s requires an argument", name)
		}
		val, args = args[0], args[1:]
	} else if !takesArg && hasVal {
		return nil, failure.Configf(usageHint, "option --%s takes no argument", name)
	}
	if set := longSetters[name]; set != nil {
		if err := set(a, val); err != nil {
			return nil, err
		}
	}
	return args, nil
}

// oneOf checks val against a long option's closed set of values.
func oneOf(name, val, hint string, allowed ...string) error {
	if slices.Contains(allowed, val) {
		return nil
	}
	return failure.Configf(hint, "bad --%s value %q", name, val)
}

// longSetters apply each long option to Args.
var longSetters = map[string]func(a *Args, val string) error{
	"region":    func(a *Args, v string) error { a.Region = v; return nil },
	"profile":   func(a *Args, v string) error { a.Profile = v; return nil },
	"source-ip": func(a *Args, v string) error { a.SourceIP = v; return nil },
	"fallback": func(a *Args, v string) error {
		m, ok := map[string]Mode{"auto": ModeAuto, "ssm": ModeSSM, "never": ModeDirect}[v]
		if !ok {
			return failure.Configf("use --fallback=auto, --fallback=ssm or --fallback=never", "bad --fallback value %q", v)
		}
		a.Fallback = m
		return nil
	},
	"via": func(a *Args, v string) error {
		// --via names the one way in: direct (no fallback), ssm, or eice;
		// run-command hands --all's command to SSM Run Command.
		if v == "run-command" {
			a.RunCommand = true
			return nil
		}
		m, ok := map[string]Mode{"direct": ModeDirect, "ssm": ModeSSM, "eice": ModeEICE}[v]
		if !ok {
			return failure.Configf("use --via=direct, --via=ssm, --via=eice or --via=run-command", "bad --via value %q", v)
		}
		a.Fallback = m
		return nil
	},
	"address": func(a *Args, v string) error {
		if err := oneOf("address", v, "use --address=auto, --address=public or --address=private", "auto", "public", "private"); err != nil {
			return err
		}
		a.Address = v
		return nil
	},
	"diagnose":       func(a *Args, _ string) error { a.Diagnose = true; return nil },
	"json":           func(a *Args, _ string) error { a.JSON = true; return nil },
	"no-cache":       func(a *Args, _ string) error { a.NoCache = true; return nil },
	"help":           func(a *Args, _ string) error { a.Help = true; return nil },
	"proxy":          func(a *Args, _ string) error { a.Proxy = true; return nil },
	"version":        func(a *Args, _ string) error { a.Version = true; return nil },
	"serial":         func(a *Args, _ string) error { a.Serial = true; return nil },
	"list":           func(a *Args, _ string) error { a.List = true; return nil },
	"all":            func(a *Args, _ string) error { a.All = true; return nil },
	"complete-hosts": func(a *Args, _ string) error { a.CompleteHosts = true; return nil },
	"parallel": func(a *Args, v string) error {
		// Over ssh, ec2ssh runs a process per instance: 1 to 256. Run
		// Command's MaxConcurrency (N or N%) is checked by fleet.ParseSpec.
		a.ParallelSpec = v
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 256 {
			a.Parallel = n
		}
		return nil
	},
	"max-errors": func(a *Args, v string) error { a.MaxErrors = v; return nil },
	"output-s3":  func(a *Args, v string) error { a.OutputS3 = v; return nil },
	"stdin": func(a *Args, v string) error {
		if err := oneOf("stdin", v, "use --stdin=none or --stdin=broadcast", "none", "broadcast"); err != nil {
			return err
		}
		a.Stdin = v
		return nil
	},
	"completion": func(a *Args, v string) error {
		if !slices.Contains([]string{"bash", "zsh", "fish"}, v) {
			return failure.Configf("use --completion bash, zsh or fish", "no completion for %q", v)
		}
		a.Completion = v
		return nil
	},
}

// flag applies an option that takes no argument.
func (a *Args) flag(c byte) {
	switch c {
	case 'v':
		a.Verbose++
	case 'q':
		a.Quiet = true
	case 't':
		a.TTY++
		a.NoTTY = false
	case 'T':
		a.NoTTY, a.TTY = true, 0
	case 'N':
		a.NoCommand = true
	case 'n':
		a.NullStdin = true
	case 'f':
		a.Background = true
	case 's':
		a.Subsystem = true
	case 'A':
		a.setLast("ForwardAgent", "yes")
	case 'a':
		a.setLast("ForwardAgent", "no")
	case 'x':
		a.setLast("ForwardX11", "no")
	case '4':
		a.setLast("AddressFamily", "inet")
	case '6':
		a.setLast("AddressFamily", "inet6")
	case 'C':
		a.setLast("Compression", "yes")
	case 'G':
		a.PrintConfig = true
	case 'V':
		a.Version = true
	case 'g':
		a.setLast("GatewayPorts", "yes")
	case 'k':
		a.setLast("GSSAPIDelegateCredentials", "no")
	case 'K':
		a.setFlag("GSSAPIAuthentication", "yes", "-K")
		a.setFlag("GSSAPIDelegateCredentials", "yes", "-K")
	case 'X':
		a.setFlag("ForwardX11", "yes", "-X")
	case 'Y':
		a.setFlag("ForwardX11", "yes", "-Y")
		a.setFlag("ForwardX11Trusted", "yes", "-Y")
	case 'y':
		a.Syslog = true
	case 'M':
		a.masters++
		if a.masters == 1 {
			a.setFlag("ControlMaster", "yes", "-M")
		} else {
			a.setFlag("ControlMaster", "ask", "-MM")
		}
	}
}

// option applies an option that takes an argument.
func (a *Args) option(c byte, val string) error {
	if set := optionSetters[c]; set != nil {
		return set(a, val)
	}
	if kw, ok := optionKeywords[c]; ok {
		a.add(kw, val) // the keyword ssh(1) sets, accumulating
		return nil
	}
	if kw, ok := optionLast[c]; ok {
		a.setFlag(kw, val, "-"+string(c))
	}
	return nil
}

// optionKeywords are options that add a value to a keyword; optionLast
// those that set one, the last on the command line winning.
var (
	optionKeywords = map[byte]string{'L': "LocalForward", 'R': "RemoteForward", 'D': "DynamicForward"}
	optionLast     = map[byte]string{'b': "BindAddress", 'B': "BindInterface", 'I': "PKCS11Provider", 'S': "ControlPath"}
)

// optionSetters apply the options that check their value or set more
// than one thing.
var optionSetters = map[byte]func(a *Args, val string) error{
	'i': (*Args).identityOption,
	'l': func(a *Args, v string) error {
		if !validRemoteUser(v) {
			return errInvalidUser
		}
		a.add("User", v)
		return nil
	},
	'p': func(a *Args, v string) error {
		if _, err := parsePort(v); err != nil {
			return err
		}
		a.add("Port", v)
		return nil
	},
	'F': func(a *Args, v string) error { a.ConfigFile = v; return nil },
	'E': func(a *Args, v string) error { a.LogFile = v; return nil },
	'Q': func(a *Args, v string) error { a.Query = v; return nil },
	'o': func(a *Args, v string) error {
		k, val, err := splitOption(v)
		if err == nil {
			a.add(k, val)
		}
		return err
	},
	'W': func(a *Args, v string) error {
		if a.StdioFwd != "" {
			return failure.Configf(usageHint, "only one -W option is permitted")
		}
		a.StdioFwd = v
		return nil
	},
	'J': func(a *Args, v string) error {
		if _, ok := a.Setting("ProxyJump"); ok {
			return failure.Configf(usageHint, "only one -J option is permitted")
		}
		a.add("ProxyJump", v)
		return nil
	},
	'c': func(a *Args, v string) error {
		if !validAlgorithms(algCiphers, v) {
			return failure.Configf("see ssh -Q cipher", "Unknown cipher type '%s'", v)
		}
		a.setLast("Ciphers", v)
		return nil
	},
	'm': func(a *Args, v string) error {
		if !validAlgorithms(algMACs, v) {
			return failure.Configf("see ssh -Q mac", "Unknown mac type '%s'", v)
		}
		a.setLast("MACs", v)
		return nil
	},
	'e': func(a *Args, v string) error {
		if v != "none" && len(v) != 1 && !(len(v) == 2 && v[0] == '^' && v[1] >= 64 && v[1] < 128) {
			return failure.Configf("give one character, ^X or none", "Bad escape character '%s'.", v)
		}
		a.setLast("EscapeChar", v)
		return nil
	},
	'w': func(a *Args, v string) error {
		a.setFlag("Tunnel", "point-to-point", "-w")
		a.setFlag("TunnelDevice", v, "-w")
		return nil
	},
	'O': func(a *Args, v string) error {
		switch v {
		case "check", "forward", "cancel", "exit", "stop", "proxy":
			a.ControlCmd = v
			return nil
		}
		return failure.Configf("use -O check, forward, cancel, exit, stop or proxy", "Invalid multiplex command.")
	},
}

// identityOption is -i: ssh(1) checks the file at once and drops a
// missing one with a warning.
func (a *Args) identityOption(val string) error {
	if _, err := os.Stat(ExpandPath(val)); err != nil {
		reason := "No such file or directory"
		if !errors.Is(err, os.ErrNotExist) {
			reason = err.Error()
		}
		a.Warnings = append(a.Warnings, fmt.Sprintf("Warning: Identity file %s not accessible: %s.", val, reason))
		return nil
	}
	a.add("IdentityFile", val)
	return nil
}

var errInvalidUser = failure.Configf("a login name has no shell metacharacters", "remote username contains invalid characters")

// validRemoteUser is OpenSSH's check (since 9.6) of a user given on the
// command line: %r reaches ProxyCommand and Match exec through a shell, so
// a name with shell metacharacters could run commands (CVE-2023-51385).
func validRemoteUser(u string) bool {
	if u == "" {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if strings.IndexByte("'`\";&<>|(){}$", c) >= 0 || c < 0x20 || c == 0x7f {
			return false
		}
		if (c == ' ' || c == '\t') && i+1 < len(u) && u[i+1] == '-' {
			return false
		}
		if c == '\\' && i+1 == len(u) {
			return false
		}
	}
	return true
}

// validAlgorithms is ssh's check of -c and -m: known names, with an
// optional +, - or ^ before the list.
func validAlgorithms(kind algorithmKind, spec string) bool {
	if spec != "" && strings.IndexByte("+-^", spec[0]) >= 0 {
		spec = spec[1:]
	}
	for _, n := range strings.Split(spec, ",") {
		if !slices.Contains(kind.known, n) {
			return false
		}
	}
	return spec != ""
}

func (a *Args) add(key, val string) { a.Settings = append(a.Settings, Setting{key, val}) }

// Typed is the option as typed that set key ("-X" for ForwardX11), or ""
// when -o or no option set it.
func (a *Args) Typed(key string) string { return a.typed[strings.ToLower(key)] }

// setLast records a flag whose last occurrence wins (ssh(1) assigns these
// directly), ahead of any -o for the same keyword.
func (a *Args) setLast(key, val string) { a.setFlag(key, val, "") }

// setFlag is setLast for the option typed as flag ("-X"), which a refusal
// of the keyword then names.
func (a *Args) setFlag(key, val, flag string) {
	if a.typed == nil {
		a.typed = map[string]string{}
	}
	a.typed[strings.ToLower(key)] = flag
	for i, s := range a.Settings {
		if strings.EqualFold(s.Key, key) {
			a.Settings = append(a.Settings[:i], a.Settings[i+1:]...)
			break
		}
	}
	a.Settings = append([]Setting{{key, val}}, a.Settings...)
}

// setFilter takes --all's [user@]FILTER: the user as ssh splits a
// destination (at the last "@"), the FILTER as typed: it is EC2's to
// judge, not a host name (issue 24).
func (a *Args) setFilter(dest string) error {
	filter := dest
	if i := strings.LastIndexByte(dest, '@'); i >= 0 {
		user := dest[:i]
		filter = dest[i+1:]
		if user == "" || !validRemoteUser(user) {
			return errInvalidUser
		}
		a.add("User", user)
	}
	a.Destination = filter
	return nil
}

// setDestination takes [user@]host or ssh://[user@]host[:port].
func (a *Args) setDestination(dest string) error {
	user, host, port := "", dest, ""
	if strings.HasPrefix(dest, "ssh://") {
		u, err := url.Parse(dest)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return failure.Configf("write it as ssh://[user@]host[:port]", "bad destination %q", dest)
		}
		if u.User != nil {
			user = u.User.Username()
		}
		host, port = u.Hostname(), u.Port()
	} else if i := strings.LastIndexByte(dest, '@'); i >= 0 {
		user, host = dest[:i], dest[i+1:]
		if user == "" {
			return failure.Configf("write it as [user@]host", "bad destination %q: empty user", dest)
		}
	}
	if host == "" {
		return failure.Configf("write it as [user@]host", "bad destination %q: empty host", dest)
	}
	if strings.ContainsAny(host, " \t\n'\"\\`$;&|<>(){}") || strings.HasPrefix(host, "-") || strings.ContainsFunc(host, unicode.IsControl) {
		return failure.Configf("write it as [user@]host", "hostname contains invalid characters")
	}
	if user != "" && !validRemoteUser(user) {
		return errInvalidUser
	}
	a.Destination = host
	if user != "" {
		a.add("User", user)
	}
	if port != "" {
		if _, err := parsePort(port); err != nil {
			return err
		}
		a.add("Port", port)
	}
	return nil
}

// splitOption splits an -o argument: "Key=Value", "Key Value" or "Key = Value".
func splitOption(s string) (string, string, error) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t=")
	if i <= 0 {
		return "", "", failure.Configf("write it as -o Key=Value", "bad -o option %q", s)
	}
	key, rest := s[:i], strings.TrimLeft(s[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	rest = strings.TrimRight(rest, " \t")
	if rest == "" {
		return "", "", failure.Configf("write it as -o Key=Value", "-o %s has no value", key)
	}
	k, ok := lookupKeyword(key)
	if !ok {
		return "", "", failure.Configf("see ssh_config(5) for the keywords", "unknown -o option %q (command-line line 0: Bad configuration option: %s)", key, strings.ToLower(key))
	}
	return k.name, unquote(rest), nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 65535 {
		return 0, failure.Configf("a port is a number from 1 to 65535", "bad port %q", s)
	}
	return n, nil
}

// Usage is the text of --help; ec2ssh's own options come from LongOptions.
func Usage() string {
	var b strings.Builder
	b.WriteString(`usage: ec2ssh [ssh options] [user@]destination [command [argument ...]]
       ec2ssh --proxy HOST PORT
       ec2ssh --diagnose [--json] [user@]destination
       ec2ssh --serial INSTANCE
       ec2ssh --list [--json] [FILTER]
       ec2ssh --all [--parallel N] [--stdin=none|broadcast] FILTER -- COMMAND
       ec2ssh --all FILTER --via run-command [--parallel N|N%] [--max-errors N|N%]
              [--output-s3 BUCKET[/PREFIX]] [--json] -- COMMAND
       ec2ssh -V | --version | --help

A drop-in ssh for Amazon EC2: finds the instance, checks what usually breaks
SSH to it, says why when it fails, and gets in another way (SSM, an EC2
Instance Connect Endpoint, EC2 Instance Connect) when it can.

ssh options (as in ssh(1)):
  -i identity_file  -l login_name  -p port  -F configfile  -o option
  -v (more: -vv, -vvv)  -q  -t (-tt)  -T  -N  -n  -f  -s  -G  -g  -k
  -L [bind_address:]port:host:hostport  -R [bind_address:]port:host:hostport
  -D [bind_address:]port  -W host:port  -J destination  -b bind_address
  -c cipher_spec  -m mac_spec  -e escape_char  -E log_file  -Q query_option
  -M  -S ctl_path  -O ctl_cmd  -A  -a  -x  -4  -6  -C  -V  --  (end of options)
  Refused by name: -X -Y (X11), -K -I -w -B -y.

ec2ssh options:
`)
	for _, o := range LongOptions {
		name := "--" + o.Name
		switch {
		case len(o.Choices) > 0:
			name += "=" + strings.Join(o.Choices, "|")
		case o.Arg != "":
			name += " " + strings.ToUpper(o.Arg)
		}
		fmt.Fprintf(&b, "  %-30s %s\n", name, o.About)
	}
	b.WriteString(filterHelp)
	return b.String()
}

// filterHelp says what a FILTER of --list and --all means: EC2's own
// DescribeInstances filters, sent as typed (issue 24; ec2ssh(1), FILTERS AND REACH).
const filterHelp = `
FILTER (--list, --all) is EC2's own instance filter, sent to EC2 as typed and
meaning what EC2 makes of it; terminated instances are left out:
  'web-*'          the Name tag; * is any characters, / and spaces included
  'db-?'           ? is exactly one character; values are case-sensitive
  'team/*/api'     a Name with slashes
  tag:Env=prod     any tag; its value may use * and ? too (tag:Env=* : any value)
  'tag:Env=pr\*d'  a backslash makes *, ? or \ literal
  i-0abc…          one instance; none (or '*'): every instance
`

func (s Setting) String() string { return fmt.Sprintf("%s=%s", s.Key, s.Value) }

// checkRunCommand refuses what Run Command cannot honour (issue 22): it
// runs --all's command through each instance's SSM agent, as root, with
// no terminal, no input and no SSH connection, so the options that shape
// one are refused by name rather than ignored.
func (a *Args) checkRunCommand() error {
	const use = "use it as: ec2ssh --all FILTER --via run-command [--parallel N|N%] [--max-errors N|N%] [--output-s3 BUCKET[/PREFIX]] -- COMMAND"
	switch {
	case a.RunCommand && !a.All:
		return failure.Configf(use, "--via run-command runs a command on a fleet: it goes with --all")
	case (a.MaxErrors != "" || a.OutputS3 != "") && !a.RunCommand:
		return failure.Configf(use, "--max-errors and --output-s3 go with --all --via run-command")
	case a.ParallelSpec != "" && a.Parallel == 0 && !a.RunCommand:
		return failure.Configf("give a number from 1 to 256 (N% goes with --via run-command)", "bad --parallel value %q", a.ParallelSpec)
	case !a.RunCommand:
		return nil
	case a.Stdin == "broadcast":
		return failure.Configf("pass the input inside the command (a here-document), or copy a file first", "Run Command takes no input: --stdin=broadcast does not go with --via run-command")
	case len(a.Settings) > 0:
		return failure.Configf("drop it: Run Command reaches the instance through its SSM agent, as root (run as another user with: -- sudo -u USER COMMAND)",
			"%s does not apply to --via run-command: there is no SSH connection", a.Settings[0].Key)
	case a.TTY > 0 || a.NoCommand || a.Background || a.Subsystem || a.StdioFwd != "" || a.ControlCmd != "" || a.ConfigFile != "" || a.Proxy || a.Fallback != ModeAuto || a.Address != "" || a.SourceIP != "":
		return failure.Configf(use, "ssh's -t -N -f -s -W -O -F and --fallback, --address, --source-ip do not apply to --via run-command: there is no SSH connection")
	}
	return nil
}
