package preflight

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CacheTTL is how long a resolution is trusted: long enough for a burst of
// scp and git commands, short enough that a replaced instance is noticed.
const CacheTTL = 10 * time.Minute

// Cached is a destination's resolution as stored on disk.
type Cached struct {
	InstanceID string `json:"instance_id"`
	Name       string `json:"name,omitempty"`
	Address    string `json:"address"`
	User       string `json:"user,omitempty"` // the AMI's default user
	// UserLooked: the AMI was looked up for User (a run given a user does
	// not ask, and a later run without one must).
	UserLooked bool `json:"user_looked,omitempty"`
	// APIRTT is how long resolving it took: one EC2 API round trip, which
	// bounds a TCP connect to the instance (see raceGrace).
	APIRTT time.Duration `json:"api_rtt_ns,omitempty"`
	Region string        `json:"region"`
	Saved  time.Time     `json:"saved"`
	// Dest is the destination as typed (a Name tag, an id), for completion.
	Dest string `json:"dest,omitempty"`
}

// Cache stores resolutions under $XDG_CACHE_HOME/ec2ssh (or
// ~/.cache/ec2ssh), one file per profile and destination; the region is
// kept inside, so that a destination that was never an instance (the
// usual case: git@github.com) is known from a missing file, without
// loading the AWS configuration to learn the region.
type Cache struct{ Dir string }

// DefaultCache returns the cache in its usual place.
func DefaultCache() *Cache {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache")
	}
	return &Cache{Dir: filepath.Join(dir, "ec2ssh")}
}

func (c *Cache) file(profile, dest string) string {
	sum := sha256.Sum256([]byte(profile + "\x00" + dest))
	return filepath.Join(c.Dir, hex.EncodeToString(sum[:12])+".json")
}

// Has reports whether an entry for dest may exist (it may be stale or for
// another region): a cheap test before the AWS configuration is loaded.
func (c *Cache) Has(profile, dest string) bool {
	_, err := os.Stat(c.file(profile, dest))
	return err == nil
}

// Get returns a fresh resolution made in region (any region for ""), or nil.
func (c *Cache) Get(profile, region, dest string) *Cached {
	if !c.trusted() {
		return nil
	}
	f, err := os.Open(c.file(profile, dest))
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || !ownedPrivately(st) {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil
	}
	var e Cached
	if json.Unmarshal(b, &e) != nil || e.Address == "" || region != "" && e.Region != region {
		return nil
	}
	// An entry from the future (a clock set back, or a planted file) would
	// never expire: it is not trusted either.
	if age := time.Since(e.Saved); age > CacheTTL || age < -time.Minute {
		return nil
	}
	return &e
}

// trusted reports whether the cache directory is one only this user can
// change: a real directory (not a link) owned by the user, writable by no
// one else. Another user who could write there could send a destination
// to an instance of their choosing.
func (c *Cache) trusted() bool {
	st, err := os.Lstat(c.Dir)
	return err == nil && st.IsDir() && ownedPrivately(st)
}

// Put stores a resolution; it writes a temporary file and renames it, so a
// reader never sees half an entry. Errors are ignored: the cache only saves
// time.
func (c *Cache) Put(profile, region, dest string, e Cached) {
	e.Saved, e.Region, e.Dest = time.Now(), region, dest
	b, err := json.Marshal(e)
	if err != nil || os.MkdirAll(c.Dir, 0o700) != nil || !c.trusted() {
		return
	}
	tmp, err := os.CreateTemp(c.Dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), c.file(profile, dest)) != nil {
		os.Remove(tmp.Name())
	}
}

// Names are the destinations and Name tags the cache holds (stale ones
// too: completion offers what was once there), from a directory only the
// user can write.
func (c *Cache) Names() []string {
	if !c.trusted() {
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(c.Dir, "*.json"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var e Cached
		if json.Unmarshal(b, &e) != nil {
			continue
		}
		for _, n := range []string{e.Dest, e.Name} {
			if n != "" && !strings.ContainsAny(n, " \t\n") {
				out = append(out, n)
			}
		}
	}
	return out
}

// Drop forgets a resolution (after a failed connection).
func (c *Cache) Drop(profile, dest string) { os.Remove(c.file(profile, dest)) }
