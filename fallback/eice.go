package fallback

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"

	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// EC2 Instance Connect Endpoint (EICE) tunnels, opened as the AWS CLI's
// "aws ec2-instance-connect open-tunnel" opens them: a WebSocket to
// wss://{endpoint DNS name}/openTunnel with the instance's private address
// and port in the query, presigned with SigV4 for "ec2-instance-connect"
// and valid for 60 s; the tunnel carries the port's bytes in binary frames.
// A text frame, or a close with a code other than 1000, is the service's
// error and its reason. One URL per connection; one hour per tunnel at
// most, and at most 20 connections per endpoint (AWS's limits).

// EICEPresignExpiry is how long a tunnel URL may wait to be used.
const EICEPresignExpiry = 60 * time.Second

// EICEMaxTunnel is the longest a tunnel lives (the service's limit).
const EICEMaxTunnel = time.Hour

// TunnelEndpoint is one EC2 Instance Connect Endpoint, as
// DescribeInstanceConnectEndpoints describes it.
type TunnelEndpoint = preflight.InstanceConnectEndpoint

// EICETunnels opens tunnels with one set of credentials.
type EICETunnels struct {
	Config aws.Config
	// Dialer is the WebSocket dialer (nil: the default, with the system's
	// certificate roots).
	Dialer *websocket.Dialer
	Now    func() time.Time
}

// NewEICETunnels returns a tunnel opener for cfg's credentials and region.
func NewEICETunnels(cfg aws.Config) *EICETunnels { return &EICETunnels{Config: cfg} }

// URL is the presigned openTunnel URL for one connection.
func (e *EICETunnels) URL(ctx context.Context, ep TunnelEndpoint, privateIP string, port int, maxDuration time.Duration) (string, error) {
	q := url.Values{}
	q.Set("instanceConnectEndpointId", ep.ID)
	q.Set("remotePort", strconv.Itoa(port))
	q.Set("privateIpAddress", privateIP)
	if maxDuration > 0 {
		q.Set("maxTunnelDuration", strconv.Itoa(int(maxDuration/time.Second)))
	}
	q.Set("X-Amz-Expires", strconv.Itoa(int(EICEPresignExpiry/time.Second)))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+ep.DNSName+"/openTunnel?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	creds, err := e.Config.Credentials.Retrieve(ctx)
	if err != nil {
		return "", &failure.Error{Kind: failure.AWSAuth, Op: "get AWS credentials for", Target: "EC2 Instance Connect Endpoint", Err: err,
			Hint: "check your AWS credentials: aws sts get-caller-identity"}
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	empty := sha256.Sum256(nil)
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), "ec2-instance-connect", e.Config.Region, now().UTC())
	if err != nil {
		return "", err
	}
	return "wss" + strings.TrimPrefix(signed, "https"), nil
}

// Open opens a tunnel to privateIP:port through ep.
func (e *EICETunnels) Open(ctx context.Context, ep TunnelEndpoint, privateIP string, port int) (net.Conn, error) {
	u, err := e.URL(ctx, ep, privateIP, port, EICEMaxTunnel)
	if err != nil {
		return nil, err
	}
	d := e.Dialer
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 15 * time.Second, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}, Proxy: http.ProxyFromEnvironment}
	}
	ws, resp, err := d.DialContext(ctx, u, nil)
	if err != nil {
		return nil, eiceDialError(ep, err, resp)
	}
	return newTunnelConn(ws), nil
}

