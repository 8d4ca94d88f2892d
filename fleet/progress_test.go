package fleet

import (
	"strings"
	"testing"
	"time"
)

func TestProgress(t *testing.T) {
	now := time.Unix(1000, 0)
	var b strings.Builder
	p := startProgress(&b, func() time.Time { return now })
	p.page("us-east-1", 100)
	if b.Len() != 0 {
		t.Errorf("a quick first page showed %q", b.String())
	}
	now = now.Add(time.Second)
	p.page("eu-west-1", 1)
	if got := b.String(); got != "\r\x1b[Kec2ssh: listing: 2 pages, 101 instances so far" {
		t.Errorf("after a second: %q", got)
	}
	now = now.Add(10 * time.Millisecond)
	p.page("us-east-1", 100)
	if strings.Count(b.String(), "listing:") != 1 {
		t.Errorf("rewritten within %v: %q", progressEvery, b.String())
	}
	now = now.Add(progressEvery)
	p.page("us-east-1", 99)
	if !strings.HasSuffix(b.String(), "4 pages, 300 instances so far") {
		t.Errorf("later: %q", b.String())
	}
	p.done()
	if !strings.HasSuffix(b.String(), "so far\r\x1b[K") {
		t.Errorf("not erased: %q", b.String())
	}
	b.Reset()
	q := startProgress(&b, time.Now)
	q.page("us-east-1", 3)
	q.done()
	if b.Len() != 0 {
		t.Errorf("a quick listing wrote %q", b.String())
	}
}
