package connect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Forward is one -L, -R or -D (LocalForward, RemoteForward, DynamicForward).
type Forward struct {
	Kind       byte // 'L', 'R' or 'D'
	BindHost   string
	BindPort   int
	TargetHost string // empty for 'D' and for a remote dynamic ('R' with no target)
	TargetPort int
	BindPath   string // a Unix socket to listen on, instead of BindHost:BindPort
	TargetPath string // a Unix socket to connect to, instead of TargetHost:TargetPort
}

// Dynamic reports a SOCKS forwarding: -D, or -R with a port only.
func (f Forward) Dynamic() bool {
	return f.Kind == 'D' || f.Kind == 'R' && f.TargetHost == "" && f.TargetPath == ""
}

// ParseForward parses ssh(1)'s forwarding forms: "[bind_address:]port:
// host:hostport", with a Unix socket path (anything with a '/') in place of
// the listening or the target half, and for 'D', or 'R' alone,
// "[bind_address:]port". The ssh_config form with a space between the
// listen and target parts is accepted too. IPv6 addresses go in brackets.
func ParseForward(kind byte, spec string) (Forward, error) {
	f := Forward{Kind: kind}
	spec = strings.Replace(strings.TrimSpace(spec), " ", ":", 1)
	parts := splitColons(spec)
	bad := func() (Forward, error) {
		return Forward{}, failure.Configf("see ssh(1) -L, -R and -D", "bad -%c forwarding specification %q", kind, spec)
	}
	isPath := func(p string) bool { return strings.Contains(p, "/") }
	var listen []string
	switch {
	case kind == 'D' || kind == 'R' && len(parts) <= 2 && !isPath(parts[len(parts)-1]) && (len(parts) == 1 || !isPath(parts[0])):
		if len(parts) > 2 {
			return bad()
		}
		listen = parts
	case len(parts) == 2 && isPath(parts[1]):
		listen, f.TargetPath = parts[:1], parts[1]
	case len(parts) == 3 && isPath(parts[2]):
		listen, f.TargetPath = parts[:2], parts[2]
	case len(parts) == 3 || len(parts) == 4:
		listen = parts[:len(parts)-2]
		f.TargetHost = parts[len(parts)-2]
		p, err := strconv.Atoi(parts[len(parts)-1])
		if err != nil || p < 0 || p > 65535 || f.TargetHost == "" || isPath(f.TargetHost) {
			return bad()
		}
		f.TargetPort = p
	default:
		return bad()
	}
	if !f.setListen(kind, listen) {
		return bad()
	}
	return f, nil
}

// setListen takes a forwarding's listening side: a socket path, or
// [bind_address:]port (0 only for -R, where the server picks).
func (f *Forward) setListen(kind byte, listen []string) bool {
	if len(listen) == 1 && strings.Contains(listen[0], "/") {
		f.BindPath = listen[0]
		return kind != 'D'
	}
	if len(listen) == 2 {
		f.BindHost = listen[0]
		listen = listen[1:]
	}
	p, err := strconv.Atoi(listen[0])
	if err != nil || p < 0 || p > 65535 || (p == 0 && kind != 'R') {
		return false
	}
	f.BindPort = p
	return true
}

// splitColons splits on ':' outside [brackets] and drops the brackets.
func splitColons(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				parts = append(parts, strings.Trim(s[start:i], "[]"))
				start = i + 1
			}
		}
	}
	return append(parts, strings.Trim(s[start:], "[]"))
}

// String is the forwarding as ssh -G prints it: "[bind]:port [host]:port",
// with a socket's path in place of either half.
func (f Forward) String() string {
	listen := f.BindPath
	if listen == "" {
		listen = strconv.Itoa(f.BindPort)
		if f.BindHost != "" {
			listen = "[" + f.BindHost + "]:" + listen
		}
	}
	switch {
	case f.Dynamic():
		return listen
	case f.TargetPath != "":
		return listen + " " + f.TargetPath
	}
	return listen + " [" + f.TargetHost + "]:" + strconv.Itoa(f.TargetPort)
}

