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
