#!/bin/sh
# floors.sh - the modules of lib/ call each other one way: core, features,
# observers, fiber_run (see lib/README.md and tests/floors.py).  Speaks TAP.
# Before lib/ itself, three small trees check that the script fails on an
# edge up, on a cycle and on a module outside the floors.
if ! command -v python3 >/dev/null 2>&1; then
    echo "1..0 # SKIP python3 is not installed"
    exit 0
fi
script="${top_srcdir:-.}/tests/floors.py"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# tree NAME FILE=TEXT...: a lib/ of the given files under $tmp/NAME.
tree() {
    name=$1
    shift
    for spec in "$@"; do
        file="$tmp/$name/lib/${spec%%=*}"
        mkdir -p "$(dirname "$file")"
        printf '%s\n' "${spec#*=}" >"$file"
    done
}
tree up 'core/loop.c=void fiber__loop_run(void) { fiber__debug_note(); }' \
        'debug/debug.c=void fiber__debug_note(void) { }'
tree cycle 'tasks/a.c=void fiber__a(void) { fiber__b(); }' \
           'tasks/b.c=void fiber__b(void) { fiber__a(); }'
tree stray 'misc/odd.c=void fiber__odd(void) { }'

# expect N WHAT TREE PATTERN: floors.py fails on TREE, saying PATTERN.
expect() {
    out=$(python3 "$script" "$tmp/$3" 2>&1)
    if [ $? -ne 0 ] && printf '%s\n' "$out" | grep -q "$4"; then
        echo "ok $1 - floors.py fails on $2"
    else
        printf '%s\n' "$out" | sed 's/^/# /'
        echo "not ok $1 - floors.py fails on $2"
    fi
}
echo "1..4"
expect 1 "an edge from the core up to an observer" up "^# loop (core) -> debug (observers)"
expect 2 "a cycle" cycle "^# cycle of 2: a b"
expect 3 "a module outside the floors" stray "lib/misc/odd stands in no folder"
# lib/ itself: floors.py's own checks, shown as comments.
out=$(python3 "$script" "${top_srcdir:-.}")
status=$?
printf '%s\n' "$out" | sed -e '/^1\.\./d' -e 's/^/# /'
if [ $status -eq 0 ]; then
    echo "ok 4 - lib/ has its floors one way"
else
    echo "not ok 4 - lib/ has its floors one way"
fi