// eiceDialError classifies a refused tunnel: a denial, a throttle (the
// endpoint's 20 connections), or a network failure.
func eiceDialError(ep TunnelEndpoint, err error, resp *http.Response) error {
	target := "EC2 Instance Connect Endpoint " + ep.ID
	if resp == nil {
		if errors.Is(err, context.Canceled) {
			return &failure.Error{Kind: failure.Canceled, Op: "open a tunnel through", Target: target, Err: err}
		}
		return &failure.Error{Kind: failure.Unreachable, Op: "open a tunnel through", Target: target, Err: err,
			Hint: "the endpoint's address (" + ep.DNSName + ") could not be reached over HTTPS from here"}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	msg := strings.TrimSpace(string(body))
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return &failure.Error{Kind: failure.AWSAuth, Msg: fmt.Sprintf("%s refused the tunnel (HTTP %d): %s", target, resp.StatusCode, msg),
			Hint: "the caller needs ec2-instance-connect:OpenTunnel on the endpoint (an IAM policy change), and a URL used within 60 s"}
	case resp.StatusCode == http.StatusTooManyRequests:
		return &failure.Error{Kind: failure.Unreachable, Msg: fmt.Sprintf("%s is busy (HTTP 429): %s", target, msg),
			Hint: "an endpoint carries at most 20 connections at a time: close some, or try again"}
	}
	return &failure.Error{Kind: failure.Unknown, Msg: fmt.Sprintf("%s refused the tunnel (HTTP %d): %s", target, resp.StatusCode, msg)}
}

// tunnelConn is a net.Conn over the tunnel's binary frames.
type tunnelConn struct {
	ws      *websocket.Conn
	rmu     sync.Mutex
	r       io.Reader
	wmu     sync.Mutex
	closed  sync.Once
	readErr error
}

func newTunnelConn(ws *websocket.Conn) *tunnelConn {
	ws.SetReadLimit(1 << 20)
	return &tunnelConn{ws: ws}
}

func (t *tunnelConn) Read(p []byte) (int, error) {
	t.rmu.Lock()
	defer t.rmu.Unlock()
	for {
		if t.readErr != nil {
			return 0, t.readErr
		}
		if t.r != nil {
			n, err := t.r.Read(p)
			if err == io.EOF {
				t.r = nil
				if n > 0 {
					return n, nil
				}
				continue
			}
			return n, err
		}
		typ, r, err := t.ws.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure:
				t.readErr = io.EOF
			case errors.As(err, &ce):
				t.readErr = &failure.Error{Kind: failure.Unreachable, Msg: fmt.Sprintf("the EC2 Instance Connect Endpoint closed the tunnel (%d): %s", ce.Code, ce.Text)}
			default:
				t.readErr = err
			}
			continue
		}
		if typ == websocket.TextMessage {
			// The service speaks in text only to say what went wrong.
			b, _ := io.ReadAll(io.LimitReader(r, 4096))
			t.readErr = &failure.Error{Kind: failure.Unreachable, Msg: "the EC2 Instance Connect Endpoint says: " + strings.TrimSpace(string(b))}
			continue
		}
		t.r = r
	}
}

func (t *tunnelConn) Write(p []byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), 32<<10)]
		if err := t.ws.WriteMessage(websocket.BinaryMessage, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

func (t *tunnelConn) Close() error {
	var err error
	t.closed.Do(func() {
		t.wmu.Lock()
		t.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		t.wmu.Unlock()
		err = t.ws.Close()
	})
	return err
}

func (t *tunnelConn) LocalAddr() net.Addr  { return t.ws.LocalAddr() }
func (t *tunnelConn) RemoteAddr() net.Addr { return t.ws.RemoteAddr() }
func (t *tunnelConn) SetDeadline(d time.Time) error {
	t.ws.SetReadDeadline(d)
	return t.ws.SetWriteDeadline(d)
}
func (t *tunnelConn) SetReadDeadline(d time.Time) error  { return t.ws.SetReadDeadline(d) }
func (t *tunnelConn) SetWriteDeadline(d time.Time) error { return t.ws.SetWriteDeadline(d) }

// PickEndpoint chooses the endpoint for an instance: a usable one in its
// VPC, in its subnet when there is one there.
func PickEndpoint(eps []TunnelEndpoint, vpcID, subnetID string) (TunnelEndpoint, bool) {
	var best TunnelEndpoint
	found := false
	for _, ep := range eps {
		if ep.VPCID != vpcID || !ep.Ready() {
			continue
		}
		if !found || ep.SubnetID == subnetID && best.SubnetID != subnetID {
			best, found = ep, true
		}
	}
	return best, found
}
