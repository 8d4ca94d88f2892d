// Command ec2ssh-bench measures ec2ssh against OpenSSH on the local lab
// (make bench): the same sshd, the same ssh_config, runs alternated, medians
// and ratios (this machine is noisy; ratios are what compare). It writes
// the table to BENCHMARKS.md and says which goals are met.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

var (
	bin     = flag.String("ec2ssh", "bin/ec2ssh", "the ec2ssh binary")
	out     = flag.String("o", "BENCHMARKS.md", "where to write the table")
	runs    = flag.Int("n", 11, "runs of each latency measurement")
	plugin  = flag.String("stock-plugin", "bin/stock-plugin", "the stock session-manager-plugin (built from its packages)")
	bigMiB  = flag.Int("mib", 64, "MiB for the native throughput runs")
	ssmMiB  = flag.Int("ssm-mib", 16, "MiB for the SSM throughput runs")
	stockUp = flag.Int("stock-up-mib", 4, "MiB for the stock plugin's upload (about 0.7 MB/s)")
)

func main() {
	flag.Parse()
	if !lab.InNetns() {
		if err := lab.NetnsSupported(); err != nil {
			fmt.Fprintln(os.Stderr, "ec2ssh-bench:", err)
			os.Exit(1)
		}
		code, err := lab.Reexec()
		if err != nil {
			fmt.Fprintln(os.Stderr, "ec2ssh-bench:", err)
			os.Exit(1)
		}
		os.Exit(code)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ec2ssh-bench:", err)
		os.Exit(1)
	}
}

type row struct {
	what, ours, theirs, ratio, goal string
	met                             string // "yes", "no", "" (no goal)
}

type env struct {
	bin, plugin string
	cfg         string
	environ     []string
	w           *lab.World
}

