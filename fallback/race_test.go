package fallback

import "testing"

// TestRaceDecisions is every event of a race in the states that matter.
func TestRaceDecisions(t *testing.T) {
	instance := RaceState{MayRace: true, Target: true}
	address := RaceState{MayRace: true} // an address the checks may find to be an instance
	plain := RaceState{}                // a host that is not raced
	tunnel := RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true}
	tests := []struct {
		name string
		s    RaceState
		ev   RaceEvent
		want RaceActions
	}{
		{"instance, slow TCP: the checks wait for the race", instance, BesideDue, RaceActions{}},
		{"address, slow TCP: the checks start (they may find an instance)", address, BesideDue, RaceActions{StartChecks: true}},
		{"plain host, slow TCP: the checks start", plain, BesideDue, RaceActions{StartChecks: true}},
		{"TCP up before the checks: nothing starts", RaceState{MayRace: true, Target: true, Up: true}, BesideDue, RaceActions{}},
		{"grace passes with TCP pending: SSM starts", instance, GraceDue, RaceActions{StartSSM: true}},
		{"grace passes with TCP up: SSM waits (sshd is slow, not gone)", RaceState{MayRace: true, Target: true, Up: true}, GraceDue, RaceActions{}},
		{"grace passes, address not yet an instance: nothing to start", address, GraceDue, RaceActions{}},
		{"grace passes, not raced: nothing", plain, GraceDue, RaceActions{}},
		{"SSM already started: not twice", RaceState{MayRace: true, Target: true, SSMStarted: true}, GraceDue, RaceActions{}},
		{"found after the grace: SSM starts", RaceState{MayRace: true, GraceDue: true}, TargetFound, RaceActions{StartSSM: true}},
		{"found before the grace: SSM waits for it", address, TargetFound, RaceActions{}},
		{"found after TCP came up: SSM waits", RaceState{MayRace: true, GraceDue: true, Up: true}, TargetFound, RaceActions{}},
		{"doomed: the dial ends and SSM starts at once", instance, DialDoomed, RaceActions{CancelDirect: true, StartSSM: true}},
		{"doomed, not raced: the dial ends", plain, DialDoomed, RaceActions{CancelDirect: true}},
		{"direct failed: the checks say why", instance, DirectFailed, RaceActions{StartChecks: true}},
		{"direct failed, checks already running", RaceState{ChecksStarted: true}, DirectFailed, RaceActions{}},
		{"SSM failed with TCP pending: the checks may doom the dial", RaceState{MayRace: true, Target: true, SSMStarted: true}, SSMFailed, RaceActions{StartChecks: true}},
		{"SSM failed with TCP up: nothing", RaceState{MayRace: true, Target: true, SSMStarted: true, Up: true}, SSMFailed, RaceActions{}},
		// An endpoint in SSM's place (issue 20).
		{"SSM failed, an endpoint may carry it: look for one", tunnel, SSMFailed, RaceActions{StartChecks: true, FindEndpoint: true}},
		{"SSM failed, endpoint already known: its tunnel starts", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, Looked: true, Endpoint: true},
			SSMFailed, RaceActions{StartChecks: true, StartTunnel: true}},
		{"SSM failed, no endpoint found before: nothing more", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, Looked: true},
			SSMFailed, RaceActions{StartChecks: true}},
		{"SSM failed, endpoints not for this run (--fallback=ssm)", RaceState{MayRace: true, Target: true, SSMStarted: true}, SSMFailed, RaceActions{StartChecks: true}},
		{"SSM failed with TCP up: no endpoint either", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, Up: true}, SSMFailed, RaceActions{}},
		{"endpoint found after SSM failed: the tunnel starts", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, SSMFailed: true, Looked: true},
			EndpointReady, RaceActions{StartTunnel: true}},
		{"endpoint found with TCP up: no tunnel", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, SSMFailed: true, Looked: true, Up: true},
			EndpointReady, RaceActions{}},
		{"endpoint found, SSM still running: no second session", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, Looked: true},
			EndpointReady, RaceActions{}},
		{"tunnel already started: not twice", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, SSMFailed: true, Looked: true, TunnelStarted: true},
			EndpointReady, RaceActions{}},
		{"no endpoint: nothing", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, SSMFailed: true, Looked: true}, EndpointNone, RaceActions{}},
		{"the endpoint proved unable to reach the port: the tunnel ends", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, SSMFailed: true, Looked: true, Endpoint: true, TunnelStarted: true},
			TunnelDoomed, RaceActions{CancelTunnel: true}},
		{"the endpoint proved unable before SSM failed: no lookup, no tunnel", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, NoTunnel: true},
			SSMFailed, RaceActions{StartChecks: true}},
		{"the tunnel failed: nothing more to start", RaceState{MayRace: true, Target: true, SSMStarted: true, MayTunnel: true, SSMFailed: true, Looked: true, Endpoint: true, TunnelStarted: true},
			TunnelFailed, RaceActions{}},
	}
	for _, tt := range tests {
		_, got := Race(tt.s, tt.ev)
		if got != tt.want {
			t.Errorf("%s: Race(%+v, %v) = %+v, want %+v", tt.name, tt.s, tt.ev, got, tt.want)
		}
	}
}

