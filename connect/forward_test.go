package connect

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first accepts as a process out of file
// descriptors does, then accepts for real.
type flakyListener struct {
	net.Listener
	fails int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.fails > 0 {
		f.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return f.Listener.Accept()
}

// A listener keeps serving after "too many open files" (issue 14).
func TestServeSurvivesEMFILE(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	logs := &logSink{}
	served := make(chan struct{}, 1)
	go serve(&flakyListener{Listener: ln, fails: 3}, logs.log, func(c net.Conn) { c.Close(); served <- struct{}{} })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("the listener stopped after EMFILE")
	}
	if got := logs.String(); got == "" {
		t.Error("the failed accepts were not logged")
	}
}

func TestRemoteOpenAllowed(t *testing.T) {
	for _, tt := range []struct {
		permit []string
		addr   string
		want   bool
	}{
		{nil, "db:5432", true},
		{[]string{}, "db:5432", false},
		{[]string{"db:5432"}, "db:5432", true},
		{[]string{"db:5432"}, "db:22", false},
		{[]string{"*:443"}, "example.com:443", true},
		{[]string{"DB:*"}, "db:1", true},
	} {
		if got := remoteOpenAllowed(tt.permit, tt.addr); got != tt.want {
			t.Errorf("remoteOpenAllowed(%q, %q) = %v", tt.permit, tt.addr, got)
		}
	}
}
