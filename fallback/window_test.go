package fallback

import (
	"testing"
	"time"
)

// agentPath is what a simulated upload goes through: a round trip, split
// evenly each way, and an agent that handles frames one at a time at a
// rate and acknowledges each once handled (as the real agent does).
type agentPath struct {
	rtt  time.Duration
	rate float64 // frames per second the agent takes
}

// simulate sends n frames through w over p on a fake clock, the writer
// always ready to fill the window, the retransmission timer checked every
// retransmitTick as the channel does. Frame 0 is the handshake's response,
// sent alone (the data waits for the agent's HandshakeComplete, which
// comes with its acknowledgement). It returns how long the upload took
// and how many frames went again although nothing was lost (every one
// spurious: the path loses nothing).
func simulate(w *window, p agentPath, start time.Time, n int) (took time.Duration, resent int) {
	return simulateFrom(w, p, start, 0, n)
}

// simulateFrom is simulate for frames first..first+n-1 (no handshake when
// first > 0).
func simulateFrom(w *window, p agentPath, start time.Time, first int64, n int) (took time.Duration, resent int) {
	type ack struct {
		at  time.Time
		seq int64
	}
	var acks []ack // in order of arrival: the agent is one queue, the delay constant
	now, agentFree, tick := start, start, start.Add(retransmitTick)
	per := time.Duration(float64(time.Second) / p.rate)
	seq := first
	delivered := 0
	for delivered < n {
		for seq < first+int64(n) && !w.full() && (seq == 0 || delivered > 0 || first > 0) {
			w.add(seq, nil, now)
			arrive := now.Add(p.rtt / 2)
			if arrive.After(agentFree) {
				agentFree = arrive
			}
			agentFree = agentFree.Add(per)
			acks = append(acks, ack{agentFree.Add(p.rtt / 2), seq})
			seq++
		}
		next := acks[0]
		acks = acks[1:]
		for !tick.After(next.at) {
			resent += len(w.due(tick))

			tick = tick.Add(retransmitTick)
		}
		now = next.at
		if w.ack(next.seq, now) {
			delivered++
		}
	}
	return now.Sub(start), resent
}

// TestWindowFollowsThePath: uploads of 64 MiB (65,536 frames) against
// agents of several speeds at several round trips. Far away the upload
// must come within 0.8 of the agent's own pace (the goal: far
// away as near by), with no frame resent that the agent already had, and
// the window must settle near what the path holds (rate × round trip, a
// quarter more to find more), never beyond MaxWindow.
func TestWindowFollowsThePath(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name       string
		path       agentPath
		wantSize   [2]int  // the window at the end, within
		wantShare  float64 // of the pace the agent (or MaxWindow per round trip) allows
		wantLarger int     // the window must have grown past this
		wantResent int     // beyond 200 ms, InitialRTO is too short for the handshake's response
	}{
		{"near, a fast agent", agentPath{0, 40000}, [2]int{MinWindow, MinWindow}, 0.95, 0, 0},
		{"near, the real agent's pace", agentPath{2 * time.Millisecond, 13000}, [2]int{MinWindow, MinWindow}, 0.95, 0, 0},
		{"50 ms, the real agent's pace", agentPath{50 * time.Millisecond, 13000}, [2]int{650, 1000}, 0.9, 650, 0},
		{"200 ms, the real agent's pace", agentPath{200 * time.Millisecond, 13000}, [2]int{2600, 4000}, 0.9, 2600, 0},
		{"200 ms, a fast agent", agentPath{200 * time.Millisecond, 40000}, [2]int{7000, MaxWindow}, 0.8, 7000, 0},
		{"200 ms, a slow agent", agentPath{200 * time.Millisecond, 3000}, [2]int{600, 900}, 0.95, 600, 0},
		// 64 MiB is over in about five round trips at this pace, and slow
		// start takes two or three of them: a smaller share of an ideal that
		// assumes the full window from the first frame.
		{"300 ms, a faster agent: MaxWindow bounds it", agentPath{300 * time.Millisecond, 60000}, [2]int{MaxWindow, MaxWindow}, 0.55, MaxWindow - 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(0)
			const n = 65536
			took, resent := simulate(w, tt.path, t0, n)
			pace := tt.path.rate
			if perRTT := MaxWindow / tt.path.rtt.Seconds(); tt.path.rtt > 0 && perRTT < pace {
				pace = perRTT
			}
			ideal := time.Duration(float64(n)/pace*float64(time.Second)) + tt.path.rtt
			share := float64(ideal) / float64(took)
			s := w.Stats()
			t.Logf("%v for %d frames (%.2f of the pace), window %d (largest %d), %d resent, %d back-offs, %d late rounds", took, n, share, s.Size, s.Largest, resent, s.BackOffs, s.LateRounds)
			if share < tt.wantShare {
				t.Errorf("simulate(%v) took %v, %.2f of the %v the pace allows; want at least %.2f", tt.path, took, share, ideal, tt.wantShare)
			}
			if resent != tt.wantResent {
				t.Errorf("simulate(%v) resent %d frames, none of them lost; want %d", tt.path, resent, tt.wantResent)
			}
			if s.Size < tt.wantSize[0] || s.Size > tt.wantSize[1] {
				t.Errorf("simulate(%v): window %d at the end, want %d..%d", tt.path, s.Size, tt.wantSize[0], tt.wantSize[1])
			}
			if s.Largest > MaxWindow || s.Largest <= tt.wantLarger && tt.wantLarger > 0 {
				t.Errorf("simulate(%v): the window grew to %d, want more than %d and at most %d", tt.path, s.Largest, tt.wantLarger, MaxWindow)
			}
		})
	}
}

