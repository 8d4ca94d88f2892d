package preflight

import (
	"net/netip"
	"strings"
	"testing"
)

// Table tests for issue 26 ("Diagnosis never gives a false all-clear"):
// every decision the checks make from facts, no network.

// twoNICs is base() with a second interface, eni-2 at 10.0.1.6 in sg-2
// (which admits everyone on 22), while eni-1's sg-1 admits only
// 203.0.113.0/24.
func twoNICs() *Facts {
	f := base()
	f.Instance.Interfaces = append(f.Instance.Interfaces, Interface{ID: "eni-2", DeviceIndex: 1, SecurityGroups: []string{"sg-2"},
		PrivateIPs: []string{"10.0.1.6"}, PublicIPs: []string{"198.51.100.8"}, IPv6: []string{"2001:db8::6"}})
	f.SecurityGroups = append(f.SecurityGroups, SecurityGroup{ID: "sg-2", Name: "open", Ingress: []SGRule{
		{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"0.0.0.0/0"}, IPv6CIDRs: []string{"::/0"}}}})
	return f
}

func TestSecurityGroupPerInterface(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Facts)
		want    Status
		mention string
	}{
		{"eni-1's address, its group admits the source", func(f *Facts) {}, Pass, "sg-1"},
		{"eni-1's address, its group does not admit, eni-2's would", func(f *Facts) { f.Source.Address = "192.0.2.50" }, Fail, "eni-1"},
		{"eni-2's private address, its own group admits", func(f *Facts) { f.Address, f.Source.Address = "10.0.1.6", "192.0.2.50" }, Pass, "sg-2"},
		{"eni-2's public address", func(f *Facts) { f.Address, f.Source.Address = "198.51.100.8", "192.0.2.50" }, Pass, "sg-2"},
		{"eni-2's IPv6 address", func(f *Facts) { f.Address, f.Source.Address = "2001:db8::6", "2001:db8:ffff::1" }, Pass, "::/0"},
		{"eni-1's address, an IPv6 client", func(f *Facts) { f.Source.Address = "2001:db8:ffff::1" }, Fail, "eni-1"},
		{"an address no interface holds: the primary's groups", func(f *Facts) { f.Address, f.Source.Address = "10.9.9.9", "192.0.2.50" }, Fail, "primary"},
	}
	for _, tt := range tests {
		f := twoNICs()
		tt.mutate(f)
		r := result(t, f, CheckSecurityGroup)
		text := r.Summary + " " + strings.Join(r.Evidence, " ")
		if r.Status != tt.want || !strings.Contains(text, tt.mention) {
			t.Errorf("%s: security-group = %s (%s | %s), want %s naming %q", tt.name, r.Status, r.Summary, r.Evidence, tt.want, tt.mention)
		}
		if r.Status == Fail && !strings.Contains(strings.Join(r.Evidence, " "), "sg-2 on eni-2 allows") && tt.mention == "eni-1" && !strings.Contains(tt.name, "IPv6") {
			t.Errorf("%s: the evidence %q should say eni-2's group does not apply", tt.name, r.Evidence)
		}
	}
}

func TestSecurityGroupAddressFamily(t *testing.T) {
	rule := func(cidrs, v6 []string) []SecurityGroup {
		return []SecurityGroup{{ID: "sg-1", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: cidrs, IPv6CIDRs: v6}}}}
	}
	tests := []struct {
		name   string
		groups []SecurityGroup
		dial   string
		src    string
		want   Status
	}{
		{"::/0 alone, IPv4 client not known", rule(nil, []string{"::/0"}), "198.51.100.7", "", Fail},
		{"::/0 alone, IPv4 client known", rule(nil, []string{"::/0"}), "198.51.100.7", "203.0.113.9", Fail},
		{"0.0.0.0/0, IPv4 client not known", rule([]string{"0.0.0.0/0"}, nil), "198.51.100.7", "", Pass},
		{"a narrow IPv4 range, client not known", rule([]string{"203.0.113.0/24"}, nil), "198.51.100.7", "", Unknown},
		{"::/0 and a narrow IPv4 range, client not known", rule([]string{"203.0.113.0/24"}, []string{"::/0"}), "198.51.100.7", "", Unknown},
		{"0.0.0.0/0 alone, IPv6 client not known", rule([]string{"0.0.0.0/0"}, nil), "2001:db8::5", "", Fail},
		{"::/0, IPv6 client not known", rule(nil, []string{"::/0"}), "2001:db8::5", "", Pass},
	}
	for _, tt := range tests {
		f := base()
		f.SecurityGroups, f.Address, f.Source.Address = tt.groups, tt.dial, tt.src
		f.Instance.Interfaces[0].IPv6 = []string{"2001:db8::5"}
		r := result(t, f, CheckSecurityGroup)
		if r.Status != tt.want {
			t.Errorf("%s: security-group = %s (%s), want %s", tt.name, r.Status, r.Summary, tt.want)
		}
		if r.Status == Fail && !strings.Contains(r.Fix, "authorize-security-group-ingress --group-id sg-1") {
			t.Errorf("%s: fix %q", tt.name, r.Fix)
		}
	}
	// The fleet listing's judgement (sgAllows, no source known) agrees.
	if ok, _ := sgAllows(SGRule{Protocol: "tcp", FromPort: 22, ToPort: 22, IPv6CIDRs: []string{"::/0"}}, 22, netip.Addr{}, false, nil); ok {
		t.Errorf("sgAllows counts ::/0 as admitting an unknown IPv4 client")
	}
}

