package connect

// Mode is how ec2ssh may reach an instance, from --fallback and --via
// (SPEC.md, "The ladder"). The zero value is the whole ladder.
type Mode uint8

const (
	ModeAuto   Mode = iota // --fallback=auto (the default): direct, then whatever gets in
	ModeDirect             // --fallback=never, --via=direct: ssh(1) plus the diagnosis
	ModeSSM                // --fallback=ssm, --via=ssm: SSH over SSM from the start
	ModeEICE               // --via=eice: only through an Instance Connect Endpoint
)

var modeNames = [...]string{ModeAuto: "auto", ModeDirect: "direct", ModeSSM: "ssm", ModeEICE: "eice"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "unknown"
}

// Flag is the option that asked for m, for messages.
func (m Mode) Flag() string {
	switch m {
	case ModeDirect:
		return "--fallback=never"
	case ModeSSM:
		return "--fallback=ssm"
	case ModeEICE:
		return "--via=eice"
	}
	return "--fallback=auto"
}

// ForcesInstance reports whether the mode only makes sense for an EC2
// instance (no plain host is reached over SSM or an endpoint).
func (m Mode) ForcesInstance() bool { return m == ModeSSM || m == ModeEICE }
