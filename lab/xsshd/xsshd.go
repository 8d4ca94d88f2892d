// Package xsshd is an SSH server made of x/crypto's own, on loopback TCP,
// for unit tests that need a real peer without root or OpenSSH: sessions
// run commands through a handler the test gives, with their stdin, stdout,
// stderr and exit status as a real server carries them. It depends on
// nothing of ec2ssh's own.
package xsshd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
)

// Handler runs one command: what it writes to stdout and stderr reaches
// the client, its return value is the exit status.
type Handler func(command string, stdin io.Reader, stdout, stderr io.Writer) int

// Options configure a server.
type Options struct {
	// Keys are the public keys accepted for publickey authentication, for
	// any user; Accept, when set, decides instead.
	Keys   []ssh.PublicKey
	Accept func(user string, key ssh.PublicKey) bool
	// Handler runs commands; nil: Echo.
	Handler Handler
}

// Server is a running server.
type Server struct {
	Addr    string // 127.0.0.1:port
	Port    int
	HostKey ssh.Signer
	ln      net.Listener
	cfg     *ssh.ServerConfig
	handler Handler
	conns   atomic.Int64
	mu      sync.Mutex
	open    []net.Conn
}

// Start starts a server on 127.0.0.1.
func Start(o Options) (*Server, error) {
	host, err := NewSigner()
	if err != nil {
		return nil, err
	}
	s := &Server{HostKey: host, handler: o.Handler}
	if s.handler == nil {
		s.handler = Echo
	}
	s.cfg = &ssh.ServerConfig{PublicKeyCallback: func(m ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if o.Accept != nil && o.Accept(m.User(), key) {
			return nil, nil
		}
		for _, k := range o.Keys {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return nil, nil
			}
		}
		return nil, errors.New("not this key")
	}}
	s.cfg.AddHostKey(host)
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	s.Addr = s.ln.Addr().String()
	s.Port = s.ln.Addr().(*net.TCPAddr).Port
	go s.accept()
	return s, nil
}

// NewSigner makes an ed25519 key.
func NewSigner() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// Close stops the server and ends its connections.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.open {
		c.Close()
	}
	return err
}

// Connections is how many connections the server has accepted.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// KnownHostsLine is the server's key as a known_hosts line for name.
func (s *Server) KnownHostsLine(name string) string {
	return name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey.PublicKey())))
}

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.mu.Lock()
		s.open = append(s.open, c)
		s.mu.Unlock()
		go s.Serve(c)
	}
}

// Serve runs one connection on c (any transport: a test's in-memory
// pipe, a stand-in's tunnel).
func (s *Server) Serve(c net.Conn) {
	sc, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		c.Close()
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() == "direct-tcpip" {
			go directTCPIP(nc)
			continue
		}
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions and direct-tcpip here")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.session(ch, creqs)
	}
}

func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "exec", "shell":
			command := ""
			if req.Type == "exec" && len(req.Payload) >= 4 {
				n := binary.BigEndian.Uint32(req.Payload)
				if int(n) <= len(req.Payload)-4 {
					command = string(req.Payload[4 : 4+n])
				}
			}
			req.Reply(true, nil)
			code := s.handler(command, ch, ch, ch.Stderr())
			ch.CloseWrite()
			status := make([]byte, 4)
			binary.BigEndian.PutUint32(status, uint32(code))
			ch.SendRequest("exit-status", false, status)
			return
		case "env", "pty-req", "window-change":
			req.Reply(true, nil)
		default:
			req.Reply(false, nil)
		}
	}
}

// Echo is a handler for tests: "echo WORDS" prints them, "exit N" ends
// with N, "cat" copies stdin, "err WORDS" prints them on stderr; commands
// are separated by ";".
func Echo(command string, stdin io.Reader, stdout, stderr io.Writer) int {
	for _, part := range strings.Split(command, ";") {
		part = strings.TrimSpace(part)
		word, rest, _ := strings.Cut(part, " ")
		switch word {
		case "echo":
			io.WriteString(stdout, rest+"\n")
		case "err":
			io.WriteString(stderr, rest+"\n")
		case "cat":
			io.Copy(stdout, stdin)
		case "exit":
			n, _ := strconv.Atoi(rest)
			return n
		}
	}
	return 0
}

// directTCPIP dials what the client asks (-L, -W) and joins the two.
func directTCPIP(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad request")
		return
	}
	c, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		c.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	back := make(chan struct{})
	go func() { io.Copy(ch, c); ch.CloseWrite(); close(back) }()
	io.Copy(c, ch)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	<-back
	ch.Close()
	c.Close()
}
