package fallback

import (
	"testing"

	"github.com/ec2ssh/ec2ssh/failure"
)

func TestLadderFirstStep(t *testing.T) {
	tests := []struct {
		name string
		s    Situation
		want Decision
	}{
		{"plain host", Situation{Mode: "auto"}, Decision{Step: Direct}},
		{"instance: direct, SSM raced beside it", Situation{Mode: "auto", Instance: true, Raceable: true}, Decision{Step: Direct, Race: SSMPort}},
		{"instance through a jump host: no race", Situation{Mode: "auto", Instance: true}, Decision{Step: Direct}},
		{"never: no race", Situation{Mode: "never", Instance: true, Raceable: true}, Decision{Step: Direct}},
		{"agent offline: no race", Situation{Mode: "auto", Instance: true, Raceable: true, Agent: AgentOffline}, Decision{Step: Direct}},
		{"stopped: no race", Situation{Mode: "auto", Instance: true, Raceable: true, State: "stopped"}, Decision{Step: Direct}},
		{"--fallback=ssm", Situation{Mode: "ssm", Instance: true}, Decision{Step: SSMPort}},
		{"--fallback=ssm, not an instance", Situation{Mode: "ssm"}, Decision{Step: Stop}},
		{"--via=eice", Situation{Mode: "eice", Instance: true, Endpoint: true}, Decision{Step: EICE}},
		{"--via=eice, not an instance", Situation{Mode: "eice"}, Decision{Step: Stop}},
	}
	for _, tt := range tests {
		got := Next(tt.s)
		if got.Step != tt.want.Step || got.Race != tt.want.Race {
			t.Errorf("%s: Next = %v (race %v), want %v (race %v)", tt.name, got.Step, got.Race, tt.want.Step, tt.want.Race)
		}
	}
}

// TestLadderOverEveryKind decides every failure kind after every rung: a
// new kind without a decision fails here.
func TestLadderOverEveryKind(t *testing.T) {
	want := map[Step]map[failure.Kind]Step{
		Direct: {
			failure.Unreachable: SSMPort, failure.Refused: SSMPort, failure.NoBanner: SSMPort, failure.DNS: SSMPort,
			failure.AuthRejected:   InstanceConnect,
			failure.HostKeyChanged: Stop, failure.HostKeyUnknown: Stop, failure.Algorithms: Stop, failure.AWSAuth: Stop,
			failure.InstanceState: Stop, failure.Config: Stop, failure.Canceled: Stop, failure.Unknown: Stop,
		},
		SSMPort: {
			failure.Refused: LookInside, failure.SessionEnded: LookInside, failure.AuthRejected: InstanceConnect,
			failure.Unreachable: Stop, failure.NoBanner: Stop, failure.DNS: Stop, failure.HostKeyChanged: Stop, failure.HostKeyUnknown: Stop,
			failure.Algorithms: Stop, failure.AWSAuth: Stop, failure.InstanceState: Stop, failure.Config: Stop, failure.Canceled: Stop, failure.Unknown: Stop,
		},
		InstanceConnect: {
			failure.Refused:     SSMShell,
			failure.Unreachable: Stop, failure.NoBanner: Stop, failure.DNS: Stop, failure.AuthRejected: Stop, failure.HostKeyChanged: Stop,
			failure.HostKeyUnknown: Stop, failure.Algorithms: Stop, failure.AWSAuth: Stop, failure.InstanceState: Stop, failure.Config: Stop,
			failure.Canceled: Stop, failure.Unknown: Stop,
		},
		SSMShell: {},
		EICE: {
			failure.AuthRejected: InstanceConnect,
			failure.Refused:      Stop, failure.Unreachable: Stop, failure.NoBanner: Stop, failure.DNS: Stop, failure.HostKeyChanged: Stop,
			failure.HostKeyUnknown: Stop, failure.Algorithms: Stop, failure.AWSAuth: Stop, failure.InstanceState: Stop, failure.Config: Stop,
			failure.Canceled: Stop, failure.Unknown: Stop,
		},
	}
	for step, byKind := range want {
		for _, k := range failure.Kinds {
			tried := []Attempt{{Step: step, Kind: k}}
			if step == InstanceConnect {
				tried = []Attempt{{Step: SSMPort, Kind: failure.AuthRejected}, {Step: InstanceConnect, Kind: k}}
			}
			got := Next(Situation{Mode: "auto", Instance: true, Raceable: true, Tried: tried})
			w, ok := byKind[k]
			if !ok {
				w = Stop
			}
			if got.Step != w {
				t.Errorf("after %v failed with %v: Next = %v, want %v", step, k, got.Step, w)
			}
		}
	}
}

