#!/bin/bash
# bench_smoke.sh - run the benchmarks with tiny counts, so that they cannot
# rot.  Their figures are not checked: speed belongs to 'make bench'.
set -u
echo "1..3"
n=0
smoke() {
    n=$((n + 1))
    local out
    if out=$("$@" 2>&1); then
        echo "ok $n - $* runs to completion"
    else
        echo "$out" | sed 's/^/# /'
        echo "not ok $n - $* runs to completion"
    fi
}
bench="${top_builddir:-.}/tests/bench"
smoke "$bench/fiber_bench" --quick
smoke "$bench/switch_bench" 1000
smoke "$bench/timer_heap_bench" 1000
