package preflight

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// CacheTTL is how long a resolution is trusted: long enough for a burst of
// scp and git commands, short enough that a replaced instance is noticed.
const CacheTTL = 10 * time.Minute

// Cache stores resolutions under $XDG_CACHE_HOME/ec2ssh (or
// ~/.cache/ec2ssh), one file per profile and destination, so that a
// destination that was never an instance (the usual case: git@github.com)
// is known from a missing file, without loading the AWS configuration.
//
// An entry records what resolution would answer, not one instance (issue
// 24): what each region said the destination names (every instance, gone
// ones too), and whether every enabled region was asked at once. The
// resolution is then Decide over the remembered answers, the same rule as
// over fresh ones, so that neither a listing nor a lookup in another
// region can change what a name means: an ambiguous name stays
// ambiguous, and the home region's instance wins over another region's.
type Cache struct{ Dir string }

// cacheVersion is the entry format; entries of another are not read.
const cacheVersion = 2

// Entry is a destination's resolutions as stored on disk.
type Entry struct {
	V    int    `json:"v"`
	Dest string `json:"dest"` // as typed (a Name tag, an id), for completion
	// Regions are each region's answer, by region.
	Regions map[string]*RegionEntry `json:"regions"`
	// Swept is when every enabled region was last asked at once and all
	// answered (their answers saved then too).
	Swept time.Time `json:"swept,omitempty"`
}

// RegionEntry is one region's answer.
type RegionEntry struct {
	Instances []CachedInstance `json:"instances"`
	Saved     time.Time        `json:"saved"`
	// APIRTT is how long asking took: one EC2 API round trip, which bounds
	// a TCP connect to the instance (see raceGrace).
	APIRTT time.Duration `json:"api_rtt_ns,omitempty"`
}

// CachedInstance is what resolution needs of an instance.
type CachedInstance struct {
	ID         string    `json:"id"`
	Name       string    `json:"name,omitempty"`
	State      State     `json:"state"`
	PublicIP   string    `json:"public_ip,omitempty"`
	PrivateIP  string    `json:"private_ip,omitempty"`
	IPv6       []string  `json:"ipv6,omitempty"`
	LaunchTime time.Time `json:"launch_time"`
	// User is the AMI's default user; UserLooked: the AMI was looked up
	// for it (a run given a user does not ask, and a later run without one
	// must).
	User       string `json:"user,omitempty"`
	UserLooked bool   `json:"user_looked,omitempty"`
}

// LoginUser is what an instance's AMI says its login user is.
type LoginUser struct {
	ID     string // the instance; "" for none
	User   string
	Looked bool
}

// Recalled is what the cache holds for a destination, fresh.
type Recalled struct {
	// Answers are the regions' answers, by region.
	Answers map[string]Answer
	// Swept: Answers hold every enabled region's.
	Swept bool
	// Users are the AMIs' login users known, by instance id.
	Users map[string]LoginUser
}

func fresh(saved time.Time) bool {
	// An entry from the future (a clock set back, or a planted file) would
	// never expire: it is not trusted either.
	age := time.Since(saved)
	return age <= CacheTTL && age >= -time.Minute
}

// load reads dest's entry from a directory only this user can write, or
// nil.
func (c *Cache) load(profile, dest string) *Entry {
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
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil
	}
	var e Entry
	if json.Unmarshal(b, &e) != nil || e.V != cacheVersion || e.Dest != dest {
		return nil
	}
	return &e
}

// Recall returns what the cache holds for dest that is still fresh, or
// nil.
func (c *Cache) Recall(profile, dest string) *Recalled {
	e := c.load(profile, dest)
	if e == nil {
		return nil
	}
	r := &Recalled{Answers: map[string]Answer{}, Users: map[string]LoginUser{}, Swept: !e.Swept.IsZero() && fresh(e.Swept)}
	for region, re := range e.Regions {
		if re == nil || !fresh(re.Saved) {
			r.Swept = false // a sweep is whole or nothing
			continue
		}
		a := Answer{Region: region, Took: re.APIRTT}
		for _, ci := range re.Instances {
			a.Instances = append(a.Instances, &Instance{ID: ci.ID, Name: ci.Name, State: ci.State, PublicIP: ci.PublicIP,
				PrivateIP: ci.PrivateIP, IPv6: ci.IPv6, LaunchTime: ci.LaunchTime, Region: region})
			if ci.UserLooked {
				r.Users[ci.ID] = LoginUser{ID: ci.ID, User: ci.User, Looked: true}
			}
		}
		r.Answers[region] = a
	}
	if len(r.Answers) == 0 {
		return nil
	}
	return r
}

// Remember stores answers (made now) for dest, each region's replacing
// what was held for it; swept says they are every enabled region's. user,
// when set, is the login user found for one of the instances; one already
// known is kept. Errors are ignored: the cache only saves time. It writes a
// temporary file and renames it, so a reader never sees half an entry.
func (c *Cache) Remember(profile, dest string, answers []Answer, swept bool, user LoginUser) {
	now := time.Now()
	e := c.load(profile, dest)
	if e == nil {
		e = &Entry{V: cacheVersion, Dest: dest}
	}
	if e.Regions == nil {
		e.Regions = map[string]*RegionEntry{}
	}
	known := map[string]CachedInstance{}
	for region, re := range e.Regions {
		if re == nil || !fresh(re.Saved) {
			delete(e.Regions, region)
			continue
		}
		for _, ci := range re.Instances {
			if ci.UserLooked {
				known[ci.ID] = ci
			}
		}
	}
	for _, a := range answers {
		if a.Err != nil || a.Region == "" {
			swept = false
			continue
		}
		re := &RegionEntry{Saved: now, APIRTT: a.Took, Instances: []CachedInstance{}}
		for _, in := range a.Instances {
			ci := CachedInstance{ID: in.ID, Name: in.Name, State: in.State, PublicIP: in.PublicIP, PrivateIP: in.PrivateIP,
				IPv6: in.IPv6, LaunchTime: in.LaunchTime}
			if k, ok := known[in.ID]; ok {
				ci.User, ci.UserLooked = k.User, true
			}
			if user.ID == in.ID && user.Looked {
				ci.User, ci.UserLooked = user.User, true
			}
			re.Instances = append(re.Instances, ci)
		}
		e.Regions[a.Region] = re
	}
	if swept {
		e.Swept = now
	} else if !fresh(e.Swept) {
		e.Swept = time.Time{}
	}
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

// trusted reports whether the cache directory is one only this user can
// change: a real directory (not a link) owned by the user, writable by no
// one else. Another user who could write there could send a destination
// to an instance of their choosing.
func (c *Cache) trusted() bool {
	st, err := os.Lstat(c.Dir)
	return err == nil && st.IsDir() && ownedPrivately(st)
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
		var e Entry
		if json.Unmarshal(b, &e) != nil || e.V != cacheVersion {
			continue
		}
		names := []string{e.Dest}
		for _, re := range e.Regions {
			for _, in := range re.Instances {
				names = append(names, in.Name)
			}
		}
		for _, n := range names {
			if n != "" && !strings.ContainsAny(n, " \t\n") && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// Drop forgets a resolution (after a failed connection).
func (c *Cache) Drop(profile, dest string) { os.Remove(c.file(profile, dest)) }
