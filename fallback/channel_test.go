package fallback_test

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/lab"
)

// echoServer stands for the instance's port: it echoes what it gets.
func echoServer(t *testing.T) int {
	port, stop, err := lab.Echo()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return port
}

func standIn(t *testing.T) (*fallback.SSM, *lab.SSMStandIn) {
	port, err := lab.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := lab.StartSSMStandIn(port, map[string]string{"i-0123456789abcdef0": "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:" + itoa(port)),
		Credentials: credentials.NewStaticCredentialsProvider("AKIATEST", "secret", "")}
	return &fallback.SSM{Client: ssm.NewFromConfig(cfg)}, s
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestChannelRoundTripAndNoLeaks carries bytes both ways over a port
// session, closes it (TerminateSession), and requires that no goroutine
// outlives the sessions.
func TestChannelRoundTripAndNoLeaks(t *testing.T) {
	api, srv := standIn(t)
	port := echoServer(t)
	session := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ch, err := api.StartPort(ctx, "i-0123456789abcdef0", port)
		if err != nil {
			t.Fatal(err)
		}
		msg := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KB: many frames, a full window
		go ch.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(ch, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo over the channel: %v (equal %v)", err, bytes.Equal(got, msg))
		}
		if err := ch.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	for range 4 {
		session()
	}
	// The channel's own goroutines (the SDK's HTTP client keeps idle
	// connections of its own, which are not the channel's to end).
	deadline := time.Now().Add(5 * time.Second)
	for channelGoroutines() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := channelGoroutines(); n > 0 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines of fallback.Channel outlive their sessions:\n%s", n, buf[:runtime.Stack(buf, true)])
	}
	if open, terminated := srv.Sessions(); open != 0 || terminated != 4 {
		t.Errorf("stand-in: %d sessions open, %d terminated; want 0 and 4", open, terminated)
	}
}

func TestTargetNotConnected(t *testing.T) {
	api, _ := standIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := api.StartPort(ctx, "i-00000000000000000", 22)
	if err == nil {
		t.Fatal("StartPort to an instance without an agent succeeded")
	}
	if took := time.Since(start); took < fallback.NotConnectedRetry/2 {
		t.Errorf("gave up after %v: TargetNotConnected is retried for a while", took)
	}
}

// channelGoroutines counts goroutines running fallback.Channel code.
func channelGoroutines() int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "fallback.(*Channel)") {
			n++
		}
	}
	return n
}
