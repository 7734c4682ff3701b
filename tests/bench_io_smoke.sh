#!/bin/bash
# bench_io_smoke.sh - run the HTTP benchmark of 'make bench-io' for one
# second per load at 100 connections, so that its driver, its peers and
# its report cannot rot.  Skipped without python3 or wrk; peers missing
# from the machine are skipped by the suite.  Figures are not checked,
# only that libfiber answered without errors.  Speaks TAP.
set -u
echo "1..1"
what="run_io_suite.py --quick reports libfiber's requests per second"
python=${BENCH_PYTHON3:-python3}
for tool in "$python" wrk; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "ok 1 # SKIP $tool not found"
        exit 0
    fi
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

if out=$("$python" "${top_srcdir:-.}/tests/bench/run_io_suite.py" --quick \
        --srcdir="${top_srcdir:-.}" --builddir="${top_builddir:-.}" \
        --workdir="$tmp/work" --out="$tmp/report.md" 2>&1) &&
   grep -q '^| libfiber (demo/httpd) | [0-9][0-9,.]* | 1.00x | .* | 0 | 0 |$' "$tmp/report.md"; then
    echo "ok 1 - $what"
else
    echo "$out" | sed 's/^/# /'
    echo "not ok 1 - $what"
fi
