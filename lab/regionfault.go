package lab

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// RegionWeather stands in front of an EC2 endpoint (the lab's EC2 front)
// and gives regions and calls weather (issue 24): a region whose every
// call answers 500 (InternalError, as EC2 does), and calls that answer
// late. The region of a call is the one its SigV4 signature is scoped to,
// as AWS routes it. It counts calls by action and region.
type RegionWeather struct {
	srv *http.Server
	url string

	mu    sync.Mutex
	fail  map[string]bool
	delay map[string]time.Duration
	calls map[string]int // "Action region"
}

var credentialScope = regexp.MustCompile(`Credential=[^/]+/\d{8}/([a-z0-9-]+)/`)

// StartRegionWeather serves on a free loopback port in front of target.
func StartRegionWeather(target string) (*RegionWeather, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &RegionWeather{url: "http://" + ln.Addr().String(), fail: map[string]bool{}, delay: map[string]time.Duration{}, calls: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	w.srv = &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		form, _ := url.ParseQuery(string(body))
		action := form.Get("Action")
		region := ""
		if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			region = m[1]
		}
		w.mu.Lock()
		w.calls[action+" "+region]++
		fail, delay := w.fail[region], w.delay[action]
		w.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if fail {
			rw.Header().Set("Content-Type", "text/xml")
			rw.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(rw, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InternalError</Code><Message>An internal error has occurred (lab: %s fails)</Message></Error></Errors><RequestID>lab</RequestID></Response>`, region)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		proxy.ServeHTTP(rw, r)
	})}
	go w.srv.Serve(ln)
	return w, nil
}

// URL is where to point AWS_ENDPOINT_URL_EC2.
func (w *RegionWeather) URL() string { return w.url }

// Fail makes every call to region answer 500 (on) or pass (off).
func (w *RegionWeather) Fail(region string, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail[region] = on
}

// Delay makes every call of action answer d late (0: at once).
func (w *RegionWeather) Delay(action string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.delay[action] = d
}

// Calls is how many calls of action ("" for any) were made to region (""
// for any).
func (w *RegionWeather) Calls(action, region string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for k, c := range w.calls {
		a, r, _ := strings.Cut(k, " ")
		if (action == "" || a == action) && (region == "" || r == region) {
			n += c
		}
	}
	return n
}

// Stop ends it.
func (w *RegionWeather) Stop() { w.srv.Close() }
