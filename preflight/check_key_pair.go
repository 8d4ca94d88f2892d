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
				return Result{Status: Pass, Summary: fmt.Sprintf("%s matches key pair %s", k.Source, kp.Name),
					Evidence: []string{kp.Name + " " + kp.Fingerprint}}
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