func TestSecurityGroupUnreadable(t *testing.T) {
	plRule := SGRule{Protocol: "tcp", FromPort: 22, ToPort: 22, PrefixLists: []string{"pl-1"}}
	denied := &APIError{Op: "ec2:GetManagedPrefixListEntries", Code: "UnauthorizedOperation", Denied: true, Permission: "ec2:GetManagedPrefixListEntries"}
	tests := []struct {
		name   string
		rules  []SGRule
		pls    map[string][]string
		plErr  *APIError
		mutate func(*Facts)
		want   Status
	}{
		{"prefix list unreadable", []SGRule{plRule}, nil, denied, nil, Unknown},
		{"prefix list unreadable, another rule admits", []SGRule{plRule, {Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"203.0.113.9/32"}}}, nil, denied, nil, Pass},
		{"prefix list read, the source is not in it", []SGRule{plRule}, map[string][]string{"pl-1": {"192.0.2.0/24"}}, nil, nil, Fail},
		{"one list read, another not", []SGRule{plRule, {Protocol: "tcp", FromPort: 22, ToPort: 22, PrefixLists: []string{"pl-2"}}}, map[string][]string{"pl-1": {"192.0.2.0/24"}}, denied, nil, Unknown},
		{"referenced group, membership lookup failed", []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, Groups: []string{"sg-bastion"}}}, nil, nil,
			func(f *Facts) { f.SourceInterfacesErr = denied }, Unknown},
		{"referenced group, the source is not a member", []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, Groups: []string{"sg-bastion"}}}, nil, nil,
			func(f *Facts) { f.SourceLookedUp = true }, Fail},
		{"a group of another account", []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, ForeignGroups: []string{"sg-theirs"}}}, nil, nil,
			func(f *Facts) { f.SourceLookedUp = true }, Unknown},
	}
	for _, tt := range tests {
		f := base()
		f.SecurityGroups[0].Ingress, f.PrefixLists, f.PrefixListsErr = tt.rules, tt.pls, tt.plErr
		if tt.mutate != nil {
			tt.mutate(f)
		}
		r := result(t, f, CheckSecurityGroup)
		if r.Status != tt.want {
			t.Errorf("%s: security-group = %s (%s), want %s", tt.name, r.Status, r.Summary, tt.want)
		}
		if r.Status == Unknown && tt.plErr != nil && !strings.Contains(r.Fix, "ec2:GetManagedPrefixListEntries") {
			t.Errorf("%s: unknown without the permission to grant: %q", tt.name, r.Fix)
		}
	}
}

func TestNetworkACLUnknownSource(t *testing.T) {
	f := base()
	f.Source.Address = ""
	if r := result(t, f, CheckNetworkACL); r.Status != Pass {
		t.Errorf("allow-all ACL, client not known = %s (%s), want pass: no address changes the verdict", r.Status, r.Summary)
	}
	f.NetworkACL.Entries = append([]ACLEntry{{Number: 10, Protocol: "6", FromPort: 22, ToPort: 22, Allow: true, CIDR: "203.0.113.0/24"}}, f.NetworkACL.Entries...)
	f.NetworkACL.Entries[1].Allow = false // rule 100 now denies everyone else
	if r := result(t, f, CheckNetworkACL); r.Status != Unknown {
		t.Errorf("ACL that depends on the address, client not known = %s (%s), want unknown", r.Status, r.Summary)
	}
}

