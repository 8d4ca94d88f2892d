package preflight

import (
	"encoding/json"
	"strings"
	"testing"
)

// base is a healthy instance seen from inside its VPC.
func base() *Facts {
	return &Facts{
		Region: "eu-west-1", Port: 22, Address: "198.51.100.7",
		Caller: &Caller{Account: "123456789012", ARN: "arn:aws:iam::123456789012:user/dev"},
		Instance: &Instance{ID: "i-0abc", Name: "web-1", State: "running", PrivateIP: "10.0.1.5", PublicIP: "198.51.100.7",
			SubnetID: "subnet-1", VPCID: "vpc-1", KeyName: "dev", InstanceProfile: "arn:aws:iam::123456789012:instance-profile/ssm",
			ImageID: "ami-1", MetadataEndpoint: "enabled",
			Interfaces: []Interface{{ID: "eni-1", SecurityGroups: []string{"sg-1"}, PrivateIPs: []string{"10.0.1.5"}, PublicIPs: []string{"198.51.100.7"}}}},
		Status:     &InstanceStatus{System: "ok", Instance: "ok"},
		VPCCIDRs:   []string{"10.0.0.0/16"},
		RouteTable: &RouteTable{ID: "rtb-main", Main: true, Routes: []Route{{"10.0.0.0/16", "local", "active"}, {"0.0.0.0/0", "igw-1", "active"}}},
		Gateways:   map[string]Gateway{"igw-1": {ID: "igw-1", Kind: "internet", VPCs: []string{"vpc-1"}}},
		SecurityGroups: []SecurityGroup{{ID: "sg-1", Name: "ssh", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"203.0.113.0/24"}}},
			Egress: []SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}}},
		NetworkACL: &NetworkACL{ID: "acl-1", Entries: []ACLEntry{
			{Number: 100, Protocol: "-1", Allow: true, CIDR: "0.0.0.0/0"},
			{Number: 32767, Protocol: "-1", Allow: false, CIDR: "0.0.0.0/0"},
			{Number: 100, Egress: true, Protocol: "-1", Allow: true, CIDR: "0.0.0.0/0"},
			{Number: 32767, Egress: true, Protocol: "-1", Allow: false, CIDR: "0.0.0.0/0"},
		}},
		KeyPair:   &KeyPair{Name: "dev", Fingerprint: "SHA256:abcDEF123=", Type: "ed25519"},
		LocalKeys: []LocalKey{{Source: "~/.ssh/dev", Type: "ssh-ed25519", Fingerprints: []string{"SHA256:abcDEF123"}}},
		Role: &Role{Profile: "ssm", Name: "ssm-role", Policies: []string{SSMCorePolicy},
			Documents: []PolicyDoc{{Name: SSMCorePolicy, Kind: PolicyAWSManaged, Document: knownPolicies[SSMCorePolicy]}}},
		Image:    &Image{ID: "ami-1", Name: "al2023-ami-2023.4.20240401.1-kernel-6.1-x86_64", Owner: "137112412989", OwnerAlias: "amazon"},
		User:     "ec2-user",
		UserFrom: UserFromAMI,
		SSM:      &SSMAgent{Registered: true, PingStatus: "Online", AgentVersion: "3.3"},
		Source:   Source{Address: "203.0.113.9", How: "--source-ip", EphemeralLow: 32768, EphemeralHigh: 60999},
		SSHD:     &Probe{Address: "198.51.100.7", Port: 22, Result: "open", Banner: "SSH-2.0-OpenSSH_9.2"},
		Inside: &Inside{How: "test", User: "ec2-user", Port: 22, Address: "10.0.1.5", SSHDActive: "active", SSHDRunning: true,
			Listening: []string{"0.0.0.0:22"}, StrictModes: true, UserExists: true, Home: "/home/ec2-user",
			Files: []FileMode{{Path: "/home/ec2-user", Mode: 0o700, Owner: "ec2-user"}, {Path: "/home/ec2-user/.ssh", Mode: 0o700, Owner: "ec2-user"},
				{Path: "/home/ec2-user/.ssh/authorized_keys", Mode: 0o600, Owner: "ec2-user"}},
			Keys:  []LocalKey{{Source: "authorized_keys", Type: "ssh-ed25519", Fingerprints: []string{"SHA256:abcDEF123"}}},
			Disks: []Disk{{Mount: "/", UsedPct: 40}}, Complete: true},
		Endpoints: []InstanceConnectEndpoint{{ID: "eice-1", DNSName: "eice-1.example", VPCID: "vpc-1", SubnetID: "subnet-1", State: "create-complete",
			SecurityGroups: []string{"sg-ep"}}},
		EndpointGroups: []SecurityGroup{{ID: "sg-ep", Name: "eice", Egress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, Groups: []string{"sg-1"}}}}},
	}
}

