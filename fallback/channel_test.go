package fallback_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/lab"
)

const testInstance = "i-0123456789abcdef0"

// serve runs handle for each connection to a fresh port on 127.0.0.1: a
// stand-in for a service on the instance.
func serve(t *testing.T, handle func(net.Conn)) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// echoServer stands for the instance's port: it echoes what it gets.
func echoServer(t *testing.T) int {
	return serve(t, func(c net.Conn) { io.Copy(c, c) })
}

func awsConfig(port int) aws.Config {
	return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:" + strconv.Itoa(port)),
		Credentials: credentials.NewStaticCredentialsProvider("AKIATEST", "secret", "")}
}

// standIn starts the lab's SSM service and agent (which behaves as the
// real agent does: handshake race, rejected early input, 1 KiB reads with
// 1 ms pauses, late and raced acknowledgements) for one instance here.
func standIn(t *testing.T, opts lab.SSMOptions) (*fallback.SSM, *lab.SSMStandIn) {
	port, err := lab.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	opts.Port = port
	if opts.Addrs == nil {
		opts.Addrs = map[string]string{testInstance: "127.0.0.1"}
		opts.Online = map[string]bool{testInstance: true}
	}
	s, err := lab.StartSSM(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return fallback.NewSSM(awsConfig(port)), s
}

func startPort(t *testing.T, api *fallback.SSM, port int, serverFirst bool) *fallback.Channel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch, err := api.StartPort(ctx, testInstance, port, serverFirst)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestChannelRoundTripAndNoLeaks carries bytes both ways over a port
// session, closes it (TerminateSession), and requires that no goroutine
// outlives the sessions.
func TestChannelRoundTripAndNoLeaks(t *testing.T) {
	api, srv := standIn(t, lab.SSMOptions{})
	port := echoServer(t)
	session := func() {
		ch := startPort(t, api, port, false)
		msg := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB: many frames
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

// TestFirstBytesSurviveTheHandshakeRace: the agent marks its handshake
// done only after sending HandshakeComplete and throws away stream data in
// between. A server that speaks first (as sshd does) must still get the
// client's first line whole, every time.
func TestFirstBytesSurviveTheHandshakeRace(t *testing.T) {
	t.Parallel()
	api, srv := standIn(t, lab.SSMOptions{})
	port := serve(t, func(c net.Conn) {
		c.Write([]byte("SSH-2.0-lab\r\n"))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		c.Write([]byte("got " + line))
	})
	for i := range 20 {
		ch := startPort(t, api, port, true)
		// Write at once, as an SSH client does once its transport is up.
		if _, err := ch.Write([]byte("SSH-2.0-client\r\n")); err != nil {
			t.Fatalf("session %d: write: %v", i, err)
		}
		ch.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(ch)
		banner, _ := r.ReadString('\n')
		reply, err := r.ReadString('\n')
		if banner != "SSH-2.0-lab\r\n" || reply != "got SSH-2.0-client\r\n" {
			t.Errorf("session %d: banner %q, reply %q (%v): the first bytes were lost", i, banner, reply, err)
		}
		ch.Close()
	}
	if a := srv.AgentTotals(); a.DiscardedInHandshake != 0 {
		t.Errorf("the agent discarded %d frames during its handshake", a.DiscardedInHandshake)
	}
}

// TestHalfCloseKeepsTheReplyAndSucceeds: input ends (stdin EOF in --proxy
// mode) before the server has answered. The answer must still arrive, and
// the agent must record the session as ended, not failed.
func TestHalfCloseKeepsTheReplyAndSucceeds(t *testing.T) {
	t.Parallel()
	api, srv := standIn(t, lab.SSMOptions{})
	port := serve(t, func(c net.Conn) {
		c.Write([]byte("ready\n"))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		time.Sleep(200 * time.Millisecond) // the answer comes after the client's EOF
		c.Write([]byte("answer to " + line))
	})
	for i := range 5 {
		ch := startPort(t, api, port, true)
		ch.Write([]byte("question\n"))
		ch.CloseWrite()
		ch.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(ch)
		if string(got) != "ready\nanswer to question\n" {
			t.Errorf("session %d: read %q (%v) after CloseWrite, want the answer", i, got, err)
		}
		ch.Close()
	}
	if o := srv.Outcomes(); o[lab.OutcomeFailed] != 0 {
		t.Errorf("the agent recorded %d of 5 sessions as failed (%v)", o[lab.OutcomeFailed], o)
	}
}

// TestUploadResendsLittle: a burst of input against the agent's late
// acknowledgements must not be resent (the agent already has it).
func TestUploadResendsLittle(t *testing.T) {
	t.Parallel()
	api, srv := standIn(t, lab.SSMOptions{})
	var got sync.WaitGroup
	got.Add(1)
	var sum [32]byte
	const size = 8 << 20
	port := serve(t, func(c net.Conn) {
		h := sha256.New()
		io.CopyN(h, c, size)
		copy(sum[:], h.Sum(nil))
		got.Done()
	})
	msg := make([]byte, size)
	rand.Read(msg)
	ch := startPort(t, api, port, false)
	if _, err := ch.Write(msg); err != nil {
		t.Fatal(err)
	}
	got.Wait()
	ch.Close()
	if sum != sha256.Sum256(msg) {
		t.Fatal("the upload arrived corrupted")
	}
	stats, agent := ch.Stats(), srv.AgentTotals()
	if frac := float64(agent.DuplicateInput) / float64(stats.FramesSent); frac > 0.01 {
		t.Errorf("%d of %d frames were resent although the agent had them (%.2f%%)", agent.DuplicateInput, stats.FramesSent, 100*frac)
	}
}

// TestUploadFarAwayAsNear: 64 MiB up a port session at 0, 50 and 200 ms
// round trips (the stand-in adds half each way to every frame) must move
// at 0.8 or more of the rate near by (issue 23; a fixed window of 512
// frames managed 0.25 at 200 ms), with no frame resent that the agent
// already had but the handshake's response (far away InitialRTO is a
// guess too short). 64 MiB as the issue measures: against this stand-in
// (15-40 MB/s) a smaller upload is over in a few round trips, before any
// window could have grown. Runs in turn, not side by side, so that the
// rates compare; this machine is shared and its pace moves by a third
// from one run to the next, so a miss is measured again, up to three
// times. Not under -short: a quarter of a GiB, three times over at worst.
func TestUploadFarAwayAsNear(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB at each of four round trips; the full suite runs it")
	}
	if raceDetector {
		t.Skip("rates under the race detector say nothing about the window; the suite without -race runs it")
	}
	const size = 64 << 20
	rate := func(rtt time.Duration) (float64, fallback.Stats, lab.AgentStats) {
		api, srv := standIn(t, lab.SSMOptions{Delay: rtt / 2})
		sums := make(chan [32]byte, 1)
		port := serve(t, func(c net.Conn) {
			h := sha256.New()
			io.CopyN(h, c, size)
			var s [32]byte
			copy(s[:], h.Sum(nil))
			sums <- s
		})
		msg := make([]byte, size)
		rand.Read(msg)
		ch := startPort(t, api, port, false)
		defer ch.Close()
		start := time.Now()
		if _, err := ch.Write(msg); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-sums:
			if got != sha256.Sum256(msg) {
				t.Fatalf("at %v: the upload arrived altered", rtt)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("at %v: 64 MiB did not arrive in 60 s", rtt)
		}
		return size / time.Since(start).Seconds() / 1e6, ch.Stats(), srv.AgentTotals()
	}
	var misses []string
	for attempt := 1; attempt <= 3; attempt++ {
		rates := map[time.Duration]float64{}
		for _, rtt := range []time.Duration{0, 200 * time.Millisecond, 50 * time.Millisecond, 0} {
			r, st, agent := rate(rtt)
			t.Logf("attempt %d, %v round trip: %.1f MB/s, window up to %d frames, %d resent, the agent got %d duplicates", attempt, rtt, r, st.Window.Largest, st.Resent, agent.DuplicateInput)
			if handshake := map[bool]int{true: 1}[rtt >= fallback.InitialRTO]; agent.DuplicateInput > handshake {
				t.Errorf("at %v the agent got %d frames again that it had", rtt, agent.DuplicateInput)
			}
			rates[rtt] += r / map[bool]float64{true: 2, false: 1}[rtt == 0] // near: the mean of two
		}
		misses = nil
		for _, rtt := range []time.Duration{50 * time.Millisecond, 200 * time.Millisecond} {
			if r, n := rates[rtt], rates[0]; r < 0.8*n {
				misses = append(misses, fmt.Sprintf("at %v round trip the upload ran at %.1f MB/s, %.2f of the %.1f MB/s near by", rtt, r, r/n, n))
			}
		}
		if len(misses) == 0 {
			return
		}
	}
	t.Errorf("three times: %s; want at least 0.8", strings.Join(misses, "; "))
}

// TestDroppedWebSocketsResume: the WebSocket goes away mid-transfer, as on
// a network blip (the TCP connection just ends) and as the service closes
// it every hour (close 1000): the session resumes and no byte is lost.
func TestDroppedWebSocketsResume(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 1000} {
		t.Run("code "+strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			api, srv := standIn(t, lab.SSMOptions{})
			port := echoServer(t)
			ch := startPort(t, api, port, false)
			msg := make([]byte, 512<<10)
			rand.Read(msg)
			go func() {
				ch.Write(msg[:len(msg)/2])
				if n := srv.DropSockets(code); n == 0 {
					t.Error("no WebSocket was open to drop")
				}
				ch.Write(msg[len(msg)/2:])
			}()
			ch.SetReadDeadline(time.Now().Add(60 * time.Second))
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(ch, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("after the drop: %v (equal %v)", err, bytes.Equal(got, msg))
			}
			ch.Close()
		})
	}
}

