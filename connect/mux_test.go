//go:build !windows

package connect

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// Connection sharing in one process, against x/crypto's server: an
// ec2ssh master on a real Unix socket and ec2ssh's mux client passing its
// descriptors. (OpenSSH's clients and masters are tried in the lab tests.)
func TestMuxMasterServesClients(t *testing.T) {
	dir := t.TempDir()
	keyPath, key, _ := writeKey(t, dir, "id")
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
	c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
	c.IdentityAgent, c.IdentityFiles, c.IdentitiesOnly, c.ControlMaster = "none", []string{keyPath}, true, "auto"
	logs := &logSink{}
	cr, err := LoadCredentials(c, nil, logs.log)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	client, err := Dial(t.Context(), c, cr, NewHostKeys(c, nil, logs.log), nil, testEnv(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	sock := filepath.Join(dir, "cm")
	m := &MuxMaster{Client: client, Path: sock, Log: logs.log, Debug: func(string, ...any) {}}
	if err := ListenMux(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(sock); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v, %v; want a socket with mode 0600", st, err)
	}
	// A second master on the same path is refused, as ssh(1) refuses it.
	if err := ListenMux(t.Context(), &MuxMaster{Client: client, Path: sock, Log: logs.log, Debug: func(string, ...any) {}}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second master on %s: %v", sock, err)
	}

	// run asks the master for op (a session when ""), with pipes for stdio.
	run := func(op, command string) (int, string, string, error) {
		t.Helper()
		inR, inW, _ := os.Pipe()
		outR, outW, _ := os.Pipe()
		errR, errW, _ := os.Pipe()
		inW.Close()
		var out, errOut []byte
		done := make(chan struct{})
		go func() { out, _ = io.ReadAll(outR); errOut, _ = io.ReadAll(errR); close(done) }()
		status, err := MuxClient(t.Context(), &MuxRequest{Path: sock, Op: op, Config: c, Session: &Session{Command: command},
			Stdin: inR, Stdout: outW, Stderr: errW, Log: logs.log, Debug: func(string, ...any) {}})
		inR.Close()
		outW.Close()
		errW.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the master kept the client's stdout open after the session")
		}
		return status, string(out), string(errOut), err
	}
	for i := range 3 {
		status, out, _, err := run("", "echo shared")
		if err != nil || status != 0 || out != "ran echo shared\n" {
			t.Fatalf("session %d through the master: status %d, %q, %v", i, status, out, err)
		}
	}
	if status, _, errOut, err := run("check", ""); err != nil || status != 0 || !strings.Contains(errOut, "Master running (pid=") {
		t.Errorf("-O check: status %d, %q, %v", status, errOut, err)
	}
	if status, _, _, err := run("bogus", ""); err == nil || status != ExitSignal {
		t.Errorf("-O bogus: status %d, %v; want refused", status, err)
	}
	if m.Active() != 0 {
		t.Errorf("%d passengers still counted after their sessions", m.Active())
	}
	if status, _, errOut, err := run("stop", ""); err != nil || status != 0 || !strings.Contains(errOut, "Stop listening request sent.") {
		t.Errorf("-O stop: status %d, %q, %v", status, errOut, err)
	}
	select {
	case <-m.Stopped():
	case <-time.After(5 * time.Second):
		t.Fatal("-O stop: the master still listens")
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket outlived -O stop: %v", err)
	}
	// No master: a session is the caller's to make, a control command is an error.
	if _, _, _, err := run("", "true"); err != ErrNoMaster {
		t.Errorf("a session with no master: %v, want ErrNoMaster", err)
	}
	if status, _, _, err := run("check", ""); err == nil || status != ExitSignal {
		t.Errorf("-O check with no master: status %d, %v", status, err)
	}
}

// A control socket in a directory others may write to is refused (another
// user could put a master of theirs there); a stale socket is removed.
func TestMuxSocketTrust(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if err := ListenMux(t.Context(), &MuxMaster{Path: filepath.Join(open, "cm"), Log: t.Logf, Debug: t.Logf}); err == nil {
		t.Error("a control socket in a world-writable directory was accepted")
	}
	sticky := filepath.Join(dir, "sticky")
	os.Mkdir(sticky, 0o777)
	os.Chmod(sticky, 0o777|os.ModeSticky)
	if err := muxDirTrusted(filepath.Join(sticky, "cm")); err != nil {
		t.Errorf("a sticky directory (like /tmp): %v", err)
	}
	// A socket nobody listens on any more.
	stale := filepath.Join(dir, "stale")
	m := &MuxMaster{Path: stale, Log: t.Logf, Debug: t.Logf}
	if err := ListenMux(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	m.ln.Close() // the master died without cleaning up
	c := &Config{ControlMaster: "auto", LogLevel: "INFO"}
	if _, err := MuxClient(t.Context(), &MuxRequest{Path: stale, Config: c, Session: &Session{}, Log: t.Logf, Debug: t.Logf}); err != ErrNoMaster {
		t.Fatalf("a stale socket: %v, want ErrNoMaster", err)
	}
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale socket was left in place: %v", err)
	}
}

// A master that dies mid-session (here: one that opens the session and
// then drops the socket): the client ends with 255, as ssh's mux client
// does ("Control master terminated unexpectedly"), and never waits on.
func TestMuxMasterDiesMidSession(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cm")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		writeMuxPacket(conn, muxHelloMsg())
		if checkMuxHello(conn) != nil {
			return
		}
		for {
			msg, err := readMuxPacket(conn)
			if err != nil {
				return
			}
			typ, rid := msg.u32(), msg.u32()
			switch typ {
			case muxCAliveCheck:
				writeMuxPacket(conn, muxMsg(nil).u32(muxSAlive).u32(rid).u32(1))
			case muxCNewSession:
				if _, err := recvFDs(conn, 3); err != nil {
					return
				}
				writeMuxPacket(conn, muxMsg(nil).u32(muxSSessionOpened).u32(rid).u32(7))
				return // and the master is gone
			}
		}
	}()
	devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	defer devnull.Close()
	c := &Config{ControlMaster: "auto", LogLevel: "INFO", RequestTTY: "auto", EscapeChar: "~"}
	done := make(chan struct{})
	var status int
	go func() {
		status, err = MuxClient(t.Context(), &MuxRequest{Path: sock, Config: c, Session: &Session{Command: "sleep 100"},
			Stdin: devnull, Stdout: devnull, Stderr: devnull, Log: t.Logf, Debug: t.Logf})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the client waits on after its master died")
	}
	if err != nil || status != ExitSignal {
		t.Errorf("master gone mid-session: status %d, %v; want 255", status, err)
	}
}

