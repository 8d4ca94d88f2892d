package lab

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/session-manager-plugin/src/message"
	"github.com/gorilla/websocket"

	"github.com/ec2ssh/ec2ssh/fallback"
)

// agentSession is the agent's side of one SSM session in the stand-in:
// the same frames, acknowledgements and retransmissions a real agent
// uses, with the port session bridged to the instance's port from the
// instance's own address.
type agentSession struct {
	id, target, token, document string
	addr                        string // the instance's address
	port                        int

	mu       sync.Mutex
	cond     *sync.Cond
	ws       *websocket.Conn
	wmu      sync.Mutex
	nextSeq  int64
	unacked  map[int64][]byte
	sentAt   map[int64]time.Time
	expected int64
	ahead    map[int64]*fallback.Frame
	tcp      net.Conn
	command  string         // for command sessions
	stdin    io.WriteCloser // a shell's or command's input
	pty      *os.File       // a shell's terminal
	started  bool
	closed   bool
	done     chan struct{}
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
	if !ok || !s.online[in.Target] {
		apiError(w, "TargetNotConnected", in.Target+" is not connected.")
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
	sess := &agentSession{id: randomID("lab-"), target: in.Target, token: randomID("tok-"), document: in.DocumentName, command: command,
		addr: addr, port: port, unacked: map[int64][]byte{}, sentAt: map[int64]time.Time{}, ahead: map[int64]*fallback.Frame{}, done: make(chan struct{})}
	sess.cond = sync.NewCond(&sess.mu)
	s.mu.Lock()
	s.sessions[sess.id] = sess
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
		sess.close()
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
	// The client speaks first: the token from StartSession/ResumeSession.
	_, first, err := ws.ReadMessage()
	var open struct{ TokenValue string }
	if err != nil || json.Unmarshal(first, &open) != nil {
		ws.Close()
		return
	}
	sess.mu.Lock()
	if open.TokenValue != sess.token {
		sess.mu.Unlock()
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "bad token"))
		ws.Close()
		return
	}
	old := sess.ws
	sess.ws = ws
	started := sess.started
	sess.started = true
	resend := make([][]byte, 0, len(sess.unacked))
	for _, b := range sess.unacked {
		resend = append(resend, b)
	}
	sess.mu.Unlock()
	if old != nil {
		old.Close()
	}
	s.mu.Lock()
	s.sockets[ws] = true
	s.mu.Unlock()
	if !started {
		props, _ := json.Marshal(map[string]string{"portNumber": strconv.Itoa(sess.port)})
		req, _ := json.Marshal(message.HandshakeRequestPayload{AgentVersion: "3.3.0.0-lab", RequestedClientActions: []message.RequestedClientAction{
			{ActionType: message.SessionType, ActionParameters: mustJSON(message.SessionTypeRequest{SessionType: sessionType(sess.document), Properties: json.RawMessage(props)})}}})
		sess.send(message.HandshakeRequestPayloadType, req)
		go sess.retransmit()
	} else {
		for _, b := range resend {
			sess.write(b)
		}
	}
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			s.mu.Lock()
			delete(s.sockets, ws)
			s.mu.Unlock()
			return // the client resumes, or terminates
		}
		f, err := fallback.DecodeFrame(b)
		if err != nil {
			continue
		}
		sess.handle(f)
	}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func (a *agentSession) write(b []byte) error {
	a.mu.Lock()
	ws := a.ws
	a.mu.Unlock()
	if ws == nil {
		return fmt.Errorf("no websocket")
	}
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return ws.WriteMessage(websocket.BinaryMessage, b)
}

// send queues an output_stream_data frame, waiting while 512 are unacked.
func (a *agentSession) send(ptype message.PayloadType, payload []byte) {
	a.mu.Lock()
	for len(a.unacked) >= 512 && !a.closed {
		a.cond.Wait()
	}
	if a.closed {
		a.mu.Unlock()
		return
	}
	seq := a.nextSeq
	a.nextSeq++
	b, _ := fallback.EncodeFrame(message.OutputStreamMessage, seq, 0, ptype, payload)
	a.unacked[seq] = b
	a.sentAt[seq] = time.Now()
	a.mu.Unlock()
	a.write(b)
}

func (a *agentSession) retransmit() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			return
		case <-t.C:
		}
		a.mu.Lock()
		var due [][]byte
		for seq, at := range a.sentAt {
			if time.Since(at) > 300*time.Millisecond {
				due = append(due, a.unacked[seq])
				a.sentAt[seq] = time.Now()
			}
		}
		a.mu.Unlock()
		for _, b := range due {
			a.write(b)
		}
	}
}

