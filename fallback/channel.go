package fallback

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/session-manager-plugin/src/message"
	"github.com/gorilla/websocket"
	"github.com/twinj/uuid"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Tuning of the data channel. The stock plugin sends 1 KiB and sleeps 1 ms
// (about 0.7 MB/s up); here a window of unacknowledged frames bounds what
// is in flight instead.
const (
	ChunkSize     = 1024 // payload bytes per frame, as the agent expects
	Window        = 2048 // frames in flight before Write waits for acknowledgements
	MinRTO        = 100 * time.Millisecond
	MaxRTO        = 2 * time.Second
	ResumeTries   = 5     // ResumeSession attempts after the WebSocket drops
	maxOutOfOrder = 10000 // frames buffered ahead of the expected one (as the stock client)

	HandshakeTimeout = 30 * time.Second // the agent's handshake, after the WebSocket is up
	CallTimeout      = 15 * time.Second // one SSM API call (StartSession, ResumeSession)
	TerminateTimeout = 5 * time.Second  // TerminateSession on close
	DrainTimeout     = 2 * time.Second  // waiting on close for input in flight to be acknowledged
	ClientVersion    = "1.2.0.0-ec2ssh" // what ec2ssh tells the agent it is
)

// Endpoint is what the SSM API gives a session: where its data channel is
// and the token that opens it.
type Endpoint struct {
	SessionID string
	StreamURL string
	Token     string
}

// Resumer is the SSM API as a channel needs it after StartSession.
type Resumer interface {
	// Resume calls ResumeSession and returns the new endpoint.
	Resume(ctx context.Context, sessionID string) (Endpoint, error)
	// Terminate calls TerminateSession.
	Terminate(ctx context.Context, sessionID string) error
}

// Channel is an SSM session's data channel as a byte stream: it satisfies
// net.Conn, so an SSH connection runs over it exactly as over TCP.
// Frames are acknowledged, retransmitted after a timeout that follows the
// measured round-trip time, and re-sent after a dropped WebSocket is
// resumed. Closing it ends the session with TerminateSession.
type Channel struct {
	api      Resumer
	endpoint Endpoint
	dialer   *websocket.Dialer

	// Handshake facts.
	SessionType string          // "Port", "Standard_Stream", "InteractiveCommands"
	Properties  json.RawMessage // the agent's session properties
	AgentVer    string
	Stderr      io.Writer // PayloadType 11 output goes here; nil: discarded
	exitCode    chan int  // PayloadType 12

	wmu    sync.Mutex // serialises WebSocket writes
	sendMu sync.Mutex // serialises Write calls
	ws     *websocket.Conn

	mu            sync.Mutex
	cond          *sync.Cond
	nextSeq       int64            // the next sequence number to send
	unacked       map[int64]*sent  // sent, not yet acknowledged
	expected      int64            // the next sequence number to deliver
	ahead         map[int64]*Frame // received ahead of expected
	readBuf       []byte
	readErr       error // set when the agent closed the channel
	closed        bool
	err           error // set when the channel failed for good
	srtt          time.Duration
	rttvar        time.Duration
	handshook     chan struct{}
	paused        bool
	deadline      time.Time
	deadlineTimer *time.Timer

	done chan struct{}
}

type sent struct {
	frame []byte
	at    time.Time
	tries int
}

// OpenChannel dials the data channel, sends the opening token and completes
// the agent's handshake. Errors are *failure.Error (Unreachable when the
// channel cannot be reached, Unknown otherwise).
func OpenChannel(ctx context.Context, api Resumer, ep Endpoint) (*Channel, error) {
	return openChannel(ctx, api, ep, nil)
}

// openChannel is OpenChannel with a writer for the agent's stderr frames,
// set before the first frame can arrive.
func openChannel(ctx context.Context, api Resumer, ep Endpoint, stderr io.Writer) (*Channel, error) {
	c := &Channel{api: api, endpoint: ep, Stderr: stderr, dialer: websocket.DefaultDialer, unacked: map[int64]*sent{},
		ahead: map[int64]*Frame{}, handshook: make(chan struct{}), done: make(chan struct{}), exitCode: make(chan int, 1),
		srtt: 200 * time.Millisecond, rttvar: 50 * time.Millisecond}
	c.cond = sync.NewCond(&c.mu)
	if err := c.connect(ctx, ep); err != nil {
		return nil, err
	}
	go c.readLoop(c.ws)
	go c.retransmitLoop()
	select {
	case <-c.handshook:
		return c, nil
	case <-c.done:
		return nil, c.failure("the SSM session ended during the handshake")
	case <-ctx.Done():
		c.Close()
		return nil, &failure.Error{Kind: failure.Canceled, Msg: "interrupted while opening the SSM session", Err: ctx.Err()}
	case <-time.After(HandshakeTimeout):
		c.Close()
		return nil, &failure.Error{Kind: failure.Unreachable, Msg: "the SSM agent did not complete the handshake in " + HandshakeTimeout.String(),
			Hint: "the agent may be overloaded or restarting; try again"}
	}
}

