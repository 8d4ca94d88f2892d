// Command ec2ssh-bench measures ec2ssh against OpenSSH on the local lab
// (make bench): the same sshd, the same ssh_config, runs alternated, medians
// and ratios (this machine is noisy; ratios are what compare). It writes
// the table to BENCHMARKS.md and says which goals are met.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ec2ssh/ec2ssh/fleet"
	"github.com/ec2ssh/ec2ssh/lab"
	"github.com/ec2ssh/ec2ssh/preflight"
)

var (
	bin      = flag.String("ec2ssh", "bin/ec2ssh", "the ec2ssh binary")
	out      = flag.String("o", "BENCHMARKS.md", "where to write the table")
	runs     = flag.Int("n", 11, "runs of each latency measurement")
	plugin   = flag.String("stock-plugin", "bin/stock-plugin", "the stock session-manager-plugin (built from its packages)")
	bigMiB   = flag.Int("mib", 64, "MiB for the native throughput runs")
	ssmMiB   = flag.Int("ssm-mib", 16, "MiB for the SSM throughput runs")
	stockUp  = flag.Int("stock-up-mib", 4, "MiB for the stock plugin's upload (about 0.7 MB/s)")
	only     = flag.String("only", "", "run only these sections (comma-separated: connect,native,blocked,calls,ssm,ssmrtt,ssmcmd,kms,hostile,startup,sharing,fleet,runcommand,eice,names,weather); the file is not written")
	rttMiB   = flag.Int("rtt-mib", 64, "MiB each way for the SSM rows at several round trips (ssmrtt)")
	rtts     = flag.String("rtts", "0,50,200", "the round trips (ms) the SSM stand-in adds for the ssmrtt rows")
	rttDown  = flag.Bool("rtt-down", true, "ssmrtt: run the downloads (about 95 s each at 64 MiB: the agent's pace)")
	rttRef   = flag.Bool("rtt-stock", true, "ssmrtt: run the stock plugin beside ec2ssh")
	baseline = flag.String("baseline", "", "ssmrtt: an earlier ec2ssh binary whose upload through the data channel at 0 ms this one's is compared with (make bench builds round 2's)")
)

