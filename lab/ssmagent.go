package lab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/gorilla/websocket"

	"github.com/ec2ssh/ec2ssh/fallback"
)

// The agent's side of a session, as amazon-ssm-agent 3.3.x does it
// (SSM-DATA-CHANNEL.md, "The real agent"), so that tests see what users
// see:
//   - it sends HandshakeComplete and only afterwards marks the handshake
//     done; stream data in between is acknowledged and thrown away;
//   - input that arrives before its plugin is ready (the port not yet
//     connected, the terminal not yet started) is rejected without an ack;
//   - it records a frame as sent only after writing it, so an ack can beat
//     its bookkeeping and the frame is sent again later; it acknowledges
//     duplicates again;
//   - it resends only its oldest unacknowledged frame, every 100 ms, after
//     an RTT-based timeout (200 ms at first, 1 s at most);
//   - it handles the client's frames one at a time, in the order they
//     arrive, and acknowledges an in-order frame only after writing it to
//     the port: acknowledgements come late when the port or the agent is
//     busy; frames ahead of order are acknowledged and kept, up to 100,000;
//   - it reads the port 1 KiB at a time and sleeps 1 ms after each;
//   - DisconnectToPort closes its connection to the port at once: what the
//     port sends afterwards is lost and the session is recorded as Failed.
const (
	agentReadSize       = 1024
	agentReadPause      = time.Millisecond
	agentResendTick     = 100 * time.Millisecond
	agentInitialRTO     = 200 * time.Millisecond
	agentMaxRTO         = time.Second
	agentInitialRTT     = 100 * time.Millisecond // DefaultRoundTripTime
	agentClockGranule   = 10 * time.Millisecond
	agentIncomingBuffer = 100000 // IncomingMessageBufferCapacity
	agentOutgoingBuffer = 100000 // OutgoingMessageBufferCapacity
	// relayQueue bounds the frames on their way through the relay in each
	// direction (the delay line, and the frames read but not yet handled):
	// beyond it the relay stops reading, as a full TCP buffer does.
	relayQueue = 16384
	// ackRaceRate is the share of frames the agent records as sent only
	// after writing them, so that an acknowledgement can beat its
	// bookkeeping: "hundreds of times in a 16 MiB download" on loopback.
	ackRaceRate = 0.02
	// handshakeRaceRate is the share of sessions in which the agent's
	// bookkeeping after HandshakeComplete is slow enough to be seen, and
	// handshakeBookkeeping the most it then takes (a goroutine hop or two
	// under load): a client that writes the moment the handshake completes
	// loses its first bytes about one time in four, as was seen with the
	// real agent (5 of 20).
	handshakeRaceRate    = 0.3
	handshakeBookkeeping = 3 * time.Millisecond
)

// Session outcomes, as the agent records them.
const (
	OutcomeSuccess    = "Success"
	OutcomeFailed     = "Failed"
	OutcomeTerminated = "Terminated"
)

type outFrame struct {
	seq      int64
	frame    []byte
	lastSent time.Time
}

// agentSession is the agent's side of one SSM session in the stand-in,
// with the port session bridged to the instance's port from the instance's
// own address.
type agentSession struct {
	s                           *ssmStandIn
	id, target, token, document string
	addr                        string // the instance's address
	port                        int
	command                     string // for command sessions
	kmsKeyID                    string

	mu            sync.Mutex
	cond          *sync.Cond
	ws            *websocket.Conn
	link          *link // the client's WebSocket as the relay sees it
	wmu           sync.Mutex
	hmu           sync.Mutex   // the client's frames are handled one at a time
	inbox         chan relayed // the client's frames on their way, with Delay
	wire          chan relayed // the agent's frames on their way to the client, with Delay
	nextSeq       int64
	outbox        map[int64]*outFrame
	rtt, rttvar   time.Duration
	rto           time.Duration
	expected      int64
	buffered      map[int64]*fallback.Frame
	handshakeDone bool
	keys          *fallback.AgentKeys
	challenge     []byte
	tcp           net.Conn       // the port, once connected
	disconnected  bool           // DisconnectToPort received
	stdin         io.WriteCloser // a terminal session's input
	pty           *os.File
	cmdProc       *os.Process
	started       bool
	closed        bool
	outcome       string
	stats         AgentStats
	done          chan struct{}
}

