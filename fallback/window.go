package fallback

import (
	"sort"
	"time"
)

// The upload window (issue 23). Nothing between the client and the agent
// loses a frame (the WebSocket is TCP, the service relays in order); the
// agent takes input as fast as it can write it to the port and
// acknowledges each frame once written (amazon-ssm-agent's
// handleStreamDataMessage). What limits an upload is therefore the agent's
// pace and the round trip: W frames in flight move at most W per round
// trip, so a fixed window that fills a link near by starves one far away.
//
// The window follows what the path delivers, as TCP's BBR does: each
// round (from a frame's sending to its acknowledgement) it measures the
// frames acknowledged per second, and holds in flight that rate times the
// lowest round trip seen, and a quarter more to find more (once the agent
// is the limit, a quarter round trip of queue). At first (startup) it
// grows by a frame for each frame acknowledged, doubling each round trip
// as TCP's slow start does, until the acknowledgements start to queue
// (HyStart's signal) or the rate stops growing. A retransmission timeout
// (a frame the agent refused, or a queue the timeout did not allow for)
// halves the rate estimate; a round whose quickest acknowledgement came
// late (a queue that does not drain) replaces it with the round's own
// rate.
const (
	// MinWindow is where the window starts and the least it shrinks to:
	// 512 frames (512 KiB) in flight fill a link near by, and the agent's
	// acknowledgements lag a burst in proportion to it (60-160 ms at 2048
	// frames), which keeps them well inside MinRTO.
	MinWindow = 512
	// MaxWindow bounds it: 16 MiB in flight carry 80 MB/s at a 200 ms
	// round trip, more than the agent takes in (the lab's stand-in, near
	// by, 35-60 MB/s on two cores; 8 MiB held a 200 ms upload at 29 MB/s,
	// half of that); it stays well inside the agent's 100,000-frame
	// incoming buffer and bounds the memory that frames kept for resending
	// take.
	MaxWindow = 16384
	// InitialRTO is the retransmission timeout before any round trip has
	// been measured: the agent's own default, so a frame it rejected (input
	// before the port is connected, a PTY not yet started) goes again as
	// soon as the stock client's would.
	InitialRTO = 200 * time.Millisecond
	// MinRTO is the least margin of the retransmission timeout over the
	// smoothed round trip (as Linux's tcp_rto_min bounds the variance
	// term, not the sum): it keeps a burst's late acknowledgements, or a
	// moment's stall of a loaded host, from looking like loss far away as
	// near by. The WebSocket never loses a frame; only the agent drops
	// them.
	MinRTO = 300 * time.Millisecond
	MaxRTO = 2 * time.Second

	probeGain = 1.25 // the window holds a quarter more than the rate needs
	// initialRate, in frames per second, sizes the window from the first
	// round trip measured (the handshake's): the least the agent takes in
	// (10-17 MB/s on loopback), so that far away startup begins nearer
	// where it ends (2,000 frames at 200 ms) instead of doubling from
	// MinWindow for round trips on end.
	initialRate = 10000
	// startupRounds is how many full rounds without a quarter more rate end
	// startup (BBR's "full pipe").
	startupRounds = 3
	// hystartSamples is how many round trips in a row must show a queue
	// for startup to end (HyStart looks at 8).
	hystartSamples = 8
	bwRounds       = 10 // the rate estimate is the best of this many full rounds
	// lateSlack is added to the lowest round trip (and a quarter of it)
	// before a round's quickest acknowledgement counts as queued (ends
	// startup), and to twice it before it counts as late: the agent's clock
	// granularity (ClockGranularity, 10 ms).
	lateSlack = 10 * time.Millisecond
)

// window holds the frames in flight (sent, not yet acknowledged) and
// decides how many there may be and when one goes again. It is pure: time
// comes in as arguments, and the channel serialises the calls.
type window struct {
	frames  map[int64]*inFlight
	nextSeq int64 // one past the highest sequence number added
	limit   int   // MaxWindow, or less (Options.MaxWindow)

	// The round-trip estimate (RFC 6298), for the retransmission timeout.
	srtt, rttvar time.Duration
	measured     bool
	backoff      int // the timeout doubles with each expiry until a round trip is measured (RFC 6298 5.5)

	size      int           // frames that may be in flight
	minRTT    time.Duration // the lowest round trip on this data channel
	haveMin   bool
	startup   bool
	bw        []float64 // frames per second in the last full rounds, oldest first
	plateauBW float64   // the rate startup last grew to
	plateau   int       // full rounds in startup since it grew by a quarter
	delivered int64     // frames acknowledged so far
	round     round
	recover   int64 // a timeout of a frame below it belongs to the last back-off
	queuedRun int   // round trips in a row that showed a queue

	stats WindowStats
}

