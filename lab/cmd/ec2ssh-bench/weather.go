package main

import (
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// AWS weather (issue 20): the rows a session must meet whatever AWS's
// weather on the calls it does not need. They log in as the AMI's user
// (ec2-user), whose shell starts in milliseconds, on both sides: root's
// login shell on the lab machine takes seconds (pyenv), which would dilute
// every ratio.

// weatherOn puts w on every AWS call but the ones the session needs.
func weatherOn(w *lab.World, wx lab.Weather, needs ...string) {
	w.ClearWeather()
	for _, api := range needs {
		w.SetWeather(api, lab.Weather{})
	}
	w.SetWeather("*", wx)
}

// timedRun is one run: its first stdout byte, its last, and its exit, from
// its start.
type timedRun struct{ first, last, exit time.Duration }

// timeRun runs the command and notes when its output came and when it
// exited.
func (e *env) timeRun(name string, args ...string) timedRun {
	cmd := exec.Command(name, args...)
	cmd.Env = e.environ
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	var r timedRun
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r
	}
	buf := make([]byte, 4096)
	for {
		n, err := stdout.Read(buf)
		if n > 0 {
			if r.first == 0 {
				r.first = time.Since(start)
			}
			r.last = time.Since(start)
		}
		if err != nil {
			break
		}
	}
	cmd.Wait()
	r.exit = time.Since(start)
	return r
}

func (e *env) weatherRows(w *lab.World, say func(row)) {
	cfg, healthy := e.cfg, w.Instances["healthy"]
	openSSH := func() timedRun { return e.timeRun("ssh", "-F", cfg, "ec2-user@"+healthy.IP, "echo x") }
	ours := func(dest string) func() timedRun {
		return func() timedRun { return e.timeRun(e.bin, "-F", cfg, "ec2-user@"+dest, "echo x") }
	}
	pair := func(a, b func() timedRun) (as, bs []timedRun) {
		for range *runs {
			as, bs = append(as, a()), append(bs, b())
		}
		return as, bs
	}
	firsts := func(rs []timedRun) (ds []time.Duration) {
		for _, r := range rs {
			ds = append(ds, r.first)
		}
		return ds
	}
	gaps := func(rs []timedRun) (ds []time.Duration) {
		for _, r := range rs {
			ds = append(ds, r.exit-r.last)
		}
		return ds
	}
	defer w.ClearWeather()
	ssmNeeds := []string{"ec2:DescribeInstances", "ssm:StartSession"}
	eiceNeeds := []string{"ec2:DescribeInstances", "ssm:StartSession", "ssm:DescribeInstanceInformation", "ec2:DescribeInstanceConnectEndpoints"}
	for _, wx := range []struct {
		name string
		w    *lab.Weather // nil: fair
	}{
		{"fair weather", nil},
		{"every other call answering 500", &lab.Weather{Fault: lab.FaultServer}},
		{"every other call slower than its budget", &lab.Weather{Latency: time.Minute}},
	} {
		set := func(needs []string) {
			w.ClearWeather()
			if wx.w != nil {
				weatherOn(w, *wx.w, needs...)
			}
		}
		// Port 22 blocked by a host firewall (AWS's configuration cannot
		// show it): SSM races the pending dial.
		set(ssmNeeds)
		o, t := pair(ours("host-firewall"), openSSH)
		r := ratioRow("port 22 blocked (host firewall), "+wx.name+": first output via SSM, vs an open OpenSSH connect", firsts(o), firsts(t), 1.5, false)
		say(r)
		og, tg := median(gaps(o)), median(gaps(t))
		say(row{what: "port 22 blocked (host firewall), " + wx.name + ": exit after the remote command ends, over SSM vs a native OpenSSH session",
			ours: ms(og), theirs: ms(tg), ratio: fmt.Sprintf("%+.1f ms", float64((og-tg).Microseconds())/1000), goal: "≤ +100 ms", met: yes(og-tg <= 100*time.Millisecond)})
		// No agent, port 22 open only to the endpoint: the ladder finds the
		// endpoint by itself.
		set(eiceNeeds)
		o, t = pair(ours("eice-only"), openSSH)
		mo := median(firsts(o))
		say(row{what: "no agent, port 22 unreachable (eice-only), " + wx.name + ": first output through the endpoint found by the ladder, vs an open OpenSSH connect",
			ours: ms(mo), theirs: ms(median(firsts(t))), ratio: fmt.Sprintf("%.2f×", float64(mo)/float64(median(firsts(t)))), goal: "< 2 s", met: yes(mo < 2*time.Second)})
	}
}
