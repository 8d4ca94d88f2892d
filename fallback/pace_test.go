package fallback

import (
	"testing"
	"time"
)

// TestPaceWatch: the agent's pace is named once a run of 1,024 full
// frames came at its 1 ms sleep, and not when frames come faster, are
// short (the port had no more), or were held back by a slow reader here.
func TestPaceWatch(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		n        func(i int) int  // payload of frame i
		every    time.Duration    // between frames
		heldBack func(i int) bool // held back before frame i
		want     bool
	}{
		{"the agent's pace, 1.1 ms a frame", func(int) int { return ChunkSize }, 1100 * time.Microsecond, nil, true},
		{"faster than the agent's pace", func(int) int { return ChunkSize }, 100 * time.Microsecond, nil, false},
		{"short frames: the port has no more", func(int) int { return 100 }, 2 * time.Millisecond, nil, false},
		{"a short frame every 500", func(i int) int { return map[bool]int{true: 10, false: ChunkSize}[i%500 == 499] }, 1100 * time.Microsecond, nil, false},
		{"held back by a slow reader", func(int) int { return ChunkSize }, 1100 * time.Microsecond, func(i int) bool { return i%300 == 0 }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var p paceWatch
			said := 0
			for i := range 3000 {
				held := tt.heldBack != nil && tt.heldBack(i)
				if paced, rate := p.frame(tt.n(i), t0.Add(time.Duration(i)*tt.every), held); paced {
					said++
					if want := float64(ChunkSize) / tt.every.Seconds(); rate < 0.99*want || rate > 1.01*want {
						t.Errorf("rate %.0f B/s, want %.0f", rate, want)
					}
				}
			}
			if got := said > 0; got != tt.want || said > 1 {
				t.Errorf("paced said %d times over 3000 frames, want %v (once at most)", said, tt.want)
			}
		})
	}
}
