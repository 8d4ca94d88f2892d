package preflight

import (
	"strings"
	"testing"
)

// TestSourceSideAgrees: for the same facts, network-path and
// security-group name the same side of the VPC for the source, in the same
// words (issue 21: one said "inside", the other "outside", of 127.0.0.1).
func TestSourceSideAgrees(t *testing.T) {
	// Only members of sg-bastion may connect, and no interface in AWS holds
	// the source: security-group fails and says why, with the side.
	byGroupOnly := func(f *Facts) {
		f.SecurityGroups[0].Ingress = []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, Groups: []string{"sg-bastion"}}}
		f.SourceLookedUp = true
	}
	tests := []struct {
		name   string
		set    func(f *Facts)
		inside bool
	}{
		{"a client in the VPC's range dials the private address", func(f *Facts) {
			byGroupOnly(f)
			f.Address = "10.0.1.5"
			f.Source = Source{Address: "10.0.9.9", Private: true, How: "kernel route"}
		}, true},
		{"the lab's loopback client, in the VPC's range", func(f *Facts) {
			byGroupOnly(f)
			f.VPCCIDRs = []string{"127.0.0.0/8"}
			f.Instance.PrivateIP, f.Instance.Interfaces[0].PrivateIPs = "127.0.1.5", []string{"127.0.1.5"}
			f.Address = "127.0.1.5"
			f.Source = Source{Address: "127.0.0.1", Private: true, How: "kernel route"}
		}, true},
		{"a client outside the VPC dials the private address", func(f *Facts) {
			byGroupOnly(f)
			f.Address = "10.0.1.5"
			f.Source = Source{Address: "192.168.7.7", How: "kernel route"}
		}, false},
		{"its interface is in another group, outside the VPC", func(f *Facts) {
			byGroupOnly(f)
			f.Address = "10.0.1.5"
			f.Source = Source{Address: "192.168.7.7", How: "kernel route"}
			f.SourceInterfaces = []Interface{{ID: "eni-9", SecurityGroups: []string{"sg-other"}, PrivateIPs: []string{"192.168.7.7"}}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base()
			tt.set(f)
			want, other := "is inside the VPC", "outside"
			if !tt.inside {
				want, other = "is outside the VPC", "inside"
			}
			phrase := f.Source.side()
			if !strings.HasSuffix(phrase, want) {
				t.Fatalf("Source.side() = %q, want it to end %q", phrase, want)
			}
			for _, id := range []CheckID{CheckNetworkPath, CheckSecurityGroup} {
				r := result(t, f, id)
				if !strings.Contains(r.Summary, phrase) || strings.Contains(r.Summary, other) {
					t.Errorf("%s(%s) = %q, want it to say %q and never %q", id, tt.name, r.Summary, phrase, other)
				}
			}
		})
	}
}
