#!/bin/bash
# install.sh - 'make install' into a temporary root, then build and run a
# program outside the tree with only pkg-config's flags.  Speaks TAP.
set -u

echo "1..6"
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

# libfiber-hook: installed beside libfiber; a program linked with its
# pkg-config flags sleeps in three fibers at once with plain nanosleep.
cat >"$tmp/hooked.c" <<'PROG'
#include <fiber-hook.h>
#include <stdio.h>
#include <time.h>

static void *nap(void *arg)
{
    struct timespec ts = {0, 300000000};

    return nanosleep(&ts, NULL) == 0 ? arg : NULL;
}

static void *run(void *arg)
{
    fiber_task_t *t[3];

    for (int i = 0; i < 3; i++)
        if (fiber_spawn(&t[i], nap, arg, NULL) < 0)
            return NULL;
    return fiber_gather(t, 3, NULL, NULL) == 0 ? arg : NULL;
}

int main(void)
{
    static char ok[] = "three naps at once";
    struct timespec t0, t1;
    void *result = NULL;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!fiber_hook_installed() || fiber_run(run, ok, NULL, &result, NULL) < 0 || result != ok)
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (took > 0.8)
        return 1;
    puts(ok);
    return 0;
}
PROG
test -f "$root$includedir/fiber-hook.h" && test -f "$PKG_CONFIG_PATH/libfiber-hook.pc" &&
    ${CC:-cc} ${FIBER_SANITIZE_FLAGS:-} "$tmp/hooked.c" -o "$tmp/hooked" \
        $(pkg-config --cflags --libs libfiber-hook) >"$tmp/cc-hook.log" 2>&1
result $? "a program builds with pkg-config --cflags --libs libfiber-hook"

out=$(LD_LIBRARY_PATH="$root$libdir" "$tmp/hooked")
test "$out" = "three naps at once"
result $? "its nanosleeps in three fibers overlap through the installed hooks"
