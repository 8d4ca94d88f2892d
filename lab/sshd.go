// Package lab runs the real peers ec2ssh is tested and demonstrated
// against, on this machine: OpenSSH's sshd on loopback addresses, each with
// its own host key and authorized keys. Later parts add the EC2 emulator and
// the SSM stand-in. It is test and demo support, never part of the binary.
package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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
	hostKey := filepath.Join(dir, "host_"+o.HostKeyType)
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
	akDir, err := os.MkdirTemp("", "ec2ssh-lab-keys-")
	if err != nil {
		return nil, err
	}
	os.Chmod(akDir, 0o755)
	ak := filepath.Join(akDir, "authorized_keys")
	if err := os.WriteFile(ak, []byte(strings.Join(o.AuthorizedKeys, "\n")+"\n"), 0o644); err != nil {
		return nil, err
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
		"StrictModes no",
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
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", cfgFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(akDir)
		return nil, err
	}
	s := &SSHD{Addr: o.Addr, Port: o.Port, Dir: dir, HostKeyPub: strings.TrimSpace(string(pub)), cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logFile.Close(); os.RemoveAll(akDir); close(s.done) }()
	if err := s.waitBanner(10 * time.Second); err != nil {
		s.Stop()
		log, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
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
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	<-s.done
}

// Keygen makes a key pair with ssh-keygen: path and path.pub.
func Keygen(path, typ, passphrase string) error {
	os.Remove(path)
	os.Remove(path + ".pub")
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", filepath.Base(path), "-f", path}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	out, err := exec.Command("ssh-keygen", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen %s: %v: %s", typ, err, out)
	}
	return nil
}

// FreePort returns a TCP port free on addr just now.
func FreePort(addr string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// TB is the part of testing.TB the lab uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Require fails the test when a tool it needs is missing: make test
// installs them (lab/deps.sh), and a run that cannot try something must
// not pass as if it had.
func Require(t TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed and missing: make test installs it (lab/deps.sh)", tool)
		}
	}
}

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
