# ec2ssh: build, test, demo. See README.md.
GO      ?= go
BINDIR  ?= $(HOME)/.local/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.Version=$(VERSION)

.PHONY: build test test-short vet fuzz demo lab install clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ec2ssh .

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# The whole suite: unit tests, and end-to-end tests against real OpenSSH
# (sshd, ssh, scp), rsync, git and tmux on this machine. .ci/run installs them.
test: vet
	$(GO) test -count=1 -timeout 20m ./...

# A short fuzzing pass over the parsers.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseArgs -fuzztime 30s ./connect

install:
	BINDIR=$(BINDIR) ./install.sh

clean:
	rm -rf bin
