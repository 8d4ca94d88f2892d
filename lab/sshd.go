// Package lab runs the real peers ec2ssh is tested and demonstrated
// against, on this machine: OpenSSH's sshd on loopback addresses, each with
// its own host key and authorized keys. Later parts add the EC2 emulator and
// the SSM stand-in. It is test and demo support, never part of the binary.
package lab

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/ec2ssh/ec2ssh/lab/kit"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SSHDPath is OpenSSH's server; the apt package openssh-server installs it.
const SSHDPath = "/usr/sbin/sshd"

// SSHDOptions describe one sshd.
type SSHDOptions struct {
	Addr           string   // listen address; default 127.0.0.1
	Port           int      // 0: a free port
	AuthorizedKeys []string // authorized_keys lines
	HostKeyType    string   // ed25519 (default), ecdsa or rsa
	Extra          []string // more sshd_config lines
	// Instance lays the server out as an instance keeps it (see Layout);
	// nil for a server of the tests' own.
	Instance *Layout
}

// Layout is an instance's files for its sshd, under Root as a real
// instance keeps them: Root/etc/ssh (sshd_config, host keys), Root/home
// (the login user's home, .ssh/authorized_keys), Root/log/auth.log (sshd's
// log). The instance's View binds them over /etc/ssh, /home/USER and
// /var/log.
type Layout struct {
	Root        string
	User        string      // the login user, owner of the home files
	KeysMode    os.FileMode // authorized_keys' mode; 0 for 0600
	StrictModes bool        // sshd_config StrictModes (the lab's default is no)
	NoStart     bool        // lay the files out, do not start sshd
}

// View is what a process on the instance sees of the layout.
func (l *Layout) View() *View {
	return &View{Binds: map[string]string{"/etc/ssh": filepath.Join(l.Root, "etc", "ssh"),
		"/home/" + l.User: filepath.Join(l.Root, "home"), "/var/log": filepath.Join(l.Root, "log")}}
}

// SSHD is a running OpenSSH server.
type SSHD struct {
	Addr       string
	Port       int
	Dir        string // its configuration, keys and log
	HostKeyPub string // the host public key, as in a .pub file
	cmd        *exec.Cmd
	done       chan struct{}
}

// Available reports whether sshd and ssh-keygen are installed.
func Available() error {
	for _, p := range []string{SSHDPath, "ssh-keygen"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s not found: apt-get install openssh-server openssh-client", p)
		}
	}
	return nil
}

