#!/bin/sh
# install.sh: install ec2ssh for this machine.
#   ./install.sh                  the release build for this OS and CPU when one
#                                 is at hand (dist/ beside this script, from
#                                 make release, or EC2SSH_RELEASE=DIR|URL),
#                                 checked against its SHA256SUMS; else built
#                                 from this tree (or `go install` at VERSION)
#   BINDIR=/usr/local/bin ./install.sh
#   EC2SSH_FROM_SOURCE=1 ./install.sh   always build from source
set -eu

BINDIR=${BINDIR:-"$HOME/.local/bin"}
VERSION=${VERSION:-latest}
MODULE=github.com/ec2ssh/ec2ssh
GO=${GO:-go}
NEED_MAJOR=1
NEED_MINOR=26

die() { printf 'install.sh: error: %s\n' "$1" >&2; [ $# -gt 1 ] && printf 'install.sh: hint: %s\n' "$2" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# The release build's name for this machine: ec2ssh-OS-ARCH.
os=$(uname -s | tr '[:upper:]' '[:lower:]')
case "$os" in linux|darwin) ;; mingw*|msys*|cygwin*) os=windows ;; *) os="" ;; esac
case "$(uname -m)" in x86_64|amd64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) arch="" ;; esac
ext=""; [ "$os" = windows ] && ext=.exe
asset="ec2ssh-$os-$arch$ext"

# fetch SOURCE NAME DEST: SOURCE is a directory or an http(s) URL prefix.
fetch() {
  case "$1" in
    http://*|https://*)
      if command -v curl >/dev/null 2>&1; then curl -fsSL "$1/$2" -o "$3"
      elif command -v wget >/dev/null 2>&1; then wget -q "$1/$2" -O "$3"
      else return 1; fi ;;
    *) cp "$1/$2" "$3" ;;
  esac
}

# install_release SOURCE: the checked release build, or 1 when there is none.
install_release() {
  [ -n "$os" ] && [ -n "$arch" ] || return 1
  fetch "$1" SHA256SUMS "$tmp/SHA256SUMS" 2>/dev/null || return 1
  grep -q " $asset\$" "$tmp/SHA256SUMS" || return 1
  fetch "$1" "$asset" "$tmp/ec2ssh" || die "cannot fetch $asset from $1"
  want=$(grep " $asset\$" "$tmp/SHA256SUMS" | cut -d' ' -f1)
  if command -v sha256sum >/dev/null 2>&1; then got=$(sha256sum "$tmp/ec2ssh" | cut -d' ' -f1)
  else got=$(shasum -a 256 "$tmp/ec2ssh" | cut -d' ' -f1); fi
  [ "$want" = "$got" ] || die "$asset from $1 does not match its SHA256SUMS" "download it again; do not install it"
  printf 'install.sh: %s from %s (checksum verified)\n' "$asset" "$1"
  return 0
}

built=""
if [ -z "${EC2SSH_FROM_SOURCE:-}" ]; then
  for src in ${EC2SSH_RELEASE:-} "$here/dist"; do
    if install_release "$src"; then built=1; break; fi
  done
  if [ -n "${EC2SSH_RELEASE:-}" ] && [ -z "$built" ]; then
    die "no release build $asset at $EC2SSH_RELEASE" "unset EC2SSH_RELEASE to build from source"
  fi
fi

if [ -z "$built" ]; then
command -v "$GO" >/dev/null 2>&1 || die "Go is not installed and there is no release build for $os/$arch at hand" \
  "install Go ${NEED_MAJOR}.${NEED_MINOR} or newer from https://go.dev/dl/ and run ./install.sh again"
ver=$("$GO" env GOVERSION 2>/dev/null | sed 's/^go//')
major=$(printf '%s' "$ver" | cut -d. -f1)
minor=$(printf '%s' "$ver" | cut -d. -f2)
case "$major$minor" in *[!0-9]*|"") die "cannot tell the Go version ('$ver')";; esac
if [ "$major" -lt "$NEED_MAJOR" ] || { [ "$major" -eq "$NEED_MAJOR" ] && [ "$minor" -lt "$NEED_MINOR" ]; }; then
  die "Go $ver is too old: ec2ssh needs Go ${NEED_MAJOR}.${NEED_MINOR} or newer" "upgrade Go from https://go.dev/dl/"
fi

if [ -f "$here/go.mod" ] && grep -q "^module $MODULE\$" "$here/go.mod"; then
  version=$(git -C "$here" describe --tags --always --dirty 2>/dev/null || echo dev)
  (cd "$here" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.Version=$version" -o "$tmp/ec2ssh" .) \
    || die "the build failed" "see the Go errors above"
else
  GOBIN="$tmp" "$GO" install -trimpath "$MODULE@$VERSION" || die "go install $MODULE@$VERSION failed"
fi
fi

mkdir -p "$BINDIR" || die "cannot create $BINDIR" "choose another directory with BINDIR=..."
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
