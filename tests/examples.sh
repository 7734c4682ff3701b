#!/bin/bash
# examples.sh - every C example in README.md (```c blocks) and in the
# comments of include/fiber.h (between "// example" and "// end of
# example" lines) builds as written with -Wall -Werror against the built
# library, and each complete program runs under the virtual clock.
# Speaks TAP.
#
# An example with a main is a complete program, built as it is.  One that
# defines functions is built after the includes below, with an empty main
# added.  Any other is a fragment of a fiber function: it is built as the
# body of one, after the same includes:
#     #include <errno.h>, <math.h>, <stdio.h>, <fiber.h>
set -u
srcdir=${top_srcdir:-.}
builddir=${abs_top_builddir:-$(pwd)}
lib="$builddir/lib/.libs/libfiber.so"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Write each example to $tmp/NNN.c, with its origin in $tmp/NNN.where.
awk -v dir="$tmp" '
    function start(where) { n++; file = sprintf("%s/%03d", dir, n);
                            print where > (file ".where"); close(file ".where");
                            inside = 1 }
    FILENAME ~ /README/ && /^```c$/ { start(FILENAME ":" FNR); next }
    FILENAME ~ /README/ && inside && /^```$/ { inside = 0; close(file ".c"); next }
    FILENAME ~ /fiber\.h$/ && /^ \*     \/\/ example/ { start(FILENAME ":" FNR); next }
    FILENAME ~ /fiber\.h$/ && inside && /^ \*     \/\/ end of example/ {
        inside = 0; close(file ".c"); next }
    FILENAME ~ /fiber\.h$/ && inside {
        line = $0
        if (line !~ /^ \*( |$)/) { print "bad line in an example: " FILENAME ":" FNR > "/dev/stderr"; exit 1 }
        sub(/^ \*(     )?/, "", line); print line > (file ".c"); next }
    inside { print > (file ".c") }
' "$srcdir/README.md" "$srcdir/include/fiber.h" || { echo "1..0 # the examples could not be read"; exit 1; }

examples=("$tmp"/*.c)
count=${#examples[@]}
if [ "$count" -lt 6 ]; then
    # Fewer than the examples known to be there: the markers were lost.
    echo "1..1"
    echo "not ok 1 - found $count examples, expected at least 6"
    exit 0
fi
echo "1..$count"
if [ ! -f "$lib" ]; then
    for i in $(seq 1 "$count"); do echo "ok $i # SKIP no shared library was built"; done
    exit 0
fi

prelude='#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <fiber.h>
'
i=0
for src in "${examples[@]}"; do
    i=$((i + 1))
    base=${src%.c}
    where=$(cat "$base.where")
    prog="$base.prog.c"
    # The course's exercises in the README are the files of demo/exercises,
    # which the build compiles: the README must show them as they are.
    if exercise=$(python3 - "$src" "$srcdir"/demo/exercises/*.c <<'PY'
import sys
block = open(sys.argv[1]).read()
for path in sys.argv[2:]:
    if block.strip() and block in open(path).read():
        print(path.rsplit("/", 1)[-1])
        sys.exit(0)
sys.exit(1)
PY
    ); then
        echo "ok $i - $where is demo/exercises/$exercise as the build compiles it"
        continue
    fi
    extra=()
    if grep -q '<hiredis/' "$src"; then
        if ! extra=($(pkg-config --cflags --libs hiredis 2>/dev/null)); then
            echo "ok $i # SKIP $where needs hiredis (libhiredis-dev)"
            continue
        fi
        extra+=(-lfiber-hook)
    fi
    if grep -qE '\bmain[[:space:]]*\(' "$src"; then
        kind=program
        cp "$src" "$prog"
    elif grep -qE '^[A-Za-z_].*\)$' "$src" && grep -qE '^\{$' "$src"; then
        kind=functions
        { printf '%s\n' "$prelude"; cat "$src"; printf '\nint main(void)\n{\n    return 0;\n}\n'; } >"$prog"
    else
        kind=fragment
        { printf '%s\n' "$prelude"
          printf 'void *example(void *arg);\n\nvoid *example(void *arg)\n{\n    (void)arg;\n'
          sed 's/^/    /' "$src"
          printf '    return NULL;\n}\n\nint main(void)\n{\n    return 0;\n}\n'; } >"$prog"
    fi
    # shellcheck disable=SC2086
    if ! ${CC:-cc} ${FIBER_SANITIZE_FLAGS:-} -std=gnu11 -Wall -Werror \
            -I"$builddir/include" -I"$srcdir/include" "$prog" -o "$base.bin" \
            -L"$builddir/lib/.libs" "${extra[@]}" -lfiber -Wl,-rpath,"$builddir/lib/.libs" \
            >"$base.log" 2>&1; then
        sed 's/^/# /' "$base.log"
        echo "not ok $i - $where ($kind) builds with -Wall -Werror"
        continue
    fi
    if [ "$kind" != program ]; then
        echo "ok $i - $where ($kind) builds with -Wall -Werror"
        continue
    fi
    if FIBER_CLOCK=virtual timeout 60 "$base.bin" >"$base.out" 2>&1; then
        echo "ok $i - $where ($kind) builds with -Wall -Werror and runs"
    else
        sed 's/^/# /' "$base.out"
        echo "not ok $i - $where ($kind) builds but fails under FIBER_CLOCK=virtual"
    fi
done