// section reports whether a section runs.
func section(name string) bool {
	return *only == "" || strings.Contains(","+*only+",", ","+name+",")
}

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

	var ours, theirs []time.Duration
	var rss int64
	oursPC := "ProxyCommand=" + e.bin + " --fallback=ssm --proxy %h %p"
	target := "root@" + healthy.ID
	ssmPayload := filepath.Join(dir, "ssm-payload")
	writeRandom(ssmPayload, *ssmMiB<<20)

	if section("connect") {
		// 1. Connect and run true.
		ours, theirs = alternate(*runs, func() time.Duration { return e.time(e.bin, "-F", cfg, healthy.IP, "true") },
			func() time.Duration { return e.time("ssh", "-F", cfg, healthy.IP, "true") })
		say(ratioRow("connect + true, by address", ours, theirs, 1.05, false))
		e.time(e.bin, "-F", cfg, "healthy", "true") // warm the cache
		ours, theirs = alternate(*runs, func() time.Duration { return e.time(e.bin, "-F", cfg, "root@healthy", "true") },
			func() time.Duration { return e.time("ssh", "-F", cfg, healthy.IP, "true") })
		say(ratioRow("connect + true, by Name tag, warm cache", ours, theirs, 1.10, false))
		ours, theirs = alternate(*runs, func() time.Duration { return e.time(e.bin, "-F", cfg, "--no-cache", "root@healthy", "true") },
			func() time.Duration { return e.time("ssh", "-F", cfg, healthy.IP, "true") })
		say(ratioRow("connect + true, by Name tag, cold (--no-cache)", ours, theirs, 0, false))

	}

	if section("native") {
		// 2. Native throughput.
		payload := filepath.Join(dir, "payload")
		writeRandom(payload, *bigMiB<<20)
		n := float64(*bigMiB << 20)
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

	}

	if section("blocked") {
		// 3. Port 22 blocked: first byte through the fallback, against an open
		// OpenSSH connect. Provable: the security group blocks it (the checks
		// cut the dial short). Unprovable: a host firewall AWS's configuration
		// does not show (SSM is raced beside the pending dial).
		for _, blocked := range []struct{ name, what string }{
			{"sg-no-22", "provable block (security group)"},
			{"host-firewall", "unprovable block (host firewall)"},
		} {
			ours, theirs = alternate(*runs, func() time.Duration { return e.firstByte(e.bin, "-F", cfg, "root@"+blocked.name, "echo x") },
				func() time.Duration { return e.firstByte("ssh", "-F", cfg, healthy.IP, "echo x") })
			r := ratioRow("port 22 blocked, "+blocked.what+": first output via SSM, vs an open OpenSSH connect", ours, theirs, 1.5, false)
			r.theirs += " (OpenSSH to the blocked port: ~130 s TCP timeout)"
			say(r)
		}

	}

	if section("calls") {
		// 4. A healthy connection asks AWS nothing: a counting endpoint stands
		// in front of every AWS service.
		calls := e.awsCalls(func(env []string) {
			for range *runs {
				e.runEnv(env, e.bin, "-F", cfg, "root@"+healthy.IP, "true")
			}
		})
		say(row{what: fmt.Sprintf("AWS calls made by %d healthy connections (by address, AWS configured)", *runs), ours: fmt.Sprint(calls), theirs: "-", ratio: "-", goal: "0", met: yes(calls == 0)})

	}

	if section("ssm") {
		// 5. The SSM data channel. Ours runs against the stand-in agent as the
		// real agent behaves (its races, its 1 KiB / 1 ms reads); the stock
		// plugin, which loses its first bytes to the handshake race about one
		// session in four and acknowledges no duplicate, against the same agent
		// with the races off (a reference stand-in), so that its runs finish.
		if _, err := os.Stat(e.plugin); err == nil {
			ref, err := w.StartReferenceSSM()
			if err != nil {
				return err
			}
			stockEnv := append(append([]string(nil), e.environ...), fmt.Sprintf("AWS_ENDPOINT_URL_SSM=http://127.0.0.1:%d", ref.Port()))
			stockPC := "ProxyCommand=" + e.plugin + " --ssh %h %p"
			stockPayload := filepath.Join(dir, "stock-payload")
			writeRandom(stockPayload, *stockUp<<20)
			// Each transfer's own connect time (a session running "true",
			// median of 3) is taken off, so the rows compare the data channels.
			oc, sc := alternate(3, func() time.Duration { return e.time("ssh", "-F", cfg, "-o", oursPC, target, "true") },
				func() time.Duration {
					d, _ := e.timeInEnv(stockEnv, "", "ssh", "-F", cfg, "-o", stockPC, target, "true")
					return d
				})
			oursConn, stockConn := median(oc), median(sc)
			before := w.SSM().AgentTotals()
			oursUp, _ := e.timeIn(ssmPayload, "ssh", "-F", cfg, "-o", oursPC, target, "cat > /dev/null")
			after := w.SSM().AgentTotals()
			theirsUp, _ := e.timeInEnv(stockEnv, stockPayload, "ssh", "-F", cfg, "-o", stockPC, target, "cat > /dev/null")
			oursUp, theirsUp = max(oursUp-oursConn, time.Millisecond), max(theirsUp-stockConn, time.Millisecond)
			say(throughputRow(fmt.Sprintf("SSM upload (MB/s; ours %d MiB, stock %d MiB)", *ssmMiB, *stockUp), 0, []time.Duration{oursUp}, []time.Duration{theirsUp}, 10,
				float64(*ssmMiB<<20), float64(*stockUp<<20)))
			frames, dups := after.InputFrames-before.InputFrames, after.DuplicateInput-before.DuplicateInput
			pct := 100 * float64(dups) / float64(max(frames, 1))
			say(row{what: fmt.Sprintf("spurious resends in the %d MiB SSM upload (frames the agent already had)", *ssmMiB), ours: fmt.Sprintf("%d of %d (%.3f%%)", dups, frames, pct),
				theirs: "-", ratio: "-", goal: "≤ 0.1%", met: yes(pct <= 0.1)})
			dcmd := fmt.Sprintf("head -c %d /dev/zero", *ssmMiB<<20)
			oursDown, _ := e.timeIn("", "ssh", "-F", cfg, "-o", oursPC, target, dcmd)
			theirsDown, _ := e.timeInEnv(stockEnv, "", "ssh", "-F", cfg, "-o", stockPC, target, dcmd)
			oursDown, theirsDown = max(oursDown-oursConn, time.Millisecond), max(theirsDown-stockConn, time.Millisecond)
			say(throughputRow(fmt.Sprintf("SSM download, %d MiB (MB/s; the agent reads 1 KiB per ms)", *ssmMiB), float64(*ssmMiB<<20), []time.Duration{oursDown}, []time.Duration{theirsDown}, 0.95))
			ref.Stop()
		} else {
			say(row{what: "SSM vs the stock plugin", ours: "-", theirs: "stock plugin not built", goal: "run make bench"})
		}

		// 6. Connecting over SSM, 20 times: the worst against the median (the
		// agent's handshake race and its rejection of early input must cost no
		// slow retry).
		var conns []time.Duration
		for range 20 {
			conns = append(conns, e.time("ssh", "-F", cfg, "-o", oursPC, target, "true"))
		}
		worst, med := slices.Max(conns), median(conns)
		say(row{what: "connect + true over SSM, 20 sessions: worst vs median", ours: ms(worst), theirs: ms(med) + " (median)",
			ratio: fmt.Sprintf("%.2f×", float64(worst)/float64(med)), goal: "≤ 1.20×", met: yes(float64(worst)/float64(med) <= 1.2)})

	}

	if section("ssmrtt") {
		// 5b. The SSM data channel far away: the stand-in adds half a round
		// trip each way to every data channel frame. Wall time of the whole
		// ssh command, session set-up included, sha256 checked, against the
		// stock plugin in the same run (one run each: the stock plugin
		// moves 64 MiB in about 95 s either way).
		if err := e.ssmRTT(dir, target, healthy.IP, oursPC, say); err != nil {
			return err
		}
	}

	if section("ssmcmd") {
		// 6b. With sshd down, a command over SSM (issue 28).
		e.ssmCommand(dir, say)
	}

	if section("kms") {
		// 7. A KMS-encrypted session (the account's preferences demand it) vs a
		// plain one, the same upload.
		enc, _, err := w.StartEncryptedSSM(context.Background())
		if err != nil {
			return err
		}
		encEnv := append(append([]string(nil), e.environ...), fmt.Sprintf("AWS_ENDPOINT_URL_SSM=http://127.0.0.1:%d", enc.Port()))
		plain, _ := e.timeIn(ssmPayload, "ssh", "-F", cfg, "-o", oursPC, target, "cat > /dev/null")
		encrypted, _ := e.timeInEnv(encEnv, ssmPayload, "ssh", "-F", cfg, "-o", oursPC, target, "cat > /dev/null")
		enc.Stop()
		say(throughputRow(fmt.Sprintf("SSM upload, %d MiB: KMS-encrypted vs plain (MB/s)", *ssmMiB), float64(*ssmMiB<<20), []time.Duration{encrypted}, []time.Duration{plain}, 0))

	}

	if section("hostile") {
		// 8. A hostile agent: peak RSS of ec2ssh --proxy against each misdeed.
		for _, mode := range []string{"ahead", "flood", "oversize", "silent"} {
			rss, took, code, why := e.hostile(mode, healthy.ID)
			say(row{what: fmt.Sprintf("hostile agent (%s): peak RSS of ec2ssh --proxy, and how it ended", hostileWhat[mode]),
				ours: fmt.Sprintf("%.1f MiB", float64(rss)/1024), theirs: fmt.Sprintf("exit %d after %v%s", code, took.Round(100*time.Millisecond), why),
				ratio: "-", goal: "≤ 64 MiB", met: yes(rss <= 64<<10)})
		}

	}

	if section("sharing") {
		// 10. Connection sharing: an Ansible playbook of ten tasks with
		// Ansible's default options (ControlMaster=auto, ControlPersist=60s,
		// no pipelining), with ec2ssh and with OpenSSH as its ssh; then the
		// same playbook through the SSM fallback, with sharing and without.
		if err := e.ansible(dir, healthy.IP, say); err != nil {
			return err
		}
	}

	if section("eice") {
		// 12. Through an EC2 Instance Connect Endpoint (--via=eice) against an
		// open direct OpenSSH connect, and 64 MiB each way through it.
		ours, theirs = alternate(*runs, func() time.Duration { return e.time(e.bin, "-F", cfg, "--via=eice", "root@healthy", "true") },
			func() time.Duration { return e.time("ssh", "-F", cfg, healthy.IP, "true") })
		say(ratioRow("connect + true through an EC2 Instance Connect Endpoint, vs an open OpenSSH connect", ours, theirs, 0, false))
		// The ladder finding the endpoint by itself: a private instance
		// with no SSM agent and port 22 unreachable (eice-only), no --via.
		ours, theirs = alternate(*runs, func() time.Duration { return e.time(e.bin, "-F", cfg, "root@eice-only", "true") },
			func() time.Duration { return e.time("ssh", "-F", cfg, healthy.IP, "true") })
		say(ratioRow("no agent, port 22 unreachable: connect + true found through the endpoint by the ladder, vs an open OpenSSH connect", ours, theirs, 0, false))
		payload := filepath.Join(dir, "eice-payload")
		writeRandom(payload, *bigMiB<<20)
		n := float64(*bigMiB << 20)
		ours, theirs = alternate(2, func() time.Duration {
			d, _ := e.timeIn(payload, e.bin, "-F", cfg, "--via=eice", "root@healthy", "cat > /dev/null")
			return d
		}, func() time.Duration {
			d, _ := e.timeIn(payload, "ssh", "-F", cfg, healthy.IP, "cat > /dev/null")
			return d
		})
		say(throughputRow(fmt.Sprintf("%d MiB upload through the endpoint vs native OpenSSH (MB/s)", *bigMiB), n, ours, theirs, 0))
		down := fmt.Sprintf("head -c %d /dev/zero", *bigMiB<<20)
		ours, theirs = alternate(2, func() time.Duration {
			d, _ := e.timeIn("", e.bin, "-F", cfg, "--via=eice", "root@healthy", down)
			return d
		},
			func() time.Duration { d, _ := e.timeIn("", "ssh", "-F", cfg, healthy.IP, down); return d })
		say(throughputRow(fmt.Sprintf("%d MiB download through the endpoint vs native OpenSSH (MB/s)", *bigMiB), n, ours, theirs, 0))
	}

	if section("weather") {
		// 13. AWS weather on the calls a session does not need (weather.go).
		e.weatherRows(w, say)
	}

	if section("fleet") {
		// 11. One command on the ten Fleet=lab instances: ec2ssh --all
		// against a shell loop of OpenSSH over their addresses (ConnectTimeout
		// 5 s, or the blocked ones would take the TCP timeout each).
		var addrs []string
		for _, name := range []string{"healthy", "sg-no-22", "sg-range", "wrong-key", "stopped", "no-profile", "imported-rsa", "nacl-egress", "host-firewall", "sshd-stopped"} {
			addrs = append(addrs, w.Instances[name].IP)
		}
		var oursRan, theirsRan int
		ours, theirs = alternate(3, func() time.Duration {
			start := time.Now()
			out, _ := e.output(e.bin, "-F", cfg, "--all", "tag:Fleet=lab", "--", "echo ran")
			oursRan = strings.Count(out, "| ran")
			return time.Since(start)
		}, func() time.Duration {
			start := time.Now()
			loop := fmt.Sprintf("for a in %s; do ssh -F %s -o ConnectTimeout=5 -n root@$a 'echo ran'; done", strings.Join(addrs, " "), cfg)
			out, _ := e.output("sh", "-c", loop)
			theirsRan = strings.Count(out, "ran")
			return time.Since(start)
		})
		r := ratioRow("one command on 10 instances: ec2ssh --all vs a shell loop of OpenSSH", ours, theirs, 1.0, false)
		r.ours += fmt.Sprintf(" (ran on %d)", oursRan)
		r.theirs += fmt.Sprintf(" (ran on %d)", theirsRan)
		say(r)
	}

	if section("runcommand") {
		// 13. --all --via run-command at scale: 1,000 agent-only managed
		// nodes in the SSM stand-in, the engine through the SDK's clients,
		// calls counted at the stand-in.
		rows, err := runCommandRows(w)
		if err != nil {
			return err
		}
		for _, r := range rows {
			say(r)
		}
	}

	if section("names") {
		// 12. --list at fleet size against the AWS CLI (names.go).
		if err := e.names(say); err != nil {
			return err
		}
	}

	if section("startup") {
		// 9. Memory and start-up.
		say(row{what: fmt.Sprintf("peak RSS of ec2ssh during a %d MiB transfer", *bigMiB), ours: fmt.Sprintf("%.1f MiB", float64(rss)/1024), theirs: "-", ratio: "-"})
		ours, theirs = alternate(*runs, func() time.Duration { return e.time(e.bin, "-V") }, func() time.Duration { return e.time("ssh", "-V") })
		say(ratioRow("start-up: -V", ours, theirs, 0, false))

	}

	if *only != "" {
		return nil
	}
	return write(rows)
}

