package fleet

import (
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/ec2ssh/ec2ssh/reach"
)

// A long listing says how far it has come (SPEC.md, "Output": progress on
// long waits only when stderr is a terminal): one line on stderr, pages
// and instances so far, rewritten as pages arrive and erased at the end.

// progressAfter is how long a listing runs before the line appears: a
// quick listing shows none.
const progressAfter = 500 * time.Millisecond

// progressEvery bounds how often the line is rewritten.
const progressEvery = 100 * time.Millisecond

type progress struct {
	w   io.Writer
	now func() time.Time

	mu               sync.Mutex
	start, last      time.Time
	pages, instances int
	shown            bool
}

// newProgress is the progress line of r's listing, or nil when stderr is
// not a terminal or ec2ssh's own lines are silenced.
func newProgress(r *reach.Run) *progress {
	if r.IO.Stderr == nil || r.Args.Quiet || r.Notes != nil && r.Notes.Quiet() || !term.IsTerminal(int(r.IO.Stderr.Fd())) {
		return nil
	}
	return startProgress(r.IO.Stderr, time.Now)
}

func startProgress(w io.Writer, now func() time.Time) *progress {
	return &progress{w: w, now: now, start: now()}
}

// page is a preflight.PageFunc: one more page of n instances.
func (p *progress) page(region string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pages++
	p.instances += n
	t := p.now()
	if t.Sub(p.start) < progressAfter || p.shown && t.Sub(p.last) < progressEvery {
		return
	}
	p.last, p.shown = t, true
	fmt.Fprintf(p.w, "\r\x1b[Kec2ssh: listing: %d %s, %d %s so far", p.pages, plural(p.pages, "page", "pages"),
		p.instances, plural(p.instances, "instance", "instances"))
}

// done erases the line, if it was shown.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