// round is one round trip of the window's measurement.
type round struct {
	open      bool
	end       int64 // the round ends when a frame from end on is acknowledged
	start     time.Time
	delivered int64 // window.delivered when it started
	full      bool  // the window was full: its rate is the path's, not the writer's
	minRTT    time.Duration
	haveMin   bool
}

type inFlight struct {
	frame  []byte
	sentAt time.Time // when it was last sent
	tries  int       // how often it was sent again
}

// WindowStats say what the upload window did, for -v and tests.
type WindowStats struct {
	Size, Largest int           // frames: now, and the most it allowed
	MinRTT        time.Duration // the lowest round trip measured
	Rate          float64       // the rate estimate, bytes per second of payload
	BackOffs      int           // retransmission timeouts that halved the rate estimate
	LateRounds    int           // rounds whose quickest acknowledgement came late
}

func newWindow(limit int) *window {
	if limit <= 0 || limit > MaxWindow {
		limit = MaxWindow
	}
	w := &window{frames: map[int64]*inFlight{}, limit: limit, startup: true}
	w.size = min(MinWindow, limit)
	w.stats.Largest = w.size
	return w
}

// len is the number of frames in flight.
func (w *window) len() int { return len(w.frames) }

// full reports whether another frame must wait for an acknowledgement.
func (w *window) full() bool { return len(w.frames) >= w.size }

// add records frame seq as sent at now.
func (w *window) add(seq int64, frame []byte, now time.Time) {
	w.frames[seq] = &inFlight{frame: frame, sentAt: now}
	w.nextSeq = max(w.nextSeq, seq+1)
	if !w.round.open {
		w.round = round{open: true, end: seq, start: now, delivered: w.delivered}
	}
	if len(w.frames) >= w.size {
		w.round.full = true
	}
}

// ack takes the acknowledgement of frame seq at now. It returns false when
// seq is not in flight: a duplicate acknowledgement (the agent acknowledges
// every copy it gets) or one for a frame never sent, which change nothing.
func (w *window) ack(seq int64, now time.Time) bool {
	f, ok := w.frames[seq]
	if !ok {
		return false
	}
	delete(w.frames, seq)
	w.delivered++
	if w.startup && w.round.full {
		w.size = min(w.size+1, w.limit) // slow start: a frame more for each acknowledged
		w.stats.Largest = max(w.stats.Largest, w.size)
	}
	if f.tries == 0 { // Karn: a resent frame's acknowledgement may be for either copy
		r := now.Sub(f.sentAt)
		if !w.measured && w.startup {
			w.size = min(max(w.size, int(initialRate*r.Seconds())), w.limit)
			w.stats.Largest = max(w.stats.Largest, w.size)
		}
		w.sampleRTT(r)
		w.backoff = 0
		if !w.haveMin || r < w.minRTT {
			w.minRTT, w.haveMin = r, true
		}
		if w.round.open {
			if !w.round.haveMin || r < w.round.minRTT {
				w.round.minRTT, w.round.haveMin = r, true
			}
		}
		if w.queued(r) {
			w.queuedRun++
		} else {
			w.queuedRun = 0
		}
		if w.startup && w.queuedRun >= hystartSamples {
			// The last acknowledgements all queued: the path is full.
			// Growing on to the round's end would pile up frames for
			// another round trip. The window stays until a round has
			// measured the full rate (the last ones measured a smaller
			// window's).
			w.startup = false
		}
	}
	if w.round.open && seq >= w.round.end {
		w.endRound(now)
	}
	return true
}

// endRound measures the round that ends at now and sizes the window.
func (w *window) endRound(now time.Time) {
	r := w.round
	w.round.open = false
	d := now.Sub(r.start)
	if d <= 0 || !w.haveMin {
		return
	}
	rate := float64(w.delivered-r.delivered) / d.Seconds()
	if w.startup && r.haveMin && w.queued(r.minRTT) {
		w.startup = false // acknowledgements queue: the path is full
	}
	switch {
	case r.haveMin && r.minRTT > 2*w.minRTT+lateSlack:
		// Even the round's quickest acknowledgement came late: a queue
		// that does not drain (the agent or its host slowed down). The
		// rate measured before no longer holds.
		w.bw = []float64{rate}
		w.startup = false
		w.stats.LateRounds++
	case r.full || rate > w.maxBW():
		// A round the writer left the window short measures the writer,
		// not the path: it counts only when it saw more.
		w.bw = append(w.bw, rate)
		if len(w.bw) > bwRounds {
			w.bw = w.bw[1:]
		}
	}
	if w.startup && r.full {
		if bw := w.maxBW(); bw >= 1.25*w.plateauBW {
			w.plateauBW, w.plateau = bw, 0
		} else if w.plateau++; w.plateau >= startupRounds {
			w.startup = false
		}
	}
	if !w.startup {
		w.resize()
	}
}