func run() error {
	absBin, _ := filepath.Abs(*bin)
	absPlugin, _ := filepath.Abs(*plugin)
	dir, err := os.MkdirTemp("", "ec2ssh-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	w, err := lab.StartWorld(ctx, dir)
	cancel()
	if err != nil {
		return err
	}
	defer w.Stop()
	cfg := filepath.Join(dir, "ssh_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf("Host *\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n  BatchMode yes\n  LogLevel ERROR\n",
		w.ED25519Key)), 0o600)
	e := &env{bin: absBin, plugin: absPlugin, cfg: cfg, w: w,
		environ: append(append(os.Environ(), w.AWSEnv()...), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))}
	healthy := w.Instances["healthy"]
	var rows []row
	say := func(r row) {
		rows = append(rows, r)
		fmt.Fprintf(os.Stderr, "%-58s %12s %12s %8s %s\n", r.what, r.ours, r.theirs, r.ratio, r.met)
	}

	// 1. Connect and run true.
	ours, theirs := alternate(*runs, func() time.Duration { return e.time(e.bin, "-F", cfg, healthy.IP, "true") },
		func() time.Duration { return e.time("ssh", "-F", cfg, healthy.IP, "true") })
	say(ratioRow("connect + true, by address", ours, theirs, 1.05, false))
	e.time(e.bin, "-F", cfg, "healthy", "true") // warm the cache
	ours, theirs = alternate(*runs, func() time.Duration { return e.time(e.bin, "-F", cfg, "root@healthy", "true") },
		func() time.Duration { return e.time("ssh", "-F", cfg, healthy.IP, "true") })
	say(ratioRow("connect + true, by Name tag, warm cache", ours, theirs, 1.10, false))
	ours, theirs = alternate(*runs, func() time.Duration { return e.time(e.bin, "-F", cfg, "--no-cache", "root@healthy", "true") },
		func() time.Duration { return e.time("ssh", "-F", cfg, healthy.IP, "true") })
	say(ratioRow("connect + true, by Name tag, cold (--no-cache)", ours, theirs, 0, false))

	// 2. Native throughput.
	payload := filepath.Join(dir, "payload")
	writeRandom(payload, *bigMiB<<20)
	n := float64(*bigMiB << 20)
	var rss int64
	ours, theirs = alternate(3, func() time.Duration {
		d, r := e.timeIn(payload, e.bin, "-F", cfg, healthy.IP, "cat > /dev/null")
		rss = max(rss, r)
		return d
	}, func() time.Duration {
		d, _ := e.timeIn(payload, "ssh", "-F", cfg, healthy.IP, "cat > /dev/null")
		return d
	})
	say(throughputRow(fmt.Sprintf("%d MiB upload, native (MB/s)", *bigMiB), n, ours, theirs, 0.9))
	down := fmt.Sprintf("head -c %d /dev/zero", *bigMiB<<20)
	ours, theirs = alternate(3, func() time.Duration {
		d, r := e.timeIn("", e.bin, "-F", cfg, healthy.IP, down)
		rss = max(rss, r)
		return d
	}, func() time.Duration { d, _ := e.timeIn("", "ssh", "-F", cfg, healthy.IP, down); return d })
	say(throughputRow(fmt.Sprintf("%d MiB download, native (MB/s)", *bigMiB), n, ours, theirs, 0.9))

	// 3. Port 22 blocked: first byte through the fallback, against an open
	// OpenSSH connect.
	ours, theirs = alternate(*runs, func() time.Duration { return e.firstByte(e.bin, "-F", cfg, "root@sg-no-22", "echo x") },
		func() time.Duration { return e.firstByte("ssh", "-F", cfg, healthy.IP, "echo x") })
	r := ratioRow("port 22 blocked: first output byte via SSM, vs an open OpenSSH connect", ours, theirs, 3, false)
	r.theirs += " (OpenSSH to the blocked port: ~130 s TCP timeout)"
	say(r)

	// 4. SSM data channel against the stock plugin, both as OpenSSH's
	// ProxyCommand to the same instance through the same stand-in.
	oursPC := "ProxyCommand=" + e.bin + " --fallback=ssm --proxy %h %p"
	stockPC := "ProxyCommand=" + e.plugin + " --ssh %h %p"
	target := "root@" + healthy.ID
	if _, err := os.Stat(e.plugin); err == nil {
		ssmPayload := filepath.Join(dir, "ssm-payload")
		writeRandom(ssmPayload, *ssmMiB<<20)
		stockPayload := filepath.Join(dir, "stock-payload")
		writeRandom(stockPayload, *stockUp<<20)
		// Each transfer's own connect time (a session running "true",
		// median of 3) is taken off, so the rows compare the data channels.
		oc, sc := alternate(3, func() time.Duration { return e.time("ssh", "-F", cfg, "-o", oursPC, target, "true") },
			func() time.Duration { return e.time("ssh", "-F", cfg, "-o", stockPC, target, "true") })
		oursConn, stockConn := median(oc), median(sc)
		oursUp, _ := e.timeIn(ssmPayload, "ssh", "-F", cfg, "-o", oursPC, target, "cat > /dev/null")
		theirsUp, _ := e.timeIn(stockPayload, "ssh", "-F", cfg, "-o", stockPC, target, "cat > /dev/null")
		oursUp, theirsUp = max(oursUp-oursConn, time.Millisecond), max(theirsUp-stockConn, time.Millisecond)
		say(throughputRow(fmt.Sprintf("SSM upload (MB/s; ours %d MiB, stock %d MiB)", *ssmMiB, *stockUp), 0, []time.Duration{oursUp}, []time.Duration{theirsUp}, 10,
			float64(*ssmMiB<<20), float64(*stockUp<<20)))
		dcmd := fmt.Sprintf("head -c %d /dev/zero", *ssmMiB<<20)
		oursDown, _ := e.timeIn("", "ssh", "-F", cfg, "-o", oursPC, target, dcmd)
		theirsDown, _ := e.timeIn("", "ssh", "-F", cfg, "-o", stockPC, target, dcmd)
		oursDown, theirsDown = max(oursDown-oursConn, time.Millisecond), max(theirsDown-stockConn, time.Millisecond)
		say(throughputRow(fmt.Sprintf("SSM download, %d MiB (MB/s)", *ssmMiB), float64(*ssmMiB<<20), []time.Duration{oursDown}, []time.Duration{theirsDown}, 1))
	} else {
		say(row{what: "SSM vs the stock plugin", ours: "-", theirs: "stock plugin not built", goal: "run make bench"})
	}

	// 5. Memory and start-up.
	say(row{what: fmt.Sprintf("peak RSS of ec2ssh during a %d MiB transfer", *bigMiB), ours: fmt.Sprintf("%.1f MiB", float64(rss)/1024), theirs: "-", ratio: "-"})
	ours, theirs = alternate(*runs, func() time.Duration { return e.time(e.bin, "-V") }, func() time.Duration { return e.time("ssh", "-V") })
	say(ratioRow("start-up: -V", ours, theirs, 0, false))

	return write(rows)
}

func ratioRow(what string, ours, theirs []time.Duration, goal float64, _ bool) row {
	mo, mt := median(ours), median(theirs)
	r := row{what: what, ours: ms(mo), theirs: ms(mt), ratio: fmt.Sprintf("%.2f×", float64(mo)/float64(mt))}
	if goal > 0 {
		r.goal = fmt.Sprintf("≤ %.2f×", goal)
		r.met = yes(float64(mo)/float64(mt) <= goal)
	}
	return r
}