// withEndpointAdmitted adds the rule that lets the endpoint's group in.
func withEndpointAdmitted(f *Facts) *Facts {
	f.SecurityGroups[0].Ingress = append(f.SecurityGroups[0].Ingress, SGRule{Protocol: "tcp", FromPort: 22, ToPort: 22, Groups: []string{"sg-ep"}})
	return f
}

func result(t *testing.T, f *Facts, id CheckID) Result {
	t.Helper()
	for _, r := range RunAll(f) {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result for %s", id)
	return Result{}
}

func TestHealthyPassesEverything(t *testing.T) {
	for _, r := range RunAll(withEndpointAdmitted(base())) {
		if r.Status != Pass {
			t.Errorf("%s = %s (%s), want pass", r.ID, r.Status, r.Summary)
		}
	}
}

func TestSecurityGroupRules(t *testing.T) {
	tests := []struct {
		name   string
		groups []SecurityGroup
		src    string
		pls    map[string][]string
		want   Status
	}{
		{"exact port", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"203.0.113.9/32"}}}}}, "203.0.113.9", nil, Pass},
		{"range including 22", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 20, ToPort: 30, CIDRs: []string{"0.0.0.0/0"}}}}}, "203.0.113.9", nil, Pass},
		{"range excluding 22", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 23, ToPort: 30, CIDRs: []string{"0.0.0.0/0"}}}}}, "203.0.113.9", nil, Fail},
		{"protocol -1", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "-1", FromPort: -1, ToPort: -1, CIDRs: []string{"203.0.113.0/24"}}}}}, "203.0.113.9", nil, Pass},
		{"udp 22 only", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "udp", FromPort: 22, ToPort: 22, CIDRs: []string{"0.0.0.0/0"}}}}}, "203.0.113.9", nil, Fail},
		{"other network", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"192.0.2.0/24"}}}}}, "203.0.113.9", nil, Fail},
		{"second group allows", []SecurityGroup{{ID: "sg-a"}, {ID: "sg-b", Ingress: []SGRule{{Protocol: "6", FromPort: 22, ToPort: 22, CIDRs: []string{"203.0.113.9/32"}}}}}, "203.0.113.9", nil, Pass},
		{"ipv6", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, IPv6CIDRs: []string{"2001:db8::/32"}}}}}, "2001:db8::5", nil, Pass},
		{"ipv4 rule, ipv6 source", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"0.0.0.0/0"}}}}}, "2001:db8::5", nil, Fail},
		{"prefix list", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, PrefixLists: []string{"pl-1"}}}}}, "203.0.113.9", map[string][]string{"pl-1": {"203.0.113.0/28"}}, Pass},
		{"prefix list elsewhere", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, PrefixLists: []string{"pl-1"}}}}}, "203.0.113.99", map[string][]string{"pl-1": {"203.0.113.0/28"}}, Fail},
		{"group reference only", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, Groups: []string{"sg-bastion"}}}}}, "203.0.113.9", nil, Warn},
		{"no groups", nil, "203.0.113.9", nil, Unknown},
		{"unknown source, open to all", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"0.0.0.0/0"}}}}}, "", nil, Pass},
		{"unknown source, narrow rule", []SecurityGroup{{ID: "sg-a", Ingress: []SGRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"203.0.113.0/24"}}}}}, "", nil, Unknown},
	}
	for _, tt := range tests {
		f := base()
		f.SecurityGroups, f.PrefixLists, f.Source.Address = tt.groups, tt.pls, tt.src
		// The dialled interface is in the table's groups.
		f.Instance.Interfaces[0].SecurityGroups = nil
		for _, g := range tt.groups {
			f.Instance.Interfaces[0].SecurityGroups = append(f.Instance.Interfaces[0].SecurityGroups, g.ID)
		}
		if tt.groups == nil {
			f.Instance.Interfaces[0].SecurityGroups = []string{"sg-1"}
		}
		r := result(t, f, "security-group")
		if r.Status != tt.want {
			t.Errorf("%s: security-group = %s (%s), want %s", tt.name, r.Status, r.Summary, tt.want)
		}
		if r.Status == Fail && (!strings.Contains(r.Fix, "authorize-security-group-ingress") || !strings.Contains(r.Fix, "sg-")) {
			t.Errorf("%s: fix %q does not name the command and group", tt.name, r.Fix)
		}
	}
}

