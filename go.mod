module github.com/ec2ssh/ec2ssh

go 1.26.0

require (
	github.com/kevinburke/ssh_config v1.6.0
	golang.org/x/crypto v0.58.0
	golang.org/x/term v0.47.0
)

require golang.org/x/sys v0.49.0 // indirect
