package fallback

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// wrapperFrame is an O or E frame (numbered seq in its stream) or a W
// frame (seq < 0) as the wrapper writes it: base64(1) wraps its lines at
// 76 characters.
func wrapperFrame(kind byte, seq int, p []byte) string {
	enc := base64.StdEncoding.EncodeToString(p)
	var b strings.Builder
	b.WriteString(":" + string(kind))
	if seq >= 0 {
		b.WriteString(fmt.Sprintf("%d ", seq))
	}
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	if enc != "" {
		b.WriteString("\n")
	}
	b.WriteString(";")
	return b.String()
}

// collected is what a parse produced.
type collected struct {
	ready             bool
	stdout, stderr    []byte
	oEnds, eEnds      int
	acks, exit        []int64
	warn, miss, fatal string
}

func parseAll(t *testing.T, nonce string, chunks [][]byte) (collected, error) {
	t.Helper()
	p := newFrameParser(nonce)
	var c collected
	emit := func(ev event) error {
		switch ev.kind {
		case 'R':
			c.ready = true
		case 'O':
			c.stdout = append(c.stdout, ev.data...)
		case 'E':
			c.stderr = append(c.stderr, ev.data...)
		case 'o':
			c.oEnds++
		case 'e':
			c.eEnds++
		case 'A':
			c.acks = append(c.acks, ev.n)
		case 'X':
			c.exit = append(c.exit, ev.n)
		case 'W':
			c.warn += string(ev.data)
		case 'M':
			c.miss = string(ev.data)
		case 'F':
			c.fatal = string(ev.data)
		}
		return nil
	}
	for _, ch := range chunks {
		if err := p.feed(ch, emit); err != nil {
			return c, err
		}
	}
	return c, nil
}

// splits cuts s every n bytes.
func splits(s string, n int) [][]byte {
	var out [][]byte
	for len(s) > n {
		out = append(out, []byte(s[:n]))
		s = s[n:]
	}
	return append(out, []byte(s))
}

// TestFrameParserEveryByte: every byte value, in every position of a base64
// quad, through O and E frames, at every chunk boundary from 1 byte up.
func TestFrameParserEveryByte(t *testing.T) {
	all := make([]byte, 0, 256*3)
	for i := 0; i < 256; i++ {
		all = append(all, byte(i))
	}
	// Shifted twice, so that each value lands on each of a quad's bytes.
	all = append(all, all[1:]...)
	all = append(all, all[2:258]...)
	stream := "junk before :R" + "n0nce;" + wrapperFrame('O', 0, all) + "\r\n" + wrapperFrame('E', 0, all[:7]) + wrapperFrame('O', 1, []byte("\xef\xbf\xbd")) +
		wrapperFrame('O', 2, nil) + ":A1;:A2;" + wrapperFrame('W', -1, []byte("dd: oops\n")) + ":X5;"
	for _, n := range []int{1, 2, 3, 4, 5, 7, 76, 77, 1023, 1024, len(stream)} {
		c, err := parseAll(t, "n0nce", splits(stream, n))
		if err != nil {
			t.Fatalf("chunks of %d: %v", n, err)
		}
		wantOut := append(append([]byte(nil), all...), "\xef\xbf\xbd"...)
		if !c.ready || !bytes.Equal(c.stdout, wantOut) || !bytes.Equal(c.stderr, all[:7]) || c.oEnds != 3 || c.eEnds != 1 ||
			fmt.Sprint(c.acks) != "[1 2]" || fmt.Sprint(c.exit) != "[5]" || c.warn != "dd: oops\n" {
			t.Errorf("chunks of %d: ready %v, %d bytes of stdout (want %d), stderr %q, ends %d/%d, acks %v, exit %v, warn %q",
				n, c.ready, len(c.stdout), len(wantOut), c.stderr, c.oEnds, c.eEnds, c.acks, c.exit, c.warn)
		}
	}
}

// TestFrameParserReorders: a stream's frames may reach the terminal in
// either order (two writers per stream); they leave in order, each with
// its end, and the other stream is not held up.
func TestFrameParserReorders(t *testing.T) {
	stream := ":Rn;" + wrapperFrame('O', 1, []byte("second ")) + wrapperFrame('E', 0, []byte("err")) + wrapperFrame('O', 0, []byte("first ")) +
		wrapperFrame('O', 3, []byte("fourth")) + wrapperFrame('O', 2, []byte("third ")) + ":X0;"
	for _, n := range []int{1, 5, len(stream)} {
		c, err := parseAll(t, "n", splits(stream, n))
		if err != nil || string(c.stdout) != "first second third fourth" || string(c.stderr) != "err" || c.oEnds != 4 || c.eEnds != 1 {
			t.Errorf("chunks of %d: stdout %q, stderr %q, ends %d/%d, %v", n, c.stdout, c.stderr, c.oEnds, c.eEnds, err)
		}
	}
}

