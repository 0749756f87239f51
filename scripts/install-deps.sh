#!/bin/sh
# Installs what sonde needs to build and test, from Debian's packages.
# Used by the README's commands and by .ci/run. Safe to run again.
set -e

BUILD_PKGS="build-essential cmake pkg-config libzydis-dev libelf-dev libdw-dev"
TEST_PKGS="g++ sqlite3 python3 uftrace systemtap-sdt-dev redis-server redis-tools strace gdb"

need=""
for p in $BUILD_PKGS $TEST_PKGS ${SONDE_EXTRA_PKGS:-}; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
[ -z "$need" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