// AgentStats counts what one session's agent saw.
type AgentStats struct {
	InputFrames, DuplicateInput, Rejected, DiscardedInHandshake, Resent int
}

func randomID(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

var upgrader = websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}

func (s *ssmStandIn) startSession(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct {
		Target       string
		DocumentName string
		Parameters   map[string][]string
	}
	json.Unmarshal(body, &in)
	addr, ok := s.addrs[in.Target]
	if !ok || !s.isOnline(in.Target) {
		apiError(w, "TargetNotConnected", in.Target+" is not connected.")
		return
	}
	if in.DocumentName != "" && sessionType(in.DocumentName) == "" {
		apiError(w, "InvalidDocument", "document "+in.DocumentName+" does not exist")
		return
	}
	port := 22
	if p := in.Parameters["portNumber"]; len(p) == 1 {
		port, _ = strconv.Atoi(p[0])
	}
	command := ""
	if c := in.Parameters["command"]; len(c) == 1 {
		command = c[0]
	}
	sess := &agentSession{s: s, id: randomID("lab-"), target: in.Target, token: randomID("tok-"), document: in.DocumentName, command: command,
		addr: addr, port: port, kmsKeyID: s.opts.KMSKeyID, outbox: map[int64]*outFrame{}, buffered: map[int64]*fallback.Frame{},
		rto: agentInitialRTO, done: make(chan struct{})}
	sess.rtt, sess.inbox, sess.wire = agentInitialRTT, make(chan relayed, relayQueue), make(chan relayed, relayQueue)
	sess.cond = sync.NewCond(&sess.mu)
	s.mu.Lock()
	s.sessions[sess.id] = sess
	s.started++
	s.all = append(s.all, sess)
	s.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]string{"SessionId": sess.id, "TokenValue": sess.token,
		"StreamUrl": fmt.Sprintf("ws://127.0.0.1:%d/v1/data-channel/%s?role=publish_subscribe", s.port, sess.id)})
}

func (s *ssmStandIn) resumeSession(w http.ResponseWriter, body []byte) {
	var in struct{ SessionId string }
	json.Unmarshal(body, &in)
	s.mu.Lock()
	sess := s.sessions[in.SessionId]
	s.mu.Unlock()
	if sess == nil {
		apiError(w, "DoesNotExistException", "no session "+in.SessionId)
		return
	}
	sess.mu.Lock()
	sess.token = randomID("tok-")
	tok := sess.token
	sess.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]string{"SessionId": sess.id, "TokenValue": tok,
		"StreamUrl": fmt.Sprintf("ws://127.0.0.1:%d/v1/data-channel/%s?role=publish_subscribe", s.port, sess.id)})
}

func (s *ssmStandIn) terminateSession(w http.ResponseWriter, body []byte) {
	var in struct{ SessionId string }
	json.Unmarshal(body, &in)
	s.mu.Lock()
	sess := s.sessions[in.SessionId]
	delete(s.sessions, in.SessionId)
	s.terminated++
	s.mu.Unlock()
	if sess != nil {
		sess.end(OutcomeTerminated)
	}
	json.NewEncoder(w).Encode(map[string]string{"SessionId": in.SessionId})
}

func apiError(w http.ResponseWriter, code, msg string) {
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// dataChannel serves /v1/data-channel/{id}: the client's WebSocket.
func (s *ssmStandIn) dataChannel(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/data-channel/")
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(fallback.MaxFrameLength)
	// The client speaks first: the token from StartSession/ResumeSession.
	_, first, err := ws.ReadMessage()
	var open struct{ TokenValue string }
	if err != nil || json.Unmarshal(first, &open) != nil {
		ws.Close()
		return
	}
	s.mu.Lock()
	l := &link{ws: ws, delay: s.opts.Delay}
	s.mu.Unlock()
	sess.mu.Lock()
	if open.TokenValue != sess.token || sess.closed {
		sess.mu.Unlock()
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "bad token"))
		ws.Close()
		return
	}
	old := sess.ws
	sess.ws, sess.link = ws, l
	started := sess.started
	sess.started = true
	sess.mu.Unlock()
	if old != nil {
		old.Close()
	}
	s.mu.Lock()
	s.sockets[ws] = true
	s.mu.Unlock()
	if !started {
		go sess.resendLoop()
		go sess.inboundLoop()
		go sess.wireLoop()
		sess.sendHandshakeRequest()
	}
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			l.mu.Lock()
			l.goneAt = time.Now()
			l.mu.Unlock()
			s.mu.Lock()
			delete(s.sockets, ws)
			s.mu.Unlock()
			return // the client resumes, or terminates
		}
		if l.delay == 0 {
			// Near by, the frame is handled here, as the agent's own read
			// loop does (a hop through the queue would cost the stand-in a
			// third of its pace).
			sess.handleRaw(b)
			continue
		}
		select {
		case sess.inbox <- relayed{l: l, b: b, due: time.Now().Add(l.delay)}:
		case <-sess.done:
			return
		}
	}
}