// TestLadderSilentPort: an SSM port session that got nothing from the port
// (the real agent's basic port session ends so when sshd is down, with no
// ConnectToPortError) leads to a look inside, and only what it finds leads
// to the shell rung (issue 28).
func TestLadderSilentPort(t *testing.T) {
	ended := []Attempt{{Direct, failure.Refused}, {SSMPort, failure.SessionEnded}}
	tests := []struct {
		name string
		s    Situation
		want Step
	}{
		{"ended: look inside first", Situation{Mode: "auto", Instance: true, Tried: ended}, LookInside},
		{"ConnectToPortError: look inside first", Situation{Mode: "auto", Instance: true, Tried: []Attempt{{SSMPort, failure.Refused}}}, LookInside},
		{"nothing listens inside: the shell rung", Situation{Mode: "auto", Instance: true, Inside: InsideRefused, Tried: ended}, SSMShell},
		{"sshd listens inside: not sshd down", Situation{Mode: "auto", Instance: true, Inside: InsideListening, Tried: ended}, Stop},
		{"sshd listens inside, endpoint ready", Situation{Mode: "auto", Instance: true, Endpoint: true, Inside: InsideListening, Tried: ended}, EICE},
		{"--fallback=ssm, sshd listens inside", Situation{Mode: "ssm", Instance: true, Endpoint: true, Inside: InsideListening, Tried: []Attempt{{SSMPort, failure.SessionEnded}}}, Stop},
		{"could not look inside", Situation{Mode: "auto", Instance: true, Endpoint: true, Inside: InsideUnknown, Tried: ended}, Stop},
		{"--proxy: no shell, no look", Situation{Mode: "auto", Instance: true, Proxy: true, Tried: ended}, Stop},
		{"forwards: no shell, no look", Situation{Mode: "auto", Instance: true, NeedsSSH: true, Tried: ended}, Stop},
		{"SSM raced beside a silent dial ended so", Situation{Mode: "auto", Instance: true, Tried: []Attempt{{SSMPort, failure.SessionEnded}, {Direct, failure.Unreachable}}}, LookInside},
		{"SSM raced, then inside refused", Situation{Mode: "auto", Instance: true, Inside: InsideRefused, Tried: []Attempt{{SSMPort, failure.SessionEnded}, {Direct, failure.Unreachable}}}, SSMShell},
		{"the shell rung once", Situation{Mode: "auto", Instance: true, Inside: InsideRefused, Tried: append(ended, Attempt{SSMShell, failure.Unknown})}, Stop},
	}
	for _, tt := range tests {
		if got := Next(tt.s); got.Step != tt.want {
			t.Errorf("%s: Next = %v (%s), want %v", tt.name, got.Step, got.Why, tt.want)
		}
	}
}

func TestLadderLimits(t *testing.T) {
	tests := []struct {
		name string
		s    Situation
		want Step
	}{
		{"never falls back", Situation{Mode: "never", Instance: true, Tried: []Attempt{{Direct, failure.Unreachable}}}, Stop},
		{"a plain host does not fall back", Situation{Mode: "auto", Tried: []Attempt{{Direct, failure.Unreachable}}}, Stop},
		{"a stopped instance does not fall back", Situation{Mode: "auto", Instance: true, State: "stopped", Tried: []Attempt{{Direct, failure.Unreachable}}}, Stop},
		{"an offline agent does not carry SSM", Situation{Mode: "auto", Instance: true, Agent: AgentOffline, Tried: []Attempt{{Direct, failure.Unreachable}}}, Stop},
		{"SSM raced and failed is not tried again", Situation{Mode: "auto", Instance: true, Tried: []Attempt{{SSMPort, failure.Unreachable}, {Direct, failure.Unreachable}}}, Stop},
		{"Instance Connect once", Situation{Mode: "auto", Instance: true, Tried: []Attempt{{Direct, failure.AuthRejected}, {InstanceConnect, failure.AuthRejected}}}, Stop},
		{"--proxy has no shell rung", Situation{Mode: "auto", Instance: true, Proxy: true, Tried: []Attempt{{Direct, failure.Refused}, {SSMPort, failure.Refused}}}, Stop},
		{"--proxy has no Instance Connect", Situation{Mode: "auto", Instance: true, Proxy: true, Tried: []Attempt{{Direct, failure.AuthRejected}}}, Stop},
		{"forwards need SSH", Situation{Mode: "auto", Instance: true, NeedsSSH: true, Tried: []Attempt{{Direct, failure.Refused}, {SSMPort, failure.Refused}}}, Stop},
		{"the shell rung", Situation{Mode: "auto", Instance: true, Inside: InsideRefused, Tried: []Attempt{{Direct, failure.Refused}, {SSMPort, failure.Refused}}}, SSMShell},
		{"--fallback=ssm, refused inside", Situation{Mode: "ssm", Instance: true, Inside: InsideRefused, Tried: []Attempt{{SSMPort, failure.Refused}}}, SSMShell},
		// The endpoint: after SSM cannot carry the connection.
		{"agent offline, endpoint ready", Situation{Mode: "auto", Instance: true, Agent: AgentOffline, Endpoint: true, Tried: []Attempt{{Direct, failure.Unreachable}}}, EICE},
		{"SSM raced and failed, endpoint ready", Situation{Mode: "auto", Instance: true, Endpoint: true, Tried: []Attempt{{SSMPort, failure.AWSAuth}, {Direct, failure.Unreachable}}}, EICE},
		{"SSM denied, endpoint ready", Situation{Mode: "auto", Instance: true, Endpoint: true, Tried: []Attempt{{Direct, failure.Unreachable}, {SSMPort, failure.AWSAuth}}}, EICE},
		{"--fallback=ssm stays on SSM", Situation{Mode: "ssm", Instance: true, Endpoint: true, Tried: []Attempt{{SSMPort, failure.Unreachable}}}, Stop},
		{"the endpoint once", Situation{Mode: "auto", Instance: true, Endpoint: true, Agent: AgentOffline, Tried: []Attempt{{Direct, failure.Unreachable}, {EICE, failure.Unreachable}}}, Stop},
		{"keys refused through the endpoint", Situation{Mode: "auto", Instance: true, Endpoint: true, Tried: []Attempt{{EICE, failure.AuthRejected}}}, InstanceConnect},
		{"no endpoint, nothing more", Situation{Mode: "auto", Instance: true, Agent: AgentOffline, Tried: []Attempt{{Direct, failure.Unreachable}}}, Stop},
	}
	for _, tt := range tests {
		if got := Next(tt.s); got.Step != tt.want {
			t.Errorf("%s: Next = %v (%s), want %v", tt.name, got.Step, got.Why, tt.want)
		}
	}
}
