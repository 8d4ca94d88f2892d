package connect

import (
	"os/user"
	"testing"
)

// Windows as Win32-OpenSSH: the system files under %ProgramData%\ssh, the
// user's under %USERPROFILE%, and the local user's bare name (issue 25).
func TestPlatformPaths(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tt := range []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"linux", map[string]string{"ProgramData": `D:\PD`}, "/etc/ssh"},
		{"windows", map[string]string{"ProgramData": `D:\PD`}, `D:\PD\ssh`},
		{"windows", nil, `C:\ProgramData\ssh`},
	} {
		if got := systemSSHDir(tt.goos, env(tt.env)); got != tt.want {
			t.Errorf("systemSSHDir(%q, %v) = %q, want %q", tt.goos, tt.env, got, tt.want)
		}
	}
	u := &user.User{Username: `DESKTOP-7\Alice`, Uid: "S-1-5-21-1-2-3-1001", HomeDir: `C:\Users\Alice.DESKTOP-7`}
	if got := userProfileDir("windows", env(map[string]string{"USERPROFILE": `C:\Users\Alice`, "HOME": "/home/alice"}), u); got != `C:\Users\Alice` {
		t.Errorf("userProfileDir(windows) = %q, want %%USERPROFILE%%", got)
	}
	if got := userProfileDir("linux", env(map[string]string{"USERPROFILE": `C:\Users\Alice`, "HOME": "/elsewhere"}), &user.User{HomeDir: "/home/alice"}); got != "/home/alice" {
		t.Errorf("userProfileDir(linux) = %q, want the password database's", got)
	}
	for _, tt := range []struct {
		goos, name, uid, computer, want string
	}{
		{"windows", `DESKTOP-7\Alice`, "S-1-5-21-1-2-3-1001", "DESKTOP-7", "alice"},
		{"windows", `desktop-7\Alice`, "S-1-5-21-1-2-3-1001", "DESKTOP-7", "alice"},
		{"windows", `CORP\Bob`, "S-1-5-21-9-9-9-1105", "DESKTOP-7", `corp\bob`},
		{"windows", `NT AUTHORITY\SYSTEM`, "S-1-5-18", "DESKTOP-7", "system"},
		{"linux", "Alice", "1000", "host", "Alice"},
	} {
		if got := loginName(tt.goos, &user.User{Username: tt.name, Uid: tt.uid}, tt.computer); got != tt.want {
			t.Errorf("loginName(%q, %q, %q) = %q, want %q", tt.goos, tt.name, tt.computer, got, tt.want)
		}
	}
}
