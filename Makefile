# ec2ssh: build, test, demo. See README.md.
GO      ?= go
BINDIR  ?= $(HOME)/.local/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.Version=$(VERSION)

.PHONY: build test vet fuzz demo lab lab-deps bench install clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ec2ssh .

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# The whole suite: unit tests, and end-to-end tests against real OpenSSH
# (sshd, ssh, scp), rsync, git and tmux on this machine. .ci/run installs them.
test: vet
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -race -count=1 -timeout 10m ./fallback ./preflight ./connect

# A short fuzzing pass over the parsers.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseArgs -fuzztime 30s ./connect
	$(GO) test -run '^$$' -fuzz FuzzChecks -fuzztime 30s ./preflight

# The local lab: moto's EC2 emulator, a real sshd per instance and nftables
# rules, in a private network namespace (needs root). No AWS account.
lab-deps:
	@command -v moto_server >/dev/null || { echo "moto_server is missing: it comes with the machine's Python (pip install 'moto[server]')"; exit 1; }
	@missing=""; for p in openssh-server openssh-client nftables iproute2; do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

demo: build lab-deps
	$(GO) run ./lab/cmd/ec2ssh-lab -demo -ec2ssh bin/ec2ssh

lab: build lab-deps
	$(GO) run ./lab/cmd/ec2ssh-lab -ec2ssh bin/ec2ssh

# ec2ssh against OpenSSH (and the stock plugin) on the lab; writes BENCHMARKS.md.
bench: build lab-deps
	$(GO) build -o bin/stock-plugin ./lab/cmd/stock-plugin
	$(GO) run ./lab/cmd/ec2ssh-bench -ec2ssh bin/ec2ssh -stock-plugin bin/stock-plugin -o BENCHMARKS.md

install:
	BINDIR=$(BINDIR) ./install.sh

clean:
	rm -rf bin
