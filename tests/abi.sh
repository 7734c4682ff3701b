#!/bin/bash
# abi.sh - the shared library exports exactly the symbols listed in
# tests/abi/libfiber.symbols, each with its type and version node, so that
# a symbol removed, renamed, turned from a function into data or moved to
# another node fails 'make check' before a release breaks programs linked
# with an earlier one.  Speaks TAP.
#
# A new public function fails it too, on purpose: add its line to the list
# (the list's header says how) in the commit that adds the function, which
# is what makes an addition to the ABI a deliberate act.  When
# FIBER_ABI_BASELINE names a libfiber.so of an earlier build, a third test
# compares the two types and all with abidiff (Debian package
# abigail-tools), and fails if abidiff is missing.
set -u
baseline=${FIBER_ABI_BASELINE:-}
tests=2
[ -z "$baseline" ] || tests=3
echo "1..$tests"
lib="${top_builddir:-.}/lib/.libs/libfiber.so"
list="${top_srcdir:-.}/tests/abi/libfiber.symbols"
if [ ! -f "$lib" ]; then
    for i in $(seq "$tests"); do echo "ok $i # SKIP no shared library was built"; done
    exit 0
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# "TYPE NAME@@NODE" for each defined dynamic symbol; nm prints the node
# after the name (binutils 2.35 and later).
nm -D --defined-only "$lib" | awk 'NF == 3 {print $2, $3}' | LC_ALL=C sort >"$tmp/built"
grep -v -e '^#' -e '^[[:space:]]*$' "$list" | LC_ALL=C sort >"$tmp/listed"

if grep -q '@@LIBFIBER_' "$tmp/built"; then
    echo "ok 1 - the exported symbols carry a LIBFIBER_ version node"
    versioned=1
else
    sed 's/^/# built: /' "$tmp/built" | head -n 5
    echo "not ok 1 - the exported symbols carry a LIBFIBER_ version node"
    versioned=0
fi

gone=$(LC_ALL=C comm -23 "$tmp/listed" "$tmp/built")
new=$(LC_ALL=C comm -13 "$tmp/listed" "$tmp/built")
if [ "$versioned" -eq 0 ]; then
    echo "ok 2 # SKIP the library was linked without the version script"
elif [ -z "$gone" ] && [ -z "$new" ]; then
    echo "ok 2 - the exported symbols are those of tests/abi/libfiber.symbols"
else
    [ -z "$gone" ] || echo "$gone" | sed 's/^/# listed but not exported (the ABI broke): /'
    [ -z "$new" ] || echo "$new" | sed 's/^/# exported but not listed (add it to the list): /'
    echo "not ok 2 - the exported symbols are those of tests/abi/libfiber.symbols"
fi

if [ -z "$baseline" ]; then
    exit 0
elif ! command -v abidiff >/dev/null 2>&1; then
    echo "not ok 3 - abidiff against $baseline: abidiff is missing (apt-get install abigail-tools)"
elif out=$(abidiff --no-added-syms "$baseline" "$lib" 2>&1); then
    echo "ok 3 - abidiff finds no change against $baseline"
else
    echo "$out" | sed 's/^/# /'
    echo "not ok 3 - abidiff finds no change against $baseline"
fi
