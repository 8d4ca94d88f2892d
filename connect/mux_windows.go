//go:build windows

package connect

import (
	"context"
	"errors"
	"os"

	"github.com/ec2ssh/ec2ssh/failure"
)

// MuxSupported: Windows has no descriptor passing, so no connection
// sharing; -v says so once.
const MuxSupported = false

var ErrNoMaster = errors.New("no master")

type MuxRequest struct {
	Path     string
	Op       string
	Config   *Config
	Session  *Session
	StdioFwd string
	Stdin    *os.File
	Stdout   *os.File
	Stderr   *os.File
	Log      func(string, ...any)
	Debug    func(string, ...any)
}

func MuxClient(ctx context.Context, r *MuxRequest) (int, error) {
	if r.Op != "" {
		return ExitSignal, failure.Configf("connection sharing needs descriptor passing, which Windows lacks", "-O %s: connection sharing is not available on Windows", r.Op)
	}
	return 0, ErrNoMaster
}

type MuxMaster struct {
	Client   *Client
	Path     string
	Ask      bool
	Prompter Prompter
	Log      func(string, ...any)
	Debug    func(string, ...any)
}

func ListenMux(ctx context.Context, m *MuxMaster) error {
	return errors.New("connection sharing is not available on Windows")
}

func (m *MuxMaster) StopListening()               {}
func (m *MuxMaster) Terminated() <-chan struct{}  { return nil }
func (m *MuxMaster) Stopped() <-chan struct{}     { return nil }
func (m *MuxMaster) Active() int                  { return 0 }
func (m *MuxMaster) WaitIdle(ctx context.Context) {}
func (m *MuxMaster) Idle() <-chan struct{}        { return nil }
