package preflight

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func answer(region string, ins ...*Instance) Answer {
	for _, in := range ins {
		in.Region = region
	}
	return Answer{Region: region, Instances: ins}
}

func TestCache(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	if c.Has("", "web-1") || c.Recall("", "web-1") != nil {
		t.Fatal("an empty cache has an entry")
	}
	c.Remember("", "web-1", []Answer{answer("eu-west-1", &Instance{ID: "i-1", Name: "web-1", State: StateRunning, PrivateIP: "10.0.0.1"})}, false, LoginUser{})
	got := c.Recall("", "web-1")
	if got == nil || len(got.Answers["eu-west-1"].Instances) != 1 || got.Answers["eu-west-1"].Instances[0].ID != "i-1" || got.Swept {
		t.Fatalf("Recall after Remember = %+v", got)
	}
	if _, ok := got.Answers["us-east-1"]; ok {
		t.Error("an answer from eu-west-1 stands for us-east-1")
	}
	if c.Recall("dev", "web-1") != nil || c.Has("dev", "web-1") {
		t.Error("an entry of the default profile answered for profile dev")
	}
	// Another region's answer joins the entry; a sweep is recorded as one.
	c.Remember("", "web-1", []Answer{answer("us-east-1"), answer("eu-west-1", &Instance{ID: "i-1", State: StateRunning})}, true,
		LoginUser{ID: "i-1", User: "ubuntu", Looked: true})
	got = c.Recall("", "web-1")
	if got == nil || !got.Swept || len(got.Answers) != 2 || got.Users["i-1"].User != "ubuntu" {
		t.Fatalf("Recall after a sweep = %+v", got)
	}
	// A later answer keeps the login user already found.
	c.Remember("", "web-1", []Answer{answer("eu-west-1", &Instance{ID: "i-1", State: StateRunning})}, false, LoginUser{})
	if got = c.Recall("", "web-1"); got.Users["i-1"].User != "ubuntu" || !got.Swept {
		t.Errorf("after one region's answer: %+v", got)
	}
	// A region that could not be asked is no answer, and no sweep.
	c.Remember("", "db", []Answer{answer("us-east-1"), {Region: "eu-west-1", Err: errors.New("AWS answered 500")}}, true, LoginUser{})
	if got = c.Recall("", "db"); got == nil || got.Swept || len(got.Answers) != 1 {
		t.Errorf("a sweep with a failed region: %+v", got)
	}
	stale, _ := json.Marshal(Entry{V: cacheVersion, Dest: "old", Regions: map[string]*RegionEntry{"eu-west-1": {
		Instances: []CachedInstance{{ID: "i-2", State: StateRunning}}, Saved: time.Now().Add(-2 * CacheTTL)}}})
	os.WriteFile(c.file("", "old"), stale, 0o600)
	if c.Recall("", "old") != nil {
		t.Error("a stale entry was returned")
	}
	// An entry of the format before issue 24 (one instance) is not read.
	os.WriteFile(c.file("", "v1"), []byte(`{"instance_id":"i-3","address":"10.0.0.3","region":"eu-west-1","saved":"`+time.Now().Format(time.RFC3339)+`"}`), 0o600)
	if c.Recall("", "v1") != nil {
		t.Error("an entry of the old format was read")
	}
	if names := c.Names(); !slices.Contains(names, "web-1") || slices.Contains(names, "v1") {
		t.Errorf("Names = %q", names)
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
		b, _ := json.Marshal(Entry{V: cacheVersion, Dest: "web-1", Regions: map[string]*RegionEntry{"eu-west-1": {
			Instances: []CachedInstance{{ID: "i-evil", State: StateRunning, PrivateIP: "10.0.0.66"}}, Saved: saved}}})
		return b
	}
	t.Run("world-writable directory", func(t *testing.T) {
		c := &Cache{Dir: filepath.Join(t.TempDir(), "ec2ssh")}
		os.Mkdir(c.Dir, 0o777)
		os.Chmod(c.Dir, 0o777)
		os.WriteFile(c.file("", "web-1"), entry(time.Now()), 0o600)
		if c.Recall("", "web-1") != nil {
			t.Error("an entry in a world-writable directory was believed")
		}
		c.Remember("", "web-2", []Answer{answer("eu-west-1", &Instance{ID: "i-2", State: StateRunning})}, false, LoginUser{})
		if c.Has("", "web-2") {
			t.Error("Put wrote into a world-writable directory")
		}
	})
	t.Run("group-writable file", func(t *testing.T) {
		c := &Cache{Dir: t.TempDir()}
		os.WriteFile(c.file("", "web-1"), entry(time.Now()), 0o600)
		os.Chmod(c.file("", "web-1"), 0o620)
		if c.Recall("", "web-1") != nil {
			t.Error("a group-writable entry was believed")
		}
	})
	t.Run("directory is a link", func(t *testing.T) {
		real := t.TempDir()
		c := &Cache{Dir: filepath.Join(t.TempDir(), "ec2ssh")}
		os.Symlink(real, c.Dir)
		os.WriteFile(c.file("", "web-1"), entry(time.Now()), 0o600)
		if c.Recall("", "web-1") != nil {
			t.Error("an entry behind a symbolic link was believed")
		}
	})
	t.Run("saved in the future", func(t *testing.T) {
		c := &Cache{Dir: t.TempDir()}
		os.WriteFile(c.file("", "web-1"), entry(time.Now().Add(24*time.Hour)), 0o600)
		if c.Recall("", "web-1") != nil {
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
		if c.Recall("", "web-1") != nil {
			t.Error("an entry owned by nobody was believed")
		}
		os.Chown(c.Dir, 65534, 65534)
		if c.Recall("", "web-1") != nil {
			t.Error("a directory owned by nobody was believed")
		}
	})
}