func (a *agentSession) handle(f *fallback.Frame) {
	switch f.MessageType {
	case message.AcknowledgeMessage:
		seq, err := fallback.AckedSequence(f)
		if err != nil {
			return
		}
		a.mu.Lock()
		delete(a.unacked, seq)
		delete(a.sentAt, seq)
		a.cond.Broadcast()
		a.mu.Unlock()
	case message.InputStreamMessage:
		if ack, err := fallback.EncodeAck(f); err == nil {
			a.write(ack)
		}
		a.mu.Lock()
		if f.SequenceNumber < a.expected {
			a.mu.Unlock()
			return
		}
		a.ahead[f.SequenceNumber] = f
		var ready []*fallback.Frame
		for {
			next, ok := a.ahead[a.expected]
			if !ok {
				break
			}
			delete(a.ahead, a.expected)
			ready = append(ready, next)
			a.expected++
		}
		a.mu.Unlock()
		for _, fr := range ready {
			a.input(fr)
		}
	}
}

// input handles one in-order frame from the client.
func (a *agentSession) input(f *fallback.Frame) {
	switch message.PayloadType(f.PayloadType) {
	case message.HandshakeResponsePayloadType:
		done, _ := json.Marshal(message.HandshakeCompletePayload{HandshakeTimeToComplete: time.Millisecond})
		a.send(message.HandshakeCompletePayloadType, done)
		if kind := sessionType(a.document); kind == "Port" {
			go a.bridge()
		} else {
			go a.runShell(kind)
		}
	case message.Output:
		a.mu.Lock()
		for a.tcp == nil && a.stdin == nil && !a.closed {
			a.cond.Wait()
		}
		conn, in := a.tcp, a.stdin
		a.mu.Unlock()
		if conn != nil {
			conn.Write(f.Payload)
		} else if in != nil {
			in.Write(f.Payload)
		}
	case message.Size:
		a.resize(f.Payload)
	case message.Flag:
		a.mu.Lock()
		conn, in, pty := a.tcp, a.stdin, a.pty
		a.mu.Unlock()
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		} else if in != nil && pty == nil {
			in.Close() // the command's stdin is over
		}
	}
}

// bridge connects to the port from the instance's own address (so the
// instance's security group and NACL do not apply, as on a real
// instance) and relays it.
func (a *agentSession) bridge() {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(a.addr)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", net.JoinHostPort(a.addr, strconv.Itoa(a.port)))
	if err != nil {
		// As the agent does: a ConnectToPortError flag, then the close.
		flag := make([]byte, 4)
		binary.BigEndian.PutUint32(flag, uint32(message.ConnectToPortError))
		a.send(message.Flag, flag)
		a.waitAcked()
		a.closeChannel("Unable to start command: failed to connect to port " + strconv.Itoa(a.port) + ": " + err.Error())
		return
	}
	a.mu.Lock()
	a.tcp = conn
	a.cond.Broadcast()
	a.mu.Unlock()
	buf := make([]byte, 1024)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			a.send(message.Output, append([]byte(nil), buf[:n]...))
		}
		if err != nil {
			break
		}
	}
	a.waitAcked()
	a.closeChannel("")
}

// waitAcked waits (10 s at most) until everything sent is acknowledged, so
// that closing the channel loses nothing.
func (a *agentSession) waitAcked() {
	a.mu.Lock()
	deadline := time.Now().Add(10 * time.Second)
	for len(a.unacked) > 0 && !a.closed && time.Now().Before(deadline) {
		a.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		a.mu.Lock()
	}
	a.mu.Unlock()
}

func (a *agentSession) closeChannel(output string) {
	b, _ := json.Marshal(message.ChannelClosed{MessageId: randomID(""), CreatedDate: time.Now().UTC().Format(time.RFC3339),
		SessionId: a.id, MessageType: message.ChannelClosedMessage, SchemaVersion: 1, Output: output})
	f, _ := fallback.EncodeFrame(message.ChannelClosedMessage, 0, 0, message.Output, b)
	a.write(f)
}

func (a *agentSession) close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	close(a.done)
	a.cond.Broadcast()
	conn, ws, in := a.tcp, a.ws, a.stdin
	a.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	if in != nil {
		in.Close()
	}
	if ws != nil {
		ws.Close()
	}
}
