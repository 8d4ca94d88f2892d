package connect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Forward is one -L, -R or -D (LocalForward, RemoteForward, DynamicForward).
type Forward struct {
	Kind       byte // 'L', 'R' or 'D'
	BindHost   string
	BindPort   int
	TargetHost string // empty for 'D'
	TargetPort int
}

// ParseForward parses "[bind_address:]port:host:hostport" (or, for 'D',
// "[bind_address:]port"); the ssh_config form with a space between the
// listen and target parts is accepted too. IPv6 addresses go in brackets.
func ParseForward(kind byte, spec string) (Forward, error) {
	f := Forward{Kind: kind}
	spec = strings.Replace(strings.TrimSpace(spec), " ", ":", 1)
	parts := splitColons(spec)
	bad := func() (Forward, error) {
		return Forward{}, failure.Configf("see ssh(1) -L, -R and -D", "bad -%c forwarding specification %q", kind, spec)
	}
	var listen []string
	if kind == 'D' {
		listen = parts
		if len(listen) > 2 {
			return bad()
		}
	} else {
		if len(parts) < 3 || len(parts) > 4 {
			return bad()
		}
		listen = parts[:len(parts)-2]
		f.TargetHost = parts[len(parts)-2]
		p, err := strconv.Atoi(parts[len(parts)-1])
		if err != nil || p < 0 || p > 65535 || f.TargetHost == "" {
			return bad()
		}
		f.TargetPort = p
	}
	if len(listen) == 2 {
		f.BindHost = listen[0]
		listen = listen[1:]
	}
	p, err := strconv.Atoi(listen[0])
	if err != nil || p < 0 || p > 65535 || (p == 0 && kind != 'R') {
		return bad()
	}
	f.BindPort = p
	return f, nil
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

// String is the forwarding as ssh -G prints it: "[bind]:port [host]:port".
func (f Forward) String() string {
	listen := strconv.Itoa(f.BindPort)
	if f.BindHost != "" {
		listen = "[" + f.BindHost + "]:" + listen
	}
	if f.Kind == 'D' {
		return listen
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

// StartForwards sets up every forwarding c asks for. A forwarding that
// cannot be set up is a warning, or an error under ExitOnForwardFailure.
// The forwardings end when ctx ends or the client closes.
func StartForwards(ctx context.Context, client *Client, log func(string, ...any)) error {
	c := client.Config
	var specs []Forward
	for _, set := range []struct {
		kind  byte
		specs []string
	}{{'L', c.LocalForwards}, {'R', c.RemoteForwards}, {'D', c.DynamicForwards}} {
		for _, s := range set.specs {
			f, err := ParseForward(set.kind, s)
			if err != nil {
				return err
			}
			specs = append(specs, f)
		}
	}
	for _, f := range specs {
		var err error
		switch f.Kind {
		case 'L', 'D':
			var ln net.Listener
			ln, err = net.Listen("tcp", f.bindAddr(c.GatewayPorts))
			if err == nil {
				context.AfterFunc(ctx, func() { ln.Close() })
				go serve(ln, func(conn net.Conn) {
					if f.Kind == 'D' {
						socksServe(conn, client)
						return
					}
					remote, err := client.Dial("tcp", net.JoinHostPort(f.TargetHost, strconv.Itoa(f.TargetPort)))
					if err != nil {
						log("channel: open failed: connect to %s port %d: %v", f.TargetHost, f.TargetPort, err)
						conn.Close()
						return
					}
					Splice(conn, remote)
				})
			}
		case 'R':
			var ln net.Listener
			bind := f.BindHost
			if bind == "" {
				bind = "localhost"
			}
			ln, err = client.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(f.BindPort)))
			if err == nil {
				if f.BindPort == 0 {
					log("Allocated port %d for remote forward to %s:%d", ln.Addr().(*net.TCPAddr).Port, f.TargetHost, f.TargetPort)
				}
				context.AfterFunc(ctx, func() { ln.Close() })
				go serve(ln, func(conn net.Conn) {
					local, err := net.Dial("tcp", net.JoinHostPort(f.TargetHost, strconv.Itoa(f.TargetPort)))
					if err != nil {
						log("connect_to %s port %d: failed.", f.TargetHost, f.TargetPort)
						conn.Close()
						return
					}
					Splice(conn, local)
				})
			}
		}
		if err != nil {
			what := map[byte]string{'L': "local", 'R': "remote", 'D': "dynamic"}[f.Kind]
			if c.ExitOnForwardFailure {
				return &failure.Error{Kind: failure.Config, Msg: fmt.Sprintf("%s port forwarding failed for listen port %d: %v", what, f.BindPort, err),
					Hint: "pick a free port, or drop ExitOnForwardFailure"}
			}
			log("Warning: %s port forwarding failed for listen port %d", what, f.BindPort)
		}
	}
	return nil
}

func serve(ln net.Listener, handle func(net.Conn)) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
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
func socksServe(conn net.Conn, client *Client) {
	defer conn.Close()
	var ver [1]byte
	if _, err := io.ReadFull(conn, ver[:]); err != nil {
		return
	}
	var host string
	var port uint16
	switch ver[0] {
	case 4:
		var hdr [7]byte // cmd, port, ip
		if _, err := io.ReadFull(conn, hdr[:]); err != nil || hdr[0] != 1 {
			return
		}
		port = binary.BigEndian.Uint16(hdr[1:3])
		if _, err := readCString(conn); err != nil { // user id
			return
		}
		ip := net.IP(hdr[3:7])
		host = ip.String()
		if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 { // SOCKS4a
			name, err := readCString(conn)
			if err != nil {
				return
			}
			host = name
		}
		remote, err := client.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			conn.Write([]byte{0, 91, 0, 0, 0, 0, 0, 0})
			return
		}
		conn.Write([]byte{0, 90, 0, 0, 0, 0, 0, 0})
		Splice(conn, remote)
	case 5:
		var n [1]byte
		if _, err := io.ReadFull(conn, n[:]); err != nil {
			return
		}
		methods := make([]byte, n[0])
		if _, err := io.ReadFull(conn, methods); err != nil {
			return
		}
		conn.Write([]byte{5, 0})
		var req [4]byte
		if _, err := io.ReadFull(conn, req[:]); err != nil || req[1] != 1 {
			conn.Write([]byte{5, 7, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		switch req[3] {
		case 1, 4:
			ip := make(net.IP, map[byte]int{1: 4, 4: 16}[req[3]])
			if _, err := io.ReadFull(conn, ip); err != nil {
				return
			}
			host = ip.String()
		case 3:
			if _, err := io.ReadFull(conn, n[:]); err != nil {
				return
			}
			name := make([]byte, n[0])
			if _, err := io.ReadFull(conn, name); err != nil {
				return
			}
			host = string(name)
		default:
			conn.Write([]byte{5, 8, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		var pb [2]byte
		if _, err := io.ReadFull(conn, pb[:]); err != nil {
			return
		}
		port = binary.BigEndian.Uint16(pb[:])
		remote, err := client.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			conn.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		conn.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
		Splice(conn, remote)
	}
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
