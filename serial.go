package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

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

func runSerial(ctx context.Context, args *connect.Args, cfg *connect.Config, env *connect.Env, stdin, stdout, stderr *os.File) int {
	if args.RemoteCommand() != "" || args.NoCommand || args.StdioFwd != "" || args.Subsystem {
		return report(stderr, failure.Configf("run it as: ec2ssh --serial INSTANCE (then type on the console)",
			"the serial console is a terminal: it takes no command, -N, -W or -s"), args.Quiet)
	}
	side := newEC2Side(args, env)
	t, err := side.locate(ctx, cfg.HostName, true)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	if t == nil {
		return report(stderr, &failure.Error{Kind: failure.Config, Msg: preflight.Sanitize(cfg.HostName) + " is not an EC2 instance, so it has no serial console",
			Hint: "give an instance id or Name tag"}, args.Quiet)
	}
	a, err := side.client(ctx)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	if err := serialPreconditions(ctx, a, t); err != nil {
		return report(stderr, err, args.Quiet)
	}
	signer, err := fallback.SerialConsoleKey(ctx, fallback.NewInstanceConnect(a.Config), t.ID)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	host := fallback.SerialConsoleHost(a.Region())
	// The console's key is recorded under its own name, however it is
	// reached (a HostName or ProxyJump in ssh_config).
	argv := []string{"-l", t.ID + ".port0", "-o", "IdentityFile=none", "-o", "IdentityAgent=none", "-o", "PubkeyAuthentication=yes",
		"-o", "PreferredAuthentications=publickey", "-o", "HostKeyAlias=" + host}
	if args.ConfigFile != "" {
		argv = append([]string{"-F", args.ConfigFile}, argv...)
	}
	sargs, err := connect.ParseArgs(append(argv, host))
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	for _, s := range args.Settings { // the user's own -o (host key policy, …), after ours
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
		return report(stderr, err, args.Quiet)
	}
	scfg.LogLevel = cfg.LogLevel
	creds, err := connect.LoadCredentials(scfg, nil, env.Debug)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	defer creds.Close()
	creds.Prepend(signer)
	hk := connect.NewHostKeys(scfg, env.Prompter, env.Log)
	hk.PublishedAt = fallback.SerialConsoleFingerprintsURL
	if fp := fallback.SerialConsoleFingerprint(a.Region()); fp != "" {
		hk.Published = []string{fp}
		env.Debug("debug1: ec2ssh: serial console of %s at %s; AWS publishes its host key as %s", t.ID, host, fp)
	} else {
		env.Debug("debug1: ec2ssh: serial console of %s at %s; no published host key for %s is known here: known_hosts decides", t.ID, host, a.Region())
	}
	client, err := connect.Dial(ctx, scfg, creds, hk, nil, env)
	if err != nil {
		if failure.KindOf(err) == failure.HostKeyUnknown && len(hk.Published) == 0 {
			err = &failure.Error{Kind: failure.HostKeyUnknown, Msg: err.Error(),
				Hint: "compare it with AWS's published fingerprint for " + a.Region() + " (" + fallback.SerialConsoleFingerprintsURL + "), then connect with -o StrictHostKeyChecking=accept-new once"}
		}
		return report(stderr, err, args.Quiet)
	}
	defer client.Close()
	if !args.Quiet {
		env.Log("ec2ssh: serial console of %s: the instance's own terminal (press Enter for its prompt; ~. ends this session)", t)
	}
	status, err := connect.Run(ctx, client, &connect.Session{}, connect.Stdio{In: stdin, InFile: stdin, Out: stdout, Err: stderr}, env.Log)
	if err != nil {
		return report(stderr, err, args.Quiet)
	}
	return status
}

// serialPreconditions: access enabled for the account, a running Nitro
// instance. An API that cannot be asked (denied) is left to the push,
// which fails with its own reason.
func serialPreconditions(ctx context.Context, a *preflight.AWS, t *target) error {
	st, err := a.EC2.GetSerialConsoleAccessStatus(ctx, &ec2.GetSerialConsoleAccessStatusInput{})
	if err == nil && !aws.ToBool(st.SerialConsoleAccessEnabled) {
		return &failure.Error{Kind: failure.AWSAuth, Msg: "EC2 serial console access is disabled for this account in " + a.Region(),
			Hint: "an administrator can enable it: aws ec2 enable-serial-console-access --region " + a.Region() + " (ec2ssh does not change account settings)"}
	}
	in := t.Instance
	if in == nil {
		if in, err = a.Resolve(ctx, t.ID); err != nil || in == nil {
			return err
		}
	}
	if !in.State.Running() {
		return &failure.Error{Kind: failure.InstanceState, Msg: fmt.Sprintf("%s is %s: its serial console needs it running", t, string(in.State)),
			Hint: "start it: aws ec2 start-instances --instance-ids " + t.ID}
	}
	if in.Type != "" {
		out, err := a.EC2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(in.Type)}})
		if err == nil && len(out.InstanceTypes) == 1 {
			it := out.InstanceTypes[0]
			if it.Hypervisor != "nitro" && !aws.ToBool(it.BareMetal) {
				return &failure.Error{Kind: failure.InstanceState, Msg: fmt.Sprintf("%s is a %s, not a Nitro instance type: it has no serial console", t, in.Type),
					Hint: "the serial console needs a Nitro instance type (t3, m5, c6i, …)"}
			}
		}
	}
	return nil
}
