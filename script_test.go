package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// The command line as scripts (testdata/script/*.txtar): options, errors,
// exit statuses, --help, -G, -O, as a user types them. They need no
// network, no AWS and no root: what they exercise is decided before
// anything is dialled, or against a port nothing listens on.

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ec2ssh": func() { main() },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			// No user configuration, no AWS, no agent: each script sets
			// what it needs.
			e.Setenv("HOME", e.WorkDir)
			e.Setenv("XDG_CACHE_HOME", e.WorkDir+"/.cache")
			e.Setenv("SSH_AUTH_SOCK", "")
			e.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			for _, v := range []string{"AWS_PROFILE", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
				e.Setenv(v, "")
			}
			return nil
		},
	})
}
