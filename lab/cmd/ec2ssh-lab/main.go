// Command ec2ssh-lab brings up the local lab (moto's EC2 emulator, a real
// sshd per instance, nftables rules, in a private network namespace) and
// either runs the demo (-demo) or a shell inside the lab (make lab), then
// tears it all down.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
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

// transcriptFile, with -demo, is where the stable transcript goes.
var transcriptFile = flag.String("transcript", "", "with -demo: also write the stable transcript (the README's) to this file")

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
	cfg, env := lab.DemoEnv(w, dir, abs, os.Environ())
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

// runDemo runs the demo's scenes (lab.Demo); with -transcript it also
// writes the stable transcript the README shows.
func runDemo(bin, cfg string, env []string) int {
	var transcript strings.Builder
	if err := lab.Demo(io.MultiWriter(os.Stdout, &transcript), bin, cfg, env, false); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	if *transcriptFile != "" {
		if slow := lab.Slow(transcript.String()); slow != "" {
			fmt.Fprintf(os.Stderr, "demo: the stand-ins were too slow for the checks' budget (%s): the transcript is not written; run it again on a quieter machine\n", slow)
			return 1
		}
		if err := os.WriteFile(*transcriptFile, []byte(lab.Stabilise(transcript.String())), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
	}
	return 0
}
