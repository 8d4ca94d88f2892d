package preflight

import (
	"encoding/json"
	"os"
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
