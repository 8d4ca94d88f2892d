package fallback

import "time"

// The agent's port plugin reads 1 KiB from the port, sends it and sleeps
// 1 ms (StreamDataPayloadSize, the WritePump loop): instance to client is
// paced at about 1 MB/s for every client, whatever the network. -v says so
// when a download runs at that pace, so that a user who wonders why a
// download is slow knows where the limit is.
const (
	paceRun   = 1024                   // full frames in a row before the pace is judged (1 MiB)
	pacedSlot = 900 * time.Microsecond // a frame per this long or slower is the agent's sleep
)

// paceWatch looks at the agent's output frames in order for a run of full
// frames (the port had more to send) that came no faster than the
// agent's 1 ms sleep allows, with none held back on the client's side.
type paceWatch struct {
	start  time.Time
	frames int
	said   bool
}

// frame takes one in-order output frame of n payload bytes, delivered at
// now, heldBack telling whether the client held frames back (its reader
// was slow) since the last. It reports, once, that the download is paced
// by the agent, and at what rate (bytes per second).
func (p *paceWatch) frame(n int, now time.Time, heldBack bool) (paced bool, rate float64) {
	if p.said {
		return false, 0
	}
	if n != ChunkSize || heldBack {
		p.frames = 0
		return false, 0
	}
	if p.frames == 0 {
		p.start = now
	}
	p.frames++
	if p.frames < paceRun {
		return false, 0
	}
	took := now.Sub(p.start)
	p.frames = 0
	if took < time.Duration(paceRun-1)*pacedSlot {
		return false, 0 // faster than the agent's pace: not its limit
	}
	p.said = true
	return true, float64((paceRun-1)*ChunkSize) / took.Seconds()
}