// ssmRTT runs the ssmrtt rows: for each round trip, ssh HOST sha256sum
// (upload) and ssh HOST cat FILE (download) through ec2ssh and through the
// stock plugin, and the set-up alone (ssh HOST true); then the upload
// through the data channel alone, timed where it arrives.
func (e *env) ssmRTT(dir, target, addr, oursPC string, say func(row)) error {
	if _, err := os.Stat(e.plugin); err != nil {
		say(row{what: "SSM at several round trips vs the stock plugin", ours: "-", theirs: "stock plugin not built", goal: "run make bench"})
		return nil
	}
	ref, err := e.w.StartReferenceSSM()
	if err != nil {
		return err
	}
	defer ref.Stop()
	defer e.w.SSM().SetDelay(0)
	stockEnv := append(append([]string(nil), e.environ...), fmt.Sprintf("AWS_ENDPOINT_URL_SSM=http://127.0.0.1:%d", ref.Port()))
	stockPC := "ProxyCommand=" + e.plugin + " --ssh %h %p"
	size := *rttMiB << 20
	payload := filepath.Join(dir, "rtt-payload")
	writeRandom(payload, size)
	b, _ := os.ReadFile(payload)
	want := fmt.Sprintf("%x", sha256.Sum256(b))
	b = nil
	ssh := func(environ []string, pc, stdin, command string) (time.Duration, string) {
		return e.hashOut(environ, stdin, "ssh", "-F", e.cfg, "-o", pc, target, command)
	}
	rate := func(d time.Duration, sum string) string {
		if sum == "-" {
			return "-"
		}
		if sum != want {
			return "altered"
		}
		return fmt.Sprintf("%.2f", float64(size)/d.Seconds()/1e6)
	}
	up := map[int]time.Duration{}
	alone := map[int]float64{}
	for _, f := range strings.Split(*rtts, ",") {
		var rtt int
		fmt.Sscan(f, &rtt)
		delay := time.Duration(rtt) * time.Millisecond / 2
		e.w.SSM().SetDelay(delay)
		ref.SetDelay(delay)
		// Without the stock plugin (-rtt-stock=false) its side shows 0.
		stock := func(stdin, command string) (time.Duration, string) {
			if !*rttRef {
				return time.Nanosecond, "-"
			}
			return ssh(stockEnv, stockPC, stdin, command)
		}
		oc, sc := alternate(3, func() time.Duration { d, _ := ssh(e.environ, oursPC, "", "true"); return d },
			func() time.Duration { d, _ := stock("", "true"); return d })
		r := ratioRow(fmt.Sprintf("SSM at %d ms round trip: set-up, ssh HOST true (median of 3)", rtt), oc, sc, 0, false)
		if !*rttRef {
			r.theirs, r.ratio = "-", "-"
		}
		say(r)

		before := e.w.SSM().AgentTotals()
		od, osum := ssh(e.environ, oursPC, payload, "sha256sum | cut -c1-64")
		after := e.w.SSM().AgentTotals()
		sd, ssum := stock(payload, "sha256sum | cut -c1-64")
		up[rtt] = od
		osum, ssum = strings.TrimSpace(osum), strings.TrimSpace(ssum)
		r = throughputRow(fmt.Sprintf("SSM upload, %d MiB at %d ms round trip (MB/s; wall time of ssh HOST sha256sum, set-up included)", *rttMiB, rtt), float64(size), []time.Duration{od}, []time.Duration{sd}, 0)
		r.ours, r.theirs = rate(od, osum), rate(sd, ssum)
		if !*rttRef {
			r.ratio = "-"
		}
		say(r)
		frames, dups := after.InputFrames-before.InputFrames, after.DuplicateInput-before.DuplicateInput
		pct := 100 * float64(dups) / float64(max(frames, 1))
		say(row{what: "spurious resends in that upload (frames the agent already had)", ours: fmt.Sprintf("%d of %d (%.3f%%)", dups, frames, pct),
			theirs: "-", ratio: "-", goal: "≤ 0.1%", met: yes(pct <= 0.1)})

		id := target[strings.IndexByte(target, '@')+1:]
		mbs, sum, err := e.channelUpload(e.bin, id, addr, payload, size)
		if err != nil {
			return err
		}
		r = row{what: fmt.Sprintf("SSM upload through the data channel alone, %d MiB at %d ms round trip (MB/s, first byte to last where it arrives; ec2ssh --proxy to a TCP port)", *rttMiB, rtt),
			ours: fmt.Sprintf("%.2f", mbs), theirs: "-", ratio: "-"}
		if sum != want {
			r.ours, r.met = "altered", "no"
		} else {
			alone[rtt] = mbs
		}
		say(r)
		if rtt == 0 && *baseline != "" {
			if err := e.againstBaseline(id, addr, payload, want, size, say); err != nil {
				return err
			}
		}

		if !*rttDown {
			continue
		}
		od, osum = ssh(e.environ, oursPC, "", "cat "+payload)
		sd, ssum = stock("", "cat "+payload)
		r = throughputRow(fmt.Sprintf("SSM download, %d MiB at %d ms round trip (MB/s; wall time of ssh HOST cat, set-up included; the agent reads 1 KiB per ms)", *rttMiB, rtt), float64(size), []time.Duration{od}, []time.Duration{sd}, 0.95)
		r.ours, r.theirs = rate(od, osum), rate(sd, ssum)
		if osum != want || (*rttRef && ssum != want) {
			r.met = "no"
		}
		if !*rttRef {
			r.ratio, r.met = "-", ""
		}
		say(r)
	}
	if near, far := up[0], up[200]; near > 0 && far > 0 {
		r := float64(near) / float64(far)
		say(row{what: fmt.Sprintf("SSM upload, %d MiB: at 200 ms round trip vs at 0 ms (ec2ssh; SSH itself carries at most sshd's channel window, 2 MiB, per round trip: 10.5 MB/s at 200 ms)", *rttMiB), ours: fmt.Sprintf("%.2f MB/s", float64(size)/far.Seconds()/1e6),
			theirs: fmt.Sprintf("%.2f MB/s (at 0 ms)", float64(size)/near.Seconds()/1e6), ratio: fmt.Sprintf("%.2f×", r), goal: "≥ 0.80× (not reachable through sshd's window)", met: yes(r >= 0.8)})
	}
	if near, far := alone[0], alone[200]; near > 0 && far > 0 {
		say(row{what: fmt.Sprintf("SSM upload through the data channel alone, %d MiB: at 200 ms round trip vs at 0 ms (ec2ssh)", *rttMiB), ours: fmt.Sprintf("%.2f MB/s", far),
			theirs: fmt.Sprintf("%.2f MB/s (at 0 ms)", near), ratio: fmt.Sprintf("%.2f×", far/near), goal: "≥ 0.80×", met: yes(far >= 0.8*near)})
	}
	return nil
}

