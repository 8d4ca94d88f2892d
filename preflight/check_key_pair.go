package preflight

import (
	"fmt"
	"strings"
)

// normFingerprint makes EC2's and ssh-keygen's spellings comparable:
// lower case, no "SHA256:"/"MD5:" prefix, no base64 padding.
func normFingerprint(s string) string {
	s = strings.TrimSpace(s)
	for _, p := range []string{"SHA256:", "MD5:", "sha256:", "md5:"} {
		s = strings.TrimPrefix(s, p)
	}
	s = strings.TrimRight(s, "=")
	if strings.Contains(s, ":") { // hex forms are case-insensitive; base64 is not
		s = strings.ToLower(s)
	}
	return s
}

func checkKeyPair(f *Facts) Result {
	in := f.Instance
	if in == nil {
		return Result{Status: Skip, Summary: "not an EC2 instance"}
	}
	if in.KeyName == "" {
		return Result{Status: Warn, Summary: in.ID + " was launched without a key pair: only keys put there otherwise (user data, EC2 Instance Connect) work",
			Fix: "let ec2ssh push a one-time key with EC2 Instance Connect, or use SSM (--fallback=ssm)"}
	}
	if f.KeyPairErr != nil {
		if f.KeyPairErr.Code == "InvalidKeyPair.NotFound" {
			return Result{Status: Warn, Summary: "key pair " + in.KeyName + " no longer exists in EC2, so its fingerprint cannot be compared",
				Evidence: []string{f.KeyPairErr.Error()}}
		}
		return unknownFrom(f.KeyPairErr)
	}
	kp := f.KeyPair
	if kp == nil {
		return Result{Status: Unknown, Summary: "key pair " + in.KeyName + " was not described"}
	}
	want := normFingerprint(kp.Fingerprint)
	for _, k := range f.LocalKeys {
		for _, fp := range k.Fingerprints {
			if normFingerprint(fp) == want {
				r := Result{Status: Pass, Summary: fmt.Sprintf("%s matches key pair %s", k.Source, kp.Name),
					Evidence: []string{kp.Name + " " + kp.Fingerprint}}
				if bad := authorizedKeysProblem(f.Inside, k); bad != nil {
					bad.Evidence = append(r.Evidence, bad.Evidence...)
					return *bad
				}
				return r
			}
		}
	}
	ev := []string{fmt.Sprintf("key pair %s (%s) %s", kp.Name, kp.Type, kp.Fingerprint)}
	for _, k := range f.LocalKeys {
		ev = append(ev, k.Source+" ("+k.Type+") does not match")
	}
	summary := fmt.Sprintf("none of the %d local %s matches key pair %s", len(f.LocalKeys), plural(len(f.LocalKeys), "key", "keys"), kp.Name)
	if len(f.LocalKeys) == 0 {
		summary = "no local key to offer: no identity file and no agent key was found"
	}
	return Result{Status: Fail, Summary: summary, Evidence: ev,
		Fix: fmt.Sprintf("use the private key of %s: ec2ssh -i ~/.ssh/%s.pem …; if it is lost, ec2ssh pushes a one-time key with EC2 Instance Connect", kp.Name, kp.Name)}
}

// authorizedKeysProblem is what the look inside says stops sshd from
// taking the key that matches the key pair: files it refuses for their
// modes or owners (StrictModes), a missing authorized_keys, or the key not
// in it. nil when nothing was seen, or nothing is wrong.
func authorizedKeysProblem(in *Inside, key LocalKey) *Result {
	if in == nil || !in.UserExists {
		return nil
	}
	ev := []string{"looked inside (" + in.How + ")"}
	for _, fm := range in.Files {
		if fm.Missing {
			if strings.HasSuffix(fm.Path, "authorized_keys") {
				return &Result{Status: Fail, Summary: fmt.Sprintf("user %s has no %s", in.User, fm.Path), Evidence: ev,
					Fix: "ec2ssh gets in with a one-time key from EC2 Instance Connect; then put the key pair's public key in " + fm.Path + " (chmod 600)"}
			}
			continue
		}
		ev = append(ev, fmt.Sprintf("%s: mode %o, owner %s", fm.Path, fm.Mode, fm.Owner))
		if !in.StrictModes {
			continue
		}
		if fm.Mode&0o022 != 0 || (fm.Owner != in.User && fm.Owner != "root") {
			want := "go-w"
			fix := fmt.Sprintf("sudo chmod %s %s", want, fm.Path)
			if strings.HasSuffix(fm.Path, "authorized_keys") {
				fix = fmt.Sprintf("sudo chmod 600 %s", fm.Path)
			} else if strings.HasSuffix(fm.Path, "/.ssh") {
				fix = fmt.Sprintf("sudo chmod 700 %s", fm.Path)
			}
			if fm.Owner != in.User && fm.Owner != "root" {
				fix += fmt.Sprintf("; sudo chown %s %s", in.User, fm.Path)
			}
			return &Result{Status: Fail, Evidence: ev, Fix: fix + " (from an SSM shell, or after logging in with EC2 Instance Connect)",
				Summary: fmt.Sprintf("%s is writable by others or not owned by %s (mode %o, owner %s): sshd (StrictModes) ignores the user's keys",
					fm.Path, in.User, fm.Mode, fm.Owner)}
		}
	}
	if len(in.Keys) == 0 {
		return nil
	}
	for _, ak := range in.Keys {
		for _, a := range ak.Fingerprints {
			for _, b := range key.Fingerprints {
				if normFingerprint(a) == normFingerprint(b) {
					return nil
				}
			}
		}
	}
	return &Result{Status: Fail, Evidence: ev,
		Summary: fmt.Sprintf("%s matches the key pair, but that key is not in %s's authorized_keys on the instance", key.Source, in.User),
		Fix:     "ec2ssh gets in with a one-time key from EC2 Instance Connect; then append your public key to ~/.ssh/authorized_keys there"}
}
