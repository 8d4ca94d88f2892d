package connect

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

func TestEscapeFilter(t *testing.T) {
	var msg bytes.Buffer
	var did []string
	act := escapeActions{
		disconnect: func() { did = append(did, "disconnect") },
		sendBreak:  func() { did = append(did, "break") },
		suspend:    func() { did = append(did, "suspend") },
		list:       func() []string { return []string{"#0 client-session"} },
		command:    func(line string) string { did = append(did, "cmd:"+line); return "" },
		readLine:   func(string) (string, error) { return "-L8080:db:5432", nil },
	}
	in := "ls ~.\r~~home\r~B~#~?~C~x\r~R~\x1a~."
	f := newEscapeFilter(strings.NewReader(in), '~', &msg, act)
	out, _ := io.ReadAll(f)
	// "~." inside a line is data; ~~ sends one ~; ~x sends both; the rest act.
	if want := "ls ~.\r~home\r~x\r"; string(out) != want {
		t.Errorf("sent %q, want %q", out, want)
	}
	if got := strings.Join(did, ","); got != "break,cmd:-L8080:db:5432,suspend,disconnect" {
		t.Errorf("actions %s", got)
	}
	for _, w := range []string{"Supported escape sequences", "#0 client-session", "~R is not supported", "~.\r\n"} {
		if !strings.Contains(msg.String(), w) {
			t.Errorf("messages %q lack %q", msg.String(), w)
		}
	}
	if !f.Disconnected() {
		t.Error("~. did not mark the session disconnected")
	}
}

func TestEscapeCommand(t *testing.T) {
	fw := &Forwarder{active: map[string]net.Listener{}}
	for _, tt := range []struct{ line, want string }{
		{"help", "Commands:"},
		{"-X1", "Invalid command."},
		{"-Lnope", "Bad forwarding specification."},
		{"-KL8080", "unknown port forwarding"},
	} {
		if got := escapeCommand(fw, tt.line); !strings.Contains(got, tt.want) {
			t.Errorf("escapeCommand(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}
