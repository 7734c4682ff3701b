#!/bin/bash
# install.sh - 'make install' into a temporary root, then build and run a
# program outside the tree with only pkg-config's flags.  Speaks TAP.
set -u

echo "1..4"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
result() {
    n=$((n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}

# Sub-makes of 'make check' must not inherit its parallel job server flags.
unset MAKEFLAGS MFLAGS
${MAKE:-make} -C "${abs_top_builddir:?}" install DESTDIR="$tmp/root" >"$tmp/install.log" 2>&1
result $? "make install into a staging root"

root="$tmp/root"
export PKG_CONFIG_SYSROOT_DIR="$root"
export PKG_CONFIG_PATH="$root${libdir:?}/pkgconfig"
test -f "$root${includedir:?}/fiber.h" && test -f "$PKG_CONFIG_PATH/libfiber.pc" &&
    pkg-config --exists libfiber
result $? "fiber.h and libfiber.pc installed, pkg-config finds libfiber"

cat >"$tmp/prog.c" <<'PROG'
#include <fiber.h>
#include <stdio.h>

static void *child(void *arg)
{
    return fiber_sleep(0.01) == 0 ? arg : NULL;
}

static void *run(void *arg)
{
    fiber_task_t *t;
    void *result = NULL;

    if (fiber_spawn(&t, child, arg, NULL) < 0 || fiber_await(t, &result, NULL) < 0)
        return NULL;
    return result;
}

int main(void)
{
    static char hello[] = "hello from an installed libfiber";
    void *result = NULL;

    if (fiber_run(run, hello, NULL, &result, NULL) < 0 || result != hello)
        return 1;
    puts(hello);
    return 0;
}
PROG
# shellcheck disable=SC2046
${CC:-cc} ${FIBER_SANITIZE_FLAGS:-} "$tmp/prog.c" -o "$tmp/prog" $(pkg-config --cflags --libs libfiber) >"$tmp/cc.log" 2>&1
result $? "a program outside the tree builds with pkg-config --cflags --libs libfiber"

out=$(LD_LIBRARY_PATH="$root$libdir" "$tmp/prog")
test "$out" = "hello from an installed libfiber"
result $? "it runs against the installed shared library"
