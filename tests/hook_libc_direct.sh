#!/usr/bin/env bash
# hook_libc_direct.sh - libfiber never calls the libc names libfiber-hook
# defines, so its own I/O can never recurse into the hooks: libfiber.so
# has no undefined reference to any of them (lib/core/libc_direct.h renames its
# calls to system calls of its own), and libfiber-hook.so defines them all.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/tap_helpers.sh"

lib="${top_builddir:-.}/lib/.libs/libfiber.so"
hook="${top_builddir:-.}/lib/.libs/libfiber-hook.so"
hooked="read write readv writev recv recvfrom recvmsg send sendto sendmsg
connect accept accept4 poll ppoll select nanosleep clock_nanosleep usleep sleep
getaddrinfo close dup dup2 dup3 fcntl ioctl setsockopt socket socketpair pipe pipe2"

if [ ! -f "$lib" ] || [ ! -f "$hook" ]; then
    echo "Bail out! $lib or $hook is not built"
    exit 1
fi
undefined=$(nm -D --undefined-only "$lib" | awk '{print $2}' | sed 's/@.*//')
defined=$(nm -D --defined-only "$hook" | awk '{print $3}')
bad="" missing=""
for name in $hooked; do
    # getaddrinfo runs on worker threads only, which run no loop.
    [ "$name" = getaddrinfo ] && continue
    if printf '%s\n' "$undefined" | grep -qx "$name"; then bad="$bad $name"; fi
done
for name in $hooked; do
    printf '%s\n' "$defined" | grep -qx "$name" || missing="$missing $name"
done
check "libfiber.so references none of the hooked names${bad:+ (does:$bad)}" test -z "$bad"
check "libfiber-hook.so defines every hooked name${missing:+ (lacks:$missing)}" test -z "$missing"
print_results
[ "$failures" -eq 0 ]
