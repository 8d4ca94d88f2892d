package failure

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestEveryKindHasAName(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds {
		s := k.String()
		if s == "" || strings.HasPrefix(s, "Kind(") {
			t.Errorf("Kind %d has no name", int(k))
		}
		if seen[s] {
			t.Errorf("two kinds are named %q", s)
		}
		seen[s] = true
	}
	if len(Kinds) != len(names) {
		t.Errorf("Kinds lists %d kinds, names has %d", len(Kinds), len(names))
	}
}

func TestKindOfThroughWrapping(t *testing.T) {
	for _, k := range Kinds {
		err := fmt.Errorf("jump host x: %w", fmt.Errorf("ssh: handshake failed: %w", &Error{Kind: k, Msg: "m", Hint: "h"}))
		if got := KindOf(err); got != k {
			t.Errorf("KindOf(wrapped %v) = %v, want %v", k, got, k)
		}
		if HintOf(err) != "h" {
			t.Errorf("HintOf(wrapped %v) = %q, want h", k, HintOf(err))
		}
	}
	if KindOf(errors.New("plain")) != Unknown {
		t.Errorf("KindOf(plain error) is not Unknown")
	}
}

func TestVis(t *testing.T) {
	for _, tt := range []struct{ in, one, lines string }{
		{"web-1", "web-1", "web-1"},
		{"bad\x1b[2Jname", `bad\033[2Jname`, `bad\033[2Jname`},
		{"two\nlines", `two\012lines`, "two\nlines"},
		{"tab\there", `tab\011here`, "tab\there"},
		{"héllo ✓", "héllo ✓", "héllo ✓"},
		{"bad\xffutf8", `bad\377utf8`, `bad\377utf8`},
		{"rtl\u202eevil", `rtl\342\200\256evil`, `rtl\342\200\256evil`},
		{"del\x7f", `del\177`, `del\177`},
		{"c1\u009bx", `c1\302\233x`, `c1\302\233x`},
	} {
		if got := Vis(tt.in); got != tt.one {
			t.Errorf("Vis(%q) = %q, want %q", tt.in, got, tt.one)
		}
		if got := VisLines(tt.in); got != tt.lines {
			t.Errorf("VisLines(%q) = %q, want %q", tt.in, got, tt.lines)
		}
	}
}
