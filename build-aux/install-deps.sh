#!/bin/sh
# install-deps.sh - install libfiber's build dependencies on Debian/Ubuntu.
#
# python3 makes the manual pages from fiber.h (a release tarball carries
# them made) and runs some tests; mandoc checks the pages in make check.
# Does nothing when every package is present already.  Extra package names
# given as arguments are installed too (CI adds valgrind, for example);
# --integrations adds the clients and servers that libfiber-hook's tests
# run (hiredis and redis-server, libpq and PostgreSQL, libcurl and openssl).
set -eu

integrations="redis-server libhiredis-dev postgresql libpq-dev libcurl4-openssl-dev openssl ca-certificates"
extra=""
for arg in "$@"; do
    case $arg in
        --integrations) extra="$extra $integrations" ;;
        *) extra="$extra $arg" ;;
    esac
done
packages="gcc make autoconf automake libtool pkg-config libunwind-dev libcmocka-dev python3 mandoc $extra"

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all build dependencies are present"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "install-deps: missing:$missing; run as root or install sudo" >&2
    exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing
