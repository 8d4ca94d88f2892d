package fallback

import "testing"

// TestRaceDecisions is every event of a race in the states that matter.
func TestRaceDecisions(t *testing.T) {
	instance := RaceState{MayRace: true, Target: true}
	address := RaceState{MayRace: true} // an address the checks may find to be an instance
	plain := RaceState{}                // a host that is not raced
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
}
