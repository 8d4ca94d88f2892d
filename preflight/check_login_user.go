package preflight

import (
	"fmt"
	"strings"
)

// Where the login user came from (Request.UserFrom).
const (
	UserFromCommandLine = "the command line or ssh_config"
	UserFromAMI         = "the AMI's default"
	UserFromLocal       = "the local user name"
)

// checkLoginUser compares the user ec2ssh logs in as with the AMI's
// default user (IdentifyImage), and with the instance's own accounts when
// the look inside ran. It is a check of its own, not part of key-pair: a
// right key for the wrong user and a wrong key for the right user both end
// in "Permission denied (publickey)", and each has its own fix (-l USER
// here, -i KEY there).
func checkLoginUser(f *Facts) Result {
	in := f.Instance
	if in == nil {
		return Result{Status: Skip, Summary: "not an EC2 instance"}
	}
	user := f.User
	if user == "" {
		return Result{Status: Unknown, Summary: "the login user is not known"}
	}
	from := ""
	if f.UserFrom != "" {
		from = " (from " + f.UserFrom + ")"
	}
	var fam ImageFamily
	famKnown := false
	ami := in.ImageID
	if f.Image != nil {
		fam, famKnown = IdentifyImage(*f.Image)
		if f.Image.Name != "" {
			ami += " (" + Sanitize(f.Image.Name) + ")"
		}
	}
	var ev []string
	if famKnown {
		ev = append(ev, fmt.Sprintf("%s is %s: it logs in as %s", ami, fam.Name, fam.User))
	}
	// The look inside, run as this user, settles whether the account is
	// there.
	if ins := f.Inside; ins != nil && ins.User == user {
		ev = append(ev, "looked inside ("+ins.How+")")
		if len(ins.Accounts) > 0 {
			ev = append(ev, "login accounts on the instance: "+strings.Join(ins.Accounts, ", "))
		}
		if ins.UserExists {
			return Result{Status: Pass, Summary: fmt.Sprintf("user %s exists on the instance%s", user, from), Evidence: ev}
		}
		want := ""
		switch {
		case famKnown && (len(ins.Accounts) == 0 || contains(ins.Accounts, fam.User)):
			want = fam.User
		case len(ins.Accounts) == 1:
			want = ins.Accounts[0]
		}
		r := Result{Status: Fail, Summary: fmt.Sprintf("there is no user %s on the instance%s", user, from), Evidence: ev,
			Fix: "log in as one of its accounts: ec2ssh -l USER …"}
		if want != "" {
			r.Summary += "; it logs in as " + want
			r.Fix = fmt.Sprintf("log in as %s: ec2ssh -l %s … (or %s@HOST)", want, want, want)
		}
		return r
	}
	switch {
	case f.ImageErr != nil:
		r := unknownFrom(f.ImageErr)
		r.Summary = "the AMI's default user is not known: " + r.Summary
		return r
	case in.ImageID == "":
		return Result{Status: Unknown, Summary: "the instance's AMI is not known, so neither is its default user"}
	case f.Image == nil:
		return Result{Status: Unknown, Summary: fmt.Sprintf("AMI %s is not described (deregistered, or private to another account): its default user is not known", in.ImageID),
			Fix: "the AMI's publisher documents its user; then ec2ssh -l USER …"}
	case !famKnown:
		return Result{Status: Unknown, Summary: fmt.Sprintf("AMI %s is not one ec2ssh recognises: its default user is not known", ami),
			Evidence: []string{"owner " + f.Image.Owner}, Fix: "the AMI's publisher documents its user; then ec2ssh -l USER …"}
	case user == fam.User:
		return Result{Status: Pass, Summary: fmt.Sprintf("%s is the login user of %s AMIs%s", user, fam.Name, from), Evidence: ev}
	case fam.Accepts(user):
		return Result{Status: Warn, Summary: fmt.Sprintf("%s AMIs log in as %s; only some (older) ones as %s%s", fam.Name, fam.User, user, from), Evidence: ev,
			Fix: fmt.Sprintf("if %s is refused: ec2ssh -l %s …", user, fam.User)}
	}
	return Result{Status: Fail, Summary: fmt.Sprintf("%s AMIs log in as %s, not %s%s", fam.Name, fam.User, user, from), Evidence: ev,
		Fix: fmt.Sprintf("log in as %s: ec2ssh -l %s … (or %s@HOST)", fam.User, fam.User, fam.User)}
}
