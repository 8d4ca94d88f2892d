package lab

import (
	"bytes"
	"testing"
)

// TestProcessStdout holds the stand-in's output rewriting to what the
// agent's processStdoutData does (agent/session/shell/shell.go), read by
// hand: EF BF BD leaves as EF, an invalid byte leaves alone, a rune error
// in the last three bytes of a read waits for the next one, and what waits
// at the end is lost.
func TestProcessStdout(t *testing.T) {
	tests := []struct {
		name  string
		reads []string
		want  string // all that was sent
		held  string // what waits at the end (lost)
	}{
		{"ascii", []string{"hello\n"}, "hello\n", ""},
		{"valid UTF-8 passes", []string{"h\u00e9\u20ac\U0001F600"}, "h\u00e9\u20ac\U0001F600", ""},
		{"EF BF BD becomes EF", []string{"a\xef\xbf\xbdbcde"}, "a\xefbcde", ""},
		{"invalid bytes pass alone", []string{"\xff\xfe\x80abcd"}, "\xff\xfe\x80abcd", ""},
		{"a rune split across reads", []string{"ab\xe2\x82", "\xacxyzw"}, "ab\u20acxyzw", ""},
		{"an invalid byte near the end waits", []string{"abc\xff"}, "abc", "\xff"},
		{"and goes with the next read", []string{"abc\xff", "defg"}, "abc\xffdefg", ""},
		{"a trailing incomplete sequence is lost", []string{"out\xe2\x82"}, "out", "\xe2\x82"},
		{"EF BF BD at the very end waits", []string{"x\xef\xbf\xbd"}, "x", "\xef\xbf\xbd"},
		{"three invalid bytes at the end wait", []string{"\x00\x01\x80\x81\x82"}, "\x00\x01", "\x80\x81\x82"},
	}
	for _, tt := range tests {
		var r ProcessStdout
		var got []byte
		for _, s := range tt.reads {
			got = append(got, r.Process([]byte(s))...)
		}
		if !bytes.Equal(got, []byte(tt.want)) || string(r.held) != tt.held {
			t.Errorf("%s: ProcessStdout(%q) = %q holding %q, want %q holding %q", tt.name, tt.reads, got, r.held, tt.want, tt.held)
		}
	}
}