// TestWindowEvents: what single events do to the window, on a fake clock,
// after a path (if any) has been measured by a simulated upload.
func TestWindowEvents(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const ms = time.Millisecond
	far := agentPath{200 * ms, 13000} // settles near 1.25 × 13000 × 0.2 = 3250 frames
	for _, tt := range []struct {
		name  string
		path  *agentPath // measured first with 16,384 frames, or nil
		limit int
		run   func(t *testing.T, w *window, now time.Time, next int64)
	}{
		{name: "a duplicate acknowledgement changes nothing", path: &far, run: func(t *testing.T, w *window, now time.Time, next int64) {
			w.add(next, nil, now)
			if !w.ack(next, now.Add(200*ms)) {
				t.Fatalf("ack(%d) = false for a frame in flight", next)
			}
			before, delivered := w.Stats(), w.delivered
			for _, seq := range []int64{next, next - 1, next + 100} { // again; long acknowledged; never sent
				if w.ack(seq, now.Add(300*ms)) {
					t.Errorf("ack(%d) = true for a frame not in flight", seq)
				}
			}
			if after := w.Stats(); after != before || w.delivered != delivered {
				t.Errorf("duplicate acknowledgements changed the window: %+v (delivered %d), want %+v (delivered %d)", after, w.delivered, before, delivered)
			}
		}},
		{name: "a resent frame's acknowledgement measures nothing (Karn)", run: func(t *testing.T, w *window, now time.Time, next int64) {
			w.add(0, nil, now)
			if got := len(w.due(now.Add(InitialRTO + ms))); got != 1 {
				t.Fatalf("due(InitialRTO later) = %d frames, want 1", got)
			}
			w.ack(0, now.Add(250*ms))
			if w.measured || w.haveMin {
				t.Errorf("the acknowledgement of a resent frame was taken as a round trip (srtt %v, lowest %v)", w.srtt, w.minRTT)
			}
		}},
		{name: "a timeout before any round trip backs off the timer, not the window", run: func(t *testing.T, w *window, now time.Time, next int64) {
			w.add(0, nil, now)
			w.add(1, nil, now)
			w.due(now.Add(InitialRTO + ms))
			w.add(2, nil, now.Add(InitialRTO+ms))
			if got := w.due(now.Add(2*InitialRTO + 2*ms)); len(got) != 0 {
				t.Errorf("a frame sent after a timeout went again after InitialRTO; want it to wait twice as long")
			}
			if got := w.due(now.Add(3*InitialRTO + 2*ms)); len(got) != 3 {
				t.Errorf("due(3 × InitialRTO) = %d frames, want 3 (the two resent once, and the new one)", len(got))
			}
			w.ack(0, now.Add(3*InitialRTO+3*ms))
			w.ack(1, now.Add(3*InitialRTO+3*ms))
			w.ack(2, now.Add(3*InitialRTO+3*ms))
			if s := w.Stats(); s.BackOffs != 0 || s.Size != MinWindow {
				t.Errorf("a timeout before any round trip changed the window: %+v", s)
			}
			w.add(3, nil, now.Add(InitialRTO+ms))
			w.ack(3, now.Add(InitialRTO+301*ms)) // 300 ms far away
			if !w.measured || w.backoff != 0 || w.rto() < 300*ms+MinRTO {
				t.Errorf("after the first round trip: measured %v, backoff %d, rto %v; want the timer from the round trip", w.measured, w.backoff, w.rto())
			}
		}},
		{name: "a loss halves the window, once for the frames in flight then", path: &far, run: func(t *testing.T, w *window, now time.Time, next int64) {
			before := w.Stats().Size
			for i := range int64(100) {
				w.add(next+i, nil, now)
			}
			lost := w.due(now.Add(w.rto() + ms))
			if len(lost) != 100 {
				t.Fatalf("due() = %d frames, want the 100 in flight", len(lost))
			}
			s := w.Stats()
			if s.BackOffs != 1 || s.Size < before*4/10 || s.Size > before*6/10 {
				t.Errorf("after a loss: %d back-offs, window %d; want 1 and about half of %d", s.BackOffs, s.Size, before)
			}
			w.due(now.Add(10 * time.Second)) // the same frames, overdue again
			if s := w.Stats(); s.BackOffs != 1 {
				t.Errorf("the same loss backed off %d times", s.BackOffs)
			}
			for i := range int64(100) {
				w.ack(next+i, now.Add(10*time.Second)) // that loss is over
			}
			w.add(next+100, nil, now.Add(10*time.Second))
			w.due(now.Add(20 * time.Second)) // a frame sent after the back-off
			if s := w.Stats(); s.BackOffs != 2 {
				t.Errorf("a new loss: %d back-offs, want 2", s.BackOffs)
			}
		}},
		{name: "late acknowledgements shrink the window to the new pace", path: &far, run: func(t *testing.T, w *window, now time.Time, next int64) {
			before := w.Stats().Size
			slower := agentPath{far.rtt, 2000} // the agent's host got busy: acks a queue behind
			w2 := *w
			took, resent := simulateFrom(&w2, slower, now, next, 8192)
			s := w2.Stats()
			if s.LateRounds == 0 || s.Size >= before || s.Size > 700 {
				t.Errorf("after %v at a sixth of the pace: %d late rounds, window %d (was %d); want it near 1.25 × 2000 × 0.2 = 500", took, s.LateRounds, s.Size, before)
			}
			if resent != 0 {
				t.Errorf("late acknowledgements had %d frames resent", resent)
			}
		}},
		{name: "a resumed data channel sends everything in flight again, in order", path: &far, run: func(t *testing.T, w *window, now time.Time, next int64) {
			for i := range int64(10) {
				w.add(next+i, []byte{byte(i)}, now)
			}
			w.ack(next+3, now.Add(200*ms))
			size := w.Stats().Size
			again := w.resume(now.Add(300 * ms))
			var got []byte
			for _, f := range again {
				got = append(got, f[0])
			}
			if string(got) != "\x00\x01\x02\x04\x05\x06\x07\x08\x09" {
				t.Errorf("resume() = %v, want the 9 frames in flight, oldest first", got)
			}
			if w.haveMin || w.Stats().Size != size {
				t.Errorf("after resume: lowest round trip kept %v, window %d; want it measured afresh and the window kept at %d", w.haveMin, w.Stats().Size, size)
			}
			w.due(now.Add(5 * time.Second)) // what went again times out: the drop's doing
			if s := w.Stats(); s.BackOffs != 0 {
				t.Errorf("frames resent on resume backed off the window %d times", s.BackOffs)
			}
			for i := range int64(10) {
				w.ack(next+i, now.Add(5*time.Second)) // ambiguous: no round trip
			}
			w.add(next+10, nil, now.Add(5*time.Second))
			w.ack(next+10, now.Add(5*time.Second+80*ms)) // the new path is nearer
			if got := w.Stats().MinRTT; got != 80*ms {
				t.Errorf("lowest round trip after resume = %v, want 80ms (the new path's)", got)
			}
		}},
		{name: "Options.MaxWindow below MinWindow holds the window there", path: &far, limit: 16, run: func(t *testing.T, w *window, now time.Time, next int64) {
			if s := w.Stats(); s.Size != 16 || s.Largest != 16 {
				t.Errorf("window %d (largest %d), want 16", s.Size, s.Largest)
			}
		}},
		{name: "the timeout keeps MinRTO above the round trip far away", path: &far, run: func(t *testing.T, w *window, now time.Time, next int64) {
			if got := w.rto(); got < far.rtt+MinRTO || got > far.rtt+MinRTO+100*ms {
				t.Errorf("rto() = %v at a %v round trip, want about %v", got, far.rtt, far.rtt+MinRTO)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(tt.limit)
			now, next := t0, int64(0)
			if tt.path != nil {
				took, _ := simulate(w, *tt.path, t0, 16384)
				now, next = t0.Add(took), 16384
			}
			tt.run(t, w, now, next)
		})
	}
}
