package lab

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ec2ssh/ec2ssh/fallback"
)

// Hostile is an SSM service whose agent does not behave: for measuring that
// ec2ssh stays bounded (memory, time) against a broken or malicious peer.
// Modes:
//   - "ahead": floods frames far ahead of the one the client expects;
//   - "flood": floods output the client's reader never takes;
//   - "oversize": sends one WebSocket message of 300 MiB;
//   - "silent": acknowledges no input.
type Hostile struct {
	Mode string
	Port int
	srv  *http.Server
}

// HostileBytes is how much a flooding mode sends.
const HostileBytes = 300 << 20

// StartHostile serves a hostile SSM stand-in on 127.0.0.1:port.
func StartHostile(port int, mode string) (*Hostile, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	h := &Hostile{Mode: mode, Port: port}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go h.srv.Serve(ln)
	return h, nil
}

// Stop ends it.
func (h *Hostile) Stop() { h.srv.Close() }

func (h *Hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/data-channel/") {
		h.channel(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.") {
	case "StartSession", "ResumeSession":
		json.NewEncoder(w).Encode(map[string]string{"SessionId": "hostile-1", "TokenValue": "t",
			"StreamUrl": fmt.Sprintf("ws://127.0.0.1:%d/v1/data-channel/hostile-1", h.Port)})
	case "TerminateSession":
		json.NewEncoder(w).Encode(map[string]string{"SessionId": "hostile-1"})
	default:
		apiError(w, "InvalidAction", "the hostile stand-in answers sessions only")
	}
}

func (h *Hostile) channel(w http.ResponseWriter, r *http.Request) {
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	ws.ReadMessage() // the token
	go func() {      // read (and ignore) what the client sends
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	send := func(seq int64, ptype fallback.PayloadType, payload []byte) error {
		return ws.WriteMessage(websocket.BinaryMessage, fallback.NewFrame(fallback.OutputStreamMessage, seq, 0, ptype, payload).Encode())
	}
	st, _ := json.Marshal(fallback.SessionTypeRequest{SessionType: "Port", Properties: json.RawMessage("{}")})
	req, _ := json.Marshal(fallback.HandshakeRequestPayload{AgentVersion: "hostile", RequestedClientActions: []fallback.RequestedClientAction{
		{ActionType: fallback.ActionSessionType, ActionParameters: st}}})
	send(0, fallback.HandshakeRequest, req)
	send(1, fallback.HandshakeComplete, []byte("{}"))
	chunk := make([]byte, fallback.ChunkSize)
	switch h.Mode {
	case "ahead":
		// Frame 2 never comes; 3 and on do, 300 MiB of them.
		for i := int64(0); i < HostileBytes/fallback.ChunkSize; i++ {
			if send(3+i, fallback.Output, chunk) != nil {
				return
			}
		}
	case "flood":
		send(2, fallback.Output, []byte("SSH-2.0-hostile\r\n"))
		for i := int64(0); i < HostileBytes/fallback.ChunkSize; i++ {
			if send(3+i, fallback.Output, chunk) != nil {
				return
			}
		}
	case "oversize":
		ws.WriteMessage(websocket.BinaryMessage, make([]byte, HostileBytes))
	case "silent":
		send(2, fallback.Output, []byte("SSH-2.0-hostile\r\n"))
	}
	time.Sleep(time.Minute)
}
