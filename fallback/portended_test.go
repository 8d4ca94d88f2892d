package fallback_test

import (
	"io"
	"net"
	"testing"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/lab"
)

// TestPortSessionEndedWithoutAByte: the real agent's basic port session
// (AWS-StartSSHSession's) ends with nothing sent, no ConnectToPortError,
// when its dial to the port is refused; an SSH client's channel (the
// server speaks first) says SessionEnded, so that the ladder looks inside.
// A session whose port spoke and then ended is plain EOF, and so is one
// whose client does not wait for the server.
func TestPortSessionEndedWithoutAByte(t *testing.T) {
	api, _ := standIn(t, lab.SSMOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now: refused
	ch := startPort(t, api, closed, true)
	buf := make([]byte, 16)
	n, err := ch.Read(buf)
	if n != 0 || failure.KindOf(err) != failure.SessionEnded {
		t.Errorf("refused port, server first: Read = %d, %v; want SessionEnded", n, err)
	}
	ch.Close()

	spoke := serve(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-lab\r\n")) })
	ch = startPort(t, api, spoke, true)
	b, err := io.ReadAll(ch)
	if string(b) != "SSH-2.0-lab\r\n" || err != nil {
		t.Errorf("a port that spoke then closed: %q, %v; want its line and EOF", b, err)
	}
	ch.Close()

	ch = startPort(t, api, closed, false)
	if n, err := ch.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("refused port, client first: Read = %d, %v; want EOF", n, err)
	}
	ch.Close()
}
