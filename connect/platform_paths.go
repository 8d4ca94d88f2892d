package connect

import (
	"os"
	"os/user"
	"strings"
)

// Where ssh(1) keeps its files and whom it logs in as, per platform: on
// Windows as Win32-OpenSSH does (PowerShell/openssh-portable): the system
// files in %ProgramData%\ssh (SSHDIR "__PROGRAMDATA__\ssh"), the user's in
// %USERPROFILE%\.ssh, and the local user's name without its computer name
// (issue 25: ec2ssh sent DOMAIN\user and read /etc/ssh). The functions take
// what they read as arguments, so that both platforms' answers are tested
// everywhere.

// systemSSHDir is ssh's SSHDIR on the platform goos.
func systemSSHDir(goos string, getenv func(string) string) string {
	if goos != "windows" {
		return "/etc/ssh"
	}
	pd := getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return pd + `\ssh`
}

// userProfileDir is the home ~ stands for on the platform goos: the
// password database's on Unix, %USERPROFILE% on Windows (what
// Win32-OpenSSH reads from the profile list), falling back on what the
// system says of the user, then HOME.
func userProfileDir(goos string, getenv func(string) string, u *user.User) string {
	if goos == "windows" {
		if p := getenv("USERPROFILE"); p != "" {
			return p
		}
	}
	if u != nil && u.HomeDir != "" {
		return u.HomeDir
	}
	if h := getenv("HOME"); h != "" {
		return h
	}
	return "/"
}

// loginName is the local user's name as ssh sends it when no User is
// given. On Windows Go names a user COMPUTER\name (LookupAccountSid);
// Win32-OpenSSH's getpwuid gives a local account's name alone, lower-cased,
// a domain account's as domain\name, lower-cased, and LocalSystem as
// "system".
func loginName(goos string, u *user.User, computer string) string {
	if goos != "windows" {
		return u.Username
	}
	name := u.Username
	if domain, bare, ok := strings.Cut(name, `\`); ok && (strings.EqualFold(domain, computer) || u.Uid == "S-1-5-18") {
		name = bare
	}
	return strings.ToLower(name)
}

// platformLocalUser is loginName for this process's user.
func platformLocalUser(goos string) string {
	u, err := user.Current()
	if err != nil {
		return os.Getenv("USER")
	}
	computer, _ := os.Hostname()
	if goos == "windows" {
		if c := os.Getenv("COMPUTERNAME"); c != "" {
			computer = c
		}
	}
	return loginName(goos, u, computer)
}