// TestFrameParserPreamble: what comes before the wrapper's first frame, and
// that frame's three kinds.
func TestFrameParserPreamble(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		ready   bool
		miss    string
		fatal   string
		wantErr bool
	}{
		{"nothing yet", "motd line\r\n", false, "", "", false},
		{"ready", "motd\r\n:Rabc;", true, "", "", false},
		{"another nonce is not ready", ":Rxyz;", false, "", "", false},
		{"missing tools", ":Mabc setsid dd(iflag=fullblock);", false, "setsid dd(iflag=fullblock)", "", false},
		{"setup failed", ":Fabc " + base64.StdEncoding.EncodeToString([]byte("mktemp -d: No space left on device")) + ";", false, "", "mktemp -d: No space left on device", false},
		{"a ready frame that says more", ":Rabc1;", false, "", "", true},
		{"no end of it", strings.Repeat("x", maxPreamble+1), false, "", "", true},
	}
	for _, tt := range tests {
		c, err := parseAll(t, "abc", splits(tt.stream, 3))
		if (err != nil) != tt.wantErr || c.ready != tt.ready || c.miss != tt.miss || c.fatal != tt.fatal {
			t.Errorf("%s: ready %v, missing %q, failed %q, error %v; want %v, %q, %q, error %v", tt.name, c.ready, c.miss, c.fatal, err,
				tt.ready, tt.miss, tt.fatal, tt.wantErr)
		}
	}
}

// TestFrameParserEarlyEnd: a stream cut anywhere stops short of the exit
// status without inventing one, and what was whole is delivered.
func TestFrameParserEarlyEnd(t *testing.T) {
	stream := ":Rn;" + wrapperFrame('O', 0, []byte("hello, world")) + ":X0;"
	for cut := 0; cut < len(stream); cut++ {
		c, err := parseAll(t, "n", [][]byte{[]byte(stream[:cut])})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if len(c.exit) != 0 {
			t.Errorf("cut at %d: exit %v from a stream without its X frame", cut, c.exit)
		}
		if !bytes.HasPrefix([]byte("hello, world"), c.stdout) {
			t.Errorf("cut at %d: stdout %q", cut, c.stdout)
		}
	}
}

// TestFrameParserGarbled: anything but frames after the ready frame is an
// error, never output.
func TestFrameParserGarbled(t *testing.T) {
	for _, tail := range []string{"x", ":Q;", ":O0 @@@@;", ":O0 ab;", ":O0 YQ==YQ==;", ":A1x;", ":X;", ";", ":O0 " + "\xef\xbf\xbd" + ";",
		":A" + strings.Repeat("9", 30) + ";", ":OYQ==;", ":O0YQ==;", ":O;", ":O1 YQ==;:O1 YQ==;", ":O9 YQ==;",
		":O0 YQ==;:O0 YQ==;"} {
		_, err := parseAll(t, "n", [][]byte{[]byte(":Rn;" + tail)})
		if !errors.Is(err, errGarbled) {
			t.Errorf("%q: err = %v, want errGarbled", tail, err)
		}
	}
}

// TestFrameParserCancel: an emit that fails stops the parse at once with
// its error (a local stdout that went away).
func TestFrameParserCancel(t *testing.T) {
	p := newFrameParser("n")
	stop := errors.New("stdout closed")
	var got int
	err := p.feed([]byte(":Rn;"+wrapperFrame('O', 0, []byte("a"))+wrapperFrame('O', 1, []byte("b"))+":X0;"), func(ev event) error {
		if ev.kind == 'O' {
			got++
			return stop
		}
		return nil
	})
	if err != stop || got != 1 {
		t.Errorf("feed = %v after %d outputs, want %v after 1", err, got, stop)
	}
}

// TestInputRecords: records as the wrapper reads them, every byte value.
func TestInputRecords(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if got := dataRecord(all); !bytes.Equal(got, append([]byte("256\n"), all...)) {
		t.Errorf("dataRecord(all) = %q", got)
	}
	if string(eofRecord) != "0\n" || string(hangupRecord) != "kHUP\n" || string(creditRecord('O')) != "cO\n" {
		t.Errorf("control records: %q %q %q", eofRecord, hangupRecord, creditRecord('O'))
	}
}

// TestWrapperRefusesWithoutItsTools: with a tool missing the wrapper runs
// nothing and names it.
func TestWrapperRefusesWithoutItsTools(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Only the shell's builtins, and a marker the command would leave.
	marker := dir + "/ran"
	cmd := exec.Command(sh, "-c", WrapCommand("n0", "echo > "+marker))
	cmd.Env = []string{"PATH=" + dir}
	out, _ := cmd.Output()
	c, perr := parseAll(t, "n0", [][]byte{out})
	if perr != nil || !strings.Contains(c.miss, "setsid") || !strings.Contains(c.miss, "stty") || c.ready {
		t.Errorf("wrapper without tools said %q (missing %q, ready %v, %v)", out, c.miss, c.ready, perr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the command ran although the wrapper refused")
	}
}
