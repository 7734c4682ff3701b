#!/bin/bash
# install.sh - install as packagers and users do, then build and run
# programs outside the tree with only pkg-config's flags.  Speaks TAP.
#
# - 'make install DESTDIR=root' stages the files under root, and the
#   libfiber.pc staged there names the configured prefix, not root;
# - pkg-config answers for libfiber with only libfiber.pc in sight, as on
#   a machine without libunwind's development files, and adds no -I of
#   libunwind's;
# - a program links with the shared library and, with --static, with
#   libfiber.a alone, and each runs; each checks that the library it runs
#   with is the version of the headers it was compiled with;
# - the headers, manual pages, README and NEWS are installed;
# - the .pc files made with make's prefix=elsewhere say elsewhere;
# - 'make uninstall' leaves no file behind.
set -u
. "${top_srcdir:-.}/tests/tap_helpers.sh"
make_scratch
tmp=$scratch

# Sub-makes of 'make check' must not inherit its parallel job server flags.
unset MAKEFLAGS MFLAGS
make_in_build() {
    ${MAKE:-make} -C "${abs_top_builddir:?}" "$@" >>"$tmp/make.log" 2>&1
}

root="$tmp/root"
check "make install into a staging root (DESTDIR)" make_in_build install DESTDIR="$root"

pcdir="$root${libdir:?}/pkgconfig"
staged_files_present() {
    test -f "$root${includedir:?}/fiber.h" &&
    test -f "$root$includedir/fiber-version.h" &&
    test -f "$pcdir/libfiber.pc" &&
    test -f "$root${mandir:?}/man3/fiber_run.3" &&
    test -f "$root$mandir/man3/fiber_wait_fd_until.3" &&
    test -f "$root$mandir/man7/libfiber.7" &&
    test -f "$root${docdir:?}/README.md" &&
    test -f "$root$docdir/NEWS"
}
check "fiber.h, fiber-version.h, libfiber.pc, the manual pages, README and NEWS installed" \
    staged_files_present

# Packagers stage with DESTDIR: the .pc must name where the files will be.
pc_names_the_configured_prefix() {
    grep -qx "prefix=${prefix:?}" "$pcdir/libfiber.pc" && ! grep -q "$root" "$pcdir/libfiber.pc"
}
check "the staged libfiber.pc names the configured prefix, not the staging root" \
    pc_names_the_configured_prefix

# Only our .pc in sight: what a machine without libunwind-dev sees.
export PKG_CONFIG_SYSROOT_DIR="$root"
export PKG_CONFIG_LIBDIR="$pcdir"
unset PKG_CONFIG_PATH
pkg_config_alone() {
    local flags
    flags=$(pkg-config --cflags --libs libfiber) || return 1
    echo "# pkg-config --cflags --libs libfiber: $flags"
    case "$flags" in *unwind*|*linux-gnu*) return 1 ;; esac
    pkg-config --static --libs libfiber >/dev/null
}
check "pkg-config --cflags --libs libfiber needs no other .pc file and adds no -I of libunwind" \
    pkg_config_alone

cat >"$tmp/prog.c" <<'PROG'
#include <fiber.h>
#include <stdio.h>
#include <string.h>

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

    /* The library linked in is the one these headers belong to. */
    if (strcmp(fiber_version(), FIBER_VERSION) != 0 ||
        fiber_version_number() != FIBER_VERSION_NUMBER) {
        fprintf(stderr, "built with %s, running with %s\n", FIBER_VERSION, fiber_version());
        return 1;
    }
    if (fiber_run(run, hello, NULL, &result, NULL) < 0 || result != hello)
        return 1;
    puts(hello);
    return 0;
}
PROG

build() {
    local out=$1
    shift
    # shellcheck disable=SC2086
    ${CC:-cc} ${FIBER_SANITIZE_FLAGS:-} "$tmp/prog.c" -o "$out" "$@" >>"$tmp/cc.log" 2>&1
}
runs() {
    [ "$("$@")" = "hello from an installed libfiber" ]
}

# shellcheck disable=SC2046
check "a program builds with pkg-config --cflags --libs libfiber" \
    build "$tmp/prog" $(pkg-config --cflags --libs libfiber)
check "it runs against the installed shared library, of the headers' version" \
    runs env LD_LIBRARY_PATH="$root$libdir" "$tmp/prog"

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
build_hooked() {
    test -f "$root$includedir/fiber-hook.h" && test -f "$pcdir/libfiber-hook.pc" || return 1
    # shellcheck disable=SC2046
    ${CC:-cc} ${FIBER_SANITIZE_FLAGS:-} "$tmp/hooked.c" -o "$tmp/hooked" \
        $(pkg-config --cflags --libs libfiber-hook) >>"$tmp/cc.log" 2>&1
}
check "a program builds with pkg-config --cflags --libs libfiber-hook" build_hooked
naps_overlap() {
    [ "$(LD_LIBRARY_PATH="$root$libdir" "$tmp/hooked")" = "three naps at once" ]
}
check "its nanosleeps in three fibers overlap through the installed hooks" naps_overlap

# --static: a copy of the staged root without the shared library, so that
# the linker must take libfiber.a and what Libs.private names.
cp -a "$root" "$tmp/static-root"
rm -f "$tmp/static-root$libdir"/libfiber.so*
static_link() {
    local flags
    flags=$(PKG_CONFIG_SYSROOT_DIR="$tmp/static-root" \
            PKG_CONFIG_LIBDIR="$tmp/static-root$libdir/pkgconfig" \
            pkg-config --static --cflags --libs libfiber) || return 1
    echo "# pkg-config --static --cflags --libs libfiber: $flags"
    # shellcheck disable=SC2086
    build "$tmp/prog-static" $flags &&
    ! readelf -d "$tmp/prog-static" | grep -q 'libfiber\.so'
}
if [ -f "$root$libdir/libfiber.a" ]; then
    check "a program links with libfiber.a and pkg-config --static --libs libfiber" static_link
    check "the statically linked program runs" runs "$tmp/prog-static"
else
    results+=("ok $((${#results[@]} + 1)) # SKIP no static library was built")
    results+=("ok $((${#results[@]} + 1)) # SKIP no static library was built")
fi

# The .pc files follow make's prefix (libtool relinks libfiber-hook for the
# configured libdir and refuses 'make install prefix=elsewhere', so the
# libraries themselves need configure's --prefix or DESTDIR).
other="$tmp/elsewhere"
pc_follows_make_prefix() {
    make_in_build libfiber.pc libfiber-hook.pc prefix="$other" &&
    grep -qx "prefix=$other" "${abs_top_builddir:?}/libfiber.pc" &&
    grep -qx "prefix=$other" "$abs_top_builddir/libfiber-hook.pc"
}
check "libfiber.pc and libfiber-hook.pc made with make's prefix=elsewhere say elsewhere" \
    pc_follows_make_prefix
# The build tree's .pc files go back to the configured prefix.
make_in_build libfiber.pc libfiber-hook.pc

no_file_left() {
    local left
    left=$(find "$root" -type f)
    [ -z "$left" ] && return 0
    echo "$left" | sed 's/^/# left behind: /'
    return 1
}
check "make uninstall removes every installed file" \
    eval 'make_in_build uninstall DESTDIR="$root" && no_file_left'

if [ "$failures" -gt 0 ]; then
    sed 's/^/# /' "$tmp/make.log" "$tmp/cc.log" 2>/dev/null | tail -n 40
fi
print_results
exit 0
