package fallback

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestSerialConsoleEndpoints(t *testing.T) {
	tests := []struct{ region, host string }{
		{"us-east-1", "serial-console.ec2-instance-connect.us-east-1.aws"},
		{"eu-west-1", "serial-console.ec2-instance-connect.eu-west-1.aws"},
		{"af-south-1", "ec2-serial-console.af-south-1.api.aws"},
		{"cn-north-1", "ec2-serial-console.cn-north-1.api.amazonwebservices.com.cn"},
		{"us-gov-west-1", "serial-console.ec2-instance-connect.us-gov-west-1.amazonaws.com"},
		// Regions the table does not know take the newest form of their partition.
		{"xx-newplace-1", "ec2-serial-console.xx-newplace-1.api.aws"},
		{"cn-south-9", "ec2-serial-console.cn-south-9.api.amazonwebservices.com.cn"},
	}
	for _, tt := range tests {
		if got := SerialConsoleHost(tt.region); got != tt.host {
			t.Errorf("SerialConsoleHost(%s) = %s, want %s", tt.region, got, tt.host)
		}
	}
	if got := SerialConsoleFingerprint("us-east-1"); got != "SHA256:dXwn5ma/xadVMeBZGEru5l2gx+yI5LDiJaLUcz0FMmw" {
		t.Errorf("us-east-1's fingerprint = %q", got)
	}
	if got := SerialConsoleFingerprint("xx-newplace-1"); got != "" {
		t.Errorf("an unknown region has fingerprint %q, want none", got)
	}
	// Every entry is a well-formed SHA256 fingerprint, and no two regions
	// share one (a copying slip would).
	seen := map[string]string{}
	for region, e := range serialEndpoints {
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(e.fingerprint, "SHA256:"))
		if !strings.HasPrefix(e.fingerprint, "SHA256:") || err != nil || len(b) != 32 {
			t.Errorf("%s: %q is not a SHA256 fingerprint", region, e.fingerprint)
		}
		if r, dup := seen[e.fingerprint]; dup {
			t.Errorf("%s and %s share a fingerprint", region, r)
		}
		seen[e.fingerprint] = region
		if !strings.Contains(e.host, region) {
			t.Errorf("%s: endpoint %s names another region", region, e.host)
		}
	}
}
