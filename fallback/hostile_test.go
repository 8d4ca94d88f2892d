package fallback

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ec2ssh/ec2ssh/failure"
)

// A peer that is not a well-behaved agent: it completes the handshake, then
// does what each test says. ec2ssh must never panic, never grow without
// bound, and end a dead session with an error in a stated time.

type fakeAPI struct {
	mu         sync.Mutex
	terminated int
}

func (f *fakeAPI) Resume(ctx context.Context, id string) (Endpoint, error) {
	return Endpoint{}, errors.New("no resume here")
}

func (f *fakeAPI) Terminate(ctx context.Context, id string) error {
	f.mu.Lock()
	f.terminated++
	f.mu.Unlock()
	return nil
}

// peer is the agent's end of one fake session.
type peer struct {
	ws   *websocket.Conn
	wmu  sync.Mutex
	seq  int64
	acks chan int64 // sequence numbers the client acknowledged
}

func (p *peer) send(ptype PayloadType, payload []byte) {
	p.sendSeq(p.seq, ptype, payload)
	p.seq++
}

func (p *peer) sendSeq(seq int64, ptype PayloadType, payload []byte) {
	p.raw(NewFrame(OutputStreamMessage, seq, 0, ptype, payload).Encode())
}

func (p *peer) raw(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.ws.WriteMessage(websocket.BinaryMessage, b)
}

