package connect

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/failure"
)

// hostile listens on loopback and, for each connection, reads the client's
// identification line, writes prefix, then (when behind is set) relays the
// rest to behind's real SSH server, whose own first line (its version)
// goes after prefix.
func hostile(t *testing.T, prefix []byte, behind *xserver) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write(prefix)
				if behind == nil {
					io.Copy(io.Discard, c) // until the client gives up
					return
				}
				s, err := net.Dial("tcp", behind.ln.Addr().String())
				if err != nil {
					return
				}
				defer s.Close()
				go io.Copy(s, c)
				io.Copy(c, s)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// The identification exchange as ssh's kex_exchange_identification reads
// it: lines before the version line are skipped, up to 1024 of up to 8 KiB
// (x/crypto alone stops at 255 bytes); beyond that, or with a NUL or a lone
// CR, the server is refused in ssh's words, within the limits (issue 25:
// hostile servers bounded).
func TestIdentificationExchange(t *testing.T) {
	key := newSigner(t)
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
	line := func(n int) string { return strings.Repeat("j", n) + "\r\n" }
	for _, tt := range []struct {
		name   string
		prefix string
		behind bool
		want   string // ssh's lines, as a regexp; "" for a connection
		kind   failure.Kind
	}{
		{"junk lines of 1000 bytes before the version", strings.Repeat(line(1000), 40), true, "", 0},
		{"1023 lines before the version", strings.Repeat(line(3), 1023), true, "", 0},
		{"too many lines", strings.Repeat(line(3), 1100), false,
			`^kex_exchange_identification: No SSH version received in first 1024 lines from server\nbanner exchange: Connection to 127\.0\.0\.1 port \d+: invalid format$`, failure.NoBanner},
		{"an endless line", strings.Repeat("j", 100000), false,
			`^kex_exchange_identification: banner line too long\nbanner exchange: Connection to 127\.0\.0\.1 port \d+: invalid format$`, failure.NoBanner},
		{"a NUL", "junk\x00junk\r\n", false,
			`^kex_exchange_identification: banner line contains invalid characters\nbanner exchange: Connection to 127\.0\.0\.1 port \d+: invalid format$`, failure.NoBanner},
		{"protocol 1", "SSH-1.5-ancient\r\n", false,
			`^Protocol major versions differ: 2 vs\. 1\nbanner exchange: Connection to 127\.0\.0\.1 port \d+: invalid format$`, failure.NoBanner},
		{"a bad version line", "SSH-x\r\n", false,
			`^Bad remote protocol version identification: 'SSH-x'\nbanner exchange: Connection to 127\.0\.0\.1 port \d+: invalid format$`, failure.NoBanner},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b *xserver
			if tt.behind {
				b = srv
			}
			port := hostile(t, []byte(tt.prefix), b)
			c := testConfigFor(port, knownHostsFor(t, port, srv.hostKey.PublicKey()))
			start := time.Now()
			_, _, err := dialX(t, c, []ssh.Signer{key}, nil)
			if time.Since(start) > 4*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Dial = %v, want a connection (ssh connects)", err)
				}
				return
			}
			got := strings.Join(SSHLines(err), "\n")
			if !regexp.MustCompile(tt.want).MatchString(got) || failure.KindOf(err) != tt.kind {
				t.Errorf("Dial = %v (%v), ssh's words %q, want %v and %s", err, failure.KindOf(err), got, tt.kind, tt.want)
			}
		})
	}
}

// identConn gives x/crypto the version line and what follows, and takes
// its write of our identification (already sent) as done, once.
func TestIdentConnReplay(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &identConn{connWatch: &connWatch{Conn: a}, r: strings.NewReader("SSH-2.0-x\r\nrest"), sent: []byte("SSH-2.0-me\r\n")}
	got, _ := io.ReadAll(io.LimitReader(c, 15))
	if string(got) != "SSH-2.0-x\r\nrest" {
		t.Errorf("read %q", got)
	}
	if n, err := c.Write([]byte("SSH-2.0-me\r\n")); n != 12 || err != nil {
		t.Errorf("the identification write: %d, %v", n, err)
	}
	go c.Write([]byte("packet"))
	buf := make([]byte, 6)
	io.ReadFull(b, buf)
	if !bytes.Equal(buf, []byte("packet")) {
		t.Errorf("the next write reached the peer as %q", buf)
	}
}
