#!/usr/bin/env bash
# demos_structured.sh - the structured-concurrency demos' behaviour, as TAP:
# taskgroup, as_completed and timeout_scope.
#
# Everything runs on the virtual clock with fixed seeds, so outputs are
# exact and instant, except one real-clock run.  Run by 'make check' from
# the build directory; by hand: top_builddir=. tests/demos_structured.sh
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/tap_helpers.sh"

demo_dir=${top_builddir:-.}/demo
programs=(taskgroup as_completed timeout_scope 1-concurrent_coroutines)

require_demos "${programs[@]}"

make_scratch

export FIBER_CLOCK=virtual
unset FIBER_SEED

# ran_cleanly: the last run exited 0 with nothing on stderr.
ran_cleanly() {
    [ "$status" -eq 0 ] && [ -z "$err" ]
}

# has_line LINE: the last run printed exactly this line.
has_line() {
    grep -qxF -- "$1" <<<"$out"
}

# ---- taskgroup ---------------------------------------------------------

# taskgroup_story FAILING OTHER1 OTHER2: the download FAILING failed at some
# time T, the other two were cancelled at that same T, after which nothing
# else happened; the summary names the failure and every status is listed.
taskgroup_story() {
    local failing=$1 t
    t=$(sed -n "s/^\[\([0-9.]*\)\] $failing: Input\/output error$/\1/p" <<<"$out")
    [ -n "$t" ] || return 1
    has_line "[$t] $2: cancelled" && has_line "[$t] $3: cancelled" &&
        [ "$(grep -c '^\[' <<<"$out")" -eq 6 ] &&
        [ "$(grep '^\[' <<<"$out" | tail -n 3 | cut -d' ' -f1 | sort -u)" = "[$t]" ] &&
        has_line "group: Input/output error, first failure: $failing" &&
        has_line "statuses, in the order started:" &&
        has_line "$(printf '  %-10s %s' "$failing" 'Input/output error (status -5)')" &&
        has_line "$(printf '  %-10s %s' "$2" 'cancelled (status -125)')" &&
        has_line "$(printf '  %-10s %s' "$3" 'cancelled (status -125)')"
}

run taskgroup --seed 1
first=$out
check "taskgroup: beta.bin fails, alpha.txt and gamma.iso are cancelled at that instant, every status printed" \
    eval 'ran_cleanly && taskgroup_story beta.bin alpha.txt gamma.iso'
check "taskgroup: the three downloads start at 0" \
    eval 'has_line "[0.000] alpha.txt: started, 6 chunks" &&
          has_line "[0.000] beta.bin: started, 8 chunks" &&
          has_line "[0.000] gamma.iso: started, 10 chunks"'
run taskgroup --seed 1
check "taskgroup: the same seed gives the same story" succeeded "$first"
run taskgroup --seed 5 1
check "taskgroup 1: alpha.txt fails, the others are cancelled" \
    eval 'ran_cleanly && taskgroup_story alpha.txt beta.bin gamma.iso'
run taskgroup --seed 5 3
check "taskgroup 3: gamma.iso fails, the others are cancelled" \
    eval 'ran_cleanly && taskgroup_story gamma.iso alpha.txt beta.bin'
run taskgroup --seed 1 0
check "taskgroup 0: no failure, every download done" \
    eval 'ran_cleanly && has_line "group: all downloads done" &&
          ! grep -q cancelled <<<"$out" &&
          has_line "  alpha.txt  done, 6 of 6 chunks" &&
          has_line "  beta.bin   done, 8 of 8 chunks" &&
          has_line "  gamma.iso  done, 10 of 10 chunks"'

# ---- as_completed ------------------------------------------------------

# arrivals_ascend: every "[t] task k: delay" line was printed at its own
# delay (to the millisecond shown), and the delays ascend.
arrivals_ascend() {
    awk '/^\[/ {
            t = substr($1, 2, length($1) - 2) + 0; d = $4 + 0
            if (d < t - 0.0005 || d > t + 0.0005 || d < prev) bad = 1
            prev = d; n++
         }
         END { exit bad || n == 0 }' <<<"$out"
}

run as_completed --seed 7
first=$out
check "as_completed: five results printed as they arrive, ascending" \
    eval 'ran_cleanly && [ "$(grep -c "^\[.*\] task [1-5]: " <<<"$out")" -eq 5 ] &&
          arrivals_ascend && [[ "$(tail -n 1 <<<"$out")" == "all 5 tasks done in "*" s" ]]'