func (f Forward) bindAddr(gatewayPorts bool) string {
	host := f.BindHost
	switch {
	case host == "*":
		host = ""
	case host == "" && !gatewayPorts:
		host = "localhost"
	case host == "localhost" || host == "":
	}
	return net.JoinHostPort(host, strconv.Itoa(f.BindPort))
}

// Forwarder runs a connection's forwardings: those the configuration
// asks for, and those added or cancelled later (the ~C command line).
type Forwarder struct {
	client *Client
	log    func(string, ...any)
	ctx    context.Context

	mu     sync.Mutex
	active map[string]net.Listener // by kind and listening half
}

func (f Forward) key() string {
	k := string(f.Kind)
	if f.Kind == 'D' {
		k = "L"
	}
	if f.BindPath != "" {
		return k + f.BindPath
	}
	return k + net.JoinHostPort(f.BindHost, strconv.Itoa(f.BindPort))
}

// StartForwards sets up every forwarding c asks for. A forwarding that
// cannot be set up is a warning, or an error under ExitOnForwardFailure.
// The forwardings end when ctx ends or the client closes.
func StartForwards(ctx context.Context, client *Client, log func(string, ...any)) error {
	c := client.Config
	fw := client.Forwarder(ctx, log)
	for _, set := range []struct {
		kind  byte
		specs []string
	}{{'L', c.LocalForwards}, {'R', c.RemoteForwards}, {'D', c.DynamicForwards}} {
		for _, s := range set.specs {
			f, err := ParseForward(set.kind, s)
			if err != nil {
				return err
			}
			if _, err := fw.Add(f); err != nil {
				if c.ExitOnForwardFailure {
					return err
				}
				log("Warning: %v", err)
			}
		}
	}
	return nil
}

// Add starts one forwarding; for a remote one on port 0 it returns the port
// the server chose.
func (fw *Forwarder) Add(f Forward) (int, error) {
	c := fw.client.Config
	ln, err := fw.listen(f)
	if err != nil {
		what := map[byte]string{'L': "local", 'R': "remote", 'D': "dynamic"}[f.Kind]
		port := strconv.Itoa(f.BindPort)
		if f.BindPath != "" {
			port = f.BindPath
		}
		return 0, &failure.Error{Kind: failure.Config, Msg: fmt.Sprintf("%s port forwarding failed for listen port %s: %v", what, port, err),
			Hint: "pick a free port, or drop ExitOnForwardFailure"}
	}
	allocated := 0
	if f.Kind == 'R' && f.BindPort == 0 && f.BindPath == "" {
		allocated = ln.Addr().(*net.TCPAddr).Port
		fw.log("Allocated port %d for remote forward to %s", allocated, f.targetText())
		f.BindPort = allocated
	}
	fw.mu.Lock()
	fw.active[f.key()] = ln
	fw.mu.Unlock()
	context.AfterFunc(fw.ctx, func() { ln.Close() })
	if f.BindPath != "" && f.Kind != 'R' && c.StreamLocalBindUnlink {
		context.AfterFunc(fw.ctx, func() { os.Remove(f.BindPath) })
	}
	go serve(ln, fw.log, func(conn net.Conn) { fw.handle(f, conn) })
	return allocated, nil
}

// Forwarder returns the client's forwardings, created on first use.
func (c *Client) Forwarder(ctx context.Context, log func(string, ...any)) *Forwarder {
	c.fwMu.Lock()
	defer c.fwMu.Unlock()
	if c.forwarder == nil {
		c.forwarder = &Forwarder{client: c, log: log, ctx: ctx, active: map[string]net.Listener{}}
	}
	return c.forwarder
}

