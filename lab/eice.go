package lab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"
)

// EC2 APIs moto lacks, answered in front of it, and the EC2 Instance
// Connect Endpoint's tunnel service: a WebSocket server that checks the
// presigned URL as AWS does (SigV4 for ec2-instance-connect with the lab's
// secret, 60 s expiry, a known endpoint, an address in its VPC) and then
// dials the instance from the endpoint's own address, so that the lab's
// nftables rules stand for the endpoint's security group.

// EC2FrontPort is where the EC2 front listens (AWS_ENDPOINT_URL_EC2).
const EC2FrontPort = 5002

// LabEndpoint is one EC2 Instance Connect Endpoint of the lab.
type LabEndpoint struct {
	ID, VPCID, SubnetID, SecurityGroup string
	// Addr is the endpoint's own address: tunnels come from it.
	Addr string
	// Hosts are the private addresses it may open tunnels to.
	Hosts []string
}

type eiceStandIn struct {
	ln        net.Listener
	port      int
	certFile  string
	endpoints []LabEndpoint
	secret    string
	front     *http.Server

	mu       sync.Mutex
	serial   map[string]bool // instance id -> serial console access allowed
	consoles map[string]string
	opened   int
	refused  []string
}

// frontOverride answers an EC2 call in place of moto (front.go), or
// reports false to let moto answer it.
type frontOverride func(w http.ResponseWriter, r *http.Request, form url.Values, moto http.Handler) bool

