# ec2ssh: build, test, demo. See README.md.
SHELL   := /bin/bash
GO      ?= go
BINDIR  ?= $(HOME)/.local/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.Version=$(VERSION)
# The platforms a release is built for: static (no cgo), stripped.
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64

.PHONY: build test unit deps vet fuzz demo demo-transcript lab bench release install clean man

# A first build compiles the AWS SDK: minutes on a small machine, so it
# shows its progress (lab/progress.sh counts the packages go build -v names).
build:
	@echo "build bin/ec2ssh ($$($(GO) version | cut -d' ' -f3); the first build takes a few minutes)"
	@set -o pipefail; $(GO) build -v -trimpath -ldflags '$(LDFLAGS)' -o bin/ec2ssh . 2>&1 | lab/progress.sh

bin/ec2ssh-lab: build
	@echo "build bin/ec2ssh-lab (the lab: moto, sshd, nftables, the SSM stand-in)"
	@set -o pipefail; $(GO) build -v -o bin/ec2ssh-lab ./lab/cmd/ec2ssh-lab 2>&1 | lab/progress.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# What the lab and the end-to-end tests use, installed when missing.
deps:
	@lab/deps.sh

# The unit subset: no root, no lab, seconds. Lab tests skip by name here
# and nowhere else.
unit:
	$(GO) test -short -count=1 -json ./... | $(GO) run ./lab/cmd/testsum -allow-skip

# The whole suite: the unit tests, then the end-to-end tests against real
# OpenSSH (sshd, ssh, scp, sftp), rsync, git and tmux, and the EC2 lab (moto,
# a real sshd per instance, nftables, the SSM stand-in) in a private network
# namespace. It installs what it needs first, and a test that cannot run
# fails: it never passes by skipping.
test: vet deps
	set -o pipefail; $(GO) test -count=1 -timeout 50m -json ./... 2>&1 | $(GO) run ./lab/cmd/testsum
	$(GO) test -race -count=1 -timeout 10m ./fallback ./preflight ./connect ./reach ./fleet

# A short fuzzing pass over the parsers.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseArgs -fuzztime 30s ./connect
	$(GO) test -run '^$$' -fuzz FuzzChecks -fuzztime 30s ./preflight

# The local lab: moto's EC2 emulator, a real sshd per instance and nftables
# rules, in a private network namespace (needs root). No AWS account.
demo: deps bin/ec2ssh-lab
	bin/ec2ssh-lab -demo -ec2ssh bin/ec2ssh

# The README's demo transcript, made anew from the demo itself (a test,
# e2e TestDemoTranscript, fails when the two differ).
demo-transcript: deps bin/ec2ssh-lab
	bin/ec2ssh-lab -demo -ec2ssh bin/ec2ssh -transcript bin/demo.txt >/dev/null
	awk -v f=bin/demo.txt 'BEGIN { while ((getline l < f) > 0) t = t l "\n" } \
		/^<!-- demo transcript -->/ { print; print "```"; printf "%s", t; print "```"; skip = 1; next } \
		/^<!-- end of demo transcript -->/ { skip = 0 } !skip { print }' README.md > bin/README.md && mv bin/README.md README.md

lab: deps bin/ec2ssh-lab
	bin/ec2ssh-lab -ec2ssh bin/ec2ssh

# ec2ssh against OpenSSH (and the stock plugin) on the lab; writes BENCHMARKS.md.
# BASELINE is an earlier ec2ssh (round 2's last commit) whose SSM upload the
# bench compares with this one's, built from the history when it is there.
BASELINE ?= 9a72e54
bench: build
	@lab/deps.sh bench
	$(GO) build -o bin/stock-plugin ./lab/cmd/stock-plugin
	@rm -rf bin/baseline bin/ec2ssh-baseline; \
	if git rev-parse -q --verify '$(BASELINE)^{commit}' >/dev/null 2>&1; then \
		echo "build bin/ec2ssh-baseline (ec2ssh at $(BASELINE), for comparison)"; \
		mkdir -p bin/baseline && git archive $(BASELINE) | tar -x -C bin/baseline && \
		(cd bin/baseline && $(GO) build -trimpath -o ../ec2ssh-baseline .) && rm -rf bin/baseline; \
	else echo "bench: $(BASELINE) is not in this checkout's history: no baseline row"; fi
	$(GO) run ./lab/cmd/ec2ssh-bench -ec2ssh bin/ec2ssh -stock-plugin bin/stock-plugin \
		$$(test -x bin/ec2ssh-baseline && echo -baseline bin/ec2ssh-baseline) -o BENCHMARKS.md

# One static, stripped, version-stamped binary per platform, and SHA256SUMS.
release:
	@rm -rf dist && mkdir -p dist
	@for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "build dist/ec2ssh-$$os-$$arch$$ext"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/ec2ssh-$$os-$$arch$$ext . || exit 1; \
	done
	cd dist && sha256sum ec2ssh-* > SHA256SUMS

# The manual page, ec2ssh(1), from its Markdown source; both are committed
# (a test, TestManual, fails when they part or the page misses an option).
GO_MD2MAN := github.com/cpuguy83/go-md2man/v2@v2.0.7
man:
	$(GO) run $(GO_MD2MAN) -in docs/ec2ssh.1.md -out docs/ec2ssh.1

install:
	BINDIR=$(BINDIR) ./install.sh

clean:
	rm -rf bin dist