// handleRaw handles one frame from the client. The lock keeps it to one
// at a time, in order, whichever WebSocket brought it: the real agent has
// one WebSocket to the service, which stays up when the client's drops,
// and one goroutine reads it. (Handling two of the client's WebSockets side
// by side wrote a resent frame to the port twice, or out of order.)
func (a *agentSession) handleRaw(b []byte) {
	a.hmu.Lock()
	defer a.hmu.Unlock()
	if f, err := fallback.Decode(b); err == nil {
		a.handle(f)
	}
}

// link is one of the client's WebSockets as the relay (the Message Gateway
// Service) sees it, with the one-way delay the lab adds to it each way.
type link struct {
	ws     *websocket.Conn
	delay  time.Duration
	mu     sync.Mutex
	goneAt time.Time // when the WebSocket failed
}

// relayed is a frame in the relay, due at the other end at due.
type relayed struct {
	l   *link
	b   []byte
	due time.Time
}

// lost reports whether a frame due at due was still on its way when the
// link failed (a network blip loses what is in flight).
func (l *link) lost(due time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.delay > 0 && !l.goneAt.IsZero() && l.goneAt.Before(due)
}

// inboundLoop hands the client's frames that come with a delay to the
// agent when they are due, in order.
func (a *agentSession) inboundLoop() {
	for {
		var m relayed
		select {
		case <-a.done:
			return
		case m = <-a.inbox:
		}
		if !sleepUntil(m.due, a.done) {
			return
		}
		if !m.l.lost(m.due) {
			a.handleRaw(m.b)
		}
	}
}

// wireLoop delivers the agent's frames to the client after the link's
// delay; a frame whose WebSocket is gone by then is lost. After the
// session ends it still delivers what was sent (channel_closed).
func (a *agentSession) wireLoop() {
	for {
		var m relayed
		select {
		case m = <-a.wire:
		case <-a.done:
			select {
			case m = <-a.wire:
			default:
				return
			}
		}
		sleepUntil(m.due, nil)
		a.wmu.Lock()
		m.l.ws.WriteMessage(websocket.BinaryMessage, m.b)
		a.wmu.Unlock()
	}
}

// sleepUntil waits until t, give or take a millisecond; false if stop
// closed first. (Sleeping to the microsecond for each frame would cost a
// timer per frame and bound the relay's rate, which a network does not.)
func sleepUntil(t time.Time, stop <-chan struct{}) bool {
	d := time.Until(t)
	if d <= time.Millisecond {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-stop:
		return false
	}
}

func (a *agentSession) sendHandshakeRequest() {
	if kind := sessionType(a.document); (kind == "InteractiveCommands" || kind == "Standard_Stream") && a.kmsKeyID == "" {
		// The shell plugins' RequireHandshake is false: without KMS the
		// agent skips the handshake and starts the plugin, whose output
		// is the client's first frame (sessionplugin.go, SkipHandshake).
		a.mu.Lock()
		a.handshakeDone = true
		a.mu.Unlock()
		go a.runTerminal(kind)
		return
	}
	props := json.RawMessage("{}")
	if sessionType(a.document) == "Port" {
		props, _ = json.Marshal(map[string]string{"portNumber": strconv.Itoa(a.port)})
	}
	st, _ := json.Marshal(fallback.SessionTypeRequest{SessionType: sessionType(a.document), Properties: props})
	actions := []fallback.RequestedClientAction{{ActionType: fallback.ActionSessionType, ActionParameters: st}}
	if a.kmsKeyID != "" {
		k, _ := json.Marshal(fallback.KMSEncryptionRequest{KMSKeyID: a.kmsKeyID})
		actions = append(actions, fallback.RequestedClientAction{ActionType: fallback.ActionKMSEncryption, ActionParameters: k})
	}
	req, _ := json.Marshal(fallback.HandshakeRequestPayload{AgentVersion: "3.3.0.0-lab", RequestedClientActions: actions})
	a.send(fallback.HandshakeRequest, req)
}