// startEICE starts the tunnel service (TLS on 127.0.0.1) and the EC2 front
// in front of moto; override, when set, corrects moto's answers; ws is
// the weather it answers in.
func startEICE(dir, motoURL, secret string, ws *Weathers, endpoints []LabEndpoint, override frontOverride) (*eiceStandIn, error) {
	s := &eiceStandIn{endpoints: endpoints, secret: secret, serial: map[string]bool{}, consoles: map[string]string{}}
	cert, certPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	s.certFile = filepath.Join(dir, "eice-ca.pem")
	if err := os.WriteFile(s.certFile, certPEM, 0o644); err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return nil, err
	}
	s.ln, s.port = ln, ln.Addr().(*net.TCPAddr).Port
	mux := http.NewServeMux()
	mux.HandleFunc("/openTunnel", s.openTunnel)
	go http.Serve(ln, mux)

	moto, _ := url.Parse(motoURL)
	proxy := httputil.NewSingleHostReverseProxy(moto)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // a caller that gave up (its budget) is no error of the lab's
	fl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", EC2FrontPort))
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.front = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if ws.meet(w, r, body) {
			return
		}
		form, _ := url.ParseQuery(string(body))
		body, form = asEC2Filters(body, form) // EC2's wildcards, not moto's (ec2filters.go)
		if answeredAsEC2(w, r, form, motoURL) {
			return
		}
		switch form.Get("Action") {
		case "DescribeInstanceConnectEndpoints":
			s.describeEndpoints(w, form)
			return
		case "GetSerialConsoleAccessStatus":
			w.Header().Set("Content-Type", "text/xml")
			fmt.Fprintf(w, `<GetSerialConsoleAccessStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>lab</requestId><serialConsoleAccessEnabled>true</serialConsoleAccessEnabled><managedBy>account</managedBy></GetSerialConsoleAccessStatusResponse>`)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		r.ContentLength = int64(len(body))
		if override != nil && override(w, r, form, proxy) {
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go s.front.Serve(fl)
	return s, nil
}

func (s *eiceStandIn) stop() {
	s.ln.Close()
	s.front.Close()
}

// DNSName is what DescribeInstanceConnectEndpoints says the endpoints'
// name is: the tunnel service's address.
func (s *eiceStandIn) DNSName() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *eiceStandIn) describeEndpoints(w http.ResponseWriter, form url.Values) {
	var vpcs []string
	for i := 1; ; i++ {
		name := form.Get(fmt.Sprintf("Filter.%d.Name", i))
		if name == "" {
			break
		}
		if name == "vpc-id" {
			for j := 1; ; j++ {
				v := form.Get(fmt.Sprintf("Filter.%d.Value.%d", i, j))
				if v == "" {
					break
				}
				vpcs = append(vpcs, v)
			}
		}
	}
	var items strings.Builder
	for _, ep := range s.endpoints {
		if len(vpcs) > 0 && !contains(vpcs, ep.VPCID) {
			continue
		}
		fmt.Fprintf(&items, `<item><ownerId>123456789012</ownerId><instanceConnectEndpointId>%s</instanceConnectEndpointId>`+
			`<instanceConnectEndpointArn>arn:aws:ec2:%s:123456789012:instance-connect-endpoint/%s</instanceConnectEndpointArn>`+
			`<state>create-complete</state><dnsName>%s</dnsName><vpcId>%s</vpcId><subnetId>%s</subnetId><availabilityZone>%sa</availabilityZone>`+
			`<preserveClientIp>false</preserveClientIp><securityGroupIdSet><item>%s</item></securityGroupIdSet>`+
			`<networkInterfaceIdSet><item>eni-%s</item></networkInterfaceIdSet></item>`,
			ep.ID, Region, ep.ID, s.DNSName(), ep.VPCID, ep.SubnetID, Region, ep.SecurityGroup, strings.TrimPrefix(ep.ID, "eice-"))
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<DescribeInstanceConnectEndpointsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>lab</requestId><instanceConnectEndpointSet>%s</instanceConnectEndpointSet></DescribeInstanceConnectEndpointsResponse>`, items.String())
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var eiceUpgrader = websocket.Upgrader{}

// openTunnel is the tunnel service.
func (s *eiceStandIn) openTunnel(w http.ResponseWriter, r *http.Request) {
	refuse := func(code int, why string) {
		s.mu.Lock()
		s.refused = append(s.refused, why)
		s.mu.Unlock()
		http.Error(w, why, code)
	}
	q := r.URL.Query()
	if err := s.verify(r); err != nil {
		refuse(http.StatusForbidden, err.Error())
		return
	}
	var ep *LabEndpoint
	for i := range s.endpoints {
		if s.endpoints[i].ID == q.Get("instanceConnectEndpointId") {
			ep = &s.endpoints[i]
		}
	}
	if ep == nil {
		refuse(http.StatusBadRequest, "unknown instanceConnectEndpointId")
		return
	}
	ip, port := q.Get("privateIpAddress"), q.Get("remotePort")
	if !contains(ep.Hosts, ip) {
		refuse(http.StatusBadRequest, "privateIpAddress "+ip+" is not in the endpoint's VPC")
		return
	}
	ws, err := eiceUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.opened++
	s.mu.Unlock()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ep.Addr)}}
	conn, err := d.Dial("tcp", net.JoinHostPort(ip, port))
	if err != nil {
		// As the service does: the reason in a close frame.
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "Failed to connect to "+ip+":"+port), time.Now().Add(time.Second))
		ws.Close()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				if ws.WriteMessage(websocket.BinaryMessage, buf[:n]) != nil {
					return
				}
			}
			if err != nil {
				ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				return
			}
		}
	}()
	for {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			break
		}
		if typ == websocket.BinaryMessage {
			if _, err := conn.Write(data); err != nil {
				break
			}
		}
	}
	conn.Close()
	<-done
	ws.Close()
}

// verify checks the presigned URL: a SigV4 signature for
// ec2-instance-connect made with the lab's secret, not expired.
func (s *eiceStandIn) verify(r *http.Request) error {
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || q.Get("X-Amz-Signature") == "" {
		return fmt.Errorf("the URL is not presigned")
	}
	cred := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(cred) != 5 || cred[3] != "ec2-instance-connect" {
		return fmt.Errorf("the URL is not signed for ec2-instance-connect")
	}
	signedAt, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("bad X-Amz-Date")
	}
	expires, err := time.ParseDuration(q.Get("X-Amz-Expires") + "s")
	if err != nil || expires > 60*time.Second {
		return fmt.Errorf("bad X-Amz-Expires")
	}
	if time.Now().After(signedAt.Add(expires)) {
		return fmt.Errorf("the presigned URL has expired")
	}
	if signedAt.After(time.Now().Add(5 * time.Minute)) {
		return fmt.Errorf("the presigned URL is from the future")
	}
	// The signature again, from what was received, with the lab's secret.
	clean := url.Values{}
	for k, v := range q {
		switch k {
		case "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token":
		default:
			clean[k] = v
		}
	}
	u := "https://" + r.Host + r.URL.Path + "?" + clean.Encode()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	empty := sha256.Sum256(nil)
	creds := aws.Credentials{AccessKeyID: cred[0], SecretAccessKey: s.secret, SessionToken: q.Get("X-Amz-Security-Token")}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, hex.EncodeToString(empty[:]), "ec2-instance-connect", cred[2], signedAt)
	if err != nil {
		return err
	}
	su, _ := url.Parse(signed)
	if su.Query().Get("X-Amz-Signature") != q.Get("X-Amz-Signature") {
		return fmt.Errorf("the signature does not match")
	}
	return nil
}

// selfSigned makes the tunnel service's certificate (for 127.0.0.1).
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ec2ssh lab EC2 Instance Connect Endpoint"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, _ := x509.MarshalECPrivateKey(key)
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	return cert, certPEM, err
}

// Tunnels is how many tunnels the service opened, and why it refused
// the ones it refused.
func (s *eiceStandIn) Tunnels() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened, append([]string(nil), s.refused...)
}
