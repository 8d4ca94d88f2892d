//go:build windows

package connect

import (
	"context"
	"errors"
)

// MuxSupported: Windows cannot pass descriptors, so there is no master
// and no passenger here; control commands (-O) still reach a master over
// AF_UNIX (muxclient.go).
const MuxSupported = false

// descriptorPassing: Windows' AF_UNIX sockets carry no descriptors.
var descriptorPassing = false

func (m *muxConn) session(context.Context, *MuxRequest, int) (int, error) { return 0, ErrNoMaster }

func (m *muxConn) stdioFwd(*MuxRequest) (int, error) { return 0, ErrNoMaster }

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
