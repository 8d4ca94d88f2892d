package preflight

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	if c.Has("", "web-1") || c.Get("", "eu-west-1", "web-1") != nil {
		t.Fatal("an empty cache has an entry")
	}
	c.Put("", "eu-west-1", "web-1", Cached{InstanceID: "i-1", Address: "10.0.0.1"})
	if got := c.Get("", "eu-west-1", "web-1"); got == nil || got.InstanceID != "i-1" {
		t.Fatalf("Get after Put = %+v", got)
	}
	if c.Get("", "us-east-1", "web-1") != nil {
		t.Error("an entry from eu-west-1 answered for us-east-1")
	}
	if c.Get("dev", "eu-west-1", "web-1") != nil || c.Has("dev", "web-1") {
		t.Error("an entry of the default profile answered for profile dev")
	}
	stale, _ := json.Marshal(Cached{InstanceID: "i-2", Address: "10.0.0.2", Region: "eu-west-1", Saved: time.Now().Add(-2 * CacheTTL)})
	os.WriteFile(c.file("", "old"), stale, 0o600)
	if c.Get("", "eu-west-1", "old") != nil {
		t.Error("a stale entry was returned")
	}
	c.Drop("", "web-1")
	if c.Has("", "web-1") {
		t.Error("Drop left the entry")
	}
}

// A cache another user could write to is not believed: they could send a
// destination to an instance of their choosing (issue 14).
func TestCacheTrust(t *testing.T) {
	entry := func(saved time.Time) []byte {
		b, _ := json.Marshal(Cached{InstanceID: "i-evil", Address: "10.0.0.66", Region: "eu-west-1", Saved: saved})
		return b
	}
	t.Run("world-writable directory", func(t *testing.T) {
		c := &Cache{Dir: filepath.Join(t.TempDir(), "ec2ssh")}
		os.Mkdir(c.Dir, 0o777)
		os.Chmod(c.Dir, 0o777)
		os.WriteFile(c.file("", "web-1"), entry(time.Now()), 0o600)
		if c.Get("", "eu-west-1", "web-1") != nil {
			t.Error("an entry in a world-writable directory was believed")
		}
		c.Put("", "eu-west-1", "web-2", Cached{InstanceID: "i-2", Address: "10.0.0.2"})
		if c.Has("", "web-2") {
			t.Error("Put wrote into a world-writable directory")
		}
	})
	t.Run("group-writable file", func(t *testing.T) {
		c := &Cache{Dir: t.TempDir()}
		os.WriteFile(c.file("", "web-1"), entry(time.Now()), 0o600)
		os.Chmod(c.file("", "web-1"), 0o620)
		if c.Get("", "eu-west-1", "web-1") != nil {
			t.Error("a group-writable entry was believed")
		}
	})
	t.Run("directory is a link", func(t *testing.T) {
		real := t.TempDir()
		c := &Cache{Dir: filepath.Join(t.TempDir(), "ec2ssh")}
		os.Symlink(real, c.Dir)
		os.WriteFile(c.file("", "web-1"), entry(time.Now()), 0o600)
		if c.Get("", "eu-west-1", "web-1") != nil {
			t.Error("an entry behind a symbolic link was believed")
		}
	})
	t.Run("saved in the future", func(t *testing.T) {
		c := &Cache{Dir: t.TempDir()}
		os.WriteFile(c.file("", "web-1"), entry(time.Now().Add(24*time.Hour)), 0o600)
		if c.Get("", "eu-west-1", "web-1") != nil {
			t.Error("an entry saved tomorrow was believed (it would never expire)")
		}
	})
	t.Run("another owner", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to give a file away") // make unit; make test runs as root
		}
		c := &Cache{Dir: t.TempDir()}
		os.WriteFile(c.file("", "web-1"), entry(time.Now()), 0o600)
		os.Chown(c.file("", "web-1"), 65534, 65534)
		if c.Get("", "eu-west-1", "web-1") != nil {
			t.Error("an entry owned by nobody was believed")
		}
		os.Chown(c.Dir, 65534, 65534)
		if c.Get("", "eu-west-1", "web-1") != nil {
			t.Error("a directory owned by nobody was believed")
		}
	})
}
