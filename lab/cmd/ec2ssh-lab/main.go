// Command ec2ssh-lab brings up the local lab (moto's EC2 emulator, a real
// sshd per instance, nftables rules, in a private network namespace) and
// either runs the demo (-demo) or a shell inside the lab (make lab), then
// tears it all down.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

func main() {
	demo := flag.Bool("demo", false, "run the demo script instead of a shell")
	bin := flag.String("ec2ssh", "bin/ec2ssh", "the ec2ssh binary to use")
	flag.Parse()
	if !lab.InNetns() {
		if err := lab.NetnsSupported(); err != nil {
			fmt.Fprintln(os.Stderr, "ec2ssh-lab:", err)
			os.Exit(1)
		}
		code, err := lab.Reexec()
		if err != nil {
			fmt.Fprintln(os.Stderr, "ec2ssh-lab:", err)
			os.Exit(1)
		}
		os.Exit(code)
	}
	os.Exit(run(*demo, *bin))
}

func run(demo bool, bin string) int {
	abs, err := filepath.Abs(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "ec2ssh-lab-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	fmt.Fprintln(os.Stderr, "lab: starting moto, sshd and the network rules …")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	w, err := lab.StartWorld(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		return 1
	}
	defer w.Stop()
	cfg := filepath.Join(dir, "ssh_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf("Host *\n  IdentityFile %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s/known_hosts\n  StrictHostKeyChecking accept-new\n",
		w.ED25519Key, w.RSAKey, dir)), 0o600)
	env := append(os.Environ(), w.AWSEnv()...)
	env = append(env, "XDG_CACHE_HOME="+dir+"/cache", "PATH="+filepath.Dir(abs)+":"+os.Getenv("PATH"))
	if demo {
		return runDemo(abs, cfg, env)
	}
	var names []string
	for n := range w.Instances {
		names = append(names, n)
	}
	fmt.Printf("\nThe lab is up. In this shell, ec2ssh talks to it:\n  export AWS_ENDPOINT_URL=%s AWS_REGION=%s\n  ssh_config: -F %s\n\nInstances (Name tags): %s\nTry:  ec2ssh -F %s healthy\n      ec2ssh -F %s --diagnose sg-no-22\nExit the shell to tear the lab down.\n\n",
		w.MotoURL, lab.Region, cfg, strings.Join(names, " "), cfg, cfg)
	sh := exec.Command("bash", "--norc", "-i")
	sh.Env = append(env, "PS1=[ec2ssh-lab] \\w$ ", "EC2SSH_CONFIG="+cfg)
	sh.Stdin, sh.Stdout, sh.Stderr = os.Stdin, os.Stdout, os.Stderr
	sh.Run()
	return 0
}

// runDemo shows ec2ssh the way a user meets it: a healthy instance, one
// whose security group blocks port 22, one with the wrong key, one whose
// sshd is stopped.
func runDemo(bin, cfg string, env []string) int {
	steps := []struct {
		caption string
		args    []string
	}{
		{"A healthy instance, by its Name tag: the AMI's login user, the remote exit status.",
			[]string{"healthy", "echo hello from $(whoami)@$(hostname); exit 3"}},
		{"The security group has no rule for port 22. The checks find it while the dial waits, end the wait, and ec2ssh carries SSH over SSM instead.",
			[]string{"sg-no-22", "echo still got in; exit 7"}},
		{"The same instance, diagnosed.", []string{"--diagnose", "sg-no-22"}},
		{"Without the fallback (--fallback=never): the diagnosis and the fix, at once instead of after a TCP timeout.",
			[]string{"--fallback=never", "sg-no-22", "true"}},
		{"The network ACL drops the replies to the client's ephemeral ports (NACLs are stateless).", []string{"--diagnose", "nacl-egress"}},
		{"The instance's key pair is not one of the local keys: a one-time key pushed with EC2 Instance Connect.",
			[]string{"wrong-key", "echo in as $(whoami) with a one-time key"}},
		{"sshd is stopped: the command runs through SSM, stdout, stderr and exit status intact.",
			[]string{"sshd-stopped", "echo out; echo err >&2; exit 5"}},
		{"Two instances share a Name tag: ec2ssh lists them and asks for the id.", []string{"twin", "true"}},
		{"As JSON, for scripts.", []string{"--diagnose", "--json", "no-profile"}},
	}
	for _, s := range steps {
		fmt.Printf("\n\033[1m# %s\033[0m\n$ ec2ssh %s\n", s.caption, quote(s.args))
		cmd := exec.Command(bin, append([]string{"-F", cfg}, s.args...)...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		start := time.Now()
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		fmt.Printf("(exit %d, %.1fs)\n", code, time.Since(start).Seconds())
	}
	return 0
}

func quote(args []string) string {
	var out []string
	for _, a := range args {
		if strings.ContainsAny(a, " $;()") {
			a = "'" + a + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}
