#!/usr/bin/env bash
# Installs the Debian package given (as root, with dpkg), checks what it installed, and
# purges it again, also when a check fails. CI runs it on the package build-deb.sh made:
#   packaging/check-deb.sh target/debian/presence_*.deb
# Needs no running systemd: the unit is checked with systemd-analyze, never started.
set -euo pipefail
cd "$(dirname "$0")/.."

deb=${1:?usage: packaging/check-deb.sh PACKAGE.deb}
unit=/usr/lib/systemd/system/presence.service

if dpkg-query -W presence >/dev/null 2>&1; then
  echo "presence is installed already; this check would remove it" >&2
  exit 1
fi
trap 'dpkg --purge presence >/dev/null' EXIT
dpkg -i "$deb"

# The version the binary reports is the one Cargo.toml gives.
pkgid=$(cargo pkgid --quiet)
expected="presence ${pkgid##*[#@]}"
actual=$(presence --version)
if [[ $actual != "$expected" ]]; then
  echo "presence --version says '$actual', not '$expected'" >&2
  exit 1
fi

# The installed binary reads the installed settings file as the unit has it do: every key
# known, every value accepted.
if ! presence --config /etc/presence/presence.toml config show >/dev/null; then
  echo "presence cannot read the installed /etc/presence/presence.toml" >&2
  exit 1
fi

# systemd-analyze verify exits 0 on an unknown key or a bad value and only warns, so any
# output at all counts as a failure. It also checks the binary and the man pages named in
# Documentation= exist.
verify=$(systemd-analyze verify "$unit" 2>&1) || {
  echo "$verify" >&2
  exit 1
}
if [[ -n $verify ]]; then
  echo "systemd-analyze verify $unit:" >&2
  echo "$verify" >&2
  exit 1
fi

man -w presence presence-serve presence-user-add >/dev/null
[[ -x /usr/sbin/presence-admin ]]
grep -qx /etc/presence/presence.toml <(dpkg-query -W -f='${Conffiles}\n' presence | awk '{print $1}')
# Installing neither enables nor starts the service: the administrator does, after setting up.
if [[ $(systemctl is-enabled presence.service 2>&1) != disabled ]]; then
  echo "presence.service should be disabled after installing" >&2
  exit 1
fi

trap - EXIT
dpkg --purge presence
if [[ -e /usr/bin/presence || -e /usr/sbin/presence-admin || -e $unit || -e /etc/presence ]]; then
  echo "dpkg --purge presence left files behind" >&2
  exit 1
fi
echo "$deb: installed, checked and purged"