func (a *agentSession) write(b []byte) error {
	a.mu.Lock()
	ws, l := a.ws, a.link
	a.mu.Unlock()
	if ws == nil {
		return fmt.Errorf("no websocket")
	}
	if l.delay > 0 {
		select {
		case a.wire <- relayed{l: l, b: b, due: time.Now().Add(l.delay)}:
		case <-a.done:
		}
		return nil
	}
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return ws.WriteMessage(websocket.BinaryMessage, b)
}

// send writes an output_stream_data frame and records it as sent. Like the
// real agent it sometimes records it only after writing it: an
// acknowledgement that arrives in between finds nothing to remove, and the
// frame goes again later (until acknowledged again, or for good with a
// client that does not acknowledge duplicates).
func (a *agentSession) send(ptype fallback.PayloadType, payload []byte) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	if a.keys != nil && (ptype == fallback.Output || ptype == fallback.StdErr || ptype == fallback.ExitCode) {
		payload = a.keys.Seal(payload)
	}
	seq := a.nextSeq
	a.nextSeq++
	b := fallback.NewFrame(fallback.OutputStreamMessage, seq, 0, ptype, payload).Encode()
	record := func() {
		if len(a.outbox) < agentOutgoingBuffer {
			a.outbox[seq] = &outFrame{seq: seq, frame: b, lastSent: time.Now()}
		}
	}
	late := !a.s.opts.Reference && chance(ackRaceRate)
	if !late {
		record()
	}
	a.mu.Unlock()
	a.write(b)
	if late {
		// The bookkeeping the ack outruns. The agent's read loop does not
		// wait for it (SendStreamDataMessage returns), so neither does the
		// stand-in's pace: a sleep here slowed every download by 2%.
		time.AfterFunc(time.Millisecond, func() {
			a.mu.Lock()
			record()
			a.mu.Unlock()
		})
	}
}

func chance(p float64) bool {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<30))
	return float64(n.Int64()) < p*(1<<30)
}

// resendLoop sends the oldest unacknowledged frame again when it is
// overdue, checking every 100 ms.
func (a *agentSession) resendLoop() {
	t := time.NewTicker(agentResendTick)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			return
		case <-t.C:
		}
		a.mu.Lock()
		var oldest *outFrame
		for _, f := range a.outbox {
			if oldest == nil || f.seq < oldest.seq {
				oldest = f
			}
		}
		var due []byte
		if oldest != nil && time.Since(oldest.lastSent) > a.rto {
			due = oldest.frame
			oldest.lastSent = time.Now()
			a.stats.Resent++
		}
		a.mu.Unlock()
		if due != nil {
			a.write(due)
		}
	}
}

func (a *agentSession) handle(f *fallback.Frame) {
	switch f.MessageType {
	case fallback.AcknowledgeMessage:
		seq, err := fallback.AckedSequence(f)
		if err != nil {
			return
		}
		a.mu.Lock()
		if o, ok := a.outbox[seq]; ok {
			a.sampleRTT(time.Since(o.lastSent))
			delete(a.outbox, seq)
			a.cond.Broadcast()
		}
		a.mu.Unlock()
	case fallback.InputStreamMessage:
		a.receive(f)
	}
}

// sampleRTT follows the agent's RTT estimate (calculateRetransmissionTimeout:
// from 100 ms and no variation, with no special first sample); a.mu is held.
func (a *agentSession) sampleRTT(r time.Duration) {
	d := a.rtt - r
	if d < 0 {
		d = -d
	}
	a.rttvar = (3*a.rttvar + d) / 4
	a.rtt = (7*a.rtt + r) / 8
	a.rto = min(a.rtt+max(agentClockGranule, 4*a.rttvar), agentMaxRTO)
}