// StartSSHD starts sshd in the foreground of a child process under dir and
// waits until it answers with its banner.
func StartSSHD(dir string, o SSHDOptions) (*SSHD, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1"
	}
	if o.HostKeyType == "" {
		o.HostKeyType = "ed25519"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// sshd's privilege separation needs this directory.
	os.MkdirAll("/run/sshd", 0o755)
	keyDir := dir
	if o.Instance != nil {
		keyDir = filepath.Join(o.Instance.Root, "etc", "ssh")
		if err := os.MkdirAll(keyDir, 0o755); err != nil {
			return nil, err
		}
	}
	hostKey := filepath.Join(keyDir, "host_"+o.HostKeyType)
	if _, err := os.Stat(hostKey); err != nil {
		if err := Keygen(hostKey, o.HostKeyType, ""); err != nil {
			return nil, err
		}
	}
	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return nil, err
	}
	// sshd reads authorized_keys as the user logging in, so the file lives
	// where any user can read it (public keys only).
	var ak, akDir, cfgFile, logPath string
	strict := "no"
	if l := o.Instance; l != nil {
		if ak, err = l.lay(o.AuthorizedKeys); err != nil {
			return nil, err
		}
		cfgFile, logPath = filepath.Join(l.Root, "etc", "ssh", "sshd_config"), filepath.Join(l.Root, "log", "auth.log")
		if l.StrictModes {
			strict = "yes"
		}
	} else {
		if akDir, err = os.MkdirTemp("", "ec2ssh-lab-keys-"); err != nil {
			return nil, err
		}
		os.Chmod(akDir, 0o755)
		ak = filepath.Join(akDir, "authorized_keys")
		if err := os.WriteFile(ak, []byte(strings.Join(o.AuthorizedKeys, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
		cfgFile, logPath = filepath.Join(dir, "sshd_config"), filepath.Join(dir, "sshd.log")
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(o.Addr); err != nil {
			return nil, err
		}
	}
	conf := []string{
		"ListenAddress " + net.JoinHostPort(o.Addr, strconv.Itoa(o.Port)),
		"HostKey " + hostKey,
		"PidFile none",
		"AuthorizedKeysFile " + ak,
		"StrictModes " + strict,
		"PermitRootLogin yes",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"Subsystem sftp internal-sftp",
		"AcceptEnv LANG LC_* EC2SSH_*",
		"PrintMotd no",
		"PrintLastLog no",
		"AllowTcpForwarding yes",
		"AllowAgentForwarding yes",
		"MaxStartups 100",
		"LogLevel ERROR",
	}
	conf = append(o.Extra, conf...) // sshd_config: first value wins
	if err := os.WriteFile(cfgFile, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	if o.Instance != nil && o.Instance.NoStart {
		return &SSHD{Addr: o.Addr, Port: o.Port, Dir: dir, HostKeyPub: strings.TrimSpace(string(pub)), done: make(chan struct{})}, nil
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfgFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		if akDir != "" {
			os.RemoveAll(akDir)
		}
		return nil, err
	}
	s := &SSHD{Addr: o.Addr, Port: o.Port, Dir: dir, HostKeyPub: strings.TrimSpace(string(pub)), cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logFile.Close()
		if akDir != "" {
			os.RemoveAll(akDir)
		}
		close(s.done)
	}()
	if err := s.waitBanner(10 * time.Second); err != nil {
		s.Stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("sshd on %s:%d did not come up: %v; its log: %s", o.Addr, o.Port, err, log)
	}
	return s, nil
}

func (s *SSHD) waitBanner(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-s.done:
			return errors.New("sshd exited")
		default:
		}
		conn, err := net.DialTimeout("tcp", s.HostPort(), time.Second)
		if err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if err == nil && strings.HasPrefix(line, "SSH-2.0-") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no banner: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// HostPort is "addr:port".
func (s *SSHD) HostPort() string { return net.JoinHostPort(s.Addr, strconv.Itoa(s.Port)) }

// KnownHostsLine is the known_hosts line for this server under name.
func (s *SSHD) KnownHostsLine(name string) string {
	if s.Port != 22 {
		name = "[" + name + "]:" + strconv.Itoa(s.Port)
	}
	f := strings.Fields(s.HostKeyPub)
	return name + " " + f[0] + " " + f[1]
}

// Stop ends sshd and its session processes' listener; it waits for sshd.
func (s *SSHD) Stop() {
	if s.cmd == nil {
		return // laid out, never started
	}
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	<-s.done
}

// lay writes the layout's directories and the login user's
// authorized_keys, owned by the user, and returns its path.
func (l *Layout) lay(keys []string) (string, error) {
	uid, gid, err := userIDs(l.User)
	if err != nil {
		return "", err
	}
	for _, d := range []string{filepath.Join(l.Root, "etc", "ssh"), filepath.Join(l.Root, "log")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	home, dotSSH := filepath.Join(l.Root, "home"), filepath.Join(l.Root, "home", ".ssh")
	if err := os.MkdirAll(dotSSH, 0o700); err != nil {
		return "", err
	}
	os.Chmod(home, 0o700)
	ak := filepath.Join(dotSSH, "authorized_keys")
	if err := os.WriteFile(ak, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		return "", err
	}
	mode := l.KeysMode
	if mode == 0 {
		mode = 0o600
	}
	for _, p := range []string{home, dotSSH, ak} {
		if err := os.Chown(p, uid, gid); err != nil {
			return "", err
		}
	}
	return ak, os.Chmod(ak, mode)
}

func userIDs(name string) (int, int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// Keygen makes a key pair with ssh-keygen: path and path.pub.
func Keygen(path, typ, passphrase string) error { return kit.Keygen(path, typ, passphrase) }

// FreePort returns a TCP port free on addr just now.
func FreePort(addr string) (int, error) { return kit.FreePort(addr) }

// TB is the part of testing.TB the lab uses.
type TB = kit.TB

// Require fails the test when a tool it needs is missing (kit.Require).
func Require(t TB, tools ...string) { t.Helper(); kit.Require(t, tools...) }

// Echo serves a TCP echo on 127.0.0.1 (a stand-in for an instance's
// port) and returns its port and the function that stops it.
func Echo() (port int, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, func() { ln.Close() }, nil
}
