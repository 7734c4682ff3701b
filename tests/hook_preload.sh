#!/usr/bin/env bash
# hook_preload.sh - a program built without libfiber-hook runs its fibers'
# blocking calls concurrently once the library is preloaded: ten fibers
# each sleeping 0.2 s with nanosleep, then writing a byte to a socket that
# another fiber waits on in read(2), take about 0.2 s in all with
# LD_PRELOAD, 2 s without (each call then blocks the thread).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/tap_helpers.sh"

prog="${top_builddir:-.}/tests/hook_preload_prog"
hook="$(cd "${top_builddir:-.}" && pwd)/lib/.libs/libfiber-hook.so"
[ -x "$prog" ] || { echo "Bail out! $prog is not built"; exit 1; }
[ -f "$hook" ] || { echo "Bail out! $hook is not built"; exit 1; }
unset FIBER_CLOCK

# is_between X LOW HIGH: LOW <= X < HIGH, as decimals.
is_between() {
    awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x >= lo && x < hi) }'
}

# The libtool wrapper of an uninstalled program is a script: preload into
# the program it runs, not into the shell.
plain=$("${top_builddir:-.}/libtool" --mode=execute "$prog" 10)
check "without the hooks, blocking calls run one after another (${plain} s)" \
    is_between "$plain" 1.9 60
hooked=$(ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
    "${top_builddir:-.}/libtool" --mode=execute env LD_PRELOAD="$hook" "$prog" 10)
check "with LD_PRELOAD=libfiber-hook.so, they overlap (${hooked} s)" \
    is_between "$hooked" 0.19 1.0
print_results
[ "$failures" -eq 0 ]