func (a *agentSession) ack(f *fallback.Frame) { a.write(fallback.EncodeAck(f)) }

// receive takes one input_stream_data frame.
func (a *agentSession) receive(f *fallback.Frame) {
	a.mu.Lock()
	a.stats.InputFrames++
	switch {
	case f.SequenceNumber < a.expected:
		a.stats.DuplicateInput++
		a.mu.Unlock()
		a.ack(f) // "Resending acknowledge for already processed message"
		return
	case f.SequenceNumber > a.expected:
		if _, had := a.buffered[f.SequenceNumber]; had {
			a.stats.DuplicateInput++
		} else if len(a.buffered) < agentIncomingBuffer {
			a.buffered[f.SequenceNumber] = f
		} else {
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		a.ack(f)
		return
	}
	a.mu.Unlock()
	if !a.accept(f, true) {
		return
	}
	for {
		a.mu.Lock()
		next, ok := a.buffered[a.expected]
		a.mu.Unlock()
		if !ok || !a.accept(next, false) {
			return
		}
		a.mu.Lock()
		delete(a.buffered, next.SequenceNumber)
		a.mu.Unlock()
	}
}

// accept processes the frame that is next in order, unless the plugin is
// not ready for it: then it is rejected without an ack and the client must
// send it again. A frame that arrived in order is acknowledged after it is
// processed (written to the port); one from the buffer was acknowledged
// when it was kept.
func (a *agentSession) accept(f *fallback.Frame, ack bool) bool {
	a.mu.Lock()
	stream := f.PayloadType != fallback.HandshakeResponse && f.PayloadType != fallback.EncChallengeResponse
	if stream && a.handshakeDone && !a.readyLocked(f) {
		a.stats.Rejected++ // "TCP connection unavailable. Reject incoming message packet"
		a.mu.Unlock()
		return false
	}
	a.expected = f.SequenceNumber + 1
	discard := stream && !a.handshakeDone
	if discard {
		a.stats.DiscardedInHandshake++ // "Handshake still in progress, ignore stream data message"
	}
	a.mu.Unlock()
	if !discard {
		a.process(f)
	}
	if ack {
		a.ack(f)
	}
	return true
}

// readyLocked reports whether the plugin takes f now; a.mu is held.
func (a *agentSession) readyLocked(f *fallback.Frame) bool {
	switch sessionType(a.document) {
	case "Port":
		return a.tcp != nil || a.disconnected
	case "NonInteractiveCommands":
		return true
	}
	return a.stdin != nil // the terminal has started
}

func (a *agentSession) process(f *fallback.Frame) {
	switch f.PayloadType {
	case fallback.HandshakeResponse:
		a.handshakeResponse(f.Payload)
	case fallback.EncChallengeResponse:
		a.challengeResponse(f.Payload)
	case fallback.Output:
		payload := f.Payload
		a.mu.Lock()
		keys := a.keys
		a.mu.Unlock()
		if keys != nil {
			p, err := keys.Open(payload)
			if err != nil {
				a.closeChannel("decrypting input failed: " + err.Error())
				a.end(OutcomeFailed)
				return
			}
			payload = p
		}
		a.input(payload)
	case fallback.Size:
		a.resize(f.Payload)
	case fallback.Flag:
		if len(f.Payload) == 4 {
			a.flag(binary.BigEndian.Uint32(f.Payload))
		}
	}
}

func (a *agentSession) handshakeResponse(payload []byte) {
	var resp fallback.HandshakeResponsePayload
	if json.Unmarshal(payload, &resp) != nil {
		return
	}
	for _, pa := range resp.ProcessedClientActions {
		if pa.ActionType != fallback.ActionKMSEncryption {
			continue
		}
		if pa.ActionStatus != fallback.ActionSuccess {
			a.closeChannel("KMSEncryption failed on client: " + pa.Error)
			a.end(OutcomeFailed)
			return
		}
		b, _ := json.Marshal(pa.ActionResult)
		var r fallback.KMSEncryptionResponse
		json.Unmarshal(b, &r)
		keys, err := a.s.decryptDataKey(r.KMSCipherTextKey, a.id, a.target)
		if err != nil {
			a.closeChannel("Fetching data key failed: " + err.Error())
			a.end(OutcomeFailed)
			return
		}
		challenge := make([]byte, 64)
		rand.Read(challenge)
		a.mu.Lock()
		a.keys, a.challenge = keys, challenge
		a.mu.Unlock()
		ch, _ := json.Marshal(fallback.EncryptionChallenge{Challenge: keys.Seal(challenge)})
		a.sendRaw(fallback.EncChallengeRequest, ch)
		return
	}
	// The agent's handshake runs apart from its read loop (PerformHandshake
	// waits on a channel), so frames keep arriving while it finishes.
	go a.completeHandshake()
}

// sendRaw sends a frame whose payload the encryption rules leave alone.
func (a *agentSession) sendRaw(ptype fallback.PayloadType, payload []byte) { a.send(ptype, payload) }

func (a *agentSession) challengeResponse(payload []byte) {
	var r fallback.EncryptionChallenge
	a.mu.Lock()
	keys, want := a.keys, a.challenge
	a.mu.Unlock()
	if keys == nil || json.Unmarshal(payload, &r) != nil {
		return
	}
	got, err := keys.Open(r.Challenge)
	if err != nil || string(got) != string(want) {
		a.closeChannel("Encryption challenge does not match!")
		a.end(OutcomeFailed)
		return
	}
	go a.completeHandshake()
}

// completeHandshake sends HandshakeComplete, marks the handshake done a
// moment later (the race), and starts the session's plugin.
func (a *agentSession) completeHandshake() {
	msg := ""
	if a.kmsKeyID != "" {
		msg = "This session is encrypted using AWS KMS."
	}
	done, _ := json.Marshal(fallback.HandshakeCompletePayload{HandshakeTimeToComplete: time.Millisecond, CustomerMessage: msg})
	markDone := func() {
		a.mu.Lock()
		a.handshakeDone = true
		a.mu.Unlock()
	}
	if a.s.opts.Reference {
		// No race at all: even with no pause, a client that writes the
		// moment HandshakeComplete arrives can beat the line after the
		// send on loopback (2 to 3 sessions in 40 of the stock plugin did).
		markDone()
		a.send(fallback.HandshakeComplete, done)
	} else {
		a.send(fallback.HandshakeComplete, done)
		if chance(handshakeRaceRate) {
			n, _ := rand.Int(rand.Reader, big.NewInt(int64(handshakeBookkeeping)))
			time.Sleep(time.Duration(n.Int64()))
		}
		markDone()
	}
	switch kind := sessionType(a.document); kind {
	case "Port":
		go a.bridge()
	case "NonInteractiveCommands":
		go a.runNonInteractive()
	default:
		go a.runTerminal(kind)
	}
}

func (a *agentSession) input(p []byte) {
	a.mu.Lock()
	conn, in, kind := a.tcp, a.stdin, sessionType(a.document)
	a.mu.Unlock()
	switch {
	case kind == "Port" && conn != nil:
		conn.Write(p)
	case kind == "NonInteractiveCommands":
		a.controlSignals(p) // no stdin: the plugin only looks for control characters
	case in != nil:
		in.Write(p)
	}
}

// flag handles the client's Flag frames as the port plugin does.
func (a *agentSession) flag(flag uint32) {
	switch flag {
	case fallback.DisconnectToPort:
		a.mu.Lock()
		conn := a.tcp
		a.disconnected = true
		a.mu.Unlock()
		if conn != nil {
			conn.Close() // the read loop fails: "use of closed network connection"
		}
	case fallback.TerminateSession:
		a.closeChannel("")
		a.end(OutcomeSuccess)
	}
}

// bridge connects to the port from the instance's own address (so the
// instance's security group and NACL do not apply, as on a real instance)
// and relays what the port sends, 1 KiB and a 1 ms pause at a time.
func (a *agentSession) bridge() {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(a.addr)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", net.JoinHostPort(a.addr, strconv.Itoa(a.port)))
	if err != nil {
		// As the agent's basic port session does (port_basic.go,
		// InitializeSession; AWS-StartSSHSession uses it): the session
		// ends, Failed, with nothing sent. Only its multiplexed port
		// session sends ConnectToPortError.
		a.waitAcked(10 * time.Second)
		a.closeChannel("Unable to connect to specified port: " + err.Error())
		a.end(OutcomeFailed)
		return
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		conn.Close()
		return
	}
	a.tcp = conn
	a.cond.Broadcast()
	a.mu.Unlock()
	buf := make([]byte, agentReadSize)
	var readErr error
	for {
		n, err := conn.Read(buf)
		a.mu.Lock()
		dropped := a.disconnected
		a.mu.Unlock()
		if n > 0 && !dropped {
			a.send(fallback.Output, append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			readErr = err
			break
		}
		time.Sleep(agentReadPause)
	}
	a.mu.Lock()
	failed := a.disconnected || (readErr != io.EOF && !a.closed)
	a.mu.Unlock()
	if failed {
		// "Failed to read from port: ... use of closed network connection":
		// the channel closes at once, without waiting for acknowledgements.
		a.closeChannel("")
		a.end(OutcomeFailed)
		return
	}
	a.waitAcked(10 * time.Second)
	a.closeChannel("")
	a.end(OutcomeSuccess)
}

// waitAcked waits until everything sent is acknowledged, or limit passes.
func (a *agentSession) waitAcked(limit time.Duration) {
	deadline := time.Now().Add(limit)
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.outbox) > 0 && !a.closed && time.Now().Before(deadline) {
		a.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		a.mu.Lock()
	}
}

func (a *agentSession) closeChannel(output string) {
	b, _ := json.Marshal(fallback.ChannelClosed{MessageID: randomID(""), CreatedDate: time.Now().UTC().Format(time.RFC3339),
		SessionID: a.id, MessageType: fallback.ChannelClosedMessage, SchemaVersion: 1, Output: output})
	a.write(fallback.NewFrame(fallback.ChannelClosedMessage, 0, 0, fallback.Output, b).Encode())
}

// end records the session's outcome (the first one stands) and stops it.
func (a *agentSession) end(outcome string) {
	a.mu.Lock()
	if a.outcome == "" {
		a.outcome = outcome
	}
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	close(a.done)
	a.cond.Broadcast()
	conn, in, proc := a.tcp, a.stdin, a.cmdProc
	a.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	// As the agent: the process is killed, then its terminal closed
	// (HangUpFirst: the other way round, as the kill's lateness can make it).
	if in != nil && a.s.opts.HangUpFirst {
		in.Close()
	}
	if proc != nil {
		proc.Kill()
	}
	if in != nil && !a.s.opts.HangUpFirst {
		in.Close()
	}
}

// Outcomes counts the sessions by how the agent recorded them.
func (s *ssmStandIn) Outcomes() map[string]int {
	s.mu.Lock()
	all := append([]*agentSession(nil), s.all...)
	s.mu.Unlock()
	m := map[string]int{}
	for _, a := range all {
		a.mu.Lock()
		o := a.outcome
		a.mu.Unlock()
		if o == "" {
			o = "Open"
		}
		m[o]++
	}
	return m
}

// AgentTotals adds up what the agents of every session saw.
func (s *ssmStandIn) AgentTotals() AgentStats {
	s.mu.Lock()
	all := append([]*agentSession(nil), s.all...)
	s.mu.Unlock()
	var t AgentStats
	for _, a := range all {
		a.mu.Lock()
		t.InputFrames += a.stats.InputFrames
		t.DuplicateInput += a.stats.DuplicateInput
		t.Rejected += a.stats.Rejected
		t.DiscardedInHandshake += a.stats.DiscardedInHandshake
		t.Resent += a.stats.Resent
		a.mu.Unlock()
	}
	return t
}

// decryptDataKey is the agent's kms:Decrypt of the client's data key, with
// the session's encryption context.
func (s *ssmStandIn) decryptDataKey(cipherText []byte, sessionID, target string) (*fallback.AgentKeys, error) {
	if s.opts.KMS == nil {
		return nil, fmt.Errorf("the stand-in has no KMS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.opts.KMS.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: cipherText,
		EncryptionContext: map[string]string{"aws:ssm:SessionId": sessionID, "aws:ssm:TargetId": target}})
	if err != nil {
		return nil, err
	}
	return fallback.NewAgentKeys(out.Plaintext)
}

// KMSDecrypter is the part of KMS the agent uses.
type KMSDecrypter interface {
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}