// againstBaseline compares the upload through the data channel near by
// with an earlier ec2ssh's (round 2's fixed window of 512 frames): the
// median of three runs each, in turn.
func (e *env) againstBaseline(id, addr, payload, want string, size int, say func(row)) error {
	var ours, theirs []float64
	for range 3 {
		for _, b := range []string{e.bin, *baseline} {
			mbs, sum, err := e.channelUpload(b, id, addr, payload, size)
			if err != nil {
				return err
			}
			if sum != want {
				say(row{what: "SSM upload through the data channel alone at 0 ms, vs the baseline", ours: "altered by " + b, met: "no"})
				return nil
			}
			if b == e.bin {
				ours = append(ours, mbs)
			} else {
				theirs = append(theirs, mbs)
			}
		}
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	o, t := ours[1], theirs[1]
	say(row{what: fmt.Sprintf("SSM upload through the data channel alone, %d MiB at 0 ms round trip: this ec2ssh vs %s (MB/s, median of 3; ≥ 0.95× is no slower within this machine's run-to-run noise)", size>>20, filepath.Base(*baseline)),
		ours: fmt.Sprintf("%.2f", o), theirs: fmt.Sprintf("%.2f", t), ratio: fmt.Sprintf("%.2f×", o/t), goal: "≥ 0.95×", met: yes(o >= 0.95*t)})
	return nil
}

// channelUpload sends a file through ec2ssh's SSM data channel alone
// (ec2ssh --fallback=ssm --proxy to a TCP port the lab's agent connects
// to on the instance's address, no SSH inside) and returns the rate from
// the first byte's arrival to the last's, and the sha256 of what arrived:
// the data channel's own rate, set-up left out.
func (e *env) channelUpload(bin, id, addr, file string, size int) (float64, string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, "", err
	}
	defer l.Close()
	type got struct {
		took time.Duration
		sum  string
	}
	done := make(chan got, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- got{}
			return
		}
		defer c.Close()
		first := make([]byte, 1)
		if _, err := io.ReadFull(c, first); err != nil {
			done <- got{}
			return
		}
		start := time.Now()
		h := sha256.New()
		h.Write(first)
		n, _ := io.CopyN(h, c, int64(size-1))
		took := time.Since(start)
		if n != int64(size-1) {
			done <- got{took, "short"}
			return
		}
		done <- got{took, fmt.Sprintf("%x", h.Sum(nil))}
	}()
	f, err := os.Open(file)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	cmd := exec.Command(bin, "--fallback=ssm", "--proxy", id, fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	cmd.Env, cmd.Stdin = e.environ, f
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return 0, "", err
	}
	var g got
	select {
	case g = <-done:
	case <-time.After(5 * time.Minute):
		g.sum = "timed out"
	}
	// The sink has closed the port: the agent ends the session and
	// ec2ssh leaves by itself.
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	if g.took <= 0 {
		fmt.Fprintf(os.Stderr, "ec2ssh --proxy: %s\n", errb.String())
		return 0, g.sum, nil
	}
	return float64(size) / g.took.Seconds() / 1e6, g.sum, nil
}

