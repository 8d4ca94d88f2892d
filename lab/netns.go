package lab

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// NetnsEnv is set in a process the lab has moved into its own network
// namespace; its value is the namespace's name.
const NetnsEnv = "EC2SSH_LAB_NETNS"

// InNetns reports whether this process runs in a lab namespace.
func InNetns() bool { return os.Getenv(NetnsEnv) != "" }

// NetnsSupported reports whether this machine lets the lab make network
// namespaces (root and iproute2), and why not.
func NetnsSupported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the lab's private network needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("ip not found: apt-get install iproute2")
	}
	return nil
}

// Reexec runs this same program again inside a new private network
// namespace, with its own loopback, and returns the child's exit status.
// The namespace is deleted afterwards. Every address of the lab (moto,
// the instances' sshd, the SSM stand-in) lives on that loopback, so nothing
// the lab does is seen outside, and nftables rules there drop packets the
// way a security group or network ACL does.
func Reexec() (int, error) {
	name := "ec2ssh-lab-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer DeleteNetns(name)
	if out, err := exec.Command("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", name}, os.Args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), NetnsEnv+"="+name)
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// DeleteNetns kills what still runs in the namespace and deletes it.
func DeleteNetns(name string) {
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		for _, p := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(p); err == nil {
				if proc, err := os.FindProcess(pid); err == nil {
					proc.Kill()
				}
			}
		}
	}
	exec.Command("ip", "netns", "del", name).Run()
}

// Nft applies nftables commands (one per line) in this namespace.
func Nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %v: %s", err, out)
	}
	return nil
}
