package reach

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"

	"github.com/ec2ssh/ec2ssh/connect"
)

// Proxy is --proxy HOST PORT: a byte stream between stdin/stdout and the
// port, for ProxyCommand. stdout carries nothing else. It ends when the
// port's side ends, when ssh (the reader of stdout) goes away, or on a
// signal (ssh sends SIGHUP to its ProxyCommand when it exits). End of
// input alone does not end it: the server may still be sending, and over
// SSM a half-close is not something the agent can pass on.
func Proxy(ctx context.Context, r *Run) (int, error) {
	port, _ := strconv.Atoi(r.Args.ProxyPort)
	c := *r.Config
	c.Port = port
	c.ProxyCommand, c.ProxyJump = "", ""
	p, err := newPlan(ctx, r, &c, true)
	if err != nil {
		return connect.ExitSignal, err
	}
	defer p.finish()
	o, _, err := p.climb(ctx, p.streamRung)
	if err != nil {
		return connect.ExitSignal, err
	}
	conn := o.conn
	defer conn.Close()
	stdin, stdout := r.IO.Stdin, r.IO.Stdout
	gone, done, watched := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { watchHangup(stdout, func() { close(gone) }, done); close(watched) }()
	defer func() { close(done); <-watched }()
	go func() {
		io.Copy(conn, stdin)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	// The copy to stdout runs apart: a signal or ssh going away must end
	// ec2ssh even while a write to a stdout nobody reads is blocked.
	er := &errReader{r: conn}
	copied := make(chan struct{})
	go func() { io.Copy(stdout, er); close(copied) }()
	select {
	case <-copied:
		if er.err != nil && !errors.Is(er.err, io.EOF) && !errors.Is(er.err, net.ErrClosed) {
			return connect.ExitSignal, er.err
		}
		return 0, nil
	case <-gone:
		return 0, nil // ssh, which reads stdout, has gone: nothing is left to carry
	case <-ctx.Done():
		return connect.ExitSignal, nil // ssh(1): 255 when a signal ends it
	}
}

// errReader remembers why reading ended.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