// TestResumeLosesAndDuplicatesNothing: the WebSocket is dropped again and
// again (each time the upload has moved on) while an upload goes into a
// port that reads slowly (so the agent is still writing one frame to it
// when the client's next WebSocket brings the frames it resends), at
// window sizes from 1 frame to what 200 ms away grows to, near by and far
// away (where what is on its way when the WebSocket drops is lost); then
// an answer comes back. Every byte must arrive once, in order, both ways.
func TestResumeLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		code   int
		delay  time.Duration
		window int // Options.MaxWindow; 0: as it grows
		size   int
		grows  int // the window must have grown to at least this
	}{
		{"blips, window 1", 0, 0, 1, 1 << 20, 0},
		{"blips, window 64", 0, 0, 64, 4 << 20, 0},
		{"hourly closes, window as it grows", 1000, 0, 0, 8 << 20, 0}, // 4 MiB can be written before two drops on a loaded machine
		{"blips 50 ms away, window as it grows", 0, 25 * time.Millisecond, 0, 4 << 20, 0},
		{"blips 200 ms away, window as it grows", 0, 100 * time.Millisecond, 0, 16 << 20, MinWindowGrown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api, srv := standIn(t, lab.SSMOptions{Delay: tt.delay})
			api.MaxWindow = tt.window
			var received atomic.Int64
			sums := make(chan [32]byte, 1)
			port := serve(t, func(c net.Conn) {
				h := sha256.New()
				buf := make([]byte, 4096)
				for n := 0; n < tt.size; {
					k, err := c.Read(buf)
					h.Write(buf[:k])
					n += k
					received.Add(int64(k))
					if err != nil {
						break
					}
					time.Sleep(20 * time.Microsecond)
				}
				var s [32]byte
				copy(s[:], h.Sum(nil))
				sums <- s
				c.Write(s[:])
			})
			msg := make([]byte, tt.size)
			rand.Read(msg)
			ch := startPort(t, api, port, false)
			defer ch.Close()
			stop := make(chan struct{})
			drops := make(chan int, 1)
			var writing atomic.Bool
			writing.Store(true)
			go func() {
				// A drop each time another eighth of the upload has been
				// sent, at least three one-way delays after the last
				// (time for an acknowledgement to come back), while input
				// is still being written: the channel gives up after drops
				// in a row that get nowhere, which is not what this tests.
				n, last, at := 0, int64(0), time.Now()
				defer func() { drops <- n }()
				for {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					if now := int64(ch.Stats().FramesSent); writing.Load() && now >= last+int64(tt.size/8/fallback.ChunkSize) && time.Since(at) > 20*time.Millisecond+3*tt.delay {
						n += srv.DropSockets(tt.code)
						last, at = now, time.Now()
					}
				}
			}()
			_, err := ch.Write(msg)
			writing.Store(false)
			if err != nil {
				t.Fatal(err)
			}
			var got [32]byte
			select {
			case got = <-sums:
			case <-time.After(90 * time.Second):
				t.Fatalf("the port got %d bytes of %d in 90 s", received.Load(), tt.size)
			}
			close(stop)
			if n := <-drops; n < 2 {
				t.Errorf("the WebSocket was dropped %d times, want at least 2", n)
			}
			if got != sha256.Sum256(msg) {
				t.Fatal("the port got the upload altered: a frame lost, duplicated or out of order across a resume")
			}
			ch.SetReadDeadline(time.Now().Add(30 * time.Second))
			var echo [32]byte
			if _, err := io.ReadFull(ch, echo[:]); err != nil || echo != got {
				t.Fatalf("the reply after the drops: %x (%v), want %x", echo, err, got)
			}
			if s := ch.Stats().Window; s.Largest < tt.grows || tt.window > 0 && s.Largest != tt.window {
				t.Errorf("the window grew to %d frames; want %d", s.Largest, max(tt.grows, tt.window))
			}
		})
	}
}

// MinWindowGrown is what the window must grow to 200 ms away for the
// drops to hit a window larger than MinWindow.
const MinWindowGrown = 2 * fallback.MinWindow

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
