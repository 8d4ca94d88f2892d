package connect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/failure"
)

// DefaultHandshakeTimeout bounds the SSH handshake when ConnectTimeout is
// not set: x/crypto has no DialContext and its handshake can hang on a
// server that accepts TCP and says nothing.
const DefaultHandshakeTimeout = 30 * time.Second

// clientVersion is ec2ssh's identification string: OpenSSH's, for the
// servers that adapt to their client's version, with ec2ssh's name after.
const clientVersion = "SSH-2.0-OpenSSH_" + OpenSSHVersion + " ec2ssh"

// Transport opens the byte stream an SSH connection runs over: a TCP
// connection, a ProxyCommand's pipes, a jump host's channel, or (in
// fallback) an SSM session. Its errors are *failure.Error.
type Transport func(ctx context.Context) (net.Conn, error)

// Client is an authenticated SSH connection and what it stands on.
type Client struct {
	*ssh.Client
	Config  *Config
	closers []func() error
	lost    chan error // keepalive failures
	kaOnce  sync.Once

	watch      *connWatch          // the connection underneath, for how it ended
	globalReqs <-chan *ssh.Request // the server's global requests, as x/crypto queues them
	reqBusy    atomic.Bool         // one of them is being handed on
	fwMu       sync.Mutex
	forwarder  *Forwarder     // see Forwarder
	learning   sync.WaitGroup // UpdateHostKeys in progress
}

// Close closes the connection and everything under it (jump hosts, proxy
// command processes).
func (c *Client) Close() error {
	// A short session can end before UpdateHostKeys has had its answer:
	// give it a moment, as ssh(1) finishes it inside its session. The
	// announcement comes before any session (sshd sends it first): it may
	// still wait in the queue of global requests, unread.
	for deadline := time.Now().Add(time.Second); (len(c.globalReqs) > 0 || c.reqBusy.Load()) && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	learned := make(chan struct{})
	go func() { c.learning.Wait(); close(learned) }()
	select {
	case <-learned:
	case <-time.After(5 * time.Second): // only ever waited on mid-update
	}
	err := c.Client.Close()
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
	return err
}

// Lost returns a channel that receives an error when keepalives show that
// the server is gone (ServerAliveInterval × ServerAliveCountMax).
func (c *Client) Lost() <-chan error { return c.lost }

// Env is what a connection needs from its surroundings.
type Env struct {
	Prompter Prompter
	Log      func(format string, args ...any) // user-visible notices (ssh's warnings)
	Debug    func(format string, args ...any) // -v steps
	Args     *Args                            // for resolving jump hosts' own config
	// Connected, when set, is called once the TCP connection is up: from
	// then on the network is not what fails.
	Connected func()
	// Banner shows the server's pre-authentication banner, already made
	// safe to print, byte for byte otherwise; ssh(1) writes it to stderr
	// even with -E.
	Banner func(text string)
}

func (e *Env) banner(text string) {
	if e.Banner != nil {
		e.Banner(text)
	} else {
		e.Log("%s", strings.TrimRight(text, "\r\n"))
	}
}

// DirectTransport dials c.HostName:c.Port over TCP (or runs its
// ProxyCommand), honouring ConnectTimeout, ConnectionAttempts and
// AddressFamily.
func DirectTransport(c *Config, env *Env) Transport {
	return func(ctx context.Context) (net.Conn, error) {
		if c.ProxyCommand != "" {
			return proxyCommand(ctx, c.ProxyCommand, env)
		}
		network := map[string]string{"any": "tcp", "inet": "tcp4", "inet6": "tcp6"}[c.AddressFamily]
		d := net.Dialer{Timeout: c.ConnectTimeout}
		if c.BindAddress != "" {
			ip, err := net.ResolveIPAddr("ip", c.BindAddress)
			if err != nil {
				return nil, failure.Configf("BindAddress (-b) must be an address of this machine", "getaddrinfo: %s: %v", c.BindAddress, err)
			}
			d.LocalAddr = &net.TCPAddr{IP: ip.IP, Zone: ip.Zone}
		}
		addr := net.JoinHostPort(c.HostName, strconv.Itoa(c.Port))
		var err error
		for attempt := 1; attempt <= max(1, c.ConnectionAttempts); attempt++ {
			if attempt > 1 {
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return nil, classifyDial(ctx.Err(), c.HostName, c.Port)
				}
			}
			start := time.Now()
			var conn net.Conn
			conn, err = d.DialContext(ctx, network, addr)
			if err == nil {
				env.Debug("debug1: Connected to %s [%s] port %d in %v.", c.HostName, conn.RemoteAddr().(*net.TCPAddr).IP, c.Port, time.Since(start).Round(time.Millisecond))
				if env.Connected != nil {
					env.Connected()
				}
				return conn, nil
			}
			env.Debug("debug1: connect to %s port %d: %v", c.HostName, c.Port, err)
		}
		return nil, classifyDial(err, c.HostName, c.Port)
	}
}