func TestNetworkPathRoutes(t *testing.T) {
	gwErr := &APIError{Op: "ec2:DescribeInternetGateways", Code: "UnauthorizedOperation", Denied: true, Permission: "ec2:DescribeInternetGateways"}
	tests := []struct {
		name    string
		mutate  func(*Facts)
		want    Status
		mention string
	}{
		{"default route to an attached gateway", func(f *Facts) {}, Pass, "igw-1"},
		{"the gateway was deleted", func(f *Facts) {
			f.RouteTable.Routes[1].State = "blackhole"
			f.Gateways = map[string]Gateway{"igw-1": {ID: "igw-1", Kind: "internet", Gone: true}}
		}, Fail, "no longer exists"},
		{"the gateway was detached", func(f *Facts) {
			f.RouteTable.Routes[1].State = "blackhole"
			f.Gateways = map[string]Gateway{"igw-1": {ID: "igw-1", Kind: "internet"}}
		}, Fail, "attach-internet-gateway"},
		{"a blackhole route, gateway not described", func(f *Facts) {
			f.RouteTable.Routes[1].State = "blackhole"
			f.Gateways = nil
		}, Fail, "blackhole"},
		{"the gateway lookup failed, the route is a blackhole", func(f *Facts) {
			f.RouteTable.Routes[1].State = "blackhole"
			f.Gateways, f.GatewaysErr = nil, gwErr
		}, Fail, "blackhole"},
		{"the gateway lookup failed", func(f *Facts) { f.Gateways, f.GatewaysErr = nil, gwErr }, Unknown, "ec2:DescribeInternetGateways"},
		{"the route table lookup failed", func(f *Facts) {
			f.RouteTable, f.RouteTableErr = nil, &APIError{Op: "ec2:DescribeRouteTables", Code: "Throttling", Message: "Rate exceeded"}
		}, Unknown, "Rate exceeded"},
		{"a more specific route for the client to a NAT", func(f *Facts) {
			f.RouteTable.Routes = append(f.RouteTable.Routes, Route{"203.0.113.0/24", "nat-1", "active"})
			f.Gateways["nat-1"] = Gateway{ID: "nat-1", Kind: "nat", State: "available"}
		}, Fail, "nat-1"},
		{"client not known, default route to the gateway", func(f *Facts) { f.Source.Address = "" }, Pass, "igw-1"},
		{"client not known, a public range routed elsewhere", func(f *Facts) {
			f.Source.Address = ""
			f.RouteTable.Routes = append(f.RouteTable.Routes, Route{"203.0.113.0/24", "tgw-1", "active"})
		}, Unknown, "tgw-1"},
		{"IPv6 to an egress-only gateway", func(f *Facts) {
			f.Address, f.Source.Address = "2001:db8::5", "2001:db8:ffff::1"
			f.Instance.Interfaces[0].IPv6 = []string{"2001:db8::5"}
			f.RouteTable.Routes = append(f.RouteTable.Routes, Route{"::/0", "eigw-1", "active"})
		}, Fail, "egress-only"},
		{"IPv6 to the internet gateway", func(f *Facts) {
			f.Address, f.Source.Address = "2001:db8::5", "2001:db8:ffff::1"
			f.Instance.Interfaces[0].IPv6 = []string{"2001:db8::5"}
			f.RouteTable.Routes = append(f.RouteTable.Routes, Route{"::/0", "igw-1", "active"})
		}, Pass, "igw-1"},
		{"private address from a VPN, routed back through the transit gateway", func(f *Facts) {
			f.Address, f.Source.Address = "10.0.1.5", "10.8.0.5"
			f.RouteTable.Routes = append(f.RouteTable.Routes, Route{"10.8.0.0/16", "tgw-1", "active"})
		}, Pass, "tgw-1"},
		{"private address from outside, routed back to the internet", func(f *Facts) {
			f.Address, f.Source.Address = "10.0.1.5", "10.8.0.5"
		}, Fail, "outside the VPC"},
	}
	for _, tt := range tests {
		f := base()
		tt.mutate(f)
		r := result(t, f, CheckNetworkPath)
		text := r.Summary + " " + r.Fix + " " + strings.Join(r.Evidence, " ")
		if r.Status != tt.want || !strings.Contains(text, tt.mention) {
			t.Errorf("%s: network-path = %s (%s / %s), want %s naming %q", tt.name, r.Status, r.Summary, r.Fix, tt.want, tt.mention)
		}
	}
}

func TestInstanceStates(t *testing.T) {
	for state, fix := range map[State]string{
		StatePending:      "aws ec2 wait instance-running",
		StateStopping:     "aws ec2 wait instance-stopped",
		StateStopped:      "aws ec2 start-instances",
		StateShuttingDown: "connect to another instance",
		StateTerminated:   "connect to another instance",
		"rebooting":       "",
	} {
		f := base()
		f.Instance.State = state
		r := result(t, f, CheckInstanceState)
		want := Fail
		if fix == "" {
			want = Unknown
		}
		if r.Status != want || !strings.Contains(r.Fix, fix) {
			t.Errorf("instance-state for %s = %s (%s / %s), want %s with %q", state, r.Status, r.Summary, r.Fix, want, fix)
		}
		rep := NewReport(f, "198.51.100.7")
		if rep.Verdict.Status == Pass || rep.ExitStatus() == 0 {
			t.Errorf("%s: the verdict says %s (%s), exit %d", state, rep.Verdict.Status, rep.Verdict.Summary, rep.ExitStatus())
		}
	}
}

