package lab

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// AWS weather (issue 20): real accounts see calls answer slowly, get
// throttled, answer 500, have their connection reset, or find an API
// absent in a region. The lab's stand-ins (the front in front of moto for
// EC2, IAM and STS, the EC2 front, the SSM stand-in, EC2 Instance Connect)
// each ask the world's Weathers before they answer an API call, and a
// rule set by a test answers as AWS does on the wire for that service's
// protocol: EC2's XML <Response><Errors> body, the query protocol's
// <ErrorResponse> (IAM, STS), the JSON protocols' __type and
// X-Amzn-ErrorType (SSM, EC2 Instance Connect).

// MotoFrontPort is where the front in front of moto listens: the generic
// AWS_ENDPOINT_URL (IAM, STS, KMS and what else goes to moto).
const MotoFrontPort = 5004

// Fault is what an API answers instead of its answer.
type Fault int

const (
	FaultNone        Fault = iota // the real answer (after Latency)
	FaultThrottle                 // throttled: RequestLimitExceeded (EC2), Throttling (IAM, STS), ThrottlingException (JSON)
	FaultServer                   // HTTP 500: InternalError (EC2), ServiceFailure/InternalFailure, InternalServerError (JSON)
	FaultUnavailable              // HTTP 503: Unavailable, ServiceUnavailable(Exception)
	FaultReset                    // the TCP connection is reset before any answer
	FaultAbsent                   // the API does not exist here: InvalidAction (query), UnknownOperationException (JSON)
)

var faultNames = [...]string{"fair", "throttled", "500", "503", "reset", "absent"}

func (f Fault) String() string { return faultNames[f] }

// Weather is one API's weather.
type Weather struct {
	// Latency holds each affected answer this long (or until the caller
	// gives up), before the Fault or the real answer.
	Latency time.Duration
	Fault   Fault
	// Times: only the next Times calls are affected (0: every call), as
	// a throttle that lifts after a burst.
	Times int
	// Region: only calls signed for this region ("" every region).
	Region string
}

func (w Weather) String() string {
	var parts []string
	if w.Latency > 0 {
		parts = append(parts, "+"+w.Latency.String())
	}
	if w.Fault != FaultNone || w.Latency == 0 {
		parts = append(parts, w.Fault.String())
	}
	if w.Times > 0 {
		parts = append(parts, fmt.Sprintf("for %d calls", w.Times))
	}
	if w.Region != "" {
		parts = append(parts, "in "+w.Region)
	}
	return strings.Join(parts, " ")
}

// Weathers are the rules in force, by API pattern ("ec2:DescribeInstances",
// "ssm:*", "*"), and what each API was asked. Safe for concurrent use; the
// zero value is fair weather (a nil *Weathers too).
type Weathers struct {
	mu    sync.Mutex
	rules []weatherRule
	calls map[string]int // "service:Op" -> calls seen
	met   map[string]int // "service:Op" -> calls that met weather
}

type weatherRule struct {
	pattern string
	w       Weather
	used    int
}

// Set puts w on the APIs pattern names: "service:Op", with path.Match's
// wildcards ("ec2:Describe*", "*"). A later rule for the same pattern
// replaces the earlier; the first matching rule in the order set applies,
// so a fair rule (the zero Weather) set first keeps its APIs out of a
// wildcard set after it.
func (ws *Weathers) Set(pattern string, w Weather) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for i := range ws.rules {
		if ws.rules[i].pattern == pattern {
			ws.rules[i] = weatherRule{pattern: pattern, w: w}
			return
		}
	}
	ws.rules = append(ws.rules, weatherRule{pattern: pattern, w: w})
}

// Clear makes the weather fair again and forgets the calls seen.
func (ws *Weathers) Clear() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.rules, ws.calls, ws.met = nil, nil, nil
}

// Calls is how many calls each API ("service:Op") was asked since the last
// Clear, and how many of them met weather.
func (ws *Weathers) Calls() (asked, met map[string]int) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	asked, met = map[string]int{}, map[string]int{}
	for k, v := range ws.calls {
		asked[k] = v
	}
	for k, v := range ws.met {
		met[k] = v
	}
	return asked, met
}

