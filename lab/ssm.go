package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// SSMPort is where the lab's SSM stand-in listens. moto has no Session
// Manager, so the lab answers the SSM API calls ec2ssh makes itself.
const SSMPort = 5001

// ssmStandIn answers the SSM JSON API (AWS JSON 1.1, X-Amz-Target
// "AmazonSSM.<Operation>") for the lab's instances, and plays each
// instance's agent (ssmagent.go).
type ssmStandIn struct {
	opts  SSMOptions
	addrs map[string]string // instance id -> address
	port  int
	srv   *http.Server

	mu         sync.Mutex
	online     map[string]bool // instance id -> agent online
	sessions   map[string]*agentSession
	all        []*agentSession
	eicKeys    []eicKey
	serialKeys []eicKey        // keys pushed for serial consoles (user: the id)
	serialBusy map[string]bool // instance id -> a console session is open
	sockets    map[*websocket.Conn]bool
	terminated int
	started    int
	rc         runCommands // Run Command (runcommand.go)
	home       string      // the session user's home, once made (sessionHome)
	homeErr    error
}

// SSMOptions configure the stand-in.
type SSMOptions struct {
	Port   int
	Online map[string]bool   // instance id -> agent online
	Addrs  map[string]string // instance id -> address
	// KMSKeyID, when set, is the Session Manager preference that encrypts
	// every session with that KMS key; KMS decrypts the client's data key.
	KMSKeyID string
	KMS      KMSDecrypter
	// Views give an instance its own view of its files (see View).
	Views map[string]*View
	// Weather, when set, is the AWS weather the API calls meet (weather.go).
	Weather *Weathers
	// Reference turns off the agent's two races (the handshake's and the
	// acknowledgements'). Only the test that holds the stand-in to the
	// stock plugin sets it: that client has both defects (it writes the
	// moment the handshake completes and acknowledges no duplicate), so
	// the races would fail it at random, and what the test checks is the
	// protocol, not the races, which ec2ssh's own tests meet.
	Reference bool
	// Delay is added to every data channel frame each way (the client's
	// link to the service; a round trip gains twice Delay), so that a
	// client far from its region can be tried here. What is on its way
	// when a WebSocket drops is lost.
	Delay time.Duration
	// HangUpFirst ends a terminal session by closing the terminal before
	// killing its process, where the agent kills, then closes
	// (shell.go, executeCommandsWithPty's cancelled case). The kill is
	// asynchronous, so on a real instance the close may still come first.
	HangUpFirst bool
	// IgnoreHUP starts the session's processes with SIGHUP ignored, as an
	// agent started under nohup would: a shell cannot trap it then.
	IgnoreHUP bool
}

// SSMStandIn is the lab's SSM service and agent, for tests outside the
// world (the fallback package's own tests).
type SSMStandIn = ssmStandIn

// StartSSMStandIn serves the SSM stand-in on 127.0.0.1:port for the given
// instances (id -> address); every one has an online agent.
func StartSSMStandIn(port int, addrs map[string]string) (*SSMStandIn, error) {
	online := map[string]bool{}
	for id := range addrs {
		online[id] = true
	}
	return StartSSM(SSMOptions{Port: port, Online: online, Addrs: addrs})
}

// SetDelay sets the one-way delay of the data channels opened from now on
// (see SSMOptions.Delay).
func (s *ssmStandIn) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Delay = d
}

// Stop ends the stand-in and its sessions.
func (s *ssmStandIn) Stop() { s.stop() }

// Sessions returns how many sessions are open and how many were terminated.
func (s *ssmStandIn) Sessions() (open, terminated int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions), s.terminated
}

// TerminateAll ends every open session as a TerminateSession call from
// elsewhere (the console, another client) does, and returns how many.
func (s *ssmStandIn) TerminateAll() int {
	s.mu.Lock()
	var all []*agentSession
	for id, sess := range s.sessions {
		all = append(all, sess)
		delete(s.sessions, id)
		s.terminated++
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.end(OutcomeTerminated)
	}
	return len(all)
}

// Started is how many sessions StartSession has opened.
func (s *ssmStandIn) Started() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}

// SetOnline marks an instance's agent online or offline.
func (s *ssmStandIn) SetOnline(id string, online bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.online[id] = online
}

func (s *ssmStandIn) isOnline(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online[id]
}

// StartSSM serves the stand-in as opts say.
func StartSSM(opts SSMOptions) (*ssmStandIn, error) {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", opts.Port))
	if err != nil {
		return nil, fmt.Errorf("ssm stand-in: %w", err)
	}
	online := map[string]bool{}
	for k, v := range opts.Online {
		online[k] = v
	}
	s := &ssmStandIn{opts: opts, online: online, addrs: opts.Addrs, port: opts.Port, sessions: map[string]*agentSession{}, sockets: map[*websocket.Conn]bool{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// DropSockets drops every data channel WebSocket, as a network blip would
// (code 0: the TCP connection just goes) or as the service does every hour
// (code 1000: a clean close). It returns how many there were.
func (s *ssmStandIn) DropSockets(code int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.sockets)
	for ws := range s.sockets {
		if code == 0 {
			ws.UnderlyingConn().Close()
			continue
		}
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "the service closes the channel"), time.Now().Add(time.Second))
		ws.UnderlyingConn().Close()
	}
	return n
}

