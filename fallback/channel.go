package fallback

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ec2ssh/ec2ssh/failure"
)

// Tuning of the data channel, fitted to what the real agent does
// (SSM-DATA-CHANNEL.md). The stock plugin sends 1 KiB and sleeps 1 ms; here
// a window of unacknowledged frames that follows the path (window.go)
// bounds what is in flight instead.
const (
	ChunkSize = 1024 // payload bytes per frame, as the agent expects
	// AckTimeout ends a session whose agent acknowledges nothing while input
	// waits: the stock client retries 3000 times; a dead peer should cost
	// less than a minute.
	AckTimeout = 45 * time.Second
	// MaxReadBuffer bounds output delivered but not yet read: beyond it
	// frames are not acknowledged, so the agent holds them and sends them
	// again later (back-pressure instead of growth).
	MaxReadBuffer = 1 << 20
	// MaxAhead bounds output received ahead of the expected frame, in bytes.
	MaxAhead = 2 << 20
	// HoldInputMax is how long a session that holds input until the first
	// output (HoldInput) waits before letting it go anyway.
	HoldInputMax = 2 * time.Second
	// SettleDelay holds the input of every other session for a moment after
	// HandshakeComplete: the agent marks its handshake done only after
	// sending it, and throws away stream data that arrives in between. A
	// goroutine hop is far shorter; it cannot be seen from here, so this is
	// a margin, not a guarantee (SSH's sessions use HoldInput instead).
	SettleDelay = 15 * time.Millisecond

	ResumeTries      = 5                // ResumeSession attempts after the WebSocket drops
	MaxIdleResumes   = 5                // resumes in a row with no frame delivered or acknowledged in between
	HandshakeTimeout = 30 * time.Second // the agent's handshake, after the WebSocket is up
	CallTimeout      = 15 * time.Second // one SSM API call (StartSession, ResumeSession)
	TerminateTimeout = 5 * time.Second  // TerminateSession on close
	DrainTimeout     = 2 * time.Second  // waiting on close for input in flight to be acknowledged
	ClientVersion    = "1.2.0.0-ec2ssh" // what ec2ssh tells the agent it is
	retransmitTick   = 20 * time.Millisecond
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

// Options shape one channel.
type Options struct {
	// Stderr receives PayloadType StdErr output; nil discards it.
	Stderr io.Writer
	// HoldInput keeps input back until the agent has sent output (for SSH,
	// the server's banner): the agent discards stream data that arrives
	// between its HandshakeComplete and its own bookkeeping, and rejects
	// input before it has connected to the port. HoldInputMax bounds it.
	HoldInput bool
	// KMS answers the agent's KMSEncryption request; nil refuses it.
	KMS KMSAPI
	// TargetID is the instance, for the encryption context.
	TargetID string
	// Debug, when set, receives -v lines.
	Debug func(format string, a ...any)
	// AckTimeout overrides the package's AckTimeout when set.
	AckTimeout time.Duration
	// HandshakeOptional is for the session types whose agent starts no
	// handshake unless KMS encryption is on (InteractiveCommands,
	// Standard_Stream: sessionplugin.go's RequireHandshake): OpenChannel
	// returns once the data channel is open, and input waits until the
	// agent's first frame shows which it is (a HandshakeRequest, or
	// output), as the stock plugin's ProcessFirstMessage decides. Whoever
	// waits for that first frame bounds the wait.
	HandshakeOptional bool
	// MaxWindow caps the upload window (frames in flight) below the
	// package's MaxWindow when set; below MinWindow it fixes the window at
	// that size (tests hold it there).
	MaxWindow int
}

// Channel is an SSM session's data channel as a byte stream: it satisfies
// net.Conn, so an SSH connection runs over it exactly as over TCP.
// Frames are acknowledged, retransmitted after a timeout that follows the
// measured round-trip time, and sent again after a dropped WebSocket is
// resumed. Every buffer is bounded in bytes. Closing it ends the session
// with TerminateSession.
type Channel struct {
	api      Resumer
	endpoint Endpoint
	dialer   *websocket.Dialer
	opts     Options

	// Handshake facts.
	SessionType string          // "Port", "Standard_Stream", "InteractiveCommands", "NonInteractiveCommands"
	Properties  json.RawMessage // the agent's session properties
	AgentVer    string
	Encrypted   bool // KMS encryption is on

	wmu    sync.Mutex // serialises WebSocket writes
	sendMu sync.Mutex // serialises Write calls
	ws     *websocket.Conn

	mu          sync.Mutex
	cond        *sync.Cond
	nextSeq     int64   // the next sequence number to send
	win         *window // the frames sent and not yet acknowledged
	expected    int64   // the next sequence number to deliver
	ahead       map[int64]*Frame
	aheadBytes  int
	readBuf     []byte
	readErr     error // set when the agent closed the channel
	closed      bool
	writeClosed bool
	err         error     // set when the channel failed for good
	progress    time.Time // the last acknowledgement or (re)connection
	handshook   chan struct{}
	gotOutput   bool
	holdUntil   time.Time
	paused      bool
	deadline    time.Time
	dlTimer     *time.Timer
	crypto      *sessionKeys
	exitCode    *int
	asked       bool // a HandshakeRequest came
	typed       bool // HandshakeOptional: the first frame said whether a handshake comes
	resumes     int  // resumes since the last progress
	summarised  bool
	pace        paceWatch // whether the download runs at the agent's pace
	paceHeld    int       // stats.HeldBack when pace last looked
	stats       Stats

	done chan struct{}
}

// Stats counts what a channel did, for tests and benchmarks.
type Stats struct {
	FramesSent, Resent, FramesReceived, Duplicates, HeldBack int
	Window                                                   WindowStats
}

// OpenChannel dials the data channel, sends the opening token and completes
// the agent's handshake. Errors are *failure.Error: Unreachable when the
// channel cannot be reached, AWSAuth when encryption needs a KMS permission
// the caller lacks, Unknown otherwise.
func OpenChannel(ctx context.Context, api Resumer, ep Endpoint, opts Options) (*Channel, error) {
	c := &Channel{api: api, endpoint: ep, opts: opts, dialer: websocket.DefaultDialer, win: newWindow(opts.MaxWindow),
		ahead: map[int64]*Frame{}, handshook: make(chan struct{}), done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	if err := c.connect(ctx, ep); err != nil {
		return nil, err
	}
	go c.readLoop(c.ws)
	go c.retransmitLoop()
	if opts.HandshakeOptional {
		return c, nil
	}
	timer := time.NewTimer(HandshakeTimeout)
	defer timer.Stop()
	select {
	case <-c.handshook:
		hold := SettleDelay
		if opts.HoldInput {
			hold = HoldInputMax
		}
		c.mu.Lock()
		c.holdUntil = time.Now().Add(hold)
		c.mu.Unlock()
		time.AfterFunc(hold, c.wake)
		return c, nil
	case <-c.done:
		return nil, c.failure("the SSM session ended during the handshake")
	case <-ctx.Done():
		c.abort()
		return nil, &failure.Error{Kind: failure.Canceled, Msg: "interrupted while opening the SSM session", Err: ctx.Err()}
	case <-timer.C:
		c.abort()
		return nil, &failure.Error{Kind: failure.Unreachable, Msg: "the SSM agent did not complete the handshake in " + HandshakeTimeout.String(),
			Hint: "the agent may be overloaded or restarting; try again"}
	}
}

func (c *Channel) debug(format string, a ...any) {
	if c.opts.Debug != nil {
		c.opts.Debug(format, a...)
	}
}

func (c *Channel) wake() {
	c.mu.Lock()
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *Channel) connect(ctx context.Context, ep Endpoint) error {
	ws, _, err := c.dialer.DialContext(ctx, ep.StreamURL, nil)
	if err != nil {
		return &failure.Error{Kind: failure.Unreachable, Op: "open the SSM data channel", Err: err,
			Hint: "the Session Manager endpoint (ssmmessages) could not be reached"}
	}
	// A frame is at most a header and a payload of a few KiB; a peer that
	// sends more is not an agent.
	ws.SetReadLimit(MaxFrameLength)
	open, _ := json.Marshal(map[string]string{"MessageSchemaVersion": "1.0", "RequestId": UUIDString(NewMessageID()),
		"TokenValue": ep.Token, "ClientId": UUIDString(NewMessageID()), "ClientVersion": ClientVersion})
	if err := ws.WriteMessage(websocket.TextMessage, open); err != nil {
		ws.Close()
		return &failure.Error{Kind: failure.Unreachable, Op: "open the SSM data channel", Err: err}
	}
	c.wmu.Lock()
	c.ws = ws
	c.wmu.Unlock()
	c.mu.Lock()
	c.progress = time.Now()
	c.mu.Unlock()
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
	if c.readErr != nil && c.readErr != io.EOF {
		var fe *failure.Error
		if errors.As(c.readErr, &fe) {
			return fe
		}
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
		f, err := Decode(b)
		if err != nil {
			// Not acknowledged: an agent sends it again; a hostile peer
			// gets nowhere.
			c.debug("debug1: ssm: dropped a frame: %v", err)
			continue
		}
		c.handle(f)
	}
}

func (c *Channel) handle(f *Frame) {
	switch f.MessageType {
	case AcknowledgeMessage:
		seq, err := AckedSequence(f)
		if err != nil {
			return
		}
		c.mu.Lock()
		if now := time.Now(); c.win.ack(seq, now) {
			c.progress = now
			c.resumes = 0
			c.cond.Broadcast()
		}
		c.mu.Unlock()
	case OutputStreamMessage:
		c.receive(f)
	case ChannelClosedMessage:
		var cc ChannelClosed
		json.Unmarshal(f.Payload, &cc)
		c.mu.Lock()
		if c.readErr == nil && c.opts.HoldInput && !c.gotOutput && len(c.ahead) == 0 {
			// The server speaks first (SSH), and the port sent nothing: the
			// agent's basic port session ends so when it cannot connect
			// to the port (it sends no ConnectToPortError), and so does a
			// server that hangs up at once. Which one, only a look inside
			// can tell.
			c.readErr = &failure.Error{Kind: failure.SessionEnded, Msg: "the SSM port session ended before the port on the instance sent anything",
				Hint: "sshd may be down on the instance; ec2ssh --diagnose looks inside"}
		}
		if c.readErr == nil {
			c.readErr = io.EOF
			if out := strings.TrimSpace(cc.Output); out != "" && len(c.ahead) == 0 {
				c.debug("debug1: ssm: the agent closed the channel: %s", out)
			}
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		c.finish(nil)
	case PausePublicationMessage:
		c.mu.Lock()
		c.paused = true
		c.mu.Unlock()
	case StartPublicationMessage:
		c.mu.Lock()
		c.paused = false
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// receive takes one output_stream_data frame: in order it is delivered,
// ahead of order it is kept (within MaxAhead), behind it is a duplicate.
// Every frame kept or already had is acknowledged (the agent resends
// duplicates until they are); a frame that cannot be kept is not, so the
// agent sends it again later.
func (c *Channel) receive(f *Frame) {
	// The handshake request may ask for a KMS data key: an AWS call, made
	// before the channel's lock is taken.
	var kmsResult *kmsOutcome
	if f.PayloadType == HandshakeRequest {
		c.mu.Lock()
		inOrder := f.SequenceNumber == c.expected
		c.mu.Unlock()
		if inOrder {
			kmsResult = c.prepareKMS(f)
		}
	}
	c.mu.Lock()
	c.stats.FramesReceived++
	var out []func()
	ack := false
	switch {
	case f.SequenceNumber < c.expected:
		c.stats.Duplicates++
		ack = true
	case f.SequenceNumber > c.expected:
		if _, had := c.ahead[f.SequenceNumber]; had {
			c.stats.Duplicates++
			ack = true
		} else if c.aheadBytes+len(f.Payload) <= MaxAhead {
			c.ahead[f.SequenceNumber] = f
			c.aheadBytes += len(f.Payload)
			ack = true
		} else {
			c.stats.HeldBack++
		}
	default:
		if !c.room(f) {
			c.stats.HeldBack++
			break
		}
		out = append(out, c.deliver(f, kmsResult)...)
		c.expected++
		c.resumes = 0
		ack = true
		out = append(out, c.drainAhead()...)
	}
	c.mu.Unlock()
	if ack {
		c.writeFrame(EncodeAck(f))
	}
	for _, fn := range out {
		fn()
	}
}

// room reports whether f can be delivered now: output must fit the read
// buffer. c.mu is held.
func (c *Channel) room(f *Frame) bool {
	return f.PayloadType != Output || len(c.readBuf) == 0 || len(c.readBuf)+len(f.Payload) <= MaxReadBuffer
}

// drainAhead delivers the frames kept ahead of order that are now in
// order, while there is room. c.mu is held.
func (c *Channel) drainAhead() []func() {
	var out []func()
	for {
		next, ok := c.ahead[c.expected]
		if !ok || !c.room(next) {
			return out
		}
		delete(c.ahead, c.expected)
		c.aheadBytes -= len(next.Payload)
		out = append(out, c.deliver(next, nil)...)
		c.expected++
	}
}

// deliver handles one in-order frame from the agent; c.mu is held. What
// must happen outside the lock (writes to the WebSocket or to stderr) is
// returned.
func (c *Channel) deliver(f *Frame, kmsResult *kmsOutcome) []func() {
	payload := f.Payload
	if c.crypto != nil && (f.PayloadType == Output || f.PayloadType == StdErr || f.PayloadType == ExitCode) {
		plain, err := c.crypto.open(payload)
		if err != nil {
			c.failLocked(&failure.Error{Kind: failure.Unknown, Msg: "an SSM frame failed to decrypt: " + err.Error(),
				Hint: "the session's encryption keys do not agree; try again"})
			return nil
		}
		payload = plain
	}
	switch f.PayloadType {
	case HandshakeRequest:
		return c.handshakeResponse(f, kmsResult)
	case HandshakeComplete:
		select {
		case <-c.handshook:
		default:
			close(c.handshook)
		}
		if c.opts.HandshakeOptional && !c.typed {
			// The agent marks its handshake done only after sending this
			// (see SettleDelay).
			c.typed = true
			c.holdUntil = time.Now().Add(SettleDelay)
			time.AfterFunc(SettleDelay, c.wake)
			c.cond.Broadcast()
		}
	case EncChallengeRequest:
		return c.challengeResponse(payload)
	case Output:
		if c.opts.HandshakeOptional && !c.asked && !c.typed {
			c.typed = true // output first: no handshake in this session
			c.cond.Broadcast()
		}
		held := c.stats.HeldBack != c.paceHeld
		c.paceHeld = c.stats.HeldBack
		if paced, rate := c.pace.frame(len(payload), time.Now(), held); paced {
			c.debug("debug1: ssm: the download runs at the agent's pace, %.2f MB/s: its port plugin sends 1 KiB and sleeps 1 ms, for every client", rate/1e6)
		}
		if len(payload) > 0 {
			c.readBuf = append(c.readBuf, payload...)
			c.gotOutput = true
			c.cond.Broadcast()
		}
	case StdErr:
		if w := c.opts.Stderr; w != nil {
			p := append([]byte(nil), payload...)
			return []func(){func() { w.Write(p) }}
		}
	case Flag:
		if len(payload) == 4 && binary.BigEndian.Uint32(payload) == ConnectToPortError {
			// The agent could not reach the port on the instance: sshd is
			// down (SPEC.md: "refused inside the SSM tunnel too").
			c.readErr = &failure.Error{Kind: failure.Refused, Msg: "the SSM agent could not connect to the port on the instance: connection refused",
				Hint: "sshd is not running there; an SSM shell still works"}
			c.cond.Broadcast()
		}
	case ExitCode:
		if code, ok := ParseExitCode(payload); ok {
			c.exitCode = &code
		}
	}
	return nil
}

// ParseExitCode reads an ExitCode payload: "EXIT_CODE: N" as the agent
// sends it, a bare decimal, or a 4-byte big-endian integer. Values outside
// 0-255, which no process exits with (the agent reports -1 for a command
// killed by a signal), become 255, as ssh(1) reports a remote side that
// ended abnormally.
func ParseExitCode(p []byte) (int, bool) {
	s := strings.TrimSpace(string(p))
	s = strings.TrimSpace(strings.TrimPrefix(s, "EXIT_CODE:"))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if len(p) != 4 {
			return 0, false
		}
		n = int64(int32(binary.BigEndian.Uint32(p)))
	}
	if n < 0 || n > 255 {
		return 255, true
	}
	return int(n), true
}

// handshakeResponse answers the agent's handshake request; c.mu is held.
func (c *Channel) handshakeResponse(f *Frame, kmsResult *kmsOutcome) []func() {
	var req HandshakeRequestPayload
	if json.Unmarshal(f.Payload, &req) != nil {
		return nil
	}
	c.AgentVer = req.AgentVersion
	c.asked = true
	var processed []ProcessedClientAction
	for _, a := range req.RequestedClientActions {
		pa := ProcessedClientAction{ActionType: a.ActionType, ActionStatus: ActionSuccess}
		switch a.ActionType {
		case ActionSessionType:
			var st SessionTypeRequest
			json.Unmarshal(a.ActionParameters, &st)
			c.SessionType, c.Properties = st.SessionType, st.Properties
		case ActionKMSEncryption:
			switch {
			case kmsResult == nil:
				pa.ActionStatus, pa.Error = ActionFailed, "no KMS client"
			case kmsResult.err != nil:
				pa.ActionStatus, pa.Error = ActionFailed, kmsResult.err.Error()
				c.failLocked(kmsResult.err)
			default:
				c.crypto, c.Encrypted = kmsResult.keys, true
				pa.ActionResult = KMSEncryptionResponse{KMSCipherTextKey: kmsResult.keys.cipherText}
			}
		default:
			pa.ActionStatus, pa.Error = ActionUnsupported, "ec2ssh does not support "+a.ActionType
		}
		processed = append(processed, pa)
	}
	resp, _ := json.Marshal(HandshakeResponsePayload{ClientVersion: ClientVersion, ProcessedClientActions: processed, Errors: []string{}})
	return []func(){c.queueLocked(HandshakeResponse, resp)}
}

// challengeResponse decrypts the agent's challenge and encrypts it again
// with the client's key; c.mu is held.
func (c *Channel) challengeResponse(payload []byte) []func() {
	var ch EncryptionChallenge
	if c.crypto == nil || json.Unmarshal(payload, &ch) != nil {
		return nil
	}
	plain, err := c.crypto.open(ch.Challenge)
	if err != nil {
		c.failLocked(&failure.Error{Kind: failure.Unknown, Msg: "the SSM agent's encryption challenge failed to decrypt: " + err.Error()})
		return nil
	}
	resp, _ := json.Marshal(EncryptionChallenge{Challenge: c.crypto.seal(plain)})
	return []func(){c.queueLocked(EncChallengeResponse, resp)}
}

// queueLocked assigns the next sequence number to a frame and records it
// as sent; the returned function writes it. c.mu is held.
func (c *Channel) queueLocked(ptype PayloadType, payload []byte) func() {
	seq := c.nextSeq
	c.nextSeq++
	b := NewFrame(InputStreamMessage, seq, 0, ptype, payload).Encode()
	c.win.add(seq, b, time.Now())
	c.stats.FramesSent++
	return func() { c.writeFrame(b) } // a failed write is resent after the resume
}

// retransmitLoop resends frames whose acknowledgement is overdue, oldest
// first, and ends a session whose agent has stopped acknowledging.
func (c *Channel) retransmitLoop() {
	t := time.NewTicker(retransmitTick)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.mu.Lock()
		now := time.Now()
		limit := AckTimeout
		if c.opts.AckTimeout > 0 {
			limit = c.opts.AckTimeout
		}
		if c.win.len() > 0 && now.Sub(c.progress) > limit {
			c.failLocked(&failure.Error{Kind: failure.Unreachable,
				Msg:  fmt.Sprintf("the SSM agent acknowledged nothing for %v", limit),
				Hint: "the instance or its agent stopped answering; ec2ssh --diagnose shows its state"})
			c.mu.Unlock()
			go c.Close()
			return
		}
		due := c.win.due(now)
		c.stats.Resent += len(due)
		c.mu.Unlock()
		for _, b := range due {
			if c.writeFrame(b) != nil {
				break
			}
		}
	}
}

// lost handles a WebSocket that failed: unless the channel is closing, it
// resumes the session and carries on where it was. The service closes the
// WebSocket about every hour (close 1000) and network blips drop it; both
// end here and resume alike.
func (c *Channel) lost(ws *websocket.Conn, err error) {
	c.mu.Lock()
	closing := c.closed || c.readErr != nil || c.err != nil
	stalled := c.resumes >= MaxIdleResumes
	c.resumes++
	c.mu.Unlock()
	ws.Close()
	if closing {
		c.finish(nil)
		return
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		// No agent sends a message that large: a broken or hostile peer.
		c.finish(&failure.Error{Kind: failure.Unknown, Msg: fmt.Sprintf("the SSM peer sent a message larger than any frame (over %d bytes); ending the session", MaxFrameLength),
			Hint: "this is not what an SSM agent does; try again, and report it if it repeats"})
		return
	}
	if stalled {
		c.finish(&failure.Error{Kind: failure.Unreachable, Msg: fmt.Sprintf("the SSM data channel dropped %d times without getting anywhere", MaxIdleResumes+1), Err: err,
			Hint: "the network to Session Manager, or the agent, keeps failing; try again"})
		return
	}
	c.debug("debug1: ssm: the data channel dropped (%v); resuming", err)
	for try := 0; try < ResumeTries; try++ {
		select {
		case <-c.done:
			return
		case <-time.After(time.Duration(try) * 300 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
		ep, rerr := c.api.Resume(ctx, c.endpoint.SessionID)
		if rerr == nil {
			rerr = c.connect(ctx, ep)
		}
		cancel()
		if rerr == nil {
			c.endpoint = ep
			go c.readLoop(c.ws)
			// Everything unacknowledged goes again at once, in order.
			c.mu.Lock()
			frames := c.win.resume(time.Now())
			c.stats.Resent += len(frames)
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

func (c *Channel) failLocked(err error) {
	if c.err == nil {
		c.err = err
	}
	if c.readErr == nil {
		c.readErr = err
	}
	c.cond.Broadcast()
}

// finish ends the channel for good, once.
func (c *Channel) finish(err error) {
	c.mu.Lock()
	if err != nil {
		c.failLocked(err)
	}
	if c.readErr == nil {
		c.readErr = io.EOF
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
	for len(c.readBuf) == 0 && c.readErr == nil && !c.closed {
		if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
			c.mu.Unlock()
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
		// Frames kept ahead may fit now.
		out := c.drainAhead()
		c.mu.Unlock()
		for _, fn := range out {
			fn()
		}
		return n, nil
	}
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	return 0, c.readErr
}

// Write sends p as input, in frames of ChunkSize, waiting while the window
// of unacknowledged frames is full (and, with HoldInput, until the agent's
// first output).
func (c *Channel) Write(p []byte) (int, error) {
	return c.write(Output, p)
}

func (c *Channel) write(ptype PayloadType, p []byte) (int, error) {
	// One Write's frames go out together.
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	n := 0
	for n < len(p) {
		c.mu.Lock()
		for c.mustWait(ptype) {
			c.cond.Wait()
		}
		if err := c.writeErrLocked(); err != nil {
			c.mu.Unlock()
			return n, err
		}
		end := min(n+ChunkSize, len(p))
		chunk := append([]byte(nil), p[n:end]...)
		if c.crypto != nil && ptype == Output {
			chunk = c.crypto.seal(chunk)
		}
		send := c.queueLocked(ptype, chunk)
		c.mu.Unlock()
		send()
		n = end
	}
	return n, nil
}

// mustWait reports whether a write must wait; c.mu is held.
func (c *Channel) mustWait(ptype PayloadType) bool {
	if c.closed || c.err != nil || c.readErr != nil || c.writeClosed {
		return false
	}
	if c.win.full() || c.paused {
		return true
	}
	if c.opts.HandshakeOptional && !c.typed {
		return true
	}
	if !time.Now().Before(c.holdUntil) {
		return false
	}
	return !c.opts.HoldInput || (ptype == Output && !c.gotOutput)
}

func (c *Channel) writeErrLocked() error {
	switch {
	case c.closed:
		return net.ErrClosed
	case c.err != nil:
		return c.err
	case c.readErr != nil && c.readErr != io.EOF:
		return c.readErr // why the agent ended it (a refused port)
	case c.readErr != nil, c.writeClosed:
		return io.ErrClosedPipe
	}
	return nil
}

// Resize tells the agent the terminal's size (shell sessions).
func (c *Channel) Resize(cols, rows int) error {
	b, _ := json.Marshal(SizeData{Cols: uint32(cols), Rows: uint32(rows)})
	_, err := c.write(Size, b)
	return err
}

// ExitCode returns the exit status the agent reported, if it did.
func (c *Channel) ExitCode() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exitCode == nil {
		return 0, false
	}
	return *c.exitCode, true
}

// Stats returns what the channel has done so far.
func (c *Channel) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Window = c.win.Stats()
	return s
}

// Drain waits until everything written has been acknowledged (or the
// channel ended), so that closing loses nothing in flight.
func (c *Channel) Drain(ctx context.Context) {
	stop := context.AfterFunc(ctx, c.wake)
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.win.len() > 0 && c.err == nil && c.readErr == nil && ctx.Err() == nil {
		c.cond.Wait()
	}
}

// Close ends the session: input in flight is given a moment to be
// acknowledged, then TerminateSession ends it on the agent (which records
// it as ended, not failed).
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
	c.summariseLocked()
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

// summariseLocked tells -v, once, what the upload window did when the
// input ends (an upload of more than one window's worth); c.mu is held.
func (c *Channel) summariseLocked() {
	if c.summarised || c.stats.FramesSent <= MinWindow {
		return
	}
	c.summarised = true
	w := c.win.Stats()
	c.debug("debug1: ssm: upload: %d frames, %d sent again; window up to %d frames, lowest round trip %v; %d back-offs, %d late rounds",
		c.stats.FramesSent, c.stats.Resent, w.Largest, w.MinRTT.Round(100*time.Microsecond), w.BackOffs, w.LateRounds)
}

// abort ends a channel whose handshake did not finish: no drain.
func (c *Channel) abort() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), TerminateTimeout)
	defer cancel()
	c.api.Terminate(ctx, c.endpoint.SessionID)
	c.wmu.Lock()
	if c.ws != nil {
		c.ws.Close()
	}
	c.wmu.Unlock()
	c.finish(nil)
}

// CloseWrite says the input is over. Nothing is sent: the agent's
// DisconnectToPort flag closes its connection to the port at once, losing
// what the port still sends and recording the session as failed, so the
// stream's output carries on until the port side ends it or the channel
// is closed.
func (c *Channel) CloseWrite() error {
	c.mu.Lock()
	c.writeClosed = true
	c.summariseLocked()
	c.cond.Broadcast()
	c.mu.Unlock()
	return nil
}

func (c *Channel) LocalAddr() net.Addr                { return ssmAddr(c.endpoint.SessionID) }
func (c *Channel) RemoteAddr() net.Addr               { return ssmAddr(c.endpoint.SessionID) }
func (c *Channel) SetDeadline(t time.Time) error      { return c.SetReadDeadline(t) }
func (c *Channel) SetWriteDeadline(t time.Time) error { return nil }

// SessionID is the session's id.
func (c *Channel) SessionID() string { return c.endpoint.SessionID }

// SetReadDeadline makes a waiting Read fail with os.ErrDeadlineExceeded at
// t, as a TCP connection's would (the handshake timeout relies on it).
func (c *Channel) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.dlTimer != nil {
		c.dlTimer.Stop()
	}
	if !t.IsZero() {
		c.dlTimer = time.AfterFunc(time.Until(t), c.wake)
	}
	return nil
}

type ssmAddr string

func (a ssmAddr) Network() string { return "ssm" }
func (a ssmAddr) String() string  { return "ssm:" + string(a) }
