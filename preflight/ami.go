package preflight

import "strings"

// ImageFamily is an AMI's operating system family and the login user its
// images are made with (EC2 User Guide, "Manage system users on your
// Amazon EC2 Linux instance", and each publisher's documentation).
type ImageFamily struct {
	Name string   // "Ubuntu"
	User string   // the default login user
	Also []string // users some of the family's images use instead (older releases)
}

// imageFamilies is searched in order, first match wins: words in the
// image's name or description (lower case), then the publisher's account.
// More specific families come first (Bitnami images name their base
// distribution; Fedora CoreOS is not Fedora; CentOS Stream is not CentOS).
var imageFamilies = []struct {
	words  []string
	owners []string
	fam    ImageFamily
}{
	{[]string{"windows"}, []string{"801119661308"}, ImageFamily{Name: "Windows", User: "Administrator"}},
	{[]string{"bitnami"}, []string{"979382823631"}, ImageFamily{Name: "Bitnami", User: "bitnami"}},
	{[]string{"fedora-coreos", "fedora coreos"}, nil, ImageFamily{Name: "Fedora CoreOS", User: "core"}},
	{[]string{"flatcar"}, []string{"075585003325"}, ImageFamily{Name: "Flatcar", User: "core"}},
	{[]string{"ubuntu"}, []string{"099720109477", "513442679011", "837727238323"}, ImageFamily{Name: "Ubuntu", User: "ubuntu"}},
	{[]string{"debian"}, []string{"136693071363", "379101102735"}, ImageFamily{Name: "Debian", User: "admin"}},
	{[]string{"centos stream", "centos-stream"}, nil, ImageFamily{Name: "CentOS Stream", User: "ec2-user", Also: []string{"centos"}}},
	{[]string{"centos"}, nil, ImageFamily{Name: "CentOS", User: "centos", Also: []string{"ec2-user"}}},
	{[]string{"rocky"}, []string{"792107900819"}, ImageFamily{Name: "Rocky Linux", User: "rocky"}},
	{[]string{"almalinux", "alma linux"}, []string{"764336703387"}, ImageFamily{Name: "AlmaLinux", User: "ec2-user"}},
	{[]string{"fedora"}, nil, ImageFamily{Name: "Fedora", User: "fedora", Also: []string{"ec2-user"}}},
	{[]string{"rhel", "red hat"}, []string{"309956199498"}, ImageFamily{Name: "Red Hat Enterprise Linux", User: "ec2-user", Also: []string{"root"}}},
	{[]string{"suse", "sles"}, []string{"013907871322"}, ImageFamily{Name: "SUSE Linux", User: "ec2-user", Also: []string{"root"}}},
	{[]string{"oracle linux", "ol8-", "ol9-"}, []string{"131827586825"}, ImageFamily{Name: "Oracle Linux", User: "ec2-user"}},
	{[]string{"freebsd"}, []string{"782442783595"}, ImageFamily{Name: "FreeBSD", User: "ec2-user"}},
	{[]string{"kali-linux", "kali linux", "kali-last"}, nil, ImageFamily{Name: "Kali Linux", User: "kali"}},
	{[]string{"archlinux", "arch-linux", "arch linux"}, nil, ImageFamily{Name: "Arch Linux", User: "arch"}},
	{[]string{"alpine"}, nil, ImageFamily{Name: "Alpine Linux", User: "alpine"}},
	{[]string{"amzn", "al2023", "al2022", "amazon linux", "amazon-eks", "amazonlinux"}, []string{"137112412989"}, ImageFamily{Name: "Amazon Linux", User: "ec2-user"}},
}

// IdentifyImage says which family an AMI belongs to, from its platform,
// its name and description, then its publisher; false when none is known.
func IdentifyImage(im Image) (ImageFamily, bool) {
	if strings.EqualFold(im.Platform, "windows") {
		return imageFamilies[0].fam, true
	}
	s := strings.ToLower(im.Name + " " + im.Description)
	for _, f := range imageFamilies {
		for _, w := range f.words {
			if strings.Contains(s, w) {
				return f.fam, true
			}
		}
	}
	for _, f := range imageFamilies {
		for _, o := range f.owners {
			if im.Owner == o {
				return f.fam, true
			}
		}
	}
	return ImageFamily{}, false
}

// Accepts reports whether user is one the family's images log in as.
func (f ImageFamily) Accepts(user string) bool {
	if user == f.User {
		return true
	}
	for _, u := range f.Also {
		if user == u {
			return true
		}
	}
	return false
}