// Dial opens an SSH connection to c over transport (DirectTransport when
// nil, or through c.ProxyJump), checks the host key with hk and
// authenticates with cr. Its errors are *failure.Error: DNS, Refused,
// Unreachable, NoBanner, HostKeyUnknown, HostKeyChanged, AuthRejected,
// Algorithms, Canceled, Config or Unknown.
func Dial(ctx context.Context, c *Config, cr *Credentials, hk *HostKeys, transport Transport, env *Env) (*Client, error) {
	var closers []func() error
	if transport == nil && c.ProxyJump != "" {
		jump, err := dialJump(ctx, c, env)
		if err != nil {
			return nil, err
		}
		closers = append(closers, jump.Close)
		transport = func(ctx context.Context) (net.Conn, error) {
			conn, err := jump.Dial("tcp", net.JoinHostPort(c.HostName, strconv.Itoa(c.Port)))
			if err != nil {
				var oce *ssh.OpenChannelError
				if errors.As(err, &oce) && oce.Reason == ssh.ConnectionFailed {
					return nil, &failure.Error{Kind: failure.Unreachable, Op: "connect through jump host to", Target: c.HostName, Err: err,
						Hint: "the jump host could not reach it: " + oce.Message}
				}
				return nil, &failure.Error{Kind: failure.Unknown, Op: "connect through jump host to", Target: c.HostName, Err: err}
			}
			return conn, nil
		}
	}
	if transport == nil {
		transport = DirectTransport(c, env)
	}
	client, err := handshake(ctx, c, cr, hk, transport, env)
	if err != nil {
		for _, f := range closers {
			f()
		}
		return nil, err
	}
	client.closers = append(closers, client.closers...)
	return client, nil
}

func handshake(ctx context.Context, c *Config, cr *Credentials, hk *HostKeys, transport Transport, env *Env) (*Client, error) {
	client, err := handshakeOn(ctx, c, cr, hk, transport, env)
	return client, atLogLevel(err, c.LogLevel) // ssh's words at the level ssh prints them
}