// TestStatusChecksAreTheCause: an instance failing its status checks is
// not also blamed on its host firewall, its network or its agent.
func TestStatusChecksAreTheCause(t *testing.T) {
	f := base()
	f.Status.Instance = "impaired"
	f.SSHD.Result = ProbeTimeout
	f.Inside.Firewall = []FirewallRule{{Firewall: "nftables", Rule: "tcp dport 22 drop", Fix: "sudo nft delete rule inet filter input handle 4"}}
	f.SSM.PingStatus = "ConnectionLost"
	f.Inside = nil
	rep := NewReport(f, "198.51.100.7")
	failed := rep.Failed()
	if len(failed) != 1 || failed[0].ID != CheckStatusChecks {
		t.Errorf("failed checks = %v, want only status-checks", failed)
	}
	for _, id := range []CheckID{CheckSSHD, CheckSSMAgent} {
		if r, _ := rep.Result(id); r.Status != Unknown || !strings.Contains(r.Summary, "status checks") {
			t.Errorf("%s = %s (%s), want unknown pointing at status-checks", id, r.Status, r.Summary)
		}
	}
	// With the look inside seeing a firewall rule, still not blamed.
	f = base()
	f.Status.System = "impaired"
	f.SSHD.Result = ProbeTimeout
	f.Inside.Firewall = []FirewallRule{{Firewall: "nftables", Rule: "tcp dport 22 drop", Fix: "x"}}
	if r := result(t, f, CheckSSHD); r.Status != Unknown {
		t.Errorf("impaired with a firewall rule seen: sshd = %s (%s), want unknown", r.Status, r.Summary)
	}
}

