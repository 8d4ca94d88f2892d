package e2e

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSSOProfile: a profile that gets its credentials from IAM Identity
// Center through an sso-session section, resolved as the AWS CLI resolves
// it — the cached token read from ~/.aws/sso/cache, GetRoleCredentials
// asked of the SSO portal (a stand-in here: no SSO service is reachable),
// and the role's credentials used for EC2 (moto) (issue 13).
func TestSSOProfile(t *testing.T) {
	needWorld(t)
	const token = "lab-sso-bearer-token"
	var asked atomic.Int32
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/federation/credentials" || r.Header.Get("x-amz-sso_bearer_token") != token ||
			r.URL.Query().Get("role_name") != "LabAdmin" || r.URL.Query().Get("account_id") != "123456789012" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"bad token or role"}`)
			return
		}
		asked.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"roleCredentials": map[string]any{"accessKeyId": "ASIALABSSOLABSSOLAB0",
			"secretAccessKey": "lab-sso-secret", "sessionToken": "lab-sso-session", "expiration": time.Now().Add(time.Hour).UnixMilli()}})
	}))
	defer portal.Close()

	home := t.TempDir()
	aws := filepath.Join(home, ".aws")
	os.MkdirAll(filepath.Join(aws, "sso", "cache"), 0o700)
	os.WriteFile(filepath.Join(aws, "config"), []byte(`[profile lab-sso]
sso_session = lab
sso_account_id = 123456789012
sso_role_name = LabAdmin
region = us-east-1

[sso-session lab]
sso_region = us-east-1
sso_start_url = https://lab.awsapps.com/start
sso_registration_scopes = sso:account:access
`), 0o600)
	sum := sha1.Sum([]byte("lab"))
	os.WriteFile(filepath.Join(aws, "sso", "cache", hex.EncodeToString(sum[:])+".json"), []byte(fmt.Sprintf(
		`{"accessToken": %q, "expiresAt": %q, "region": "us-east-1", "startUrl": "https://lab.awsapps.com/start"}`,
		token, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))), 0o600)

	var env []string
	for _, kv := range append(cleanEnv(), world.AWSEnv()...) {
		if k, _, _ := strings.Cut(kv, "="); k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY" && k != "AWS_SESSION_TOKEN" &&
			k != "AWS_PROFILE" && k != "HOME" && k != "AWS_CONFIG_FILE" && k != "AWS_SHARED_CREDENTIALS_FILE" {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+home, "AWS_ENDPOINT_URL_SSO="+portal.URL, "XDG_CACHE_HOME="+t.TempDir())
	r := runCmdEnv(t, env, nil, bin, "-F", ec2Cfg, "--profile", "lab-sso", "--list", "--json", "healthy")
	if r.code != 0 || !strings.Contains(string(r.stdout), `"name": "healthy"`) {
		t.Fatalf("--profile lab-sso --list: exit %d, %s, %s", r.code, r.stdout, r.stderr)
	}
	if asked.Load() == 0 {
		t.Error("the SSO portal was never asked for the role's credentials")
	}
	// An expired token: the AWS CLI's advice, not a stack of SDK errors.
	os.WriteFile(filepath.Join(aws, "sso", "cache", hex.EncodeToString(sum[:])+".json"), []byte(fmt.Sprintf(
		`{"accessToken": %q, "expiresAt": %q, "region": "us-east-1", "startUrl": "https://lab.awsapps.com/start"}`,
		token, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))), 0o600)
	r = runCmdEnv(t, env, nil, bin, "-F", ec2Cfg, "--profile", "lab-sso", "--list", "healthy")
	if r.code != 255 || !strings.Contains(string(r.stderr), "aws sso login") {
		t.Errorf("an expired SSO token: exit %d, %s", r.code, r.stderr)
	}
}
