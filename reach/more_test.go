package reach

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// TestConnectFromCache: a Name resolved once is dialled from the cache the
// next time, asking AWS nothing; a failed connection drops the entry.
func TestConnectFromCache(t *testing.T) {
	w := newWorld(t, true)
	t.Setenv("AWS_REGION", "us-east-1")
	s := w.sshd(nil)
	w.instance("i-0123456789abcdef0", "web-1", s)
	for i := 0; i < 2; i++ {
		r := w.run("-p", port(s), "-l", "ec2-user", "web-1", "echo hi")
		spec, _ := SpecFor(r)
		if code, err := Connect(context.Background(), r, spec); code != 0 || err != nil {
			t.Fatalf("connect %d: %d, %v: %s", i, code, err, read(t, w.stderr))
		}
	}
	if n := w.cloud.called("Lookup"); n != 1 {
		t.Errorf("Lookup called %d times over two connections, want 1 (the second from the cache)", n)
	}
	// The instance goes away: the cached address refuses, and the entry
	// is dropped.
	s.Close()
	w.direct = refusedDial
	w.cloud.instances = nil
	r := w.run("-p", port(s), "-l", "ec2-user", "web-1", "echo hi")
	spec, _ := SpecFor(r)
	if code, _ := Connect(context.Background(), r, spec); code != 255 {
		t.Errorf("connect to a gone instance = %d", code)
	}
	if c := preflight.DefaultCache(); c.Has("", "web-1") {
		t.Errorf("the failed resolution is still cached")
	}
}

// TestNoBanner: a port that accepts and closes, or says nothing, is
// NoBanner, in words.
func TestNoBanner(t *testing.T) {
	for _, tt := range []struct {
		name  string
		serve func(net.Conn)
		msg   string
	}{
		{"closes", func(c net.Conn) { c.Close() }, "closed the connection without an SSH banner"},
		{"silent", func(c net.Conn) { time.Sleep(2 * time.Second); c.Close() }, "accepted the connection but sent no SSH banner in time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			go tt.serve(b)
			_, err := awaitBanner(context.Background(), a, 200*time.Millisecond, "10.0.0.1")
			if failure.KindOf(err) != failure.NoBanner || !contains(err.Error(), tt.msg) {
				t.Errorf("awaitBanner = %v, want NoBanner saying %q", err, tt.msg)
			}
		})
	}
}

// TestStdioForward: -W joins stdin and stdout to a port through the
// server.
func TestStdioForward(t *testing.T) {
	w := newWorld(t, false)
	s := w.sshd(nil)
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		c, err := echo.Accept()
		if err == nil {
			c.Write([]byte("from the far side\n"))
			c.Close()
		}
	}()
	r := w.run("-W", echo.Addr().String(), "-p", port(s), "127.0.0.1")
	spec, _ := SpecFor(r)
	code, err := Connect(context.Background(), r, spec)
	if code != 0 || err != nil || read(t, w.stdout) != "from the far side\n" {
		t.Errorf("-W = %d, %v, %q", code, err, read(t, w.stdout))
	}
	r = w.run("-W", "nowhere", "-p", port(s), "127.0.0.1")
	spec, _ = SpecFor(r)
	if code, err := Connect(context.Background(), r, spec); code != 255 || failure.KindOf(err) != failure.Config {
		t.Errorf("-W nowhere = %d, %v", code, err)
	}
}

// TestNoSessionEndsWithTheConnection: -N ends when the server goes, with
// ssh's words and 255.
func TestNoSessionEndsWithTheConnection(t *testing.T) {
	w := newWorld(t, false)
	s := w.sshd(nil)
	r := w.run("-N", "-p", port(s), "127.0.0.1")
	spec, _ := SpecFor(r)
	first := s // s is the second server below: the goroutine closes this one
	go func() { time.Sleep(300 * time.Millisecond); first.Close() }()
	code, err := Connect(context.Background(), r, spec)
	if code != 255 {
		t.Errorf("-N after the server went = %d, %v", code, err)
	}
	// A signal ends -N with 255 too.
	s = w.sshd(nil)
	r = w.run("-N", "-p", port(s), "127.0.0.1")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel(context.Canceled) }()
	if code, _ := Connect(ctx, r, spec); code != 255 || !contains(read(t, w.stderr), "Killed by") {
		t.Errorf("-N on a signal = %d: %s", code, read(t, w.stderr))
	}
}

// TestRefusePendingInput: the SSM command path (until it carries stdin)
// will not drop input silently; no input is no input.
func TestRefusePendingInput(t *testing.T) {
	pr, pw, _ := os.Pipe()
	pw.Write([]byte("data"))
	pw.Close()
	if err := refusePendingInput(pr); failure.KindOf(err) != failure.Config {
		t.Errorf("a pipe with data: %v, want a refusal", err)
	}
	null, _ := os.Open(os.DevNull)
	defer null.Close()
	if err := refusePendingInput(null); err != nil {
		t.Errorf("/dev/null: %v", err)
	}
	empty, emptyW, _ := os.Pipe()
	defer emptyW.Close()
	if err := refusePendingInput(empty); err != nil {
		t.Errorf("an empty open pipe: %v", err)
	}
}
