// Package reach is the way in: from a destination to a session. It
// composes the leaves — connect (SSH and ssh_config), preflight (what AWS
// and the network say) and fallback (the ladder's decisions, SSM, EC2
// Instance Connect and its endpoints) — in the order SPEC.md gives:
// resolve, race the direct dial with SSM while the checks run beside it,
// climb the ladder, run the session; and the modes built on the same
// pieces: --proxy, --diagnose, --serial and connection sharing.
//
// Every decision is made by a pure function of the leaves
// (fallback.Next, fallback.Race, preflight's checks); this package only
// carries it out. AWS is reached through the narrow interfaces in cloud.go,
// so the way in is tested with fakes, x/crypto's own server on loopback and
// testing/synctest's fake clock, without AWS, root or the lab.
//
// Functions here return an exit status and an error; none prints an error
// or exits: main reports it, once, through failure.
package reach

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// IO is where an invocation's streams are.
type IO struct {
	Stdin, Stdout, Stderr *os.File
	// Log is where ec2ssh's own lines go: stderr, or -E's file.
	Log io.Writer
}

// Run is one invocation of ec2ssh: what it was asked, its configuration,
// its streams, and how it reaches AWS.
type Run struct {
	Argv   []string
	Args   *connect.Args
	Config *connect.Config
	Env    *connect.Env
	IO     IO
	Notes  *Notices
	// Cloud opens AWS for a profile and region; nil: the SDK's usual chain
	// (LiveCloud). Tests put fakes here.
	Cloud CloudOpener
	// Direct is the direct transport (TCP, or the ProxyCommand) to a
	// configuration's host; nil: connect.DirectTransport. Tests put
	// silent, refused and in-memory networks here.
	Direct func(*connect.Config, *connect.Env) connect.Transport
	// Self is the ec2ssh program, for what runs it again (--all, -f,
	// ControlPersist); "" for this process's own executable.
	Self string
}

// Open opens AWS in region ("" for the configured one) for this run.
func (r *Run) Open(ctx context.Context, region string) (Cloud, error) {
	return r.open(ctx, preflight.Options{Profile: r.Args.Profile, Region: region, Debug: r.Env.Debug})
}

// OpenFleet opens AWS in region for a fleet command or a region sweep: the
// SDK's adaptive retry mode, so that many calls slow down rather than fail.
func (r *Run) OpenFleet(ctx context.Context, region string) (Cloud, error) {
	return r.open(ctx, preflight.Options{Profile: r.Args.Profile, Region: region, Adaptive: true, Debug: r.Env.Debug})
}

func (r *Run) open(ctx context.Context, o preflight.Options) (Cloud, error) {
	if r.Cloud != nil {
		return r.Cloud(ctx, o)
	}
	return LiveCloud(ctx, o)
}

// Program is the ec2ssh program to run again.
func (r *Run) Program() (string, error) {
	if r.Self != "" {
		return r.Self, nil
	}
	return os.Executable()
}

// Notices writes ec2ssh's own lines to stderr under one quiet rule: -q, or
// LogLevel QUIET, FATAL or ERROR, silences them (SPEC.md, "Output").
type Notices struct {
	w     io.Writer
	quiet bool
	debug bool
}

// NewNotices writes to w as cfg's LogLevel says.
func NewNotices(w io.Writer, cfg *connect.Config) *Notices {
	return &Notices{w: w, quiet: cfg.LogLevel == "QUIET" || cfg.LogLevel == "FATAL" || cfg.LogLevel == "ERROR",
		debug: strings.HasPrefix(cfg.LogLevel, "DEBUG")}
}

// Say writes "ec2ssh: …".
func (n *Notices) Say(format string, a ...any) {
	if !n.quiet {
		fmt.Fprintf(n.w, "ec2ssh: "+format+"\n", a...)
	}
}

// Quiet reports whether ec2ssh's own lines are silenced.
func (n *Notices) Quiet() bool { return n.quiet }

// direct is the direct transport to cfg's host.
func (r *Run) direct(cfg *connect.Config) connect.Transport {
	if r.Direct != nil {
		return r.Direct(cfg, r.Env)
	}
	return connect.DirectTransport(cfg, r.Env)
}