// TestRaceRemembers: what a race started it does not start again, and TCP
// coming up stops SSM from starting.
func TestRaceRemembers(t *testing.T) {
	s := RaceState{MayRace: true, Target: true}
	var a RaceActions
	s, _ = Race(s, TCPUp)
	if s, a = Race(s, GraceDue); a.StartSSM {
		t.Errorf("SSM started after TCP came up")
	}
	s = RaceState{MayRace: true, Target: true}
	s, a = Race(s, GraceDue)
	if !a.StartSSM || !s.SSMStarted {
		t.Fatalf("grace due: %+v %+v", s, a)
	}
	if _, a = Race(s, DialDoomed); a.StartSSM {
		t.Errorf("SSM started twice")
	}
	s, a = Race(RaceState{}, DirectFailed)
	if _, a2 := Race(s, SSMFailed); !a.StartChecks || a2.StartChecks {
		t.Errorf("checks: first %v, again %v", a.StartChecks, a2.StartChecks)
	}
	// SSM fails, the endpoint is looked for once, and one tunnel starts.
	s = RaceState{MayRace: true, Target: true, MayTunnel: true}
	s, _ = Race(s, GraceDue)
	s, a = Race(s, SSMFailed)
	if !a.FindEndpoint || a.StartTunnel {
		t.Fatalf("SSM failed: %+v", a)
	}
	s, a = Race(s, EndpointReady)
	if !a.StartTunnel || !s.TunnelStarted {
		t.Fatalf("endpoint ready: %+v %+v", s, a)
	}
	if _, a = Race(s, EndpointReady); a.StartTunnel || a.FindEndpoint {
		t.Errorf("a second tunnel or lookup: %+v", a)
	}
}

// TestRaceEveryEvent: every event is named and decided in every state a
// race can be in (no panic, no action the state forbids).
func TestRaceEveryEvent(t *testing.T) {
	for ev := BesideDue; ev <= TunnelDoomed; ev++ {
		if ev.String() == "" {
			t.Errorf("event %d has no name", ev)
		}
		for bits := 0; bits < 1<<6; bits++ {
			s := RaceState{MayRace: bits&1 != 0, Target: bits&2 != 0, Up: bits&4 != 0, MayTunnel: bits&8 != 0, SSMFailed: bits&16 != 0, TunnelStarted: bits&32 != 0}
			_, a := Race(s, ev)
			if a.CancelTunnel && !s.TunnelStarted {
				t.Errorf("Race(%+v, %v) = %+v: cancels a tunnel never started", s, ev, a)
			}
			if a.StartTunnel && (s.Up || !s.MayTunnel || s.TunnelStarted) {
				t.Errorf("Race(%+v, %v) = %+v: a tunnel it must not start", s, ev, a)
			}
			if a.StartSSM && (!s.MayRace || s.Up && ev != DialDoomed) { // a doomed dial is ended, up or not
				t.Errorf("Race(%+v, %v) = %+v: SSM it must not start", s, ev, a)
			}
		}
	}
}
