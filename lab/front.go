package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Facts moto cannot express, answered by the lab's fronts as AWS would:
//
//   - instance states other than running, stopped and terminated (moto
//     runs an instance at once and stops it at once): pending, stopping,
//     shutting-down, optionally turning to running after a while, as
//     DescribeInstances and DescribeInstanceStatus tell them;
//   - failing status checks (moto's are always ok);
//   - blackhole routes: AWS marks a route blackhole when its internet
//     gateway is deleted or detached from the VPC, or its NAT gateway is
//     deleted; moto keeps it active. The front asks moto what exists now,
//     as AWS does, and says blackhole;
//   - an interface endpoint's network interfaces: moto makes them with a
//     random address outside the subnet and none of the endpoint's groups;
//     the lab makes them as AWS does (in the endpoint's subnets, with its
//     groups) and the front names those;
//   - an SSM agent that pings Online but has no control channel
//     (ssmmessages unreachable, or denied to its role): Session Manager
//     answers StartSession with TargetNotConnected. The SSM stand-in knows
//     only online or offline, so a front before it answers that.

// instanceState is a state the front shows in place of moto's.
type instanceState struct {
	name  string    // pending, stopping, shutting-down
	until time.Time // zero: for good; else running from then on
}

// stateCodes are EC2's codes for instance states.
var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

// overrides are what the fronts say in place of moto and the stand-in.
type overrides struct {
	moto *ec2.Client

	mu          sync.Mutex
	states      map[string]instanceState // instance id -> state shown
	impaired    map[string]bool          // instance id -> its status checks fail
	endpointENI map[string][]string      // VPC endpoint id -> its interfaces
	unconnected map[string]bool          // instance id -> Online, but no control channel
	// The diagnosis world's instances have an SSM stand-in of their own
	// (built after the lab's): their calls and sessions go there.
	diagIDs      map[string]bool
	diagPort     int
	diagSessions map[string]bool
}

func newOverrides(moto *ec2.Client) *overrides {
	return &overrides{moto: moto, states: map[string]instanceState{}, impaired: map[string]bool{},
		endpointENI: map[string][]string{}, unconnected: map[string]bool{}, diagIDs: map[string]bool{}, diagSessions: map[string]bool{}}
}

// SetState makes the EC2 front show instance id in state (pending,
// stopping, shutting-down) until then, or for good when then is zero; it
// runs after that.
func (w *World) SetState(id, state string, until time.Time) {
	w.over.mu.Lock()
	defer w.over.mu.Unlock()
	w.over.states[id] = instanceState{name: state, until: until}
}

// state is the state shown for id, "" for moto's own.
func (o *overrides) state(id string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	st, ok := o.states[id]
	if !ok || !st.until.IsZero() && time.Now().After(st.until) {
		return ""
	}
	return st.name
}

// ec2 answers the EC2 calls whose answers the lab corrects: it lets moto
// answer, then changes what moto cannot express. It reports false for the
// calls it leaves alone.
func (o *overrides) ec2(w http.ResponseWriter, r *http.Request, form url.Values, proxy http.Handler) bool {
	action := form.Get("Action")
	switch action {
	case "DescribeInstances", "DescribeInstanceStatus", "DescribeRouteTables", "DescribeVpcEndpoints":
	default:
		return false
	}
	r.Header.Del("Accept-Encoding") // moto's answer is rewritten as text
	rec := httptest.NewRecorder()
	proxy.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if rec.Code == http.StatusOK {
		if doc, err := parseXML(body); err == nil && doc != nil {
			switch action {
			case "DescribeInstances":
				o.instances(doc)
			case "DescribeInstanceStatus":
				o.statuses(doc)
			case "DescribeRouteTables":
				o.routes(r.Context(), doc)
			case "DescribeVpcEndpoints":
				o.endpoints(doc)
			}
			body = doc.bytes()
		}
	}
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	w.Write(body)
	return true
}

func setState(n *xmlNode, state string) {
	st := n.child("instanceState")
	if st == nil {
		return
	}
	st.set("code", strconv.Itoa(stateCodes[state]))
	st.set("name", state)
}

func (o *overrides) instances(doc *xmlNode) {
	for _, in := range doc.all("reservationSet", "item", "instancesSet", "item") {
		if st := o.state(in.value("instanceId")); st != "" {
			setState(in, st)
		}
	}
}

func (o *overrides) statuses(doc *xmlNode) {
	for _, it := range doc.all("instanceStatusSet", "item") {
		id := it.value("instanceId")
		if st := o.state(id); st != "" {
			setState(it, st)
			for _, s := range []string{"instanceStatus", "systemStatus"} {
				if c := it.child(s); c != nil {
					c.children = []*xmlNode{{name: "status", text: "not-applicable"}}
				}
			}
			continue
		}
		o.mu.Lock()
		bad := o.impaired[id]
		o.mu.Unlock()
		if c := it.child("instanceStatus"); bad && c != nil {
			c.children = []*xmlNode{{name: "details", children: []*xmlNode{{name: "item", children: []*xmlNode{
				{name: "name", text: "reachability"}, {name: "status", text: "failed"}, {name: "impairedSince", text: time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)}}}}},
				{name: "status", text: "impaired"}}
		}
	}
}