func handshakeOn(ctx context.Context, c *Config, cr *Credentials, hk *HostKeys, transport Transport, env *Env) (*Client, error) {
	conn, err := transport(ctx)
	if err != nil {
		return nil, err
	}
	target := displayHostport(c.HostName, c.Port)
	w := &connWatch{Conn: conn}
	timeout := c.ConnectTimeout
	if timeout == 0 {
		timeout = DefaultHandshakeTimeout
	}
	conn.SetDeadline(time.Now().Add(timeout))
	// A question to the person lifts the deadline: they may take their time.
	hk.BeforePrompt = func() { conn.SetDeadline(time.Time{}) }
	if cr.Prompter != nil {
		cr.Prompter = liftDeadline{cr.Prompter, hk.BeforePrompt}
	}
	// Cancellation (^C before the session is up) closes the connection,
	// which ends a handshake x/crypto cannot otherwise interrupt.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	cc, err := sshClientConfig(c, cr, hk, env)
	if err != nil {
		stop()
		conn.Close()
		return nil, err
	}
	start := time.Now()
	var sc ssh.Conn
	var chans <-chan ssh.NewChannel
	var reqs <-chan *ssh.Request
	ic, err := identify(w, clientVersion, target)
	if err == nil {
		env.Debug("debug1: %s", ic.remoteVersion())
		sc, chans, reqs, err = ssh.NewClientConn(ic, net.JoinHostPort(c.HostName, strconv.Itoa(c.Port)), cc)
		err = classifyHandshake(err, w, target)
	}
	stopped := stop()
	if err != nil {
		conn.Close()
		if !stopped {
			err = &failure.Error{Kind: failure.Canceled, Op: "ssh handshake with", Target: target, Err: errors.Join(ctx.Err(), err)}
		}
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	env.Debug("debug1: Authenticated to %s as %s in %v.", target, c.User, time.Since(start).Round(time.Millisecond))
	client := &Client{Config: c, lost: make(chan error, 1), watch: w, globalReqs: reqs}
	client.Client = ssh.NewClient(sc, chans, client.routeGlobalRequests(sc, reqs, hk))
	client.closers = append(client.closers, conn.Close)
	if c.ServerAliveInterval > 0 {
		client.StartKeepalive(c.ServerAliveInterval)
	}
	return client, nil
}

// sshClientConfig is x/crypto's configuration for c: its algorithms, the
// host key policy, the authentication methods, the banner's display.
func sshClientConfig(c *Config, cr *Credentials, hk *HostKeys, env *Env) (*ssh.ClientConfig, error) {
	cc, err := clientConfig(c, hk)
	if err != nil {
		return nil, err
	}
	return &ssh.ClientConfig{
		Config:            cc.Config,
		User:              c.User,
		HostKeyCallback:   hk.Callback(),
		HostKeyAlgorithms: cc.HostKeyAlgorithms,
		AuthCallback:      cr.AuthCallback(),
		BannerCallback: func(msg string) error {
			if c.LogLevel != "QUIET" && c.LogLevel != "FATAL" && c.LogLevel != "ERROR" {
				env.banner(failure.VisLines(msg))
			}
			return nil
		},
		ClientVersion: clientVersion,
	}, nil
}

// routeGlobalRequests hands the server's host keys to UpdateHostKeys and
// the rest of its global requests to x/crypto (which refuses them).
func (client *Client) routeGlobalRequests(sc ssh.Conn, reqs <-chan *ssh.Request, hk *HostKeys) <-chan *ssh.Request {
	rest := make(chan *ssh.Request)
	go func() {
		defer close(rest)
		for r := range reqs {
			client.reqBusy.Store(true)
			if r.Type == hostkeysAnnounce {
				if r.WantReply {
					r.Reply(false, nil)
				}
				client.learning.Add(1)
				go func() {
					defer client.learning.Done()
					hk.learnHostKeys(sc, r.Payload)
				}()
				client.reqBusy.Store(false)
				continue
			}
			client.reqBusy.Store(false)
			rest <- r
		}
	}()
	return rest
}

// clientConfig is the part of the SSH configuration the algorithms
// settle: what c allows, in its order, limited to what x/crypto implements.
func clientConfig(c *Config, hk *HostKeys) (*ssh.ClientConfig, error) {
	hostKeys, err := hk.Algorithms()
	if err != nil {
		return nil, err
	}
	cc := &ssh.ClientConfig{HostKeyAlgorithms: hostKeys}
	if cc.Ciphers, err = offered(algCiphers, algCiphers.or(c.Ciphers), xcrypto.Ciphers); err != nil {
		return nil, err
	}
	if cc.MACs, err = offered(algMACs, algMACs.or(c.MACs), xcrypto.MACs); err != nil {
		return nil, err
	}
	if cc.KeyExchanges, err = offered(algKex, algKex.or(c.KexAlgorithms), xcrypto.KeyExchanges); err != nil {
		return nil, err
	}
	if c.RekeyBytes > 0 {
		cc.RekeyThreshold = uint64(c.RekeyBytes)
	}
	return cc, nil
}

// StartKeepalive sends keepalives every interval from now on (once per
// client): ServerAliveInterval, or the default ec2ssh gives connections
// over SSM, whose sessions the service ends after an idle time.
func (c *Client) StartKeepalive(interval time.Duration) {
	c.kaOnce.Do(func() {
		go c.keepalive(interval, c.Config.ServerAliveCountMax, displayHostport(c.Config.HostName, c.Config.Port))
	})
}

type liftDeadline struct {
	Prompter
	lift func()
}

func (l liftDeadline) Ask(q string, echo bool) (string, error) {
	l.lift()
	return l.Prompter.Ask(q, echo)
}

// keepalive sends keepalive@openssh.com every interval and declares the
// server gone after countMax unanswered ones, as ssh(1) does.
func (c *Client) keepalive(interval time.Duration, countMax int, target string) {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for range t.C {
		replied := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		select {
		case err := <-replied:
			if err != nil {
				return // the connection is closed
			}
			missed = 0
			continue
		case <-time.After(interval):
			missed++
		}
		if missed >= max(countMax, 1) {
			lost := inWords(&failure.Error{Kind: failure.Unreachable, Msg: fmt.Sprintf("timeout, server %s not responding", target),
				Hint: "the network or the server went away; ServerAliveInterval and ServerAliveCountMax set how long ec2ssh waits"},
				infoLine(fmt.Sprintf("Timeout, server %s not responding.", c.Config.HostName)))
			atLogLevel(lost, c.Config.LogLevel)
			c.lost <- lost
			c.Client.Close()
			return
		}
	}
}

// dialJump connects to the ProxyJump chain "[user@]host[:port][,…]": each
// hop is resolved with its own ssh_config section and reached through the
// one before it.
func dialJump(ctx context.Context, c *Config, env *Env) (*Client, error) {
	var prev *Client
	for _, hop := range strings.Split(c.ProxyJump, ",") {
		hopArgs := &Args{}
		if env.Args != nil {
			hopArgs.ConfigFile = env.Args.ConfigFile
		}
		if err := hopArgs.setDestination(strings.TrimSpace(withoutPort(hop, hopArgs))); err != nil {
			return nil, err
		}
		hc, err := resolveConfig(hopArgs, hopArgs.Destination, DefaultConfigFiles(hopArgs.ConfigFile), hopArgs.ConfigFile != "")
		if err == nil {
			err = hc.Supported()
		}
		if err != nil {
			return nil, err
		}
		if prev == nil && hc.ProxyJump != "" && hc.ProxyJump != c.ProxyJump {
			// A hop's own ProxyJump is followed, as ssh(1) does.
			prevClient, err := dialJump(ctx, hc, env)
			if err != nil {
				return nil, err
			}
			prev = prevClient
		}
		hc.ProxyJump = ""
		cr, err := LoadCredentialsWarn(hc, env.Prompter, env.Debug, env.Log)
		if err != nil {
			return nil, err
		}
		var transport Transport
		if prev != nil {
			p := prev
			transport = func(ctx context.Context) (net.Conn, error) {
				conn, err := p.Dial("tcp", net.JoinHostPort(hc.HostName, strconv.Itoa(hc.Port)))
				if err != nil {
					return nil, &failure.Error{Kind: failure.Unreachable, Op: "connect through jump host to", Target: hc.HostName, Err: err}
				}
				return conn, nil
			}
		}
		env.Debug("debug1: Connecting to jump host %s", hop)
		next, err := Dial(ctx, hc, cr, NewHostKeys(hc, env.Prompter, env.Log), transport, env)
		cr.Close()
		if err != nil {
			if prev != nil {
				prev.Close()
			}
			return nil, fmt.Errorf("jump host %s: %w", hop, err)
		}
		if prev != nil {
			next.closers = append(next.closers, prev.Close)
		}
		prev = next
	}
	return prev, nil
}

// withoutPort moves a ":port" suffix of a jump spec into hopArgs' Port.
func withoutPort(hop string, hopArgs *Args) string {
	if strings.HasPrefix(hop, "ssh://") {
		return hop
	}
	at := strings.LastIndexByte(hop, '@')
	hostport := hop[at+1:]
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[:i], ":") {
		hopArgs.add("Port", hostport[i+1:])
		return hop[:at+1] + hostport[:i]
	}
	return hop
}

