package reach

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/ec2ssh/ec2ssh/connect"
	"github.com/ec2ssh/ec2ssh/failure"
	"github.com/ec2ssh/ec2ssh/fallback"
	"github.com/ec2ssh/ec2ssh/preflight"
)

// The EC2 serial console (--serial): the way in when sshd and the SSM
// agent are both broken. Asked for explicitly, never chosen by the ladder:
// the console is the instance's own terminal, one session at a time.
//
// Before anything is pushed: the account's serial console access, and the
// instance's type (Nitro only). Then a one-time key for port 0
// (SendSerialConsoleSSHPublicKey, 60 s) and SSH to
// <id>.port0@<the region's console endpoint>. Its host key must be the one
// AWS publishes for the region (fallback.SerialConsoleFingerprint) or one
// the user's known_hosts holds under the endpoint's name; ssh_config
// applies to that name as to any host.

// Serial is --serial: the instance's serial console over SSH.
func Serial(ctx context.Context, r *Run) (int, error) {
	args, cfg, env := r.Args, r.Config, r.Env
	if args.RemoteCommand() != "" || args.NoCommand || args.StdioFwd != "" || args.Subsystem {
		return connect.ExitSignal, failure.Configf("run it as: ec2ssh --serial INSTANCE (then type on the console)",
			"the serial console is a terminal: it takes no command, -N, -W or -s")
	}
	env.Prompter = connect.OpenPrompter(cfg.BatchMode)
	s := newSide(r)
	t, err := s.locate(ctx, cfg.HostName, true, resolveOpts{})
	if err != nil {
		return connect.ExitSignal, err
	}
	if t == nil {
		return connect.ExitSignal, &failure.Error{Kind: failure.Config, Msg: preflight.Sanitize(cfg.HostName) + " is not an EC2 instance, so it has no serial console",
			Hint: "give an instance id or Name tag"}
	}
	c, err := s.get(ctx)
	if err != nil {
		return connect.ExitSignal, err
	}
	if err := serialPreconditions(ctx, c, t); err != nil {
		return connect.ExitSignal, err
	}
	signer, err := c.SerialKey(ctx, t.ID)
	if err != nil {
		return connect.ExitSignal, err
	}
	scfg, err := serialConfig(r, t, fallback.SerialConsoleHost(c.Region()))
	if err != nil {
		return connect.ExitSignal, err
	}
	creds, err := connect.LoadCredentials(scfg, nil, env.Debug)
	if err != nil {
		return connect.ExitSignal, err
	}
	defer creds.Close()
	creds.Prepend(signer)
	hk := connect.NewHostKeys(scfg, env.Prompter, env.Log)
	hk.PublishedAt = fallback.SerialConsoleFingerprintsURL
	if fp := fallback.SerialConsoleFingerprint(c.Region()); fp != "" {
		hk.Published = []string{fp}
		env.Debug("debug1: ec2ssh: serial console of %s at %s; AWS publishes its host key as %s", t.ID, scfg.HostName, fp)
	} else {
		env.Debug("debug1: ec2ssh: serial console of %s at %s; no published host key for %s is known here: known_hosts decides", t.ID, scfg.HostName, c.Region())
	}
	client, err := connect.Dial(ctx, scfg, creds, hk, nil, env)
	if err != nil {
		if failure.KindOf(err) == failure.HostKeyUnknown && len(hk.Published) == 0 {
			err = &failure.Error{Kind: failure.HostKeyUnknown, Msg: err.Error(),
				Hint: "compare it with AWS's published fingerprint for " + c.Region() + " (" + fallback.SerialConsoleFingerprintsURL + "), then connect with -o StrictHostKeyChecking=accept-new once"}
		}
		return connect.ExitSignal, err
	}
	defer client.Close()
	if !args.Quiet {
		env.Log("ec2ssh: serial console of %s: the instance's own terminal (press Enter for its prompt; ~. ends this session)", t)
	}
	return connect.Run(ctx, client, &connect.Session{}, connect.Stdio{In: r.IO.Stdin, InFile: r.IO.Stdin, Out: r.IO.Stdout, Err: r.IO.Stderr}, env.Log)
}

