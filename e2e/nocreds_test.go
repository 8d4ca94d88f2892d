package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ec2ssh/ec2ssh/lab"
)

// No credentials (issue 20): a laptop with a region set and no AWS
// credentials anywhere, in the lab's namespace (only loopback). --list,
// --diagnose ID and a connect to an id each fail in at most 5 s (the aim:
// under 1 s) with one error line of at most 200 characters and at most one
// hint line. The instance metadata service is either out of reach (no
// route: the namespace as it is) or silent (a route that drops, as on most
// laptops, where the packets go to a router that never answers). The same
// for an IAM Identity Center token that has expired, and a profile that is
// not configured.
func TestNoCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("a lab test (-short runs the unit subset)")
	}
	if !lab.InNetns() {
		t.Fatal("needs the lab's network namespace (only loopback)")
	}
	const id = "i-0123456789abcdef0"
	commands := [][]string{{"--list"}, {"--diagnose", id}, {id, "true"}}

	home := t.TempDir()
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "AWS_REGION=us-east-1"}

	// An expired Identity Center session, as ~/.aws holds it after a day.
	ssoHome := t.TempDir()
	os.MkdirAll(filepath.Join(ssoHome, ".aws", "sso", "cache"), 0o700)
	os.WriteFile(filepath.Join(ssoHome, ".aws", "config"), []byte("[profile work]\nsso_session = corp\nsso_account_id = 123456789012\n"+
		"sso_role_name = Admin\nregion = us-east-1\n\n[sso-session corp]\nsso_region = us-east-1\nsso_start_url = https://corp.awsapps.com/start\n"), 0o600)
	sum := sha1.Sum([]byte("corp"))
	os.WriteFile(filepath.Join(ssoHome, ".aws", "sso", "cache", hex.EncodeToString(sum[:])+".json"), []byte(fmt.Sprintf(
		`{"accessToken": "expired", "expiresAt": %q, "region": "us-east-1", "startUrl": "https://corp.awsapps.com/start"}`,
		time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))), 0o600)

	for _, tt := range []struct {
		name   string
		env    []string
		silent bool   // the metadata service's address drops packets
		says   string // what the error line says
		hint   string // what the hint says
	}{
		{name: "no credentials, metadata out of reach", env: base, says: "no AWS credentials were found", hint: "aws configure"},
		{name: "no credentials, metadata silent", env: base, silent: true, says: "no AWS credentials were found", hint: "aws configure"},
		{name: "an expired SSO token", env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + ssoHome, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
			"AWS_PROFILE=work"}, says: "(SSO) session has expired", hint: "aws sso login"},
		{name: "an unknown profile", env: append(append([]string(nil), base...), "AWS_PROFILE=nope"), says: `the AWS profile "nope"`, hint: "aws configure list-profiles"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.silent {
				silenceIMDS(t)
			}
			for _, args := range commands {
				start := time.Now()
				cmd := exec.Command(bin, append([]string{"-F", "/dev/null"}, args...)...)
				cmd.Env = tt.env
				var out, errb strings.Builder
				cmd.Stdout, cmd.Stderr = &out, &errb
				cmd.WaitDelay = 5 * time.Second
				err := cmd.Run()
				took := time.Since(start)
				code := -1
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
				lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
				t.Logf("%q: exit %d in %v:\n%s", args, code, took.Round(time.Millisecond), errb.String())
				if code != 255 || out.Len() != 0 {
					t.Errorf("%q: exit %d, stdout %q; want 255 and nothing", args, code, out.String())
				}
				if took > 5*time.Second {
					t.Errorf("%q: failed after %v, want at most 5 s (aim: 1 s)", args, took)
				}
				if len(lines) < 1 || len(lines) > 2 || !strings.HasPrefix(lines[0], "ec2ssh: error: ") || len(lines[0]) > 200 ||
					len(lines) == 2 && !strings.HasPrefix(lines[1], "ec2ssh: hint: ") {
					t.Errorf("%q: stderr is not one error line of at most 200 characters and at most one hint:\n%s", args, errb.String())
				}
				if !strings.Contains(lines[0], tt.says) || !strings.Contains(errb.String(), tt.hint) {
					t.Errorf("%q: stderr does not say %q with a hint naming %q:\n%s", args, tt.says, tt.hint, errb.String())
				}
			}
		})
	}
}

// silenceIMDS makes the metadata service's address (169.254.169.254) drop
// what is sent to it, as a laptop's router does: the address on loopback
// and a rule that drops its packets as they come in (a drop on the way out
// would fail the connect at once with EPERM: not silence). Undone at the
// end of the test.
func silenceIMDS(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("ip", "addr", "add", "169.254.169.254/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "addr", "del", "169.254.169.254/32", "dev", "lo").Run() })
	if err := lab.Nft("add table ip lab-imds\nadd chain ip lab-imds in { type filter hook input priority 0; policy accept; }\n" +
		"add rule ip lab-imds in ip daddr 169.254.169.254 drop\n"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Nft("delete table ip lab-imds\n") })
	if c, err := net.DialTimeout("tcp", "169.254.169.254:80", 300*time.Millisecond); err == nil || !os.IsTimeout(err) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("the metadata address is not silent: %v", err)
	}
}