// proxyCommand runs a ProxyCommand with sh -c and returns its stdin/stdout
// as a net.Conn; closing it ends the process.
func proxyCommand(ctx context.Context, command string, env *Env) (net.Conn, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd := shellCommand(command)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	cmd.WaitDelay = 2 * time.Second
	env.Debug("debug1: Executing proxy command: %s", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, &failure.Error{Kind: failure.Config, Op: "run ProxyCommand", Target: command, Err: err}
	}
	inR.Close()
	outW.Close()
	// No AfterFunc on ctx here: the handshake closes the conn if ctx ends
	// before it is done, and after that the process must outlive ctx.
	pc := &pipeConn{r: outR, w: inW, cmd: cmd}
	pc.unregister = AtExit(func() { cmd.Process.Kill() })
	return pc, nil
}

// pipeConn is a net.Conn over a child process's stdin and stdout.
type pipeConn struct {
	r, w       *os.File
	cmd        *exec.Cmd
	once       sync.Once
	unregister func()
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeConn) Close() error {
	p.once.Do(func() {
		p.w.Close()
		p.r.Close()
		if p.cmd.Process != nil {
			p.cmd.Process.Kill()
		}
		p.cmd.Wait()
		if p.unregister != nil {
			p.unregister()
		}
	})
	return nil
}
func (p *pipeConn) LocalAddr() net.Addr  { return pipeAddr{} }
func (p *pipeConn) RemoteAddr() net.Addr { return pipeAddr{} }
func (p *pipeConn) SetDeadline(t time.Time) error {
	p.r.SetReadDeadline(t)
	return p.w.SetWriteDeadline(t)
}
func (p *pipeConn) SetReadDeadline(t time.Time) error  { return p.r.SetReadDeadline(t) }
func (p *pipeConn) SetWriteDeadline(t time.Time) error { return p.w.SetWriteDeadline(t) }

// CloseWrite ends the process's stdin, for half-closing byte streams.
func (p *pipeConn) CloseWrite() error { return p.w.Close() }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "proxy-command" }