// serialConfig is the SSH configuration for the console at host: its own
// name in ssh_config and known_hosts (however it is reached: a HostName or
// ProxyJump there), the instance's port-0 user, the one-time key only, and
// the user's own -o options (host key policy, …) after ec2ssh's.
func serialConfig(r *Run, t *Target, host string) (*connect.Config, error) {
	args := r.Args
	argv := []string{"-l", t.ID + ".port0", "-o", "IdentityFile=none", "-o", "IdentityAgent=none", "-o", "PubkeyAuthentication=yes",
		"-o", "PreferredAuthentications=publickey", "-o", "HostKeyAlias=" + host}
	if args.ConfigFile != "" {
		argv = append([]string{"-F", args.ConfigFile}, argv...)
	}
	sargs, err := connect.ParseArgs(append(argv, host))
	if err != nil {
		return nil, err
	}
	for _, s := range args.Settings {
		switch s.Key {
		case "User", "Port", "HostName", "IdentityFile", "ProxyCommand", "ProxyJump":
		default:
			sargs.Settings = append(sargs.Settings, s)
		}
	}
	sargs.TTY, sargs.NoTTY = args.TTY, args.NoTTY
	scfg, err := connect.ResolveConfig(sargs)
	if err == nil {
		err = scfg.Supported()
	}
	if err != nil {
		return nil, err
	}
	scfg.LogLevel = r.Config.LogLevel
	return scfg, nil
}

// serialPreconditions: access enabled for the account, a running Nitro
// instance. What cannot be asked (denied) is left to the push, which fails
// with its own reason.
func serialPreconditions(ctx context.Context, c Cloud, t *Target) error {
	if enabled, known := c.SerialAccess(ctx); known && !enabled {
		return &failure.Error{Kind: failure.AWSAuth, Msg: "EC2 serial console access is disabled for this account in " + c.Region(),
			Hint: "an administrator can enable it: aws ec2 enable-serial-console-access --region " + c.Region() + " (ec2ssh does not change account settings)"}
	}
	in := t.Instance
	if in == nil {
		var err error
		if in, err = c.Resolve(ctx, t.ID); err != nil || in == nil {
			return err
		}
	}
	if !in.State.Running() {
		return &failure.Error{Kind: failure.InstanceState, Msg: fmt.Sprintf("%s is %s: its serial console needs it running", t, in.State),
			Hint: "start it: aws ec2 start-instances --instance-ids " + t.ID}
	}
	if nitro, known := c.Nitro(ctx, in.Type); known && !nitro {
		return &failure.Error{Kind: failure.InstanceState, Msg: fmt.Sprintf("%s is a %s, not a Nitro instance type: it has no serial console", t, in.Type),
			Hint: "the serial console needs a Nitro instance type (t3, m5, c6i, …)"}
	}
	return nil
}

// SerialAccess is whether the account allows serial consoles in the
// region; known is false when it could not be asked.
func (c *liveCloud) SerialAccess(ctx context.Context) (enabled, known bool) {
	st, err := c.EC2.GetSerialConsoleAccessStatus(ctx, &ec2.GetSerialConsoleAccessStatusInput{})
	if err != nil {
		return false, false
	}
	return aws.ToBool(st.SerialConsoleAccessEnabled), true
}

// Nitro is whether an instance type is built on Nitro (or bare metal).
func (c *liveCloud) Nitro(ctx context.Context, instanceType string) (nitro, known bool) {
	if instanceType == "" {
		return false, false
	}
	out, err := c.EC2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(instanceType)}})
	if err != nil || len(out.InstanceTypes) != 1 {
		return false, false
	}
	it := out.InstanceTypes[0]
	return it.Hypervisor == "nitro" || aws.ToBool(it.BareMetal), true
}

// SerialKey pushes a one-time key for the serial console.
func (c *liveCloud) SerialKey(ctx context.Context, instanceID string) (ssh.Signer, error) {
	return fallback.SerialConsoleKey(ctx, fallback.NewInstanceConnect(c.Config), instanceID)
}
