#!/bin/bash
# exports.sh - the shared library exports the public fiber_* functions and
# nothing else.  Speaks TAP.
set -u
echo "1..2"
lib="${top_builddir:-.}/lib/.libs/libfiber.so"
if [ ! -f "$lib" ]; then
    echo "ok 1 # SKIP no shared library was built"
    echo "ok 2 # SKIP no shared library was built"
    exit 0
fi
# Names without the version node nm prints after them (fiber_run@@LIBFIBER_0.1).
symbols=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {sub(/@.*/, "", $3); print $3}' | sort)
stray=$(echo "$symbols" | grep -v '^fiber_[a-z]' || true)
if [ -z "$stray" ]; then
    echo "ok 1 - every exported symbol is a public fiber_* name"
else
    echo "$stray" | sed 's/^/# stray: /'
    echo "not ok 1 - every exported symbol is a public fiber_* name"
fi
# Every function declared in fiber.h is exported.
declared=$(grep -oE '^FIBER_API [^(]*\b(fiber_[a-z0-9_]+)\(' "${top_srcdir:-.}/include/fiber.h" |
           grep -oE 'fiber_[a-z0-9_]+\($' | tr -d '(' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$symbols"))
if [ -z "$missing" ]; then
    echo "ok 2 - every function declared in fiber.h is exported"
else
    echo "$missing" | sed 's/^/# missing: /'
    echo "not ok 2 - every function declared in fiber.h is exported"
fi