func TestNetworkACLRules(t *testing.T) {
	allowAll := func(egress bool) []ACLEntry {
		return []ACLEntry{{Number: 100, Egress: egress, Protocol: "-1", Allow: true, CIDR: "0.0.0.0/0"}, {Number: 32767, Egress: egress, Protocol: "-1", CIDR: "0.0.0.0/0"}}
	}
	tests := []struct {
		name    string
		entries []ACLEntry
		want    Status
		summary string
	}{
		{"allow all", append(allowAll(false), allowAll(true)...), Pass, ""},
		{"deny 22 before allow", append([]ACLEntry{
			{Number: 50, Protocol: "6", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"},
			{Number: 100, Protocol: "-1", Allow: true, CIDR: "0.0.0.0/0"}}, allowAll(true)...), Fail, "rule 50"},
		{"allow before deny wins", append([]ACLEntry{
			{Number: 200, Protocol: "6", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"},
			{Number: 100, Protocol: "6", FromPort: 22, ToPort: 22, Allow: true, CIDR: "203.0.113.0/24"}}, allowAll(true)...), Pass, ""},
		{"deny for another network does not match", append([]ACLEntry{
			{Number: 50, Protocol: "6", FromPort: 22, ToPort: 22, CIDR: "192.0.2.0/24"},
			{Number: 100, Protocol: "6", FromPort: 0, ToPort: 65535, Allow: true, CIDR: "0.0.0.0/0"}}, allowAll(true)...), Pass, ""},
		{"only the star rule", append([]ACLEntry{{Number: 32767, Protocol: "-1", CIDR: "0.0.0.0/0"}}, allowAll(true)...), Fail, "rule 32767"},
		{"egress drops replies", append(allowAll(false),
			ACLEntry{Number: 100, Egress: true, Protocol: "6", FromPort: 443, ToPort: 443, Allow: true, CIDR: "0.0.0.0/0"},
			ACLEntry{Number: 32767, Egress: true, Protocol: "-1", CIDR: "0.0.0.0/0"}), Fail, "drops the replies"},
		{"egress allows part of the ephemeral range", append(allowAll(false),
			ACLEntry{Number: 100, Egress: true, Protocol: "6", FromPort: 1024, ToPort: 40000, Allow: true, CIDR: "0.0.0.0/0"},
			ACLEntry{Number: 32767, Egress: true, Protocol: "-1", CIDR: "0.0.0.0/0"}), Fail, "40001-60999"},
		{"egress deny numbered after allow", append(allowAll(false),
			ACLEntry{Number: 90, Egress: true, Protocol: "6", FromPort: 1024, ToPort: 65535, Allow: true, CIDR: "0.0.0.0/0"},
			ACLEntry{Number: 100, Egress: true, Protocol: "6", FromPort: 0, ToPort: 65535, CIDR: "0.0.0.0/0"}), Pass, ""},
	}
	for _, tt := range tests {
		f := base()
		f.NetworkACL.Entries = tt.entries
		r := result(t, f, "network-acl")
		if r.Status != tt.want || !strings.Contains(r.Summary, tt.summary) {
			t.Errorf("%s: network-acl = %s (%s), want %s with %q", tt.name, r.Status, r.Summary, tt.want, tt.summary)
		}
	}
}

func TestNetworkPath(t *testing.T) {
	f := base()
	f.RouteTable.Routes = []Route{{"10.0.0.0/16", "local", "active"}, {"0.0.0.0/0", "nat-1", "active"}}
	if r := result(t, f, "network-path"); r.Status != Fail {
		t.Errorf("default route to a NAT: %s (%s), want fail", r.Status, r.Summary)
	}
	f = base()
	f.Gateways = map[string]Gateway{"igw-1": {ID: "igw-1", Kind: "internet", VPCs: []string{"vpc-other"}}}
	if r := result(t, f, "network-path"); r.Status != Fail || !strings.Contains(r.Fix, "attach-internet-gateway") {
		t.Errorf("detached igw: %s (%s), want fail with attach", r.Status, r.Summary)
	}
	f = base()
	f.Instance.PublicIP, f.Instance.Interfaces[0].PublicIPs, f.Address = "", nil, "10.0.1.5"
	if r := result(t, f, "network-path"); r.Status != Fail {
		t.Errorf("no public address from outside: %s, want fail", r.Status)
	}
	f.Source = Source{Address: "10.0.9.9", Private: true, How: "kernel route"}
	if r := result(t, f, "network-path"); r.Status != Pass {
		t.Errorf("no public address from inside: %s, want pass", r.Status)
	}
	// The VPC's CIDRs did not come (DescribeVpcs met the weather): gather
	// could not place the source, so the private address may answer.
	f.Source = Source{Address: "10.0.9.9", How: "kernel route"}
	f.VPCCIDRs, f.SubnetErr = nil, &APIError{Op: "DescribeVpcs", Message: "DescribeVpcs did not answer in 2s"}
	if r := result(t, f, "network-path"); r.Status != Unknown {
		t.Errorf("the VPC's CIDRs unknown: %s (%s), want unknown", r.Status, r.Summary)
	}
}

func TestOtherChecks(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Facts)
		id     CheckID
		want   Status
	}{
		{"stopped", func(f *Facts) { f.Instance.State = "stopped" }, "instance-state", Fail},
		{"pending", func(f *Facts) { f.Instance.State = "pending" }, "instance-state", Fail}, // issue 26: was warn, a false all-clear
		{"terminated", func(f *Facts) { f.Instance.State = "terminated" }, "instance-state", Fail},
		{"impaired", func(f *Facts) { f.Status.Instance = "impaired" }, "status-checks", Fail},
		{"initializing", func(f *Facts) { f.Status.System = "initializing" }, "status-checks", Warn},
		{"status when stopped", func(f *Facts) { f.Instance.State = "stopped" }, "status-checks", Skip},
		{"wrong key", func(f *Facts) { f.LocalKeys[0].Fingerprints = []string{"SHA256:other"} }, "key-pair", Fail},
		{"md5 hex case-insensitive", func(f *Facts) {
			f.KeyPair.Fingerprint = "1f:51:ae:28:bf:89:e9:d8:1f:25:5d:37:2d:7d:b8:ca"
			f.LocalKeys[0].Fingerprints = []string{"1F:51:AE:28:BF:89:E9:D8:1F:25:5D:37:2D:7D:B8:CA"}
			f.Inside = nil
		}, "key-pair", Pass},
		{"no key pair", func(f *Facts) { f.Instance.KeyName = "" }, "key-pair", Warn},
		{"sshd refused", func(f *Facts) { f.SSHD.Result = "refused" }, "sshd", Fail},
		{"sshd silent though the groups allow it", func(f *Facts) { f.SSHD.Result = "timeout"; f.Inside = nil }, "sshd", Fail},
		{"sshd silent, the group blocks", func(f *Facts) { f.SSHD.Result = "timeout"; f.Source.Address = "192.0.2.1" }, "sshd", Unknown},
		{"sshd silent, a host firewall", func(f *Facts) {
			f.SSHD.Result = "timeout"
			f.Inside.Firewall = []FirewallRule{{Firewall: "nftables", Rule: "tcp dport 22 drop", Fix: "sudo nft delete rule inet filter input handle 4"}}
		}, "sshd", Fail},
		{"sshd not running, bad config", func(f *Facts) {
			f.SSHD.Result = "refused"
			f.Inside.SSHDRunning, f.Inside.Listening, f.Inside.ConfigErrors = false, nil, []string{"/etc/ssh/sshd_config line 3: Bad configuration option: Foo"}
		}, "sshd", Fail},
		{"sshd elsewhere", func(f *Facts) { f.SSHD.Result = "refused"; f.Inside.Listening = []string{"0.0.0.0:2222"} }, "sshd", Fail},
		{"authorized_keys writable by others", func(f *Facts) { f.Inside.Files[2].Mode = 0o666 }, "key-pair", Fail},
		{"home writable, StrictModes off", func(f *Facts) { f.Inside.Files[0].Mode = 0o777; f.Inside.StrictModes = false }, "key-pair", Pass},
		{"key not in authorized_keys", func(f *Facts) { f.Inside.Keys[0].Fingerprints = []string{"SHA256:someoneelse"} }, "key-pair", Fail},
		{"no such user", func(f *Facts) { f.Inside.UserExists = false }, "login-user", Fail}, // instance-os's before login-user existed
		{"disk full", func(f *Facts) { f.Inside.Disks = []Disk{{Mount: "/", UsedPct: 100}} }, "instance-os", Fail},
		{"inodes full", func(f *Facts) { f.Inside.Disks = []Disk{{Mount: "/var", UsedPct: 99, Inodes: true}} }, "instance-os", Fail},
		{"not looked into", func(f *Facts) { f.Inside = nil }, "instance-os", Skip},
		{"look inside failed", func(f *Facts) { f.Inside, f.InsideErr = nil, "TargetNotConnected" }, "instance-os", Unknown},
		{"no profile", func(f *Facts) { f.SSM, f.Role, f.Instance.InstanceProfile = nil, nil, "" }, "ssm-agent", Fail},
		{"role lacks policy", func(f *Facts) { f.SSM = nil; f.Role.Policies = []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"} }, "ssm-agent", Fail},
		{"agent lost", func(f *Facts) { f.SSM.PingStatus = "ConnectionLost" }, "ssm-agent", Fail},
		{"agent of a stopped instance", func(f *Facts) { f.Instance.State = "stopped"; f.SSM.Registered = false }, "ssm-agent", Skip},
		{"no credentials", func(f *Facts) { f.Caller, f.CallerErr = nil, &APIError{Op: "sts:GetCallerIdentity", NoCreds: true} }, "credentials", Fail},
	}
	for _, tt := range tests {
		f := base()
		tt.mutate(f)
		r := result(t, f, tt.id)
		if r.Status != tt.want {
			t.Errorf("%s: %s = %s (%s), want %s", tt.name, tt.id, r.Status, r.Summary, tt.want)
		}
		if r.Status == Fail && r.Fix == "" {
			t.Errorf("%s: %s fails with no fix", tt.name, tt.id)
		}
	}
}

func TestDeniedIsUnknownNeverPass(t *testing.T) {
	denied := &APIError{Op: "ec2:DescribeSecurityGroups", Code: "UnauthorizedOperation", Denied: true, Permission: "ec2:DescribeSecurityGroups"}
	f := base()
	f.SecurityGroups, f.SecurityGroupsErr = nil, denied
	f.NetworkACL, f.NetworkACLErr = nil, denied
	f.KeyPair, f.KeyPairErr = nil, denied
	f.SSM, f.SSMErr = nil, denied
	f.Role, f.RoleErr = nil, denied
	for _, id := range []CheckID{"security-group", "network-acl", "key-pair", "ssm-agent"} {
		r := result(t, f, id)
		if r.Status != Unknown || !strings.Contains(r.Summary+r.Fix, "ec2:DescribeSecurityGroups") {
			t.Errorf("%s with a denied call = %s (%s / %s), want unknown naming the permission", id, r.Status, r.Summary, r.Fix)
		}
	}
}

// FuzzChecks feeds odd API data (as JSON) to every check: none may panic,
// and each result has a valid status.
func FuzzChecks(f *testing.F) {
	b, _ := json.Marshal(base())
	f.Add(b)
	for _, facts := range []*Facts{privateSSM(false), privateSSM(true), twoNICs()} {
		b, _ := json.Marshal(facts)
		f.Add(b)
	}
	f.Add([]byte(`{"address":"::1","instance":{"id":"i-1","state":"running","metadata_endpoint":"disabled","interfaces":[{"id":"e","security_groups":["sg-x"],"ipv6":["::1"]}]},` +
		`"route_table":{"routes":[{"destination":"pl-1","target":"igw-1","state":"blackhole"},{"destination":"::/0","target":"eigw-1"}]},"gateways":{"igw-1":{"gone":true}},` +
		`"vpc_endpoints":[{"service":"x.ssm","type":"Interface","private_dns":true,"state":"available","interfaces":[{"ip":"bad"}]}],` +
		`"role":{"name":"r","documents":[{"name":"p","kind":"inline","document":"{\"Statement\":{\"Effect\":\"Allow\",\"NotAction\":[],\"Resource\":7}}"}]},` +
		`"image":{"name":"","platform":"windows"},"ssm":{"registered":true,"ping_status":"Online"},"source":{"address":"bad"}}`))
	f.Add([]byte(`{"instance":{"id":"i-1","state":"running","interfaces":[{"security_groups":null}]},"security_groups":[{"ingress":[{"protocol":"tcp","from_port":70000,"to_port":-5,"cidrs":["bad"]}]}],"network_acl":{"entries":[{"number":-1,"protocol":"6","cidr":"::/0"}]},"source":{"address":"::1","ephemeral_low":9,"ephemeral_high":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var facts Facts
		if json.Unmarshal(data, &facts) != nil {
			return
		}
		for _, c := range Checks {
			r := c.Run(&facts) // directly: RunAll's recover would hide a panic
			switch r.Status {
			case Pass, Fail, Warn, Unknown, Skip:
			default:
				t.Fatalf("%s returned status %q", c.ID, r.Status)
			}
		}
	})
}

func TestInstanceConnectEndpoint(t *testing.T) {
	f := withEndpointAdmitted(base())
	if r := result(t, f, CheckEICE); r.Status != Pass || !strings.Contains(r.Summary, "one hour per tunnel, 20 connections") {
		t.Errorf("ready endpoint: %s %q", r.Status, r.Summary)
	}
	f = withEndpointAdmitted(base())
	f.EndpointGroups[0].Egress = nil
	if r := result(t, f, CheckEICE); r.Status != Warn || !strings.Contains(r.Fix, "authorize-security-group-egress --group-id sg-ep") {
		t.Errorf("no egress, other ways in: %s %q fix %q", r.Status, r.Summary, r.Fix)
	}
	f.SSM.PingStatus = "ConnectionLost"
	f.SecurityGroups[0].Ingress = f.SecurityGroups[0].Ingress[1:] // only the endpoint's group is admitted
	f.SourceLookedUp = true                                       // and the client is in no group
	if r := result(t, f, CheckEICE); r.Status != Fail {
		t.Errorf("no egress, the only way in: %s %q", r.Status, r.Summary)
	}
	f = base() // the instance's groups do not admit the endpoint's
	if r := result(t, f, CheckEICE); r.Status != Warn || !strings.Contains(r.Fix, "authorize-security-group-ingress --group-id sg-1 --protocol tcp --port 22 --source-group sg-ep") {
		t.Errorf("not admitted: %s %q fix %q", r.Status, r.Summary, r.Fix)
	}
	f = base()
	f.Endpoints[0].PreserveClientIP = true // then the client's address is what the instance sees
	if r := result(t, f, CheckEICE); r.Status != Pass {
		t.Errorf("preserving the client address, admitted by CIDR: %s %q", r.Status, r.Summary)
	}
	f = base()
	f.Endpoints = nil
	if r := result(t, f, CheckEICE); r.Status != Skip || !strings.Contains(r.Fix, "create-instance-connect-endpoint") {
		t.Errorf("no endpoint: %s %q", r.Status, r.Fix)
	}
	f = base()
	f.Endpoints[0].State = "create-in-progress"
	if r := result(t, f, CheckEICE); r.Status != Warn {
		t.Errorf("endpoint not ready: %s %q", r.Status, r.Summary)
	}
	// Groups that could not be read prove nothing about the path (issue 20).
	for name, set := range map[string]func(f *Facts, e *APIError){
		"the instance's groups": func(f *Facts, e *APIError) { f.SecurityGroups, f.SecurityGroupsErr = nil, e },
		"the endpoint's groups": func(f *Facts, e *APIError) { f.EndpointGroups, f.EndpointGroupsErr = nil, e },
	} {
		f = withEndpointAdmitted(base())
		set(f, &APIError{Op: "ec2:DescribeSecurityGroups", Weather: WeatherThrottled, Message: "DescribeSecurityGroups: throttled by AWS (RequestLimitExceeded)"})
		if r := result(t, f, CheckEICE); r.Status != Unknown || !strings.Contains(r.Summary, "throttled by AWS") {
			t.Errorf("%s unread: %s %q, want unknown saying why", name, r.Status, r.Summary)
		}
	}
}