// queued reports whether a round whose quickest round trip was r shows a
// queue: a quarter of the lowest round trip and the agent's clock
// granularity above it.
func (w *window) queued(r time.Duration) bool { return r > w.minRTT+w.minRTT/4+lateSlack }

func (w *window) maxBW() float64 {
	m := 0.0
	for _, b := range w.bw {
		m = max(m, b)
	}
	return m
}

// resize sets the window from the rate estimate and the lowest round trip.
func (w *window) resize() {
	if w.maxBW() == 0 {
		return // nothing measured yet
	}
	n := MaxWindow
	if want := probeGain * w.maxBW() * w.minRTT.Seconds(); want < MaxWindow {
		n = int(want)
	}
	w.size = min(max(n, MinWindow), w.limit)
	w.stats.Largest = max(w.stats.Largest, w.size)
}

func (w *window) sampleRTT(r time.Duration) {
	// RFC 6298.
	if !w.measured {
		w.srtt, w.rttvar, w.measured = r, r/2, true
		return
	}
	d := w.srtt - r
	if d < 0 {
		d = -d
	}
	w.rttvar = (3*w.rttvar + d) / 4
	w.srtt = (7*w.srtt + r) / 8
}

// rto is the retransmission timeout of a frame sent once, before any
// backing off.
func (w *window) rto() time.Duration {
	if !w.measured {
		return InitialRTO
	}
	return min(w.srtt+max(4*w.rttvar, MinRTO), MaxRTO)
}

// timeout is how long a frame sent tries+1 times waits for its
// acknowledgement: the timeout doubles with each resend of the frame and,
// until a round trip is measured again, with each expiry of any (RFC 6298
// 5.5), up to 16 times.
func (w *window) timeout(tries int) time.Duration {
	return w.rto() << min(max(tries, w.backoff), 4)
}

// due returns, oldest first, the frames whose acknowledgement is overdue
// at now (timeout), and records them as sent again. The first overdue frame since
// the last back-off halves the rate estimate: the agent refused it, or
// the timeout did not allow for the queue. Before any round trip has been
// measured a timeout says only that InitialRTO was a short guess (the
// handshake's response, far away), and changes nothing.
func (w *window) due(now time.Time) [][]byte {
	var seqs []int64
	for seq, f := range w.frames {
		if now.Sub(f.sentAt) > w.timeout(f.tries) {
			seqs = append(seqs, seq)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	// Until an acknowledgement of a frame sent once measures the round
	// trip again, the next frames wait twice as long: without it, a round
	// trip longer than InitialRTO (far away) would have every frame sent
	// twice, and every acknowledgement ambiguous, for good.
	w.backoff = min(w.backoff+1, 4)
	if w.measured && seqs[0] >= w.recover {
		w.recover = w.nextSeq
		w.bw = []float64{w.maxBW() / 2}
		w.startup = false
		w.round.open = false // its rate would count the resent frames
		w.stats.BackOffs++
		w.resize()
	}
	return w.resend(seqs, now)
}

// resume returns every frame in flight, oldest first, to go again on a
// new data channel, and records them as sent again (their
// acknowledgements will be ambiguous). The new WebSocket may take another
// path, so its round trip is measured afresh; the rate estimate stays
// until rounds measure it again, and the window keeps its size until then.
func (w *window) resume(now time.Time) [][]byte {
	w.haveMin = false
	w.round.open = false
	w.recover = w.nextSeq // timeouts of what goes again now belong to the drop
	seqs := make([]int64, 0, len(w.frames))
	for seq := range w.frames {
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return w.resend(seqs, now)
}

func (w *window) resend(seqs []int64, now time.Time) [][]byte {
	out := make([][]byte, 0, len(seqs))
	for _, seq := range seqs {
		f := w.frames[seq]
		f.tries++
		f.sentAt = now
		out = append(out, f.frame)
	}
	return out
}

// Stats says what the window did so far.
func (w *window) Stats() WindowStats {
	s := w.stats
	s.Size, s.MinRTT, s.Rate = w.size, w.minRTT, w.maxBW()*ChunkSize
	return s
}
