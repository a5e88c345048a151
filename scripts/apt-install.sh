#!/usr/bin/env bash
# Installs Debian packages for the scripts that need them, with root or sudo.
# Another apt or dpkg at work (an unattended upgrade, a second script of a
# parallel run) holds dpkg's lock: this waits for it, up to 15 minutes,
# instead of failing at once as apt-get does by default.
#
#   scripts/apt-install.sh PACKAGE...
set -euo pipefail

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=900)

if "${apt[@]}" install -y "$@" >/dev/null 2>&1; then
	exit 0
fi
# The package lists are missing or stale. apt-get update does not wait for
# the lock of the lists, so it is retried.
for try in 1 2 3 4 5 6; do
	"${apt[@]}" update >/dev/null && break
	[ "$try" = 6 ] && exit 1
	sleep 10
done
"${apt[@]}" install -y "$@" >/dev/null
