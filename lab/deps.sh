#!/bin/sh
# lab/deps.sh: make sure this machine has what the lab and the tests use, and
# install what is missing from Debian's packages. make test, make demo and
# make bench call it; it fails, never skips, when something cannot be had.
#   lab/deps.sh            the test and demo set
#   lab/deps.sh bench      plus what make bench drives (Ansible)
set -eu

# OpenSSH's server, client and regress suite (the real peer, the reference
# and OpenSSH's own tests), rsync and git (tools that drive ssh), tmux (a
# real terminal), nftables and iproute2 (the lab's network), openssl (AWS's
# fingerprint recipes), procps (pgrep: no process may outlive ec2ssh),
# util-linux (unshare: a lab instance's own view of its files), ansible (it
# drives ssh with connection sharing by default), dash and busybox (the SSM
# command wrapper runs under each sh an image may have), autossh (a caller
# that restarts ssh by its exit status), wine64 and the MinGW compiler (the
# Windows build run under Wine, with the bcryptprimitives.dll stand-in Wine 8
# lacks), groff-base and man-db (the manual page is checked with groff -ww,
# and install.sh's test asks man where it finds it).
packages="openssh-server openssh-client openssh-tests rsync git tmux nftables iproute2 openssl procps util-linux ansible bash zsh fish dash busybox autossh wine64 gcc-mingw-w64-x86-64-win32 groff-base man-db"
if [ "${1:-}" = bench ]; then
  packages="$packages ansible sshpass"
fi

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "lab/deps.sh: missing:$missing" >&2
    echo "lab/deps.sh: install them as root (apt-get install$missing), or run the unit subset: make unit" >&2
    exit 1
  fi
  echo "lab/deps.sh: installing$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# moto's EC2 emulator comes with the machine's Python; PyPI cannot be
# reached from here, so it can only be checked for.
if ! command -v moto_server >/dev/null 2>&1; then
  echo "lab/deps.sh: moto_server is missing (it comes with the machine's Python: pip install 'moto[server]')" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "lab/deps.sh: the lab's private network namespace needs root; run make test as root, or the unit subset: make unit" >&2
  exit 1
fi