func (c *Channel) connect(ctx context.Context, ep Endpoint) error {
	ws, _, err := c.dialer.DialContext(ctx, ep.StreamURL, nil)
	if err != nil {
		return &failure.Error{Kind: failure.Unreachable, Op: "open the SSM data channel", Err: err,
			Hint: "the Session Manager endpoint (ssmmessages) could not be reached"}
	}
	open, _ := json.Marshal(map[string]string{"MessageSchemaVersion": "1.0", "RequestId": uuid.NewV4().String(),
		"TokenValue": ep.Token, "ClientId": uuid.NewV4().String(), "ClientVersion": ClientVersion})
	if err := ws.WriteMessage(websocket.TextMessage, open); err != nil {
		ws.Close()
		return &failure.Error{Kind: failure.Unreachable, Op: "open the SSM data channel", Err: err}
	}
	c.wmu.Lock()
	c.ws = ws
	c.wmu.Unlock()
	return nil
}

func (c *Channel) failure(msg string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		var fe *failure.Error
		if errors.As(c.err, &fe) {
			return fe
		}
		return &failure.Error{Kind: failure.Unknown, Msg: msg + ": " + c.err.Error()}
	}
	return &failure.Error{Kind: failure.Unknown, Msg: msg}
}

func (c *Channel) writeFrame(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

// readLoop reads frames from one WebSocket until it fails.
func (c *Channel) readLoop(ws *websocket.Conn) {
	for {
		kind, b, err := ws.ReadMessage()
		if err != nil {
			c.lost(ws, err)
			return
		}
		if kind != websocket.BinaryMessage {
			continue
		}
		f, err := DecodeFrame(b)
		if err != nil {
			continue // a corrupt frame is not acknowledged, so it comes again
		}
		c.handle(f)
	}
}

func (c *Channel) handle(f *Frame) {
	switch f.MessageType {
	case message.AcknowledgeMessage:
		seq, err := AckedSequence(f)
		if err != nil {
			return
		}
		c.mu.Lock()
		if s, ok := c.unacked[seq]; ok {
			if s.tries == 0 { // Karn: only unambiguous samples
				c.sampleRTT(time.Since(s.at))
			}
			delete(c.unacked, seq)
			c.cond.Broadcast()
		}
		c.mu.Unlock()
	case message.OutputStreamMessage:
		if ack, err := EncodeAck(f); err == nil {
			c.writeFrame(ack)
		}
		c.mu.Lock()
		switch {
		case f.SequenceNumber == c.expected:
			c.deliver(f)
			c.expected++
			for {
				next, ok := c.ahead[c.expected]
				if !ok {
					break
				}
				delete(c.ahead, c.expected)
				c.deliver(next)
				c.expected++
			}
		case f.SequenceNumber > c.expected && len(c.ahead) < maxOutOfOrder:
			c.ahead[f.SequenceNumber] = f
		}
		c.mu.Unlock()
	case message.ChannelClosedMessage:
		c.mu.Lock()
		if c.readErr == nil {
			c.readErr = io.EOF
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		c.finish(nil)
	case message.PausePublicationMessage:
		c.mu.Lock()
		c.paused = true
		c.mu.Unlock()
	case message.StartPublicationMessage:
		c.mu.Lock()
		c.paused = false
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// deliver handles one in-order frame from the agent; c.mu is held.
func (c *Channel) deliver(f *Frame) {
	switch message.PayloadType(f.PayloadType) {
	case message.HandshakeRequestPayloadType:
		var req message.HandshakeRequestPayload
		if json.Unmarshal(f.Payload, &req) != nil {
			return
		}
		c.AgentVer = req.AgentVersion
		var processed []message.ProcessedClientAction
		for _, a := range req.RequestedClientActions {
			pa := message.ProcessedClientAction{ActionType: a.ActionType, ActionStatus: message.Success}
			switch a.ActionType {
			case message.SessionType:
				var st message.SessionTypeRequest
				json.Unmarshal(a.ActionParameters, &st)
				c.SessionType = st.SessionType
				c.Properties, _ = json.Marshal(st.Properties)
			default: // KMS encryption would need KMS calls: say so, do not pretend
				pa.ActionStatus, pa.Error = message.Unsupported, "ec2ssh does not support "+string(a.ActionType)
			}
			processed = append(processed, pa)
		}
		resp, _ := json.Marshal(message.HandshakeResponsePayload{ClientVersion: ClientVersion, ProcessedClientActions: processed, Errors: []string{}})
		c.sendLocked(message.HandshakeResponsePayloadType, resp, 0)
	case message.HandshakeCompletePayloadType:
		select {
		case <-c.handshook:
		default:
			close(c.handshook)
		}
	case message.Output:
		c.readBuf = append(c.readBuf, f.Payload...)
		c.cond.Broadcast()
	case message.StdErr:
		if c.Stderr != nil {
			c.Stderr.Write(f.Payload)
		}
	case message.Flag:
		if len(f.Payload) == 4 && message.PayloadTypeFlag(binary.BigEndian.Uint32(f.Payload)) == message.ConnectToPortError {
			// The agent could not reach the port on the instance: sshd is
			// down (SPEC.md: "refused inside the SSM tunnel too").
			c.readErr = &failure.Error{Kind: failure.Refused, Msg: "the SSM agent could not connect to the port on the instance: connection refused",
				Hint: "sshd is not running there; an SSM shell still works"}
			c.cond.Broadcast()
		}
	case message.ExitCode:
		// The status comes as decimal text; a 4-byte binary form is read too.
		code, err := strconv.Atoi(strings.TrimSpace(string(f.Payload)))
		if err != nil && len(f.Payload) == 4 {
			code, err = int(binary.BigEndian.Uint32(f.Payload)), nil
		}
		if err == nil {
			select {
			case c.exitCode <- code:
			default:
			}
		}
	}
}

// sendLocked assigns the next sequence number and sends a frame; c.mu is
// held. flags is 0 for data.
func (c *Channel) sendLocked(ptype message.PayloadType, payload []byte, flags uint64) error {
	seq := c.nextSeq
	b, err := EncodeFrame(message.InputStreamMessage, seq, flags, ptype, payload)
	if err != nil {
		return err
	}
	c.nextSeq++
	c.unacked[seq] = &sent{frame: b, at: time.Now()}
	c.mu.Unlock()
	err = c.writeFrame(b) // a failed write is resent after the resume
	c.mu.Lock()
	_ = err
	return nil
}

func (c *Channel) sampleRTT(r time.Duration) {
	// RFC 6298.
	d := c.srtt - r
	if d < 0 {
		d = -d
	}
	c.rttvar = (3*c.rttvar + d) / 4
	c.srtt = (7*c.srtt + r) / 8
}

func (c *Channel) rto() time.Duration {
	return min(max(c.srtt+4*c.rttvar, MinRTO), MaxRTO)
}

// retransmitLoop resends frames whose acknowledgement is overdue.
func (c *Channel) retransmitLoop() {
	t := time.NewTicker(MinRTO / 2)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.mu.Lock()
		rto := c.rto()
		var due [][]byte
		for _, s := range c.unacked {
			if time.Since(s.at) > rto*time.Duration(1<<min(s.tries, 4)) {
				s.tries++
				s.at = time.Now()
				due = append(due, s.frame)
			}
		}
		c.mu.Unlock()
		for _, b := range due {
			if c.writeFrame(b) != nil {
				break
			}
		}
	}
}

// lost handles a WebSocket that failed: unless the channel is closing, it
// resumes the session and carries on where it was.
func (c *Channel) lost(ws *websocket.Conn, err error) {
	c.mu.Lock()
	closing := c.closed || c.readErr != nil
	c.mu.Unlock()
	ws.Close()
	if closing {
		c.finish(nil)
		return
	}
	for try := 0; try < ResumeTries; try++ {
		time.Sleep(time.Duration(try) * 300 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
		ep, rerr := c.api.Resume(ctx, c.endpoint.SessionID)
		if rerr == nil {
			rerr = c.connect(ctx, ep)
		}
		cancel()
		if rerr == nil {
			c.endpoint = ep
			go c.readLoop(c.ws)
			// Everything unacknowledged goes again at once.
			c.mu.Lock()
			var frames [][]byte
			for _, s := range c.unacked {
				frames = append(frames, s.frame)
			}
			c.mu.Unlock()
			for _, b := range frames {
				c.writeFrame(b)
			}
			return
		}
		err = rerr
	}
	c.finish(&failure.Error{Kind: failure.Unreachable, Msg: "the SSM data channel dropped and could not be resumed", Err: err,
		Hint: "the network to Session Manager is down; try again"})
}

// finish ends the channel for good, once.
func (c *Channel) finish(err error) {
	c.mu.Lock()
	if err != nil && c.err == nil {
		c.err = err
	}
	if c.readErr == nil {
		c.readErr = io.EOF
		if err != nil {
			c.readErr = err
		}
	}
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Read returns the agent's output in order.
func (c *Channel) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.readBuf) == 0 && c.readErr == nil && !c.closed {
		if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
			return 0, os.ErrDeadlineExceeded
		}
		c.cond.Wait()
	}
	if len(c.readBuf) > 0 {
		n := copy(p, c.readBuf)
		c.readBuf = c.readBuf[n:]
		if len(c.readBuf) == 0 {
			c.readBuf = nil
		}
		return n, nil
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	return 0, c.readErr
}

// Write sends p as input, in frames of ChunkSize, waiting only while the
// window of unacknowledged frames is full.
func (c *Channel) Write(p []byte) (int, error) {
	return c.write(message.Output, p)
}

func (c *Channel) write(ptype message.PayloadType, p []byte) (int, error) {
	// One Write's frames go out together: sendLocked lets go of c.mu while
	// it writes, and another writer must not slip its frames in between.
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for n < len(p) {
		for (len(c.unacked) >= Window || c.paused) && !c.closed && c.err == nil && c.readErr == nil {
			c.cond.Wait()
		}
		if c.closed {
			return n, net.ErrClosed
		}
		if c.err != nil {
			return n, c.err
		}
		if c.readErr != nil {
			if c.readErr != io.EOF {
				return n, c.readErr // why the agent ended it (a refused port)
			}
			return n, io.ErrClosedPipe
		}
		end := min(n+ChunkSize, len(p))
		chunk := append([]byte(nil), p[n:end]...)
		c.sendLocked(ptype, chunk, 0)
		n = end
	}
	return n, nil
}

// Resize tells the agent the terminal's size (shell sessions).
func (c *Channel) Resize(cols, rows int) error {
	b, _ := json.Marshal(message.SizeData{Cols: uint32(cols), Rows: uint32(rows)})
	_, err := c.write(message.Size, b)
	return err
}

// ExitCode returns the exit status the agent reported, if it did.
func (c *Channel) ExitCode() (int, bool) {
	select {
	case code := <-c.exitCode:
		return code, true
	default:
		return 0, false
	}
}

// Drain waits until everything written has been acknowledged (or the
// channel ended), so that closing loses nothing in flight.
func (c *Channel) Drain(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.unacked) > 0 && c.err == nil && c.readErr == nil && ctx.Err() == nil {
		c.cond.Wait()
	}
}

// Close ends the session: outstanding input is given a moment to be
// acknowledged, the agent is told to disconnect from the port, and
// TerminateSession is called.
func (c *Channel) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	c.Drain(ctx)
	cancel()
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	ctx, cancel = context.WithTimeout(context.Background(), TerminateTimeout)
	defer cancel()
	err := c.api.Terminate(ctx, c.endpoint.SessionID)
	c.wmu.Lock()
	if c.ws != nil {
		c.ws.Close()
	}
	c.wmu.Unlock()
	c.finish(nil)
	return err
}

// CloseWrite tells the agent the input is over (ssh half-close).
func (c *Channel) CloseWrite() error {
	flag := make([]byte, 4)
	binary.BigEndian.PutUint32(flag, uint32(message.DisconnectToPort))
	_, err := c.write(message.Flag, flag)
	return err
}

func (c *Channel) LocalAddr() net.Addr                { return ssmAddr(c.endpoint.SessionID) }
func (c *Channel) RemoteAddr() net.Addr               { return ssmAddr(c.endpoint.SessionID) }
func (c *Channel) SetDeadline(t time.Time) error      { return c.SetReadDeadline(t) }
func (c *Channel) SetWriteDeadline(t time.Time) error { return nil }

// SetReadDeadline makes a waiting Read fail with os.ErrDeadlineExceeded at
// t, as a TCP connection's would (the handshake timeout relies on it).
func (c *Channel) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.deadlineTimer != nil {
		c.deadlineTimer.Stop()
	}
	if !t.IsZero() {
		c.deadlineTimer = time.AfterFunc(time.Until(t), func() {
			c.mu.Lock()
			c.cond.Broadcast()
			c.mu.Unlock()
		})
	}
	return nil
}

type ssmAddr string

func (a ssmAddr) Network() string { return "ssm" }
func (a ssmAddr) String() string  { return "ssm:" + string(a) }