// Cancel stops the forwarding listening at f's listening half (~C -KL,
// -KR, -KD).
func (fw *Forwarder) Cancel(f Forward) error {
	fw.mu.Lock()
	ln, ok := fw.active[f.key()]
	delete(fw.active, f.key())
	fw.mu.Unlock()
	if !ok {
		return fmt.Errorf("unknown port forwarding %s", f.String())
	}
	return ln.Close()
}

// List describes the open forwardings, for ~#.
func (fw *Forwarder) List() []string {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	var out []string
	for k, ln := range fw.active {
		out = append(out, fmt.Sprintf("%s listening on %s", map[byte]string{'L': "local", 'R': "remote"}[k[0]], ln.Addr()))
	}
	slices.Sort(out)
	return out
}

func (f Forward) targetText() string {
	if f.TargetPath != "" {
		return f.TargetPath
	}
	return net.JoinHostPort(f.TargetHost, strconv.Itoa(f.TargetPort))
}

func (fw *Forwarder) listen(f Forward) (net.Listener, error) {
	c := fw.client.Config
	if f.Kind == 'R' {
		if f.BindPath != "" {
			return fw.client.ListenUnix(f.BindPath)
		}
		bind := f.BindHost
		if bind == "" {
			bind = "localhost"
		}
		return fw.client.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(f.BindPort)))
	}
	if f.BindPath != "" {
		if c.StreamLocalBindUnlink {
			os.Remove(f.BindPath)
		}
		old := umask(streamLocalMask(c.StreamLocalBindMask))
		defer umask(old)
		return net.Listen("unix", f.BindPath)
	}
	return net.Listen("tcp", f.bindAddr(c.GatewayPorts))
}

func (fw *Forwarder) handle(f Forward, conn net.Conn) {
	client := fw.client
	switch {
	case f.Dynamic() && f.Kind == 'D':
		socksServe(conn, client.Dial)
	case f.Dynamic():
		// -R port: SOCKS on the server's side, connections made from here,
		// where PermitRemoteOpen allows.
		socksServe(conn, func(network, addr string) (net.Conn, error) {
			if !remoteOpenAllowed(client.Config.PermitRemoteOpen, addr) {
				fw.log("Rejected remote dynamic forwarding to %s: PermitRemoteOpen", addr)
				return nil, fmt.Errorf("%s is not allowed by PermitRemoteOpen", addr)
			}
			return net.Dial(network, addr)
		})
	case f.Kind == 'R':
		var local net.Conn
		var err error
		if f.TargetPath != "" {
			local, err = net.Dial("unix", f.TargetPath)
		} else {
			local, err = net.Dial("tcp", net.JoinHostPort(f.TargetHost, strconv.Itoa(f.TargetPort)))
		}
		if err != nil {
			fw.log("connect_to %s: failed.", f.targetText())
			conn.Close()
			return
		}
		Splice(conn, local)
	default:
		var remote net.Conn
		var err error
		if f.TargetPath != "" {
			remote, err = client.Dial("unix", f.TargetPath)
		} else {
			remote, err = client.Dial("tcp", net.JoinHostPort(f.TargetHost, strconv.Itoa(f.TargetPort)))
		}
		if err != nil {
			fw.log("channel: open failed: connect to %s: %v", f.targetText(), err)
			conn.Close()
			return
		}
		Splice(conn, remote)
	}
}

// remoteOpenAllowed checks host:port against PermitRemoteOpen (nil: any).
func remoteOpenAllowed(permit []string, addr string) bool {
	if permit == nil {
		return true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	for _, p := range permit {
		ph, pp, _ := net.SplitHostPort(p)
		if (ph == "*" || strings.EqualFold(ph, host)) && (pp == "*" || pp == port) {
			return true
		}
	}
	return false
}

// serve accepts until the listener is closed. A failed accept (too many
// open files) is logged and retried after a pause that grows to a second,
// as ssh(1) keeps its listeners through such errors.
func serve(ln net.Listener, log func(string, ...any), handle func(net.Conn)) {
	pause := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log("accept: %v", err)
			time.Sleep(pause)
			pause = min(2*pause, time.Second)
			continue
		}
		pause = 5 * time.Millisecond
		go handle(conn)
	}
}

