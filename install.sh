#!/bin/sh
# install.sh: install ec2ssh for this machine.
#   ./install.sh                  the release build for this OS and CPU when one
#                                 is at hand (dist/ beside this script, from
#                                 make release, or EC2SSH_RELEASE=DIR|URL),
#                                 checked against its SHA256SUMS; else built
#                                 from this tree (or `go install` at VERSION)
#   BINDIR=/usr/local/bin ./install.sh
#   EC2SSH_FROM_SOURCE=1 ./install.sh   always build from source
# It installs the manual page (ec2ssh(1)) and the bash, zsh and fish
# completions too: under PREFIX (/usr/local) as root, else under
# ${XDG_DATA_HOME:-~/.local/share} (MANDIR, BASHDIR, ZSHDIR, FISHDIR
# choose otherwise).
set -eu

BINDIR=${BINDIR:-"$HOME/.local/bin"}
VERSION=${VERSION:-latest}
MODULE=github.com/ec2ssh/ec2ssh
GO=${GO:-go}
NEED_MAJOR=1
NEED_MINOR=26

die() { printf 'install.sh: error: %s\n' "$1" >&2; [ $# -gt 1 ] && printf 'install.sh: hint: %s\n' "$2" >&2; exit 1; }

# progress shows a long build as it goes: one line a package, on a
# terminal rewritten in place.
progress() {
  n=0
  while IFS= read -r line; do
    case "$line" in
      *" "*|*:*) printf '%s\n' "$line" >&2 ;; # not a package name: an error, said whole
      *) n=$((n+1))
         if [ -t 2 ]; then printf '\r  %d packages built: %-60.60s' "$n" "$line" >&2
         elif [ $((n % 25)) = 0 ]; then printf '  %d packages built\n' "$n" >&2; fi ;;
    esac
  done
  [ -t 2 ] && printf '\n' >&2
  true
}

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
  if [ -n "${EC2SSH_RELEASE:-}" ]; then
    # Named on purpose: that build or nothing, never another one instead.
    install_release "$EC2SSH_RELEASE" && built=1 || \
      die "no release build $asset (with its SHA256SUMS) at $EC2SSH_RELEASE" \
        "point EC2SSH_RELEASE at the directory or URL that holds $asset and SHA256SUMS, or unset it to use ./dist or build from source"
  elif install_release "$here/dist"; then
    built=1
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
  # A first build fetches and compiles the AWS SDK: minutes on a small
  # machine. Say so, and show what it does.
  printf 'install.sh: building ec2ssh %s from source with %s (the first build takes a few minutes)\n' "$version" "$("$GO" version)"
  (cd "$here" && CGO_ENABLED=0 "$GO" build -v -trimpath -ldflags "-s -w -X main.Version=$version" -o "$tmp/ec2ssh" . 2>&1 | progress) \
    || die "the build failed" "see the Go errors above"
  [ -x "$tmp/ec2ssh" ] || die "the build failed" "see the Go errors above"
else
  GOBIN="$tmp" "$GO" install -trimpath "$MODULE@$VERSION" || die "go install $MODULE@$VERSION failed"
fi
fi

mkdir -p "$BINDIR" || die "cannot create $BINDIR" "choose another directory with BINDIR=..."
# Replace the binary in one step, so a running ec2ssh is never half-written.
cp "$tmp/ec2ssh" "$BINDIR/.ec2ssh.new" && chmod 755 "$BINDIR/.ec2ssh.new" && mv -f "$BINDIR/.ec2ssh.new" "$BINDIR/ec2ssh" \
  || die "cannot write $BINDIR/ec2ssh" "choose another directory with BINDIR=..."

printf 'ec2ssh installed: %s\n' "$BINDIR/ec2ssh"

# The manual page and the shell completions, where man and the shells look:
# under PREFIX as root, under the user's own data directory otherwise.
if [ "$(id -u)" = 0 ]; then
  PREFIX=${PREFIX:-/usr/local}
  MANDIR=${MANDIR:-$PREFIX/share/man/man1}
  BASHDIR=${BASHDIR:-$PREFIX/share/bash-completion/completions}
  ZSHDIR=${ZSHDIR:-$PREFIX/share/zsh/site-functions}
  FISHDIR=${FISHDIR:-$PREFIX/share/fish/vendor_completions.d}
else
  data=${XDG_DATA_HOME:-$HOME/.local/share}
  MANDIR=${MANDIR:-$data/man/man1}
  BASHDIR=${BASHDIR:-$data/bash-completion/completions}
  ZSHDIR=${ZSHDIR:-$data/zsh/site-functions}
  FISHDIR=${FISHDIR:-${XDG_CONFIG_HOME:-$HOME/.config}/fish/completions}
fi
put() { # put DIR NAME: stdin to DIR/NAME, replaced in one step
  mkdir -p "$1" && cat >"$1/.$2.new" && mv -f "$1/.$2.new" "$1/$2" || die "cannot write $1/$2" "choose another directory (MANDIR=, BASHDIR=, ZSHDIR=, FISHDIR=)"
}
manpage="$here/docs/ec2ssh.1"
[ -f "$manpage" ] || { fetch "${EC2SSH_RELEASE:-$here/dist}" ec2ssh.1 "$tmp/ec2ssh.1" 2>/dev/null && manpage="$tmp/ec2ssh.1"; }
if [ -f "$manpage" ]; then
  put "$MANDIR" ec2ssh.1 <"$manpage"
  printf 'manual page: %s\n' "$MANDIR/ec2ssh.1"
  if [ "$(id -u)" != 0 ] && command -v manpath >/dev/null 2>&1; then
    case ":$(manpath 2>/dev/null):" in *":${MANDIR%/man1}:"*) ;;
      *) printf '  (man finds it once %s is on MANPATH: export MANPATH="%s:$(manpath)")\n' "${MANDIR%/man1}" "${MANDIR%/man1}";; esac
  fi
fi
"$BINDIR/ec2ssh" --completion bash | put "$BASHDIR" ec2ssh
"$BINDIR/ec2ssh" --completion zsh | put "$ZSHDIR" _ec2ssh
"$BINDIR/ec2ssh" --completion fish | put "$FISHDIR" ec2ssh.fish
printf 'completions: %s, %s, %s\n' "$BASHDIR/ec2ssh" "$ZSHDIR/_ec2ssh" "$FISHDIR/ec2ssh.fish"
if [ "$(id -u)" != 0 ]; then
  printf '  (zsh reads them once %s is on fpath: fpath=(%s $fpath) in ~/.zshrc, before compinit)\n' "$ZSHDIR" "$ZSHDIR"
fi
"$BINDIR/ec2ssh" -V 2>&1 || true
case ":$PATH:" in *":$BINDIR:"*) ;; *) printf '\nAdd %s to your PATH:\n  export PATH="%s:$PATH"\n' "$BINDIR" "$BINDIR";; esac
cat <<MSG

Use it as ssh (every host keeps working; EC2 hosts get diagnosis and fallback):
  alias ssh=ec2ssh

Or let OpenSSH, scp, rsync, git and IDEs reach instances through it, in ~/.ssh/config:
  Host i-* mi-*
    ProxyCommand $BINDIR/ec2ssh --proxy %h %p
MSG
