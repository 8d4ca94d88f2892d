#!/bin/sh
# install.sh: build ec2ssh from source with the Go toolchain and install it.
#   ./install.sh                  from a clone: builds this tree
#   BINDIR=/usr/local/bin ./install.sh
# Outside a clone it runs `go install` for the module at VERSION (default latest).
set -eu

BINDIR=${BINDIR:-"$HOME/.local/bin"}
VERSION=${VERSION:-latest}
MODULE=github.com/ec2ssh/ec2ssh
GO=${GO:-go}
NEED_MAJOR=1
NEED_MINOR=26

die() { printf 'install.sh: error: %s\n' "$1" >&2; [ $# -gt 1 ] && printf 'install.sh: hint: %s\n' "$2" >&2; exit 1; }

command -v "$GO" >/dev/null 2>&1 || die "Go is not installed (ec2ssh is built from source)" \
  "install Go ${NEED_MAJOR}.${NEED_MINOR} or newer from https://go.dev/dl/ and run ./install.sh again"
ver=$("$GO" env GOVERSION 2>/dev/null | sed 's/^go//')
major=$(printf '%s' "$ver" | cut -d. -f1)
minor=$(printf '%s' "$ver" | cut -d. -f2)
case "$major$minor" in *[!0-9]*|"") die "cannot tell the Go version ('$ver')";; esac
if [ "$major" -lt "$NEED_MAJOR" ] || { [ "$major" -eq "$NEED_MAJOR" ] && [ "$minor" -lt "$NEED_MINOR" ]; }; then
  die "Go $ver is too old: ec2ssh needs Go ${NEED_MAJOR}.${NEED_MINOR} or newer" "upgrade Go from https://go.dev/dl/"
fi

mkdir -p "$BINDIR" || die "cannot create $BINDIR" "choose another directory with BINDIR=..."
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
if [ -f "$here/go.mod" ] && grep -q "^module $MODULE\$" "$here/go.mod"; then
  version=$(git -C "$here" describe --tags --always --dirty 2>/dev/null || echo dev)
  (cd "$here" && "$GO" build -trimpath -ldflags "-s -w -X main.Version=$version" -o "$tmp/ec2ssh" .) \
    || die "the build failed" "see the Go errors above"
else
  GOBIN="$tmp" "$GO" install -trimpath "$MODULE@$VERSION" || die "go install $MODULE@$VERSION failed"
fi
# Replace the binary in one step, so a running ec2ssh is never half-written.
cp "$tmp/ec2ssh" "$BINDIR/.ec2ssh.new" && chmod 755 "$BINDIR/.ec2ssh.new" && mv -f "$BINDIR/.ec2ssh.new" "$BINDIR/ec2ssh" \
  || die "cannot write $BINDIR/ec2ssh" "choose another directory with BINDIR=..."

printf 'ec2ssh installed: %s\n' "$BINDIR/ec2ssh"
"$BINDIR/ec2ssh" -V 2>&1 || true
case ":$PATH:" in *":$BINDIR:"*) ;; *) printf '\nAdd %s to your PATH:\n  export PATH="%s:$PATH"\n' "$BINDIR" "$BINDIR";; esac
cat <<MSG

Use it as ssh (every host keeps working; EC2 hosts get diagnosis and fallback):
  alias ssh=ec2ssh

Or let OpenSSH, scp, rsync, git and IDEs reach instances through it, in ~/.ssh/config:
  Host i-* mi-*
    ProxyCommand $BINDIR/ec2ssh --proxy %h %p
MSG