// A passenger whose stdin and stdout are one socket (scp -O's socketpair,
// TRAMP) gets every byte and EOF through an ec2ssh master: EOF from it
// becomes the channel's EOF, and the channel's EOF shuts down the write
// side of its stdout though the same socket is still open as its stdin
// (issue 25: scp -O used to hang at the end of a download).
func TestMuxOneSocketPassenger(t *testing.T) {
	dir := t.TempDir()
	keyPath, key, _ := writeKey(t, dir, "id")
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
	c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
	c.IdentityAgent, c.IdentityFiles, c.IdentitiesOnly = "none", []string{keyPath}, true
	logs := &logSink{}
	cr, err := LoadCredentials(c, nil, logs.log)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	client, err := Dial(t.Context(), c, cr, NewHostKeys(c, nil, logs.log), nil, testEnv(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sock := filepath.Join(dir, "cm")
	if err := ListenMux(t.Context(), &MuxMaster{Client: client, Path: sock, Log: logs.log, Debug: func(string, ...any) {}}); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	for _, tc := range []struct {
		name, command string
		send          []byte // written, then the write side shut down; nil: never shut down
		want          []byte
	}{
		{"upload and echo", "cat", payload, payload},
		{"download, stdin left open", "emit 1048576", nil, bytes.Repeat([]byte("x"), 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			passenger, ours := os.NewFile(uintptr(fds[0]), "passenger"), os.NewFile(uintptr(fds[1]), "ours")
			defer ours.Close()
			errR, errW, _ := os.Pipe()
			defer errR.Close()
			go io.Copy(io.Discard, errR)
			status := make(chan int, 1)
			go func() {
				n, _ := MuxClient(t.Context(), &MuxRequest{Path: sock, Config: c, Session: &Session{Command: tc.command},
					Stdin: passenger, Stdout: passenger, Stderr: errW, Log: logs.log, Debug: func(string, ...any) {}})
				status <- n
			}()
			if tc.send != nil {
				go func() {
					ours.Write(tc.send)
					unix.Shutdown(int(ours.Fd()), unix.SHUT_WR)
				}()
			}
			got := make(chan []byte, 1)
			go func() { b, _ := io.ReadAll(ours); got <- b }()
			select {
			case b := <-got:
				if !bytes.Equal(b, tc.want) {
					t.Errorf("read %d bytes, want %d", len(b), len(tc.want))
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no EOF on the passenger's socket: the master did not end its stdout")
			}
			select {
			case n := <-status:
				if n != 0 {
					t.Errorf("status %d, want 0", n)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the passenger client did not end")
			}
			passenger.Close()
			errW.Close()
		})
	}
}

// Where descriptors cannot be passed (Windows), control commands still
// reach a master over AF_UNIX, a shared session is made without the master,
// and a master asked for by name is refused (issue 25).
func TestMuxWithoutDescriptorPassing(t *testing.T) {
	dir := t.TempDir()
	keyPath, key, _ := writeKey(t, dir, "id")
	srv := startXServer(t, xopts{userKeys: []ssh.PublicKey{key.PublicKey()}})
	c := testConfigFor(srv.port, knownHostsFor(t, srv.port, srv.hostKey.PublicKey()))
	c.IdentityAgent, c.IdentityFiles, c.IdentitiesOnly = "none", []string{keyPath}, true
	logs := &logSink{}
	cr, err := LoadCredentials(c, nil, logs.log)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	client, err := Dial(t.Context(), c, cr, NewHostKeys(c, nil, logs.log), nil, testEnv(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sock := filepath.Join(dir, "cm")
	if err := ListenMux(t.Context(), &MuxMaster{Client: client, Path: sock, Log: logs.log, Debug: func(string, ...any) {}}); err != nil {
		t.Fatal(err)
	}
	descriptorPassing = false
	defer func() { descriptorPassing = true }()

	errR, errW, _ := os.Pipe()
	defer errR.Close()
	status, err := MuxClient(t.Context(), &MuxRequest{Path: sock, Op: "check", Config: c, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: errW,
		Log: logs.log, Debug: func(string, ...any) {}})
	errW.Close()
	out, _ := io.ReadAll(errR)
	if err != nil || status != 0 || !strings.Contains(string(out), "Master running (pid=") {
		t.Errorf("-O check without descriptor passing: %d, %v, %q", status, err, out)
	}
	if _, err := MuxClient(t.Context(), &MuxRequest{Path: sock, Config: c, Session: &Session{Command: "true"}, Stdin: os.Stdin, Stdout: os.Stdout,
		Stderr: os.Stderr, Log: logs.log, Debug: func(string, ...any) {}}); err != ErrNoMaster {
		t.Errorf("a session without descriptor passing: %v, want ErrNoMaster (connect without the master)", err)
	}

	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte("Host h\n  ControlPath "+sock+"\n"), 0o600)
	for _, tt := range []struct {
		master string
		refuse bool
	}{{"yes", true}, {"ask", true}, {"auto", false}, {"no", false}} {
		args, err := ParseArgs([]string{"-F", cfg, "-o", "ControlMaster=" + tt.master, "h"})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := ResolveConfig(args)
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Supported(); (err != nil) != tt.refuse || err != nil && !strings.Contains(err.Error(), "ControlMaster") {
			t.Errorf("ControlMaster %s without descriptor passing: Supported() = %v, want refused: %v", tt.master, err, tt.refuse)
		}
	}
}