// take counts a call and returns the weather it meets.
func (ws *Weathers) take(api, region string) (Weather, bool) {
	if ws == nil {
		return Weather{}, false
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.calls == nil {
		ws.calls, ws.met = map[string]int{}, map[string]int{}
	}
	ws.calls[api]++
	for i := range ws.rules {
		r := &ws.rules[i]
		if ok, _ := path.Match(r.pattern, api); !ok {
			continue
		}
		if r.w.Region != "" && r.w.Region != region {
			continue
		}
		if r.w.Times > 0 && r.used >= r.w.Times {
			continue
		}
		if r.w == (Weather{}) {
			return Weather{}, false // fair: an exception to the rules after it
		}
		r.used++
		ws.met[api]++
		return r.w, true
	}
	return Weather{}, false
}

// apiCall is an AWS API request as the stand-ins see it.
type apiCall struct {
	service, op, region string
	json                bool // a JSON protocol (X-Amz-Target): SSM, EC2 Instance Connect
}

func (c apiCall) api() string { return c.service + ":" + c.op }

// callOf names the API a request calls: the service and region from its
// SigV4 credential scope, the operation from X-Amz-Target (JSON) or the
// Action of its form (the query protocols). ok is false for what is not
// an API call (a data channel, a lab hook).
func callOf(r *http.Request, body []byte) (apiCall, bool) {
	var c apiCall
	auth := r.Header.Get("Authorization")
	if i := strings.Index(auth, "Credential="); i >= 0 {
		scope := strings.Split(strings.SplitN(auth[i+len("Credential="):], ",", 2)[0], "/")
		if len(scope) == 5 {
			c.region, c.service = scope[2], scope[3]
		}
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		_, c.op, _ = strings.Cut(target, ".")
		c.json = true
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		c.op = form.Get("Action")
	}
	if c.op == "" {
		c.op = r.URL.Query().Get("Action")
	}
	if c.service == "" && c.json {
		// Unsigned: name the service from the target's prefix.
		switch {
		case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM."):
			c.service = "ssm"
		case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AWSEC2InstanceConnectService."):
			c.service = "ec2-instance-connect"
		}
	}
	return c, c.op != "" && c.service != ""
}

// meet applies the weather to an API request before its stand-in answers
// it. body is the request's body, already read (the caller restores it).
// It returns true when it answered (a fault, or the caller gone during the
// latency): the stand-in then does nothing more.
func (ws *Weathers) meet(w http.ResponseWriter, r *http.Request, body []byte) bool {
	c, ok := callOf(r, body)
	if !ok {
		return false
	}
	wx, ok := ws.take(c.api(), c.region)
	if !ok {
		return false
	}
	if wx.Latency > 0 {
		t := time.NewTimer(wx.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true // the caller gave up: nobody to answer
		}
	}
	switch wx.Fault {
	case FaultNone:
		return false
	case FaultReset:
		resetConn(w)
		return true
	}
	awsError(w, c, wx.Fault)
	return true
}

// resetConn ends the request's connection with a TCP reset, as a
// middlebox or an overloaded load balancer does.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("lab weather: the response cannot be hijacked for a reset")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// awsError writes the error AWS answers with for fault, in c's protocol.
func awsError(w http.ResponseWriter, c apiCall, f Fault) {
	reqID := randomID("")
	if c.json {
		code, status, msg := "", 0, ""
		switch f {
		case FaultThrottle:
			code, status, msg = "ThrottlingException", 400, "Rate exceeded"
		case FaultServer:
			code, status, msg = "InternalServerError", 500, "An internal error occurred."
			if c.service == "ec2-instance-connect" {
				code = "EC2InstanceConnectServiceException"
			}
		case FaultUnavailable:
			code, status, msg = "ServiceUnavailableException", 503, "Service Unavailable"
		case FaultAbsent:
			code, status, msg = "UnknownOperationException", 400, ""
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", code+":http://internal.amazon.com/coral/com.amazon.coral.service/")
		w.Header().Set("X-Amzn-RequestId", reqID)
		w.WriteHeader(status)
		if msg == "" {
			fmt.Fprintf(w, `{"__type":"com.amazon.coral.service#%s"}`, code)
		} else {
			fmt.Fprintf(w, `{"__type":"%s","message":%q}`, code, msg)
		}
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	if c.service == "ec2" {
		// EC2's own query protocol: <Response><Errors>.
		code, status, msg := "", 0, ""
		switch f {
		case FaultThrottle:
			code, status, msg = "RequestLimitExceeded", 503, "Request limit exceeded."
		case FaultServer:
			code, status, msg = "InternalError", 500, "An internal error has occurred"
		case FaultUnavailable:
			code, status, msg = "Unavailable", 503, "The server is overloaded and can't handle the request."
		case FaultAbsent:
			code, status, msg = "InvalidAction", 400, "The action "+c.op+" is not valid for this web service."
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`,
			code, msg, reqID)
		return
	}
	// The query protocol of IAM and STS: <ErrorResponse>.
	typ, code, status, msg := "Sender", "", 0, ""
	switch f {
	case FaultThrottle:
		code, status, msg = "Throttling", 400, "Rate exceeded"
	case FaultServer:
		typ, code, status, msg = "Receiver", "InternalFailure", 500, "The request processing has failed because of an unknown error, exception or failure."
		if c.service == "iam" {
			code = "ServiceFailure"
		}
	case FaultUnavailable:
		typ, code, status, msg = "Receiver", "ServiceUnavailable", 503, "Service is unable to handle request."
	case FaultAbsent:
		code, status, msg = "InvalidAction", 400, "Could not find operation "+c.op+" for version"
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://%s.amazonaws.com/doc/"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		c.service, typ, code, msg, reqID)
}

// weatherFront is the front in front of moto for the generic
// AWS_ENDPOINT_URL: every call meets the weather, then goes to moto.
type weatherFront struct {
	srv *http.Server
}

func startWeatherFront(port int, motoURL string, ws *Weathers) (*weatherFront, error) {
	moto, err := url.Parse(motoURL)
	if err != nil {
		return nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(moto)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // a caller that gave up (its budget) is no error of the lab's
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, fmt.Errorf("the front in front of moto: %w", err)
	}
	f := &weatherFront{srv: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if ws.meet(w, r, body) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		proxy.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}}
	go f.srv.Serve(ln)
	return f, nil
}

func (f *weatherFront) stop() { f.srv.Close() }

// SetWeather puts w on the APIs pattern names ("ec2:DescribeNetworkAcls",
// "ssm:StartSession", "sts:*", "*") for every stand-in of the world.
func (w *World) SetWeather(pattern string, wx Weather) { w.weather.Set(pattern, wx) }

// ClearWeather makes the world's weather fair again.
func (w *World) ClearWeather() { w.weather.Clear() }

// Weather is the world's weather: its rules and the calls it saw.
func (w *World) Weather() *Weathers { return w.weather }