// hashOut runs a command with stdin from a file (or none) and returns its
// wall time and the sha256 of its stdout, or, when the output is short (a
// checksum printed by the remote side), the output itself.
func (e *env) hashOut(environ []string, stdin, name string, args ...string) (time.Duration, string) {
	cmd := exec.Command(name, args...)
	cmd.Env = environ
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return 0, err.Error()
		}
		defer f.Close()
		cmd.Stdin = f
	}
	h := sha256.New()
	var head bytes.Buffer
	var n int64
	cmd.Stdout = writerFunc(func(p []byte) (int, error) {
		if head.Len() < 128 {
			head.Write(p[:min(len(p), 128-head.Len())])
		}
		n += int64(len(p))
		return h.Write(p)
	})
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %q: %v %s\n", name, args, err, errb.String())
	}
	if n <= 128 {
		return d, head.String()
	}
	return d, fmt.Sprintf("%x", h.Sum(nil))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// ansible runs the sharing rows.
func (e *env) ansible(dir, addr string, say func(row)) error {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		return fmt.Errorf("ansible-playbook is not installed (lab/deps.sh bench installs it): %v", err)
	}
	play := filepath.Join(dir, "play.yml")
	var tasks strings.Builder
	for i := range 10 {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&tasks, "    - command: echo task-%d\n", i)
		case 1:
			fmt.Fprintf(&tasks, "    - copy: {content: \"task %d\\n\", dest: /tmp/ec2ssh-bench-ansible-%d}\n", i, i)
		default:
			fmt.Fprintf(&tasks, "    - stat: {path: /tmp}\n")
		}
	}
	os.WriteFile(play, []byte("- hosts: all\n  gather_facts: false\n  tasks:\n"+tasks.String()), 0o644)
	run := func(host, ssh string, extra ...string) time.Duration {
		inv := filepath.Join(dir, "inventory")
		os.WriteFile(inv, []byte(fmt.Sprintf("target ansible_host=%s ansible_user=root ansible_ssh_extra_args='-F %s' ansible_python_interpreter=/usr/bin/python3\n", host, e.cfg)), 0o644)
		env := append(append([]string(nil), e.environ...), "ANSIBLE_SSH_EXECUTABLE="+ssh, "ANSIBLE_HOST_KEY_CHECKING=False",
			"ANSIBLE_CONTROL_PATH_DIR="+filepath.Join(dir, "cp"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "ansible-tmp"), "ANSIBLE_NOCOLOR=1")
		env = append(env, extra...)
		start := time.Now()
		cmd := exec.Command("ansible-playbook", "-i", inv, play)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "ansible-playbook (%s, %s): %v\n%s\n", ssh, host, err, out)
		}
		took := time.Since(start)
		// Each run starts without a master: end the one ControlPersist left.
		exec.Command("pkill", "-f", filepath.Join(dir, "cp")).Run()
		time.Sleep(100 * time.Millisecond)
		return took
	}
	ours, theirs := alternate(3, func() time.Duration { return run(addr, e.bin) }, func() time.Duration { return run(addr, "ssh") })
	say(ratioRow("Ansible playbook of 10 tasks, default options: ec2ssh vs OpenSSH as its ssh", ours, theirs, 1.0, false))
	// Through the SSM fallback (port 22 blocked): Ansible's own sftp cannot
	// reach the instance without the master, so both runs pipe files
	// through ssh.
	piped := "ANSIBLE_SSH_TRANSFER_METHOD=piped"
	shared, unshared := alternate(2, func() time.Duration { return run("sg-no-22", e.bin, piped) },
		func() time.Duration { return run("sg-no-22", e.bin, piped, "ANSIBLE_SSH_ARGS=-o ControlMaster=no") })
	say(ratioRow("Ansible playbook of 10 tasks over the SSM fallback: with sharing vs without", shared, unshared, 0, false))
	return nil
}

