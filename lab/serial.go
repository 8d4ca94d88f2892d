package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// The EC2 serial console stand-in: an SSH server, as
// serial-console.ec2-instance-connect.<region>.aws is, that takes the user
// "<instance-id>.port0" with a key pushed by SendSerialConsoleSSHPublicKey
// in the last 60 s, and gives the instance's terminal: a shell on a
// pseudo-terminal in the instance's view of its files, one session per
// instance at a time.

// SerialAddr is where the stand-in listens (port 22, its own address).
const SerialAddr = "127.0.7.1:22"

type serialStandIn struct {
	ln      net.Listener
	hostKey ssh.Signer
	ssm     *ssmStandIn
	views   map[string]*View
}

func startSerial(ssmS *ssmStandIn, views map[string]*View) (*serialStandIn, error) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hk, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", SerialAddr)
	if err != nil {
		return nil, err
	}
	s := &serialStandIn{ln: ln, hostKey: hk, ssm: ssmS, views: views}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			id, ok := strings.CutSuffix(meta.User(), ".port0")
			if !ok || !s.ssm.SerialKeyValid(id, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))) {
				return nil, errors.New("no serial console key pushed for this user in the last 60 s")
			}
			return &ssh.Permissions{Extensions: map[string]string{"instance": id}}, nil
		},
	}
	cfg.AddHostKey(hk)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c, cfg)
		}
	}()
	return s, nil
}

func (s *serialStandIn) stop() { s.ln.Close() }

// KnownHostsLine is the stand-in's host key, under the console's name for
// the lab's region.
func (s *serialStandIn) KnownHostsLine() string {
	return "serial-console.ec2-instance-connect." + Region + ".aws " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.hostKey.PublicKey())))
}

func (s *serialStandIn) serve(c net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	id := sc.Permissions.Extensions["instance"]
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "the serial console has sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.ssm.SetSerialBusy(id, true)
		s.session(id, ch, creqs)
		s.ssm.SetSerialBusy(id, false)
	}
}

// session is the console: a shell on a terminal once "shell" is asked for
// ("exec" is refused: a console runs no commands).
func (s *serialStandIn) session(id string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var cols, rows uint32 = 80, 24
	var master *os.File
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			var p struct {
				Term          string
				Cols, Rows    uint32
				Width, Height uint32
				Modes         string
			}
			ssh.Unmarshal(req.Payload, &p)
			cols, rows = p.Cols, p.Rows
			req.Reply(true, nil)
		case "window-change":
			if len(req.Payload) >= 8 && master != nil {
				setSize(master, binary.BigEndian.Uint32(req.Payload), binary.BigEndian.Uint32(req.Payload[4:]))
			}
		case "env":
			req.Reply(true, nil)
		case "shell":
			m, slave, err := openPTY()
			if err != nil {
				req.Reply(false, nil)
				return
			}
			master = m
			setSize(m, cols, rows)
			var cmd *exec.Cmd
			if v := s.views[id]; v != nil {
				cmd = v.Command("/bin/bash", "--norc", "--noprofile", "-i")
			} else {
				cmd = exec.Command("/bin/bash", "--norc", "--noprofile", "-i")
			}
			cmd.Env = append(os.Environ(), "PS1=serial-console$ ", "TERM=vt100")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				slave.Close()
				m.Close()
				req.Reply(false, nil)
				return
			}
			slave.Close()
			req.Reply(true, nil)
			fmt.Fprintf(ch, "\r\nserial console of %s (lab)\r\n", id)
			go io.Copy(m, ch)
			go func() {
				io.Copy(ch, m)
				ch.CloseWrite()
			}()
			go func() {
				cmd.Wait()
				m.Close()
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
				ch.Close()
			}()
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

func setSize(f *os.File, cols, rows uint32) {
	unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(rows), Col: uint16(cols)})
}