func TestIdentifyImage(t *testing.T) {
	tests := []struct {
		im   Image
		user string
	}{
		{Image{Name: "al2023-ami-2023.4.20240401.1-kernel-6.1-x86_64", Owner: "137112412989"}, "ec2-user"},
		{Image{Name: "amzn2-ami-hvm-2.0.20180810-x86_64-gp2"}, "ec2-user"},
		{Image{Name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240301", Owner: "099720109477"}, "ubuntu"},
		{Image{Name: "debian-12-amd64-20240201-1644", Owner: "136693071363"}, "admin"},
		{Image{Name: "RHEL-9.3.0_HVM-20240117-x86_64-49-Hourly2-GP3", Owner: "309956199498"}, "ec2-user"},
		{Image{Name: "suse-sles-15-sp5-v20240129-hvm-ssd-x86_64", Owner: "013907871322"}, "ec2-user"},
		{Image{Name: "CentOS Linux 7 x86_64 HVM EBS ENA 2002_01"}, "centos"},
		{Image{Name: "CentOS Stream 9 x86_64 20240304"}, "ec2-user"},
		{Image{Name: "Fedora-Cloud-Base-39-1.5.x86_64-hvm-us-east-1-gp3-0"}, "fedora"},
		{Image{Name: "fedora-coreos-39.20240210.3.0-x86_64"}, "core"},
		{Image{Name: "Rocky-9-EC2-Base-9.3-20231113.0.x86_64", Owner: "792107900819"}, "rocky"},
		{Image{Name: "AlmaLinux OS 9.3.20231124 x86_64", Owner: "764336703387"}, "ec2-user"},
		{Image{Name: "bitnami-wordpress-6.4.3-0-r05-linux-debian-12-x86_64-hvm-ebs-nami"}, "bitnami"},
		{Image{Name: "FreeBSD 14.0-RELEASE-amd64-f3a2e5d2-2bb5-4cf4-8e7f-8b4b5e5b3e45"}, "ec2-user"},
		{Image{Name: "Windows_Server-2022-English-Full-Base-2024.02.14", Platform: "windows"}, "Administrator"},
		{Image{Name: "my-golden-image-42", Owner: "099720109477"}, "ubuntu"}, // by publisher
		{Image{Name: "my-golden-image-42", Owner: "123456789012"}, ""},
	}
	for _, tt := range tests {
		fam, ok := IdentifyImage(tt.im)
		if fam.User != tt.user || ok != (tt.user != "") {
			t.Errorf("IdentifyImage(%q, owner %s) = %q %v, want %q", tt.im.Name, tt.im.Owner, fam.User, ok, tt.user)
		}
	}
}

func TestLoginUser(t *testing.T) {
	ubuntu := &Image{ID: "ami-1", Name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240301", Owner: "099720109477"}
	tests := []struct {
		name   string
		mutate func(*Facts)
		want   Status
		fix    string
	}{
		{"the AMI's user", func(f *Facts) { f.Inside = nil }, Pass, ""},
		{"another user given", func(f *Facts) { f.Inside, f.User, f.UserFrom = nil, "ubuntu", UserFromCommandLine }, Fail, "-l ec2-user"},
		{"Ubuntu AMI, ec2-user given", func(f *Facts) { f.Inside, f.Image = nil, ubuntu }, Fail, "-l ubuntu"},
		{"Ubuntu AMI, the local user", func(f *Facts) { f.Inside, f.Image, f.User, f.UserFrom = nil, ubuntu, "alice", UserFromLocal }, Fail, "-l ubuntu"},
		{"Ubuntu AMI, ubuntu", func(f *Facts) { f.Inside, f.Image, f.User = nil, ubuntu, "ubuntu" }, Pass, ""},
		{"CentOS AMI, ec2-user (some images)", func(f *Facts) {
			f.Inside, f.Image = nil, &Image{ID: "ami-1", Name: "CentOS Linux 7 x86_64 HVM EBS ENA 2002_01"}
		}, Warn, "-l centos"},
		{"AMI not described", func(f *Facts) { f.Inside, f.Image = nil, nil }, Unknown, ""},
		{"AMI lookup denied", func(f *Facts) {
			f.Inside, f.Image, f.ImageErr = nil, nil, &APIError{Op: "ec2:DescribeImages", Code: "UnauthorizedOperation", Denied: true, Permission: "ec2:DescribeImages"}
		}, Unknown, "ec2:DescribeImages"},
		{"AMI not recognised", func(f *Facts) { f.Inside, f.Image = nil, &Image{ID: "ami-1", Name: "golden-42", Owner: "123456789012"} }, Unknown, ""},
		{"inside: the user exists, though not the AMI's", func(f *Facts) { f.User, f.Inside.User = "deploy", "deploy" }, Pass, ""},
		{"inside: no such user", func(f *Facts) {
			f.User, f.Inside.User, f.Inside.UserExists, f.Image = "ec2-user", "ec2-user", false, ubuntu
			f.Inside.Accounts = []string{"ubuntu"}
		}, Fail, "-l ubuntu"},
		{"inside: no such user, AMI unknown, one account", func(f *Facts) {
			f.Inside.UserExists, f.Image, f.Inside.Accounts = false, nil, []string{"deploy"}
		}, Fail, "-l deploy"},
	}
	for _, tt := range tests {
		f := base()
		tt.mutate(f)
		r := result(t, f, CheckLoginUser)
		if r.Status != tt.want || !strings.Contains(r.Fix, tt.fix) {
			t.Errorf("%s: login-user = %s (%s / %s), want %s with %q", tt.name, r.Status, r.Summary, r.Fix, tt.want, tt.fix)
		}
	}
}

func doc(kind, name, text string) PolicyDoc { return PolicyDoc{Name: name, Kind: kind, Document: text} }

func TestRoleEvaluate(t *testing.T) {
	cust := "arn:aws:iam::123456789012:policy/"
	readErr := &APIError{Op: "iam:GetPolicyVersion", Code: "AccessDenied", Denied: true, Permission: "iam:GetPolicyVersion"}
	tests := []struct {
		name string
		docs []PolicyDoc
		want string // per action of the agent's session and register actions: "allowed", "denied", "undecided", "missing"
	}{
		{"AmazonSSMManagedInstanceCore", []PolicyDoc{doc(PolicyAWSManaged, SSMCorePolicy, knownPolicies[SSMCorePolicy])}, "allowed"},
		{"customer-managed, every action", []PolicyDoc{doc(PolicyCustomerManaged, cust+"all", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`)}, "allowed"},
		{"customer-managed, wildcards", []PolicyDoc{doc(PolicyCustomerManaged, cust+"ssm", `{"Statement":[{"Effect":"Allow","Action":["ssm:Update*","SSMMESSAGES:*"],"Resource":"*"}]}`)}, "allowed"},
		{"inline", []PolicyDoc{doc(PolicyInline, "agent", `{"Statement":[{"Effect":"Allow","Action":["ssm:UpdateInstanceInformation","ssmmessages:*"],"Resource":["*"]}]}`)}, "allowed"},
		{"NotAction", []PolicyDoc{doc(PolicyCustomerManaged, cust+"notiam", `{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}`)}, "allowed"},
		{"Deny on ssmmessages beside the core policy", []PolicyDoc{doc(PolicyAWSManaged, SSMCorePolicy, knownPolicies[SSMCorePolicy]),
			doc(PolicyInline, "no-sessions", `{"Statement":[{"Sid":"NoSessions","Effect":"Deny","Action":"ssmmessages:*","Resource":"*"}]}`)}, "ssm:allowed ssmmessages:denied"},
		{"Deny NotAction", []PolicyDoc{doc(PolicyAWSManaged, SSMCorePolicy, knownPolicies[SSMCorePolicy]),
			doc(PolicyInline, "only-ssm", `{"Statement":[{"Effect":"Deny","NotAction":["ssm:*","ec2messages:*"],"Resource":"*"}]}`)}, "ssm:allowed ssmmessages:denied"},
		{"allowed only under a condition", []PolicyDoc{doc(PolicyCustomerManaged, cust+"cond", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}}}]}`)}, "undecided"},
		{"a policy not read", []PolicyDoc{doc(PolicyAWSManaged, SSMCorePolicy, knownPolicies[SSMCorePolicy]), {Name: cust + "secret", Kind: PolicyCustomerManaged, Err: readErr}}, "undecided"},
		{"a policy not parsed", []PolicyDoc{doc(PolicyCustomerManaged, cust+"bad", `{"Statement":`)}, "undecided"},
		{"only the register action", []PolicyDoc{doc(PolicyInline, "reg", `{"Statement":[{"Effect":"Allow","Action":"ssm:UpdateInstanceInformation","Resource":"*"}]}`)}, "ssm:allowed ssmmessages:missing"},
		{"nothing", nil, "missing"},
		{"a boundary without ssmmessages", []PolicyDoc{doc(PolicyAWSManaged, SSMCorePolicy, knownPolicies[SSMCorePolicy]),
			doc(PolicyBoundary, cust+"cap", `{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}`)}, "ssm:allowed ssmmessages:missing"},
		{"the register action on this instance's ARN only", []PolicyDoc{doc(PolicyInline, "arn", `{"Statement":[{"Effect":"Allow","Action":"ssm:UpdateInstanceInformation","Resource":"arn:aws:ec2:*:*:instance/i-0abc"},{"Effect":"Allow","Action":"ssmmessages:*","Resource":"*"}]}`)}, "allowed"},
		{"the register action on another instance", []PolicyDoc{doc(PolicyInline, "arn", `{"Statement":[{"Effect":"Allow","Action":"ssm:UpdateInstanceInformation","Resource":"arn:aws:ec2:*:*:instance/i-other"},{"Effect":"Allow","Action":"ssmmessages:*","Resource":"*"}]}`)}, "ssm:missing ssmmessages:allowed"},
	}
	resource := func(a string) string {
		if strings.HasPrefix(a, "ssm:") {
			return "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc"
		}
		return "*"
	}
	for _, tt := range tests {
		role := &Role{Name: "r", Documents: tt.docs}
		for _, g := range role.Evaluate(append(append([]string(nil), AgentRegisterActions...), AgentSessionActions...), resource) {
			got := "missing"
			switch {
			case g.Denied:
				got = "denied"
			case g.Undecided != "":
				got = "undecided"
			case g.Allowed:
				got = "allowed"
			}
			want := tt.want
			if strings.Contains(want, ":") {
				svc, _, _ := strings.Cut(g.Action, ":")
				for _, w := range strings.Fields(want) {
					if k, v, _ := strings.Cut(w, ":"); k == svc {
						want = v
					}
				}
			}
			if got != want {
				t.Errorf("%s: %s is %s (%+v), want %s", tt.name, g.Action, got, g, want)
			}
		}
	}
}

// privateSSM is base() made a private instance that reaches SSM through
// interface endpoints in subnet-2 (10.0.2.0/24), whose group admits 443
// from the VPC; its agent is offline unless online says otherwise.
func privateSSM(online bool) *Facts {
	f := base()
	f.Instance.PublicIP, f.Instance.Interfaces[0].PublicIPs = "", nil
	f.Address, f.Source = "10.0.1.5", Source{Address: "10.0.9.9", Private: true, How: "kernel route", EphemeralLow: 32768, EphemeralHigh: 60999}
	f.RouteTable.Routes = []Route{{"10.0.0.0/16", "local", "active"}}
	f.Gateways = nil
	f.SSHD.Address = "10.0.1.5"
	for i, svc := range agentServices {
		f.VPCEndpoints = append(f.VPCEndpoints, VPCEndpoint{ID: "vpce-" + svc, Service: "com.amazonaws.eu-west-1." + svc, Type: "Interface", State: "available",
			PrivateDNS: true, SubnetIDs: []string{"subnet-2"}, Groups: []string{"sg-vpce"},
			Interfaces: []EndpointInterface{{ID: "eni-" + svc, SubnetID: "subnet-2", IP: "10.0.2." + string(rune('1'+i))}}})
	}
	f.VPCEndpointGroups = []SecurityGroup{{ID: "sg-vpce", Ingress: []SGRule{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRs: []string{"10.0.0.0/16"}}}}}
	f.VPCEndpointACLs = map[string]*NetworkACL{"subnet-2": {ID: "acl-2", Entries: append([]ACLEntry(nil), f.NetworkACL.Entries...)}}
	f.VPCDNS = &VPCDNS{Support: true, Hostnames: true}
	f.Inside = nil
	if !online {
		f.SSM = &SSMAgent{Registered: false}
	}
	return f
}

func dropEndpoint(f *Facts, svc string) {
	for i, ep := range f.VPCEndpoints {
		if serviceOf(ep.Service) == svc {
			f.VPCEndpoints = append(f.VPCEndpoints[:i], f.VPCEndpoints[i+1:]...)
			return
		}
	}
}

func TestSSMAgentWhy(t *testing.T) {
	cust := "arn:aws:iam::123456789012:policy/"
	tests := []struct {
		name    string
		online  bool
		mutate  func(*Facts)
		want    Status
		mention string // in the summary
		fix     string
	}{
		{"online through endpoints", true, func(f *Facts) {}, Pass, "may open sessions", ""},
		{"online, a session opened", true, func(f *Facts) { f.Inside = base().Inside }, Pass, "a session opened", ""},
		{"no ssm endpoint, no internet", false, func(f *Facts) { dropEndpoint(f, "ssm") }, Fail, "no ssm interface endpoint", "--service-name com.amazonaws.eu-west-1.ssm"},
		{"online, no ssmmessages endpoint", true, func(f *Facts) { dropEndpoint(f, "ssmmessages") }, Fail, "cannot open sessions: no way to ssmmessages", "--service-name com.amazonaws.eu-west-1.ssmmessages"},
		{"online, no ec2messages endpoint", true, func(f *Facts) { dropEndpoint(f, "ec2messages") }, Pass, "", ""},
		{"endpoints without private DNS", false, func(f *Facts) {
			for i := range f.VPCEndpoints {
				f.VPCEndpoints[i].PrivateDNS = false
			}
		}, Fail, "private DNS off", "--private-dns-enabled"},
		{"the VPC's DNS hostnames off", false, func(f *Facts) { f.VPCDNS.Hostnames = false }, Fail, "enableDnsHostnames is off", "--enable-dns-hostnames"},
		{"the endpoint's group drops 443", false, func(f *Facts) {
			f.VPCEndpointGroups[0].Ingress[0].FromPort, f.VPCEndpointGroups[0].Ingress[0].ToPort = 80, 80
		},
			Fail, "does not admit tcp 443", "authorize-security-group-ingress --group-id sg-vpce --protocol tcp --port 443 --source-group sg-1"},
		{"the endpoint's group admits the instance's group", false, func(f *Facts) {
			f.VPCEndpointGroups[0].Ingress[0] = SGRule{Protocol: "tcp", FromPort: 443, ToPort: 443, Groups: []string{"sg-1"}}
		}, Fail, "has not registered, though", "amazon-ssm-agent"},
		{"the instance's egress drops 443", false, func(f *Facts) {
			f.SecurityGroups[0].Egress = []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"0.0.0.0/0"}}}
		}, Fail, "lets nothing out", "authorize-security-group-egress --group-id sg-1 --protocol tcp --port 443"},
		{"the subnet's ACL denies 443 out", false, func(f *Facts) {
			f.NetworkACL.Entries = append([]ACLEntry{{Number: 50, Egress: true, Protocol: "6", FromPort: 443, ToPort: 443, CIDR: "0.0.0.0/0"}}, f.NetworkACL.Entries...)
		}, Fail, "denies tcp 443 out", "--egress"},
		{"the subnet's ACL drops the replies", false, func(f *Facts) {
			f.NetworkACL.Entries = []ACLEntry{{Number: 100, Protocol: "6", FromPort: 22, ToPort: 22, Allow: true, CIDR: "0.0.0.0/0"},
				{Number: 100, Egress: true, Protocol: "-1", Allow: true, CIDR: "0.0.0.0/0"}}
		}, Fail, "drops the replies", "--ingress"},
		{"metadata off", false, func(f *Facts) { f.Instance.MetadataEndpoint = "disabled" }, Fail, "metadata service is off", "--http-endpoint enabled"},
		{"no instance profile", false, func(f *Facts) { f.Instance.InstanceProfile, f.Role = "", nil }, Fail, "no instance profile", "associate-iam-instance-profile"},
		{"online, the role denies ssmmessages", true, func(f *Facts) {
			f.Role.Documents = append(f.Role.Documents, doc(PolicyInline, "no-sessions", `{"Statement":[{"Effect":"Deny","Action":"ssmmessages:*","Resource":"*"}]}`))
		}, Fail, "denies ssmmessages", "remove or narrow that Deny"},
		{"a customer-managed policy that grants everything", true, func(f *Facts) {
			f.Role.Policies = []string{cust + "all"}
			f.Role.Documents = []PolicyDoc{doc(PolicyCustomerManaged, cust+"all", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`)}
		}, Pass, "", ""},
		{"offline, a role policy not read", false, func(f *Facts) {
			f.Role.Documents = append(f.Role.Documents, PolicyDoc{Name: cust + "x", Kind: PolicyCustomerManaged,
				Err: &APIError{Op: "iam:GetPolicyVersion", Code: "AccessDenied", Denied: true, Permission: "iam:GetPolicyVersion"}})
		}, Fail, "why could not be told", "iam:GetPolicyVersion"},
		{"online, a role policy not read, no session tried", true, func(f *Facts) {
			f.Role.Documents = append(f.Role.Documents, PolicyDoc{Name: cust + "x", Kind: PolicyCustomerManaged,
				Err: &APIError{Op: "iam:GetPolicyVersion", Code: "AccessDenied", Denied: true, Permission: "iam:GetPolicyVersion"}})
		}, Unknown, "could not be told", "iam:GetPolicyVersion"},
		{"the endpoint list denied", false, func(f *Facts) {
			f.VPCEndpoints, f.VPCEndpointsErr = nil, &APIError{Op: "ec2:DescribeVpcEndpoints", Code: "UnauthorizedOperation", Denied: true, Permission: "ec2:DescribeVpcEndpoints"}
		}, Fail, "why could not be told", "ec2:DescribeVpcEndpoints"},
		{"NAT gateway, live", false, func(f *Facts) {
			f.VPCEndpoints = nil
			f.RouteTable.Routes = append(f.RouteTable.Routes, Route{"0.0.0.0/0", "nat-1", "active"})
			f.Gateways = map[string]Gateway{"nat-1": {ID: "nat-1", Kind: "nat", State: "available"}}
		}, Fail, "has not registered, though", ""},
		{"NAT gateway deleted", false, func(f *Facts) {
			f.VPCEndpoints = nil
			f.RouteTable.Routes = append(f.RouteTable.Routes, Route{"0.0.0.0/0", "nat-1", "blackhole"})
			f.Gateways = map[string]Gateway{"nat-1": {ID: "nat-1", Kind: "nat", State: "deleted"}}
		}, Fail, "nat-1", "create-nat-gateway"},
		{"an internet gateway but no public address", false, func(f *Facts) {
			f.VPCEndpoints = nil
			f.RouteTable.Routes = append(f.RouteTable.Routes, Route{"0.0.0.0/0", "igw-1", "active"})
			f.Gateways = map[string]Gateway{"igw-1": {ID: "igw-1", Kind: "internet", VPCs: []string{"vpc-1"}}}
		}, Fail, "no public address", "create-nat-gateway"},
		{"a transit gateway: cannot see beyond", false, func(f *Facts) {
			f.VPCEndpoints = nil
			f.RouteTable.Routes = append(f.RouteTable.Routes, Route{"0.0.0.0/0", "tgw-1", "active"})
		}, Fail, "why could not be told", ""},
		{"failing status checks", false, func(f *Facts) { f.Status.Instance = "impaired"; dropEndpoint(f, "ssm") }, Unknown, "status checks", ""},
	}
	for _, tt := range tests {
		f := privateSSM(tt.online)
		tt.mutate(f)
		r := result(t, f, CheckSSMAgent)
		if r.Status != tt.want || !strings.Contains(r.Summary, tt.mention) || !strings.Contains(r.Fix, tt.fix) {
			t.Errorf("%s: ssm-agent = %s (%s / fix %q), want %s naming %q, fix %q", tt.name, r.Status, r.Summary, r.Fix, tt.want, tt.mention, tt.fix)
		}
	}
}

// TestNoFalseAllClear: whatever a check that matters for the chosen way
// says other than pass or warn, the verdict is not pass and the exit status
// is not 0.
func TestNoFalseAllClear(t *testing.T) {
	healthy := withEndpointAdmitted(base())
	rep := NewReport(healthy, "198.51.100.7")
	if rep.Verdict.Status != Pass || rep.ExitStatus() != 0 || !strings.Contains(rep.Verdict.Summary, "should work") {
		t.Fatalf("healthy: verdict %+v, exit %d", rep.Verdict, rep.ExitStatus())
	}
	for _, p := range []Path{PathDirect, PathSSM, PathEICE} {
		for _, id := range PathChecks(p, true) {
			for _, st := range []Status{Fail, Unknown} {
				results := RunAll(withEndpointAdmitted(base()))
				for i := range results {
					if results[i].ID == id {
						results[i].Status = st
					}
				}
				rep := &Report{Checks: results}
				for _, q := range []Path{PathDirect, PathSSM, PathEICE} {
					rep.Paths = append(rep.Paths, judgePath(q, results, true))
				}
				rep.Verdict = rep.Paths[0]
				rep.Choose(p)
				if rep.Verdict.Status == Pass || rep.ExitStatus() == 0 {
					t.Errorf("%s with %s %s: verdict %s, exit %d", p, id, st, rep.Verdict.Status, rep.ExitStatus())
				}
				if st == Unknown && rep.ExitStatus() != 2 {
					t.Errorf("%s with %s unknown: exit %d, want 2", p, id, rep.ExitStatus())
				}
			}
		}
	}
	// A check that does not matter for the way chosen does not block it.
	f := withEndpointAdmitted(base())
	f.SSM.PingStatus = "ConnectionLost"
	rep = NewReport(f, "198.51.100.7")
	if rep.Verdict.Status != Pass || rep.ExitStatus() != 1 {
		t.Errorf("agent offline, direct SSH fine: verdict %s, exit %d (1: a check failed)", rep.Verdict.Status, rep.ExitStatus())
	}
	rep.Choose(PathSSM)
	if rep.Verdict.Status != Fail {
		t.Errorf("agent offline, SSM chosen: verdict %s", rep.Verdict.Status)
	}
}