var hostileWhat = map[string]string{
	"ahead":    "300 MiB of frames ahead of order",
	"flood":    "300 MiB of output, stdout never read",
	"oversize": "one 300 MiB message",
	"silent":   "input never acknowledged",
}

// hostile runs ec2ssh --proxy against a hostile agent for up to a minute
// and returns its peak RSS (KiB), how long it ran, its exit status and its
// error line (", said: …"), if it printed one.
func (e *env) hostile(mode, instance string) (int64, time.Duration, int, string) {
	port, _ := lab.FreePort("127.0.0.1")
	h, err := lab.StartHostile(port, mode)
	if err != nil {
		return 0, 0, -1, ""
	}
	defer h.Stop()
	cmd := exec.Command(e.bin, "--fallback=ssm", "--proxy", instance, "22")
	var stderr bytes.Buffer
	cmd.Env = append(append([]string(nil), e.environ...), fmt.Sprintf("AWS_ENDPOINT_URL_SSM=http://127.0.0.1:%d", port))
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	defer inW.Close()
	defer outR.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, &stderr
	if mode != "flood" {
		go io.Copy(io.Discard, outR) // only the flood's reader stalls
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, -1, ""
	}
	inR.Close()
	outW.Close()
	if mode == "silent" {
		inW.Write([]byte("SSH-2.0-client\r\n"))
	}
	done, sampled := make(chan struct{}), make(chan struct{})
	var hwm int64
	go func() {
		defer close(sampled)
		for {
			hwm = max(hwm, vmHWM(cmd.Process.Pid))
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	if mode == "flood" || mode == "ahead" {
		// Give it the whole flood's worth of time, then end it.
		time.AfterFunc(15*time.Second, func() { cmd.Process.Signal(syscall.SIGTERM) })
	}
	cmd.Wait()
	close(done)
	<-sampled
	why := ""
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(l, "ec2ssh: error: ") {
			why = ", said: " + strings.TrimPrefix(l, "ec2ssh: error: ")
			break
		}
	}
	return hwm, time.Since(start), cmd.ProcessState.ExitCode(), why
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(l, "VmHWM: %d kB", &kb); err == nil {
			return kb
		}
	}
	return 0
}