// routes marks blackhole what AWS would: routes to internet gateways that
// no longer exist or are not attached to the table's VPC, and to NAT
// gateways that are deleted or failed.
func (o *overrides) routes(ctx context.Context, doc *xmlNode) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	igws := map[string][]string{} // id -> attached VPCs; missing: gone
	nats := map[string]string{}   // id -> state; missing: gone
	var igwIDs, natIDs []string
	tables := doc.all("routeTableSet", "item")
	for _, t := range tables {
		for _, r := range t.all("routeSet", "item") {
			if id := r.value("gatewayId"); strings.HasPrefix(id, "igw-") {
				igwIDs = append(igwIDs, id)
			}
			if id := r.value("natGatewayId"); id != "" {
				natIDs = append(natIDs, id)
			}
		}
	}
	if len(igwIDs) > 0 {
		out, err := o.moto.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{Filters: []ec2types.Filter{{Name: aws.String("internet-gateway-id"), Values: igwIDs}}})
		if err != nil {
			return // leave moto's answer as it is
		}
		for _, g := range out.InternetGateways {
			vpcs := []string{}
			for _, a := range g.Attachments {
				vpcs = append(vpcs, aws.ToString(a.VpcId))
			}
			igws[aws.ToString(g.InternetGatewayId)] = vpcs
		}
	}
	if len(natIDs) > 0 {
		out, err := o.moto.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{Filter: []ec2types.Filter{{Name: aws.String("nat-gateway-id"), Values: natIDs}}})
		if err != nil {
			return
		}
		for _, g := range out.NatGateways {
			nats[aws.ToString(g.NatGatewayId)] = string(g.State)
		}
	}
	for _, t := range tables {
		vpc := t.value("vpcId")
		for _, r := range t.all("routeSet", "item") {
			if id := r.value("gatewayId"); strings.HasPrefix(id, "igw-") {
				if vpcs, ok := igws[id]; !ok || !contains(vpcs, vpc) {
					r.set("state", "blackhole")
				}
			}
			if id := r.value("natGatewayId"); id != "" {
				if st, ok := nats[id]; !ok || st == "deleted" || st == "failed" {
					r.set("state", "blackhole")
				}
			}
		}
	}
}

func (o *overrides) endpoints(doc *xmlNode) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ep := range doc.all("vpcEndpointSet", "item") {
		enis, ok := o.endpointENI[ep.value("vpcEndpointId")]
		if !ok {
			continue
		}
		set := ep.child("networkInterfaceIdSet")
		if set == nil {
			set = &xmlNode{name: "networkInterfaceIdSet"}
			ep.children = append(ep.children, set)
		}
		set.children = nil
		for _, id := range enis {
			set.children = append(set.children, &xmlNode{name: "item", text: id})
		}
	}
}

// SSMFrontPort is where the SSM front listens (AWS_ENDPOINT_URL_SSM): it
// passes the calls to the lab's SSM stand-in, or to the diagnosis world's
// for its instances and their sessions, but answers StartSession to an
// instance whose agent has no control channel as Session Manager does.
const SSMFrontPort = 5003

func (o *overrides) startSSMFront() (*http.Server, error) {
	base, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", SSMPort))
	proxy := httputil.NewSingleHostReverseProxy(base)
	// The front is not in the path a client sees: a reset behind it (the
	// weather's) is a reset in front of it too, not a 502 of its own.
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			resetConn(w)
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", SSMFrontPort))
	if err != nil {
		return nil, fmt.Errorf("ssm front: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		if !strings.HasPrefix(target, "AmazonSSM.") {
			proxy.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		var in struct {
			Target, SessionId string
			Filters           []struct {
				Key    string
				Values []string
			}
		}
		json.Unmarshal(body, &in)
		o.mu.Lock()
		dark := o.unconnected[in.Target]
		diag := o.diagIDs[in.Target] || o.diagSessions[in.SessionId]
		for _, f := range in.Filters {
			for _, v := range f.Values {
				diag = diag || o.diagIDs[v]
			}
		}
		port := o.diagPort
		o.mu.Unlock()
		switch {
		case target == "AmazonSSM.StartSession" && dark:
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"__type": "TargetNotConnected", "message": in.Target + " is not connected."})
		case diag:
			u, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
			rec := httptest.NewRecorder()
			httputil.NewSingleHostReverseProxy(u).ServeHTTP(rec, r)
			var out struct{ SessionId string }
			if json.Unmarshal(rec.Body.Bytes(), &out) == nil && out.SessionId != "" {
				o.mu.Lock()
				o.diagSessions[out.SessionId] = true
				o.mu.Unlock()
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
		default:
			proxy.ServeHTTP(w, r)
		}
	})}
	go srv.Serve(ln)
	return srv, nil
}

// FrontConfig is an AWS configuration for the lab's EC2 front (what
// ec2ssh is pointed at), for tests that call preflight themselves.
func (w *World) FrontConfig() aws.Config {
	cfg := w.awsConfig()
	cfg.BaseEndpoint = aws.String(fmt.Sprintf("http://127.0.0.1:%d", EC2FrontPort))
	return cfg
}
