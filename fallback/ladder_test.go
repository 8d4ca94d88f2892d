package fallback

import (
	"testing"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/preflight"
)

func TestLadderFirstStep(t *testing.T) {
	tests := []struct {
		name string
		s    Situation
		want Decision
	}{
		{"plain host", Situation{Mode: connect.ModeAuto}, Decision{Step: Direct}},
		{"instance: direct, SSM raced beside it", Situation{Mode: connect.ModeAuto, Instance: true, Raceable: true}, Decision{Step: Direct, Race: SSMPort}},
		{"instance through a jump host: no race", Situation{Mode: connect.ModeAuto, Instance: true}, Decision{Step: Direct}},
		{"never: no race", Situation{Mode: connect.ModeDirect, Instance: true, Raceable: true}, Decision{Step: Direct}},
		{"agent offline: no race", Situation{Mode: connect.ModeAuto, Instance: true, Raceable: true, Agent: AgentOffline}, Decision{Step: Direct}},
		{"stopped: not dialled", Situation{Mode: connect.ModeAuto, Instance: true, Raceable: true, State: preflight.StateStopped}, Decision{Step: Stop}},
		{"pending: waited for", Situation{Mode: connect.ModeAuto, Instance: true, Raceable: true, State: preflight.StatePending}, Decision{Step: WaitRunning}},
		{"pending with --fallback=never: waited for too", Situation{Mode: connect.ModeDirect, Instance: true, State: preflight.StatePending}, Decision{Step: WaitRunning}},
		{"still pending after the wait: stop", Situation{Mode: connect.ModeAuto, Instance: true, State: preflight.StatePending, Waited: true}, Decision{Step: Stop}},
		{"running after the wait: direct", Situation{Mode: connect.ModeAuto, Instance: true, Raceable: true, State: preflight.StateRunning, Waited: true}, Decision{Step: Direct, Race: SSMPort}},
		{"an address that may be an instance is raced", Situation{Mode: connect.ModeAuto, MaybeInstance: true, Raceable: true}, Decision{Step: Direct, Race: SSMPort}},
		{"an address with --fallback=never is not", Situation{Mode: connect.ModeDirect, MaybeInstance: true, Raceable: true}, Decision{Step: Direct}},
		{"--fallback=ssm", Situation{Mode: connect.ModeSSM, Instance: true}, Decision{Step: SSMPort}},
		{"--fallback=ssm, not an instance", Situation{Mode: connect.ModeSSM}, Decision{Step: Stop}},
		{"--via=eice", Situation{Mode: connect.ModeEICE, Instance: true, Endpoint: true}, Decision{Step: EICE}},
		{"--via=eice, not an instance", Situation{Mode: connect.ModeEICE}, Decision{Step: Stop}},
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
			failure.InstanceState: Stop, failure.Config: Stop, failure.Canceled: Stop, failure.Unknown: Stop, failure.SessionEnded: Stop,
		},
		SSMPort: {
			failure.Refused: SSMShell, failure.AuthRejected: InstanceConnect,
			// The real agent's basic port session ends without a word when
			// sshd refuses: the instance is asked.
			failure.NoBanner: LookInside, failure.SessionEnded: LookInside,
			// The agent's handshake race: one more session.
			failure.Unknown:     SSMPort,
			failure.Unreachable: Stop, failure.DNS: Stop, failure.HostKeyChanged: Stop, failure.HostKeyUnknown: Stop,
			failure.Algorithms: Stop, failure.AWSAuth: Stop, failure.InstanceState: Stop, failure.Config: Stop, failure.Canceled: Stop,
		},
		InstanceConnect: { // over SSM, after its keys were refused
			failure.Refused:  SSMShell,
			failure.NoBanner: LookInside, failure.SessionEnded: LookInside,
			failure.Unreachable: Stop, failure.DNS: Stop, failure.AuthRejected: Stop, failure.HostKeyChanged: Stop,
			failure.HostKeyUnknown: Stop, failure.Algorithms: Stop, failure.AWSAuth: Stop, failure.InstanceState: Stop, failure.Config: Stop,
			failure.Canceled: Stop, failure.Unknown: InstanceConnect, // the handshake race again: the same key once more
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
				tried = []Attempt{{Step: SSMPort, Kind: failure.AuthRejected}, {Step: InstanceConnect, Via: SSMPort, Kind: k}}
			}
			got := Next(Situation{Mode: connect.ModeAuto, Instance: true, Raceable: true, Tried: tried})
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

func TestLadderLimits(t *testing.T) {
	tests := []struct {
		name string
		s    Situation
		want Step
	}{
		{"never falls back", Situation{Mode: connect.ModeDirect, Instance: true, Tried: []Attempt{{Step: Direct, Kind: failure.Unreachable}}}, Stop},
		{"a plain host does not fall back", Situation{Mode: connect.ModeAuto, Tried: []Attempt{{Step: Direct, Kind: failure.Unreachable}}}, Stop},
		{"a stopped instance does not fall back", Situation{Mode: connect.ModeAuto, Instance: true, State: preflight.StateStopped, Tried: []Attempt{{Step: Direct, Kind: failure.Unreachable}}}, Stop},
		{"an offline agent does not carry SSM", Situation{Mode: connect.ModeAuto, Instance: true, Agent: AgentOffline, Tried: []Attempt{{Step: Direct, Kind: failure.Unreachable}}}, Stop},
		{"SSM raced and failed is not tried again", Situation{Mode: connect.ModeAuto, Instance: true, Tried: []Attempt{{Step: SSMPort, Kind: failure.Unreachable}, {Step: Direct, Kind: failure.Unreachable}}}, Stop},
		{"Instance Connect once", Situation{Mode: connect.ModeAuto, Instance: true, Tried: []Attempt{{Step: Direct, Kind: failure.AuthRejected}, {Step: InstanceConnect, Kind: failure.AuthRejected}}}, Stop},
		{"--proxy has no shell rung", Situation{Mode: connect.ModeAuto, Instance: true, Proxy: true, Tried: []Attempt{{Step: Direct, Kind: failure.Refused}, {Step: SSMPort, Kind: failure.Refused}}}, Stop},
		{"--proxy has no Instance Connect", Situation{Mode: connect.ModeAuto, Instance: true, Proxy: true, Tried: []Attempt{{Step: Direct, Kind: failure.AuthRejected}}}, Stop},
		{"forwards need SSH", Situation{Mode: connect.ModeAuto, Instance: true, NeedsSSH: true, Tried: []Attempt{{Step: Direct, Kind: failure.Refused}, {Step: SSMPort, Kind: failure.Refused}}}, Stop},
		{"the shell rung", Situation{Mode: connect.ModeAuto, Instance: true, Tried: []Attempt{{Step: Direct, Kind: failure.Refused}, {Step: SSMPort, Kind: failure.Refused}}}, SSMShell},
		{"--fallback=ssm, refused inside", Situation{Mode: connect.ModeSSM, Instance: true, Tried: []Attempt{{Step: SSMPort, Kind: failure.Refused}}}, SSMShell},
		// The endpoint: after SSM cannot carry the connection.
		{"agent offline, endpoint ready", Situation{Mode: connect.ModeAuto, Instance: true, Agent: AgentOffline, Endpoint: true, Tried: []Attempt{{Step: Direct, Kind: failure.Unreachable}}}, EICE},
		{"SSM raced and failed, endpoint ready", Situation{Mode: connect.ModeAuto, Instance: true, Endpoint: true, Tried: []Attempt{{Step: SSMPort, Kind: failure.AWSAuth}, {Step: Direct, Kind: failure.Unreachable}}}, EICE},
		{"SSM denied, endpoint ready", Situation{Mode: connect.ModeAuto, Instance: true, Endpoint: true, Tried: []Attempt{{Step: Direct, Kind: failure.Unreachable}, {Step: SSMPort, Kind: failure.AWSAuth}}}, EICE},
		{"--fallback=ssm stays on SSM", Situation{Mode: connect.ModeSSM, Instance: true, Endpoint: true, Tried: []Attempt{{Step: SSMPort, Kind: failure.Unreachable}}}, Stop},
		{"the endpoint once", Situation{Mode: connect.ModeAuto, Instance: true, Endpoint: true, Agent: AgentOffline, Tried: []Attempt{{Step: Direct, Kind: failure.Unreachable}, {Step: EICE, Kind: failure.Unreachable}}}, Stop},
		{"keys refused through the endpoint", Situation{Mode: connect.ModeAuto, Instance: true, Endpoint: true, Tried: []Attempt{{Step: EICE, Kind: failure.AuthRejected}}}, InstanceConnect},
		// The look inside, after a port session ended without a banner.
		{"sshd refuses inside: the shell rung", Situation{Mode: connect.ModeAuto, Instance: true, Looked: true, Inside: InsideRefuses,
			Tried: []Attempt{{Step: Direct, Kind: failure.Refused}, {Step: SSMPort, Kind: failure.NoBanner}}}, SSMShell},
		{"sshd listens inside: not sshd, so no shell", Situation{Mode: connect.ModeAuto, Instance: true, Looked: true, Inside: InsideListening,
			Tried: []Attempt{{Step: Direct, Kind: failure.Refused}, {Step: SSMPort, Kind: failure.NoBanner}}}, Stop},
		{"sshd listens inside, endpoint ready", Situation{Mode: connect.ModeAuto, Instance: true, Looked: true, Inside: InsideListening, Endpoint: true,
			Tried: []Attempt{{Step: Direct, Kind: failure.Refused}, {Step: SSMPort, Kind: failure.NoBanner}}}, EICE},
		{"the look said nothing: no shell", Situation{Mode: connect.ModeAuto, Instance: true, Looked: true,
			Tried: []Attempt{{Step: Direct, Kind: failure.Refused}, {Step: SSMPort, Kind: failure.NoBanner}}}, Stop},
		{"--proxy does not look", Situation{Mode: connect.ModeAuto, Instance: true, Proxy: true,
			Tried: []Attempt{{Step: Direct, Kind: failure.Refused}, {Step: SSMPort, Kind: failure.NoBanner}}}, Stop},
		{"forwards do not look", Situation{Mode: connect.ModeAuto, Instance: true, NeedsSSH: true,
			Tried: []Attempt{{Step: Direct, Kind: failure.Refused}, {Step: SSMPort, Kind: failure.NoBanner}}}, Stop},
		{"an offline agent is not asked", Situation{Mode: connect.ModeAuto, Instance: true, Agent: AgentOffline,
			Tried: []Attempt{{Step: SSMPort, Kind: failure.NoBanner}}}, Stop},
		// A race that SSM won: what failed after ran over SSM.
		{"raced over SSM, keys refused: Instance Connect over SSM", Situation{Mode: connect.ModeAuto, Instance: true,
			Tried: []Attempt{{Step: Direct, Via: SSMPort, Kind: failure.AuthRejected}}}, InstanceConnect},
		{"raced over SSM, refused inside: the shell rung", Situation{Mode: connect.ModeAuto, Instance: true,
			Tried: []Attempt{{Step: Direct, Via: SSMPort, Kind: failure.Refused}}}, SSMShell},
		{"raced over SSM, handshake died: one more session", Situation{Mode: connect.ModeAuto, Instance: true,
			Tried: []Attempt{{Step: Direct, Via: SSMPort, Kind: failure.Unknown}}}, SSMPort},
		{"the handshake over SSM died twice: stop", Situation{Mode: connect.ModeAuto, Instance: true,
			Tried: []Attempt{{Step: SSMPort, Kind: failure.Unknown}, {Step: SSMPort, Kind: failure.Unknown}}}, Stop},
		{"a dial cut short by a starting instance, which runs now: again", Situation{Mode: connect.ModeAuto, Instance: true, Waited: true,
			State: preflight.StateRunning, Tried: []Attempt{{Step: Direct, Kind: failure.InstanceState}}}, Direct},
		{"found pending after the dial: waited for", Situation{Mode: connect.ModeAuto, Instance: true, State: preflight.StatePending,
			Tried: []Attempt{{Step: Direct, Kind: failure.InstanceState}}}, WaitRunning},
		{"SSM raced beside a silent dial, its session ended: look inside", Situation{Mode: connect.ModeAuto, Instance: true,
			Tried: []Attempt{{Step: SSMPort, Kind: failure.SessionEnded}, {Step: Direct, Kind: failure.Unreachable}}}, LookInside},
		{"... and sshd is down inside: the shell rung", Situation{Mode: connect.ModeAuto, Instance: true, Looked: true, Inside: InsideRefuses,
			Tried: []Attempt{{Step: SSMPort, Kind: failure.SessionEnded}, {Step: Direct, Kind: failure.Unreachable}}}, SSMShell},
		{"no endpoint, nothing more", Situation{Mode: connect.ModeAuto, Instance: true, Agent: AgentOffline, Tried: []Attempt{{Step: Direct, Kind: failure.Unreachable}}}, Stop},
	}
	for _, tt := range tests {
		if got := Next(tt.s); got.Step != tt.want {
			t.Errorf("%s: Next = %v (%s), want %v", tt.name, got.Step, got.Why, tt.want)
		}
	}
}

// TestLadderRepeatsTheOneTimeKey: the second SSM session after a handshake
// that died carries the one-time key again, rather than the keys that were
// refused.
func TestLadderRepeatsTheOneTimeKey(t *testing.T) {
	d := Next(Situation{Mode: connect.ModeAuto, Instance: true, Tried: []Attempt{{Step: SSMPort, Kind: failure.AuthRejected},
		{Step: InstanceConnect, Via: SSMPort, Kind: failure.Unknown}}})
	if d.Step != InstanceConnect || d.Via != SSMPort {
		t.Errorf("Next = %v via %v (%s), want %v via %v", d.Step, d.Via, d.Why, InstanceConnect, SSMPort)
	}
}

// TestLadderEveryStepHasAName: messages and -v name every step.
func TestLadderEveryStepHasAName(t *testing.T) {
	for _, s := range Steps {
		if s.String() == "" {
			t.Errorf("step %d has no name", int(s))
		}
	}
}
