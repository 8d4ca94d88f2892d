package preflight

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// CacheTTL is how long a resolution is trusted: long enough for a burst of
// scp and git commands, short enough that a replaced instance is noticed.
const CacheTTL = 10 * time.Minute

// Cached is a destination's resolution as stored on disk.
type Cached struct {
	InstanceID string    `json:"instance_id"`
	Name       string    `json:"name,omitempty"`
	Address    string    `json:"address"`
	User       string    `json:"user,omitempty"` // the AMI's default user
	Saved      time.Time `json:"saved"`
}

// Cache stores resolutions under $XDG_CACHE_HOME/ec2ssh (or
// ~/.cache/ec2ssh), one file per profile, region and destination.
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

func (c *Cache) file(profile, region, dest string) string {
	sum := sha256.Sum256([]byte(profile + "\x00" + region + "\x00" + dest))
	return filepath.Join(c.Dir, hex.EncodeToString(sum[:12])+".json")
}

// Get returns a fresh resolution, or nil.
func (c *Cache) Get(profile, region, dest string) *Cached {
	b, err := os.ReadFile(c.file(profile, region, dest))
	if err != nil {
		return nil
	}
	var e Cached
	if json.Unmarshal(b, &e) != nil || time.Since(e.Saved) > CacheTTL || e.Address == "" {
		return nil
	}
	return &e
}

// Put stores a resolution; it writes a temporary file and renames it, so a
// reader never sees half an entry. Errors are ignored: the cache only saves
// time.
func (c *Cache) Put(profile, region, dest string, e Cached) {
	e.Saved = time.Now()
	b, err := json.Marshal(e)
	if err != nil || os.MkdirAll(c.Dir, 0o700) != nil {
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
	if os.Rename(tmp.Name(), c.file(profile, region, dest)) != nil {
		os.Remove(tmp.Name())
	}
}

// Drop forgets a resolution (after a failed connection).
func (c *Cache) Drop(profile, region, dest string) { os.Remove(c.file(profile, region, dest)) }
