package connect

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/ec2ssh/ec2ssh/failure"
)

// ssh's lines are printed at ssh's log levels: error() lines under
// LogLevel ERROR and above, fatal lines down to FATAL, logit lines at INFO
// (issue 25: the same stderr as ssh, LogLevel included).
func TestSSHLinesFollowLogLevel(t *testing.T) {
	mk := func() error {
		return fmt.Errorf("wrapped: %w", inWords(&failure.Error{Kind: failure.HostKeyUnknown, Msg: "m"},
			append(errorLines("No ED25519 host key is known for x and you have requested strict checking."), fatalLine(hostKeyFailed))...))
	}
	for _, tt := range []struct {
		level string
		want  []string
	}{
		{"", []string{"No ED25519 host key is known for x and you have requested strict checking.", hostKeyFailed}},
		{"INFO", []string{"No ED25519 host key is known for x and you have requested strict checking.", hostKeyFailed}},
		{"DEBUG3", []string{"No ED25519 host key is known for x and you have requested strict checking.", hostKeyFailed}},
		{"ERROR", []string{"No ED25519 host key is known for x and you have requested strict checking.", hostKeyFailed}},
		{"FATAL", []string{hostKeyFailed}},
		{"QUIET", []string{}},
	} {
		err := mk()
		if tt.level != "" {
			atLogLevel(err, tt.level)
		}
		if got := SSHLines(err); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SSHLines at %q = %q, want %q", tt.level, got, tt.want)
		}
		if failure.KindOf(err) != failure.HostKeyUnknown {
			t.Errorf("the kind is lost under the words: %v", failure.KindOf(err))
		}
	}
	timeout := atLogLevel(inWords(&failure.Error{Msg: "t"}, infoLine("Timeout, server h not responding.")), "ERROR")
	if got := SSHLines(timeout); got == nil || len(got) != 0 {
		t.Errorf("a logit line under LogLevel ERROR: %q, want none (but words known)", got)
	}
	if SSHLines(errors.New("plain")) != nil {
		t.Error("an error without ssh's words has lines")
	}
}
