#!/bin/sh
# ci-aarch64.sh - build libfiber for AArch64 with Debian's cross compiler
# and run its unit tests under qemu-user: the AArch64 assembly switch,
# compact fibers and libunwind backtraces on AArch64.
#
# Usage: build-aux/ci-aarch64.sh DIR, where DIR is a source tree with its
# configure script made (CI passes a fresh copy).  Run as root, or with
# sudo available: it adds the arm64 architecture to dpkg and installs
# gcc-aarch64-linux-gnu, qemu-user-static, libcmocka-dev:arm64 and
# libunwind-dev:arm64.  On a machine whose package sources have no arm64
# packages, it says so and stops without failing.
#
# Left out under emulation: the tests that start threads or fork
# (test_errors, test_io, test_tcp, test_thread_pool, test_loop_threads, and
# the thread case of test_compact), since qemu-user cannot start threads on
# every host.
set -eu

dir=${1:?usage: ci-aarch64.sh DIR}
triplet=aarch64-linux-gnu

if [ "$(id -u)" -eq 0 ]; then
    as_root=
elif command -v sudo >/dev/null 2>&1; then
    as_root=sudo
else
    echo "ci-aarch64: needs root or sudo to install the cross tools" >&2
    exit 1
fi

if [ "$(dpkg --print-architecture 2>/dev/null)" != amd64 ]; then
    echo "ci-aarch64: SKIPPED: the cross build is set up for an amd64 host"
    exit 0
fi
if ! command -v $triplet-gcc >/dev/null 2>&1 ||
   ! command -v qemu-aarch64-static >/dev/null 2>&1 ||
   [ ! -e /usr/lib/$triplet/pkgconfig/cmocka.pc ] ||
   [ ! -e /usr/lib/$triplet/pkgconfig/libunwind.pc ]; then
    $as_root dpkg --add-architecture arm64
    if ! $as_root apt-get update -q ||
       ! DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q \
            gcc-$triplet qemu-user-static libcmocka-dev:arm64 libunwind-dev:arm64; then
        echo "ci-aarch64: SKIPPED: the package sources offer no arm64 packages"
        $as_root dpkg --remove-architecture arm64 2>/dev/null || true
        exit 0
    fi
fi

cd "$dir"
PKG_CONFIG_LIBDIR=/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig \
    ./configure -q --host=$triplet --enable-werror
make -j2
make -j2 $(make -s print-cmocka-tests) tests/bench/switch_bench

export QEMU_LD_PREFIX=/usr/$triplet
export LD_LIBRARY_PATH="$PWD/lib/.libs"
export FIBER_TEST_UNDER_TOOL=1 FIBER_TEST_NO_THREADS=1 CMOCKA_MESSAGE_OUTPUT=TAP

# libtool wraps programs linked with the shared library in a script; the
# program itself is in .libs.
program() {
    if [ -e "$(dirname "$1")/.libs/$(basename "$1")" ]; then
        echo "$(dirname "$1")/.libs/$(basename "$1")"
    else
        echo "$1"
    fi
}

passed=0
failed=0
for t in timer_heap scheduler tasks wait_n run_repeat compact scope group \
         waitset sync queue process dump debug trace fuzz gather_fail_fast \
         stream; do
    log="tests/test_$t.aarch64.log"
    status=0
    timeout -s KILL 300 qemu-aarch64-static "$(program "tests/test_$t")" >"$log" 2>&1 ||
        status=$?
    ok=$(grep -c '^ok ' "$log" || true)
    bad=$(grep -c '^not ok ' "$log" || true)
    # cmocka 1.1.5 writes a skipped test as "not ok N # SKIP".
    skipped=$(grep -c '^not ok .* # SKIP' "$log" || true)
    bad=$((bad - skipped))
    passed=$((passed + ok))
    echo "aarch64 test_$t: $ok passed, $bad failed, $skipped skipped"
    if [ "$status" -ne 0 ] || [ "$bad" -ne 0 ]; then
        cat "$log"
        failed=$((failed + 1))
    fi
done
echo "aarch64 switch_bench (emulated: the figures mean nothing, the run must end):"
timeout -s KILL 120 qemu-aarch64-static "$(program tests/bench/switch_bench)" 100000
echo "aarch64: $passed test cases passed; $failed programs failed"
[ "$failed" -eq 0 ]