check "as_completed: the total time is the last arrival's" \
    eval '[ "$(tail -n 1 <<<"$out" | cut -d" " -f6)" = \
            "$(grep "^\[" <<<"$out" | tail -n 1 | cut -c2-6)" ]'
run as_completed --seed 7
check "as_completed: the same seed gives the same output" succeeded "$first"

run as_completed --seed 7 8 5
delays=$(grep '^\[' <<<"$out" | cut -d' ' -f4 | paste -sd, | sed 's/,/, /g')
run 1-concurrent_coroutines --seed 7 8 5
check "as_completed 8 5: the results arrive in wait_n's order, ascending without sort" \
    eval '[ "$out" = "[$delays]" ]'

run as_completed --seed 3 6 4 2
check "as_completed 6 4 2: the results before 2 s, then the rest cancelled" \
    eval 'ran_cleanly && arrivals_ascend &&
          n=$(grep -c "^\[" <<<"$out") &&
          [ "$(tail -n 1 <<<"$out")" = "timed out after 2.000 s: $((6 - n)) of 6 tasks still running, cancelled" ] &&
          ! grep "^\[" <<<"$out" | grep -qv "^\[[01]\."'
run as_completed 3 1 0
check "as_completed 3 1 0: a zero timeout takes nothing" \
    succeeded "timed out after 0.000 s: 3 of 3 tasks still running, cancelled"
run as_completed 0 1
check "as_completed 0 1: no task" succeeded "all 0 tasks done in 0.000 s"

# ---- timeout_scope -----------------------------------------------------

run timeout_scope
check "timeout_scope: one 2.5 s deadline cuts the block in its fourth step" \
    succeeded "[0.500] connect: done
[0.750] send request: done
[2.250] wait for reply: done
[2.500] read body: Connection timed out
the 2.5 s deadline cut the block short: 3 of 4 steps done
[3.000] after the scope, a 0.5 s sleep: done"
run timeout_scope 10
check "timeout_scope 10: the block ends before the deadline" \
    succeeded "[0.500] connect: done
[0.750] send request: done
[2.250] wait for reply: done
[3.250] read body: done
the block ended before the 10 s deadline: 4 of 4 steps done
[3.750] after the scope, a 0.5 s sleep: done"
run timeout_scope 0.6
check "timeout_scope 0.6: cut in the second step" \
    succeeded "[0.500] connect: done
[0.600] send request: Connection timed out
the 0.6 s deadline cut the block short: 1 of 4 steps done
[1.100] after the scope, a 0.5 s sleep: done"
run timeout_scope 0
check "timeout_scope 0: the first step fails at once" \
    succeeded "[0.000] connect: Connection timed out
the 0 s deadline cut the block short: 0 of 4 steps done
[0.500] after the scope, a 0.5 s sleep: done"

# ---- the command line --------------------------------------------------

for program in taskgroup as_completed timeout_scope; do
    run "$program" --help
    check "$program --help prints its usage and exits 0" \
        eval 'ran_cleanly && [[ "$out" == "usage: $program "* ]]'
done

bad_cases=(
    "taskgroup 4"
    "taskgroup x"
    "taskgroup -1"
    "taskgroup 1 2"
    "as_completed 5"
    "as_completed x 1"
    "as_completed 5 -1"
    "as_completed 5 1 nan"
    "as_completed 5 1 2 3"
    "timeout_scope -1"
    "timeout_scope abc"
    "timeout_scope 1 2"
)
for case in "${bad_cases[@]}"; do
    # shellcheck disable=SC2086 # the arguments are meant to split
    check "refused with status 2 and one line: $case" refused $case
done

# ---- the real clock ----------------------------------------------------

start=$(date +%s%N)
FIBER_CLOCK=real run timeout_scope 0.3
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
check "real clock: timeout_scope 0.3 cuts the block at 0.3 s, in ${elapsed_ms} ms" \
    eval 'ran_cleanly && [[ "$(sed -n 1p <<<"$out")" == "[0.3"*"] connect: Connection timed out" ]] &&
          [ "$elapsed_ms" -ge 790 ] && [ "$elapsed_ms" -lt 2000 ]'

print_results
exit 0