// awsCalls counts the connections made to AWS while fn runs: every
// AWS_ENDPOINT_URL points at a counting listener.
func (e *env) awsCalls(fn func(env []string)) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return -1
	}
	defer ln.Close()
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	url := "http://" + ln.Addr().String()
	env := append(append([]string(nil), e.environ...), "AWS_ENDPOINT_URL="+url, "AWS_ENDPOINT_URL_SSM="+url,
		"AWS_ENDPOINT_URL_EC2_INSTANCE_CONNECT="+url, "XDG_CACHE_HOME="+os.TempDir()+"/ec2ssh-bench-nocache")
	fn(env)
	return int(n.Load())
}

// output runs a command with the lab's environment and returns its stdout.
func (e *env) output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = e.environ
	out, err := cmd.Output()
	return string(out), err
}

func (e *env) runEnv(env []string, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Run()
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
		r.goal = fmt.Sprintf("≥ %.2f×", goal)
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
	return e.timeInEnv(e.environ, stdin, name, args...)
}

func (e *env) timeInEnv(environ []string, stdin, name string, args ...string) (time.Duration, int64) {
	cmd := exec.Command(name, args...)
	cmd.Env = environ
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
	b.WriteString("\nThe SSM rows put OpenSSH's ssh over each data channel client as its ProxyCommand: `ec2ssh --fallback=ssm --proxy %h %p` against the stock session-manager-plugin (built from its own packages). ec2ssh's sessions run against the lab's agent as the real agent behaves (the handshake race, early input rejected, acknowledgements racing its bookkeeping, 1 KiB reads with 1 ms pauses); the stock plugin's run against the same agent with the two races off, because it loses its first bytes to the handshake race about one session in four and stalls on a duplicate it does not acknowledge. The stock plugin's upload is measured on fewer MiB because it runs at about 0.7 MB/s. Each SSM transfer's own connect time (the median of three sessions running `true` through the same ProxyCommand) is taken off its time, so those rows compare the data channels; the native rows include the connect. The hostile rows run `ec2ssh --fallback=ssm --proxy` against an agent that misbehaves (lab/hostile.go); the flooding ones are ended after 15 s; the silent one ends itself (no acknowledgement for 45 s). The SSM rows at several round trips (ssmrtt) add half the round trip to every data channel frame each way in the stand-in (ours and the reference alike, the API calls not); they time the whole `ssh HOST sha256sum` or `ssh HOST cat FILE`, session set-up included, one run each, and check the sha256 of what arrived. Beside them, the upload through the data channel alone (`ec2ssh --fallback=ssm --proxy ID PORT` to a TCP sink on the instance's address) is timed where it arrives, first byte to last, so that neither the set-up nor SSH's own window (sshd's 2 MiB per round trip) is in it; at 0 ms it is also run, three times each in turn, through an earlier ec2ssh (make bench builds round 2's, commit 9a72e54).\n")
	return os.WriteFile(*out, []byte(b.String()), 0o644)
}

