package failure

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Vis makes text from elsewhere (a Name tag, a security group's
// description, a log line) safe to print on one line: control characters,
// escape sequences, bytes that are not UTF-8 and line breaks become octal
// escapes (\033), as ssh(1) shows what a server sends. Nothing it returns
// can move a terminal's cursor or forge a line.
func Vis(s string) string { return vis(s, "") }

// VisLines is Vis for text that may span lines (a server's banner): line
// breaks and tabs are kept, as ssh(1) keeps them.
func VisLines(s string) string { return vis(s, "\n\r\t") }

func vis(s, keep string) string {
	clean := true
	for _, r := range s {
		if !safeRune(r, keep) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n <= 1 || !safeRune(r, keep) {
			for _, c := range []byte(s[:max(n, 1)]) {
				fmt.Fprintf(&b, "\\%03o", c)
			}
		} else {
			b.WriteString(s[:n])
		}
		s = s[max(n, 1):]
	}
	return b.String()
}

func safeRune(r rune, keep string) bool {
	if r == utf8.RuneError {
		return false
	}
	if r < 0x80 {
		return r >= 0x20 && r < 0x7f || strings.ContainsRune(keep, r)
	}
	// Printable, and not a bidirectional override that could reorder what
	// is shown.
	return unicode.IsPrint(r) && !unicode.Is(unicode.Bidi_Control, r)
}