// Splice copies both ways between a and b until both directions end,
// passing a half-close on where the connection supports one, then closes both.
func Splice(a, b io.ReadWriteCloser) {
	var wg sync.WaitGroup
	wg.Add(2)
	half := func(dst io.ReadWriteCloser, src io.Reader) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go half(a, b)
	go half(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// socksServe answers one SOCKS4, SOCKS4a or SOCKS5 (no authentication,
// CONNECT only) request, as ssh -D does, and splices it to client.Dial.
func socksServe(conn net.Conn, dial func(network, addr string) (net.Conn, error)) {
	defer conn.Close()
	var ver [1]byte
	if _, err := io.ReadFull(conn, ver[:]); err != nil {
		return
	}
	switch ver[0] {
	case 4:
		target, ok := socks4Request(conn)
		if !ok {
			return
		}
		remote, err := dial("tcp", target)
		if err != nil {
			conn.Write([]byte{0, 91, 0, 0, 0, 0, 0, 0})
			return
		}
		conn.Write([]byte{0, 90, 0, 0, 0, 0, 0, 0})
		Splice(conn, remote)
	case 5:
		target, ok := socks5Request(conn)
		if !ok {
			return
		}
		remote, err := dial("tcp", target)
		if err != nil {
			conn.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		conn.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
		Splice(conn, remote)
	}
}

// socks4Request reads a SOCKS4 (or 4a) CONNECT after its version byte and
// returns its host:port.
func socks4Request(conn net.Conn) (string, bool) {
	var hdr [7]byte // cmd, port, ip
	if _, err := io.ReadFull(conn, hdr[:]); err != nil || hdr[0] != 1 {
		return "", false
	}
	port := binary.BigEndian.Uint16(hdr[1:3])
	if _, err := readCString(conn); err != nil { // user id
		return "", false
	}
	ip := net.IP(hdr[3:7])
	host := ip.String()
	if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 { // SOCKS4a
		name, err := readCString(conn)
		if err != nil {
			return "", false
		}
		host = name
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), true
}

// socks5Request answers a SOCKS5 greeting (no authentication), reads a
// CONNECT and returns its host:port; it answers a request it cannot take.
func socks5Request(conn net.Conn) (string, bool) {
	var n [1]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		return "", false
	}
	methods := make([]byte, n[0])
	if _, err := io.ReadFull(conn, methods); err != nil {
		return "", false
	}
	conn.Write([]byte{5, 0})
	var req [4]byte
	if _, err := io.ReadFull(conn, req[:]); err != nil || req[1] != 1 {
		conn.Write([]byte{5, 7, 0, 1, 0, 0, 0, 0, 0, 0})
		return "", false
	}
	var host string
	switch req[3] {
	case 1, 4:
		ip := make(net.IP, map[byte]int{1: 4, 4: 16}[req[3]])
		if _, err := io.ReadFull(conn, ip); err != nil {
			return "", false
		}
		host = ip.String()
	case 3:
		if _, err := io.ReadFull(conn, n[:]); err != nil {
			return "", false
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(conn, name); err != nil {
			return "", false
		}
		host = string(name)
	default:
		conn.Write([]byte{5, 8, 0, 1, 0, 0, 0, 0, 0, 0})
		return "", false
	}
	var pb [2]byte
	if _, err := io.ReadFull(conn, pb[:]); err != nil {
		return "", false
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb[:])))), true
}

func readCString(r io.Reader) (string, error) {
	var b []byte
	var c [1]byte
	for len(b) < 256 {
		if _, err := io.ReadFull(r, c[:]); err != nil {
			return "", err
		}
		if c[0] == 0 {
			return string(b), nil
		}
		b = append(b, c[0])
	}
	return "", errors.New("socks: string too long")
}