// throughputRow compares rates; sizes are given once (n) or per side.
func throughputRow(what string, n float64, ours, theirs []time.Duration, goal float64, sizes ...float64) row {
	no, nt := n, n
	if len(sizes) == 2 {
		no, nt = sizes[0], sizes[1]
	}
	ro, rt := no/median(ours).Seconds()/1e6, nt/median(theirs).Seconds()/1e6
	r := row{what: what, ours: fmt.Sprintf("%.1f", ro), theirs: fmt.Sprintf("%.1f", rt), ratio: fmt.Sprintf("%.2f×", ro/rt)}
	if goal > 0 {
		r.goal = fmt.Sprintf("≥ %.1f×", goal)
		r.met = yes(ro/rt >= goal)
	}
	return r
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// alternate runs a and b in turn n times each.
func alternate(n int, a, b func() time.Duration) (as, bs []time.Duration) {
	for i := 0; i < n; i++ {
		as = append(as, a())
		bs = append(bs, b())
	}
	return as, bs
}

func (e *env) time(name string, args ...string) time.Duration {
	d, _ := e.timeIn("", name, args...)
	return d
}

// timeIn runs the command with stdin from a file (or none), output
// discarded, and returns its wall time and peak RSS (KiB).
func (e *env) timeIn(stdin, name string, args ...string) (time.Duration, int64) {
	cmd := exec.Command(name, args...)
	cmd.Env = e.environ
	if stdin != "" {
		f, err := os.Open(stdin)
		if err == nil {
			defer f.Close()
			cmd.Stdin = f
		}
	}
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 0, 0
	}
	// Peak RSS from /proc (VmHWM of the process's own memory): wait4's
	// ru_maxrss also counts what the parent had when it forked.
	done := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var hwm int64
		for {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					var kb int64
					if _, err := fmt.Sscanf(l, "VmHWM: %d kB", &kb); err == nil && kb > hwm {
						hwm = kb
					}
				}
			}
			select {
			case <-done:
				peak <- hwm
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	d := time.Since(start)
	close(done)
	rss := <-peak
	if err != nil && !strings.Contains(name, "ssh") {
		fmt.Fprintf(os.Stderr, "%s %q: %v %s\n", name, args, err, errb.String())
	}
	return d, rss
}

// firstByte returns the time until the command's first byte of stdout.
func (e *env) firstByte(name string, args ...string) time.Duration {
	cmd := exec.Command(name, args...)
	cmd.Env = e.environ
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0
	}
	b := make([]byte, 1)
	stdout.Read(b)
	d := time.Since(start)
	io.Copy(io.Discard, stdout)
	cmd.Wait()
	return d
}

func writeRandom(path string, n int) {
	b := make([]byte, n)
	x := uint64(88172645463325252)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	os.WriteFile(path, b, 0o600)
}

func write(rows []row) error {
	var b strings.Builder
	host, _ := os.Hostname()
	cpu := ""
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(info), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	sshV, _ := exec.Command("ssh", "-V").CombinedOutput()
	fmt.Fprintf(&b, "# Benchmarks\n\nMeasured by `make bench` on %s: %s, %d cores, %s, %s; OpenSSH %s.\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, runtime.NumCPU(), cpu, runtime.Version(), strings.TrimSpace(string(sshV)))
	fmt.Fprintf(&b, "Everything runs on the local lab (moto, a real sshd per instance, the SSM stand-in) in a private network namespace; "+
		"ec2ssh and OpenSSH's ssh run alternately against the same sshd with the same ssh_config, and the median of the runs is shown. "+
		"These machines are noisy: the ratios are what compare.\n\n")
	fmt.Fprintf(&b, "| measurement | ec2ssh | OpenSSH / stock | ratio | goal | met |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.what, r.ours, r.theirs, r.ratio, r.goal, r.met)
	}
	b.WriteString("\nThe SSM rows put OpenSSH's ssh over each data channel client as its ProxyCommand: `ec2ssh --fallback=ssm --proxy %h %p` against the stock session-manager-plugin (built from its own packages) to the same stand-in agent. The stock plugin's upload is measured on fewer MiB because it runs at about 0.7 MB/s. Each SSM transfer's own connect time (the median of three sessions running `true` through the same ProxyCommand) is taken off its time, so those rows compare the data channels; the native rows include the connect.\n")
	return os.WriteFile(*out, []byte(b.String()), 0o644)
}
