#!/bin/bash
# bench_suite_smoke.sh - run the peer comparison suite of 'make bench' with
# tiny counts, so that its driver, its programs and its report cannot rot.
# Peers missing from the machine are skipped by the suite, so this passes
# without any of them; but a program that runs and leaves a figure out of
# its output (which the suite reports as "no ... in its output") fails it.
# Figures are not checked.  Speaks TAP.
set -u
echo "1..1"
what="run_suite.py --quick writes a Markdown and a CSV report"
python=${BENCH_PYTHON3:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
    echo "ok 1 # SKIP $python not found"
    exit 0
fi
number='[0-9.e+-]*'
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

if out=$("$python" "${top_srcdir:-.}/tests/bench/run_suite.py" --quick \
        --srcdir="${top_srcdir:-.}" --builddir="${top_builddir:-.}" \
        --workdir="$tmp/peers" --out="$tmp/report" 2>&1) &&
   grep -q '^| switch' "$tmp/report.md" &&
   grep -q "^switch,[0-9]*,switch_ns,ns,libfiber,$number,1,1,ok," \
        "$tmp/report.csv" &&
   grep -q '^| 100 sleepers: wake-up lateness, 99th percentile' \
        "$tmp/report.md" &&
   test "$(grep -c "^sleepers,100,late_\(med\|p90\|p99\|max\)_us,µs,libfiber,$number,[0-9.]*,1,ok," \
        "$tmp/report.csv")" = 4 &&
   grep -q "^sleepers,100,busy_us,µs,libfiber,$number,1,1,ok," \
        "$tmp/report.csv" &&
   grep -q '^| 100 sleepers: sleep + wake work (loop busy), per sleeper' \
        "$tmp/report.md" &&
   ! grep -q 'in its output' "$tmp/report.csv"; then
    echo "ok 1 - $what"
else
    echo "$out" | sed 's/^/# /'
    echo "not ok 1 - $what"
fi