func (s *ssmStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/data-channel/"):
		s.dataChannel(w, r)
		return
	case r.URL.Path == "/lab/drop":
		// Test hook: drop every data channel WebSocket, as a network blip
		// would, or (?code=1000) close it as the service does every hour.
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		fmt.Fprintf(w, "%d\n", s.DropSockets(code))
		return
	case r.URL.Path == "/lab/eic":
		// AuthorizedKeysCommand asks here: the keys pushed for this
		// instance and user in the last 60 seconds.
		q := r.URL.Query()
		s.mu.Lock()
		for _, k := range s.eicKeys {
			if k.instance == q.Get("instance") && k.user == q.Get("user") && time.Since(k.at) < EICKeyLifetime {
				fmt.Fprintln(w, k.key)
			}
		}
		s.mu.Unlock()
		return
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AWSEC2InstanceConnectService."):
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if s.opts.Weather.meet(w, r, body) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.instanceConnect(w, r)
		return
	case r.URL.Path == "/lab/sessions":
		open, terminated := s.Sessions()
		o := s.Outcomes()
		fmt.Fprintf(w, "open %d terminated %d success %d failed %d\n", open, terminated, o[OutcomeSuccess]+o[OutcomeTerminated], o[OutcomeFailed])
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if s.opts.Weather.meet(w, r, body) {
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.rc.count(op)
	switch op {
	case "SendCommand", "ListCommands", "ListCommandInvocations", "GetCommandInvocation", "CancelCommand":
		s.runCommand(w, r, op, body)
	case "StartSession":
		s.startSession(w, r, body)
	case "ResumeSession":
		s.resumeSession(w, body)
	case "TerminateSession":
		s.terminateSession(w, body)
	case "DescribeInstanceInformation":
		var in struct {
			Filters []struct {
				Key    string
				Values []string
			}
		}
		json.NewDecoder(r.Body).Decode(&in)
		var ids []string
		for _, f := range in.Filters {
			if f.Key == "InstanceIds" {
				ids = f.Values
			}
		}
		list := []map[string]any{}
		for _, id := range ids {
			if s.isOnline(id) {
				list = append(list, map[string]any{"InstanceId": id, "PingStatus": "Online", "AgentVersion": "3.3.0.0-lab",
					"LastPingDateTime": float64(time.Now().Unix()), "PlatformType": "Linux", "ResourceType": "EC2Instance"})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"InstanceInformationList": list})
	default:
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": "InvalidAction", "message": "the lab's SSM stand-in does not implement " + op})
	}
}

func (s *ssmStandIn) stop() {
	s.srv.Close()
	s.rc.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		go sess.end(OutcomeTerminated)
	}
	if s.home != "" {
		os.RemoveAll(filepath.Dir(s.home))
	}
}

// EICKeyLifetime is how long EC2 Instance Connect serves a pushed key.
const EICKeyLifetime = 60 * time.Second

type eicKey struct {
	instance, user, key string
	at                  time.Time
}

// instanceConnect answers EC2 Instance Connect's SendSSHPublicKey.
func (s *ssmStandIn) instanceConnect(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	var in struct{ InstanceId, InstanceOSUser, SSHPublicKey string }
	json.NewDecoder(r.Body).Decode(&in)
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".SendSerialConsoleSSHPublicKey") {
		s.serialKey(w, in.InstanceId, in.SSHPublicKey)
		return
	}
	if _, ok := s.addrs[in.InstanceId]; !ok {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": "EC2InstanceNotFoundException", "message": "no instance " + in.InstanceId})
		return
	}
	s.mu.Lock()
	s.eicKeys = append(s.eicKeys, eicKey{in.InstanceId, in.InstanceOSUser, strings.TrimSpace(in.SSHPublicKey), time.Now()})
	s.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"RequestId": randomID("req-"), "Success": true})
}

// serialKey answers SendSerialConsoleSSHPublicKey: one session at a time.
func (s *ssmStandIn) serialKey(w http.ResponseWriter, id, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := func(code, msg string) {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
	}
	if _, ok := s.addrs[id]; !ok {
		fail("EC2InstanceNotFoundException", "no instance "+id)
		return
	}
	if s.serialBusy[id] {
		fail("SerialConsoleSessionLimitExceededException", "The instance currently has an active serial console session")
		return
	}
	s.serialKeys = append(s.serialKeys, eicKey{id, id + ".port0", strings.TrimSpace(key), time.Now()})
	json.NewEncoder(w).Encode(map[string]any{"RequestId": randomID("req-"), "Success": true})
}

// SerialKeyValid reports whether key was pushed for id's console in the
// last 60 s.
func (s *ssmStandIn) SerialKeyValid(id, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.serialKeys {
		if k.instance == id && k.key == key && time.Since(k.at) < EICKeyLifetime {
			return true
		}
	}
	return false
}

// SetSerialBusy marks id's console taken or free.
func (s *ssmStandIn) SetSerialBusy(id string, busy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serialBusy == nil {
		s.serialBusy = map[string]bool{}
	}
	s.serialBusy[id] = busy
}

// Port is where the stand-in listens.
func (s *ssmStandIn) Port() int { return s.port }
