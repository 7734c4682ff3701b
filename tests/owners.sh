#!/bin/sh
# owners.sh - each field of struct fiber_task is written by the module
# that owns its group (see lib/core/state.h and tests/owners.py).  Speaks
# TAP.  A small tree first checks that the script fails on a module
# writing a field another module owns.
if ! command -v python3 >/dev/null 2>&1; then
    echo "1..0 # SKIP python3 is not installed"
    exit 0
fi
script="${top_srcdir:-.}/tests/owners.py"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/lib/core" "$tmp/lib/tasks"
cat >"$tmp/lib/core/state.h" <<'END'
struct fiber_task {
    /* Owner: loop.  Scheduling. */
    int state;
    /* Owner: scope.  The scopes. */
    int depth;
};
END
cat >"$tmp/lib/core/loop.c" <<'END'
void fiber__loop_step(struct fiber_task *t) { t->state = 1; t->depth = 2; }
END
cat >"$tmp/lib/tasks/scope.c" <<'END'
void fiber__scope_enter(struct fiber_task *t) { t->depth++; }
END

echo "1..2"
out=$(python3 "$script" "$tmp" 2>&1)
if [ $? -ne 0 ] && printf '%s\n' "$out" |
        grep -q "loop writes fiber_task.depth, which scope owns"; then
    echo "ok 1 - owners.py fails on a field written outside its owner"
else
    printf '%s\n' "$out" | sed 's/^/# /'
    echo "not ok 1 - owners.py fails on a field written outside its owner"
fi
out=$(python3 "$script" "${top_srcdir:-.}")
status=$?
printf '%s\n' "$out" | sed -e '/^1\.\./d' -e 's/^/# /'
if [ $status -eq 0 ]; then
    echo "ok 2 - lib/: every task field is written by its owner"
else
    echo "not ok 2 - lib/: every task field is written by its owner"
fi