// hostile serves one session whose agent runs script after the handshake,
// and returns the open channel.
func hostile(t *testing.T, opts Options, script func(p *peer)) (*Channel, *fakeAPI) {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.ReadMessage() // the token
		p := &peer{ws: ws, acks: make(chan int64, 100000)}
		go func() {
			for {
				_, b, err := ws.ReadMessage()
				if err != nil {
					close(p.acks)
					return
				}
				if f, err := Decode(b); err == nil && f.MessageType == AcknowledgeMessage {
					if seq, err := AckedSequence(f); err == nil {
						p.acks <- seq
					}
				}
			}
		}()
		st, _ := json.Marshal(SessionTypeRequest{SessionType: "Port", Properties: json.RawMessage("{}")})
		req, _ := json.Marshal(HandshakeRequestPayload{AgentVersion: "hostile", RequestedClientActions: []RequestedClientAction{{ActionType: ActionSessionType, ActionParameters: st}}})
		p.send(HandshakeRequest, req)
		p.send(HandshakeComplete, []byte("{}"))
		script(p)
		time.Sleep(100 * time.Millisecond)
	}))
	t.Cleanup(srv.Close)
	api := &fakeAPI{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := OpenChannel(ctx, api, Endpoint{SessionID: "s-1", StreamURL: "ws" + strings.TrimPrefix(srv.URL, "http"), Token: "t"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch, api
}

// header length larger than the frame: the plugin's parser panics on it.
func TestMalformedFramesAreDropped(t *testing.T) {
	t.Parallel()
	ch, _ := hostile(t, Options{}, func(p *peer) {
		good := NewFrame(OutputStreamMessage, p.seq, 0, Output, []byte("hello")).Encode()
		liar := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(liar, 100000) // header length beyond the frame
		p.raw(liar)
		short := good[:50]
		p.raw(short)
		badLen := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(badLen[plengthOffset:], 1<<31)
		p.raw(badLen)
		p.raw(good)
		p.seq++
	})
	ch.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, err := ch.Read(buf)
	if string(buf[:n]) != "hello" {
		t.Errorf("after malformed frames, Read = %q, %v; want the good frame's payload", buf[:n], err)
	}
}

// one WebSocket message far larger than any frame: the read limit ends the
// session instead of buffering it.
func TestOversizedMessageEndsTheSession(t *testing.T) {
	t.Parallel()
	ch, _ := hostile(t, Options{}, func(p *peer) {
		p.ws.WriteMessage(websocket.BinaryMessage, make([]byte, 8*MaxFrameLength))
	})
	ch.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(ch)
	if err == nil || errors.Is(err, errDeadline) {
		t.Errorf("ReadAll = %v: an oversized message must end the session with an error", err)
	}
}

var errDeadline = errors.New("deadline")

// frames far ahead of the expected one are kept up to MaxAhead bytes and
// no further; the rest are not acknowledged.
func TestFramesAheadAreBoundedInBytes(t *testing.T) {
	t.Parallel()
	const frames = 3 * MaxAhead / ChunkSize
	acked := make(chan int, 1)
	ch, _ := hostile(t, Options{}, func(p *peer) {
		payload := make([]byte, ChunkSize)
		for i := range frames {
			p.sendSeq(p.seq+1+int64(i), Output, payload) // p.seq itself never comes
		}
		acked <- p.countAcks(time.Second)
	})
	n := <-acked
	if n > MaxAhead/ChunkSize+2 { // +2: the handshake frames
		t.Errorf("%d frames ahead of order were acknowledged (kept); the bound is %d", n, MaxAhead/ChunkSize)
	}
	ch.mu.Lock()
	held := ch.aheadBytes
	ch.mu.Unlock()
	if held > MaxAhead {
		t.Errorf("%d bytes held ahead of order, more than MaxAhead %d", held, MaxAhead)
	}
}

// a reader that does not read: output stops being acknowledged once the
// read buffer is full (the agent keeps it), instead of growing.
func TestStalledReaderIsBackPressure(t *testing.T) {
	t.Parallel()
	const total = 16 << 20
	acked := make(chan int, 1)
	ch, _ := hostile(t, Options{}, func(p *peer) {
		payload := make([]byte, ChunkSize)
		for range total / ChunkSize {
			p.send(Output, payload)
		}
		acked <- p.countAcks(time.Second)
	})
	n := <-acked
	if kept := (n - 2) * ChunkSize; kept > MaxReadBuffer+MaxAhead+ChunkSize {
		t.Errorf("%d bytes acknowledged with nobody reading; the bound is %d", kept, MaxReadBuffer+MaxAhead)
	}
	ch.mu.Lock()
	buffered := len(ch.readBuf) + ch.aheadBytes
	ch.mu.Unlock()
	if buffered > MaxReadBuffer+MaxAhead {
		t.Errorf("%d bytes buffered with nobody reading", buffered)
	}
}

// a peer that never acknowledges input: the session ends with an error
// after AckTimeout, and TerminateSession is called.
func TestUnacknowledgedInputEndsTheSession(t *testing.T) {
	t.Parallel()
	ch, api := hostile(t, Options{AckTimeout: 500 * time.Millisecond}, func(p *peer) {
		time.Sleep(5 * time.Second)
	})
	start := time.Now()
	ch.Write([]byte("anyone there?"))
	ch.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := ch.Read(make([]byte, 1))
	if failure.KindOf(err) != failure.Unreachable || !strings.Contains(err.Error(), "acknowledged nothing") {
		t.Errorf("Read = %v, want the session ended for want of acknowledgements", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the dead peer was noticed after %v", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		api.mu.Lock()
		n := api.terminated
		api.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("TerminateSession was not called for the dead session")
}

func TestParseExitCode(t *testing.T) {
	tests := []struct {
		in   []byte
		want int
		ok   bool
	}{
		{[]byte("EXIT_CODE: 0"), 0, true},
		{[]byte("EXIT_CODE: 7"), 7, true},
		{[]byte("3"), 3, true},
		{[]byte("EXIT_CODE: 256"), 255, true}, // no process exits with 256
		{[]byte("EXIT_CODE: -1"), 255, true},  // the agent's word for a signal
		{binary.BigEndian.AppendUint32(nil, 42), 42, true},
		{[]byte("nonsense"), 0, false},
	}
	for _, tt := range tests {
		if got, ok := ParseExitCode(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("ParseExitCode(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(NewFrame(OutputStreamMessage, 3, 0, Output, []byte("hello")).Encode())
	f.Add(NewFrame(AcknowledgeMessage, 0, 3, 0, []byte(`{"AcknowledgedMessageSequenceNumber":1}`)).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err == nil {
			again, err := Decode(fr.Encode())
			if err != nil || again.SequenceNumber != fr.SequenceNumber || string(again.Payload) != string(fr.Payload) {
				t.Errorf("a frame that decoded does not survive a round trip: %v", err)
			}
		}
	})
}

// countAcks counts the acknowledgements the peer receives within d, or
// until the channel closes.
func (p *peer) countAcks(d time.Duration) int {
	n := 0
	timeout := time.After(d)
	for {
		select {
		case _, ok := <-p.acks:
			if !ok {
				return n
			}
			n++
		case <-timeout:
			return n
		}
	}
}