// runCommandRows runs the Run Command engine over 1,000 agent-only nodes:
// the calls it makes (by tag, by ids), and its wall time at two
// MaxConcurrency values with every call 20 ms away, against N round trips.
func runCommandRows(w *lab.World) ([]row, error) {
	for _, kv := range append(w.AWSEnv(), "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull) {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	const region, n = "us-west-2", 1000
	ids, stop := w.AgentOnlyFleet(region, n, map[string]string{"Scale": "1k"})
	defer stop()
	var ins []*preflight.Instance
	for _, id := range ids {
		ins = append(ins, &preflight.Instance{ID: id, State: preflight.StateRunning, Region: region, Tags: map[string]string{"Scale": "1k"}})
	}
	s := w.SSM()
	run := func(filter, parallel, command string) (time.Duration, map[string]int, error) {
		f, _ := preflight.ParseFilter(filter)
		s.ResetRunCommandCalls()
		start := time.Now()
		code, err := fleet.Run(context.Background(), fleet.Request{Command: command, Filter: f, Parallel: parallel}, ins,
			fleet.NewDeps(context.Background(), ""), io.Discard, io.Discard)
		if err == nil && code != 0 {
			err = fmt.Errorf("run command over %s: exit %d", filter, code)
		}
		return time.Since(start), s.RunCommandCalls(), err
	}
	_, byTag, err := run("tag:Scale=1k", "100", "true")
	if err != nil {
		return nil, err
	}
	_, byIDs, err := run("tag:Scale=1*", "100", "true")
	if err != nil {
		return nil, err
	}
	var rows []row
	rows = append(rows, row{what: fmt.Sprintf("--via run-command on %d instances: SendCommand calls, by tag / by ids (ListCommandInvocations pages, DescribeInstanceInformation)", n),
		ours:   fmt.Sprintf("%d / %d (%d / %d pages; %d)", byTag["SendCommand"], byIDs["SendCommand"], byTag["ListCommandInvocations"], byIDs["ListCommandInvocations"], byIDs["DescribeInstanceInformation"]),
		theirs: "-", ratio: "-", goal: fmt.Sprintf("1 / ≤ %d", (n+49)/50), met: yes(byTag["SendCommand"] == 1 && byIDs["SendCommand"] <= (n+49)/50)})
	const rtt = 20 * time.Millisecond
	s.SetAPILatency(rtt)
	defer s.SetAPILatency(0)
	slow, _, err := run("tag:Scale=1k", "100", "sleep 0.3")
	if err != nil {
		return nil, err
	}
	fast, calls, err := run("tag:Scale=1k", "250", "sleep 0.3")
	if err != nil {
		return nil, err
	}
	total := 0
	for _, c := range calls {
		total += c
	}
	rows = append(rows, row{what: fmt.Sprintf("--via run-command, %d instances × 0.3 s, each call 20 ms away: wall at --parallel 250 vs 100 (%d calls at 250)", n, total),
		ours: ms(fast), theirs: ms(slow) + " (at 100)", ratio: fmt.Sprintf("%.2f×", float64(fast)/float64(slow)),
		goal: fmt.Sprintf("≤ 0.67×, and ≪ N × 20 ms = %v", n*rtt), met: yes(float64(fast)/float64(slow) <= 0.67 && slow < n*rtt/2)})
	return rows, nil
}
