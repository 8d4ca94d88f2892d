package fallback

// The race (SPEC.md, "Connecting"): a direct attempt to an instance whose
// TCP connect has not completed after a grace gets an SSM port session
// started beside it, and whichever transport first shows sshd's banner
// carries the connection. The orchestration runs the transports and the
// timers; what to do on each event is decided here, as a pure function, so
// every (state × event) is one row of a table test.
//
// When SSM cannot carry it (no agent, denied, AWS's weather) and the dial
// is still pending, an EC2 Instance Connect Endpoint tunnel may race it in
// SSM's place: the endpoint is looked up (one call) and, when one is ready
// in the instance's VPC, its tunnel starts beside the dial. So the
// endpoint-only instance is reached without waiting for every check's call
// to prove the dial doomed (issue 20). At most one AWS session runs beside
// the dial: the tunnel starts only once SSM has failed.

// RaceState is what a race knows.
type RaceState struct {
	// MayRace: the ladder asked for SSM beside the dial (Decision.Race).
	MayRace bool
	// Target: the instance is known (its id), so a session can start.
	Target bool
	// Up: the TCP connect completed; sshd's banner is awaited.
	Up bool
	// GraceDue: the race grace has passed.
	GraceDue      bool
	SSMStarted    bool
	ChecksStarted bool
	// MayTunnel: the ladder would go on to an endpoint when SSM cannot
	// carry it (--fallback=auto, an instance).
	MayTunnel bool
	// SSMFailed: the SSM session beside the dial failed.
	SSMFailed bool
	// Endpoint: a ready endpoint serves the instance's VPC; Looked: it was
	// looked for.
	Endpoint, Looked bool
	TunnelStarted    bool
	// NoTunnel: the checks proved the endpoint cannot reach the port.
	NoTunnel bool
}

// RaceEvent is something that happened during a race.
type RaceEvent int

const (
	BesideDue     RaceEvent = iota // BesideGrace passed: the checks may start beside a slow dial
	TCPUp                          // the direct TCP connect completed
	GraceDue                       // the race grace passed
	TargetFound                    // the checks found that the address is an instance
	DialDoomed                     // a check proved the direct dial cannot succeed
	DirectFailed                   // the direct attempt failed
	SSMFailed                      // the SSM attempt failed
	EndpointReady                  // the lookup found a ready endpoint for the instance
	EndpointNone                   // the lookup found none (or could not say)
	TunnelFailed                   // the endpoint's tunnel failed
	TunnelDoomed                   // a check proved the endpoint cannot reach the port
)

var raceEventNames = [...]string{"beside-due", "tcp-up", "grace-due", "target-found", "dial-doomed", "direct-failed", "ssm-failed",
	"endpoint-ready", "endpoint-none", "tunnel-failed", "tunnel-doomed"}

func (e RaceEvent) String() string { return raceEventNames[e] }

// RaceActions is what to do about an event.
type RaceActions struct {
	StartChecks  bool // start the checks (they say why, may find an instance, may prove the dial doomed)
	StartSSM     bool // start the SSM port session beside the dial
	CancelDirect bool // end the direct dial: it cannot succeed
	FindEndpoint bool // look for a ready endpoint in the instance's VPC
	StartTunnel  bool // start the endpoint's tunnel beside the dial
	CancelTunnel bool // end the tunnel: it cannot succeed
}

// Race decides what an event means for a race. The winner is not decided
// here: it is whichever transport shows the banner first.
func Race(s RaceState, ev RaceEvent) (RaceState, RaceActions) {
	var a RaceActions
	switch ev {
	case BesideDue:
		// Slow to connect: the checks may say why and may prove the dial
		// doomed. When SSM will race it, that proof gains nothing (SSM
		// starts anyway): they wait, so as not to slow the race on a small
		// machine, until a transport has won or failed.
		if !s.Up && !(s.MayRace && s.Target) {
			a.StartChecks = true
		}
	case TCPUp:
		s.Up = true
	case GraceDue:
		s.GraceDue = true
		a.StartSSM = !s.Up
	case TargetFound:
		s.Target = true
		a.StartSSM = s.GraceDue && !s.Up
	case DialDoomed:
		a.CancelDirect = true
		a.StartSSM = true // no reason to wait for the grace
	case DirectFailed:
		a.StartChecks = true // they say why (and may find an instance)
	case SSMFailed:
		// SSM cannot carry it (no agent, denied): the checks may now prove
		// the pending dial doomed rather than let it wait out TCP's timeout,
		// and an endpoint may carry it in SSM's place.
		s.SSMFailed = true
		a.StartChecks = !s.Up
		a.FindEndpoint = !s.Up && !s.Looked
		a.StartTunnel = !s.Up && s.Endpoint
	case EndpointReady:
		s.Looked, s.Endpoint = true, true
		a.StartTunnel = !s.Up && s.SSMFailed
	case EndpointNone:
		s.Looked = true
	case TunnelFailed:
	case TunnelDoomed:
		s.NoTunnel = true
		a.CancelTunnel = s.TunnelStarted
	}
	if !s.MayTunnel || !s.Target || s.NoTunnel {
		a.FindEndpoint, a.StartTunnel = false, false
	}
	if a.FindEndpoint {
		s.Looked = true
	}
	if a.StartTunnel && s.TunnelStarted {
		a.StartTunnel = false
	}
	s.TunnelStarted = s.TunnelStarted || a.StartTunnel
	if a.StartSSM && (!s.MayRace || !s.Target || s.SSMStarted) {
		a.StartSSM = false
	}
	if a.StartChecks && s.ChecksStarted {
		a.StartChecks = false
	}
	s.SSMStarted = s.SSMStarted || a.StartSSM
	s.ChecksStarted = s.ChecksStarted || a.StartChecks
	return s, a
}
