#!/usr/bin/env bash
# demos.sh - the demo programs' behaviour, reported as TAP.
#
# Everything runs on the virtual clock with fixed seeds, so outputs are
# exact and instant, except one real-clock run that shows the concurrency is
# real.  Run by 'make check' from the build directory, with top_builddir set;
# to run it by hand: top_builddir=. tests/demos.sh
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/tap_helpers.sh"

demo_dir=${top_builddir:-.}/demo
programs=(0-basic_async_syntax 1-concurrent_coroutines 2-measure_runtime
          3-tasks 4-tasks hello gather create_task timeout random_int)

require_demos "${programs[@]}"

make_scratch

export FIBER_CLOCK=virtual
unset FIBER_SEED

# is_list TEXT N MAX [sorted]: TEXT is a Python-style list of N floats, each
# in [0, MAX] and printed as Python prints floats; with "sorted", also
# ascending as far as the loop clock tells delays apart (one nanosecond).
is_list() {
    awk -v want="$2" -v max="$3" -v sorted="${4:-}" '
        # An exit in a main rule still runs END, which decides.
        NR > 1 || !/^\[.*\]$/ { bad = 1; exit }
        {
            body = substr($0, 2, length($0) - 2)
            n = body == "" ? 0 : split(body, v, /, /)
            if (n != want + 0) { bad = 1; exit }
            for (i = 1; i <= n; i++) {
                if (v[i] !~ /^[0-9]+\.[0-9]+$/ && v[i] !~ /^[0-9](\.[0-9]+)?e-[0-9]+$/ ||
                    v[i] + 0 < 0 || v[i] + 0 > max + 0 ||
                    sorted != "" && i > 1 && v[i] + 0 < v[i - 1] - 1e-9) {
                    bad = 1
                    exit
                }
            }
            seen = 1
        }
        END { exit bad || !seen }' <<<"$1"
}

# is_float TEXT MAX: TEXT is one float in [0, MAX].
is_float() {
    is_list "[$1]" 1 "$2"
}

# The largest element of a list printed by a demo.
list_max() {
    awk '{ gsub(/[][,]/, " "); m = 0; for (i = 1; i <= NF; i++) if ($i + 0 > m) m = $i + 0
           printf "%.17g\n", m }' <<<"$1"
}

# near_fraction X TOTAL N: |X - TOTAL / N| <= 1e-9, a nanosecond of the
# loop clock.
near_fraction() {
    awk -v x="$1" -v total="$2" -v n="$3" \
        'BEGIN { d = x - total / n; exit !(d <= 1e-9 && -d <= 1e-9) }'
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# ---- the asyncio examples: exact output --------------------------------

run hello
check "hello prints Start, Hello, World, End" \
    succeeded $'Start\nHello\nWorld\nEnd'

run gather
check "gather: Task 2 completes before Task 1, in 2 seconds in all" \
    succeeded $'Task 2 completed\nTask 1 completed\nBoth tasks completed in 2.00 seconds'

run create_task
check "create_task: both tasks start when main blocks, then finish in turn" \
    succeeded $'Both tasks created\nTask 1 started\nTask 2 started\nTask 1 finished after 1 s\nTask 2 finished after 2 s\nBoth tasks done'

run timeout
check "timeout: the 5 s task times out after 3 s" \
    succeeded $'Task timed out!\nGave up after 3.00 seconds'

run random_int --seed 42
first=$out
check "random_int prints one integer from 1 to 100" \
    eval '[ "$status" -eq 0 ] && [[ "$out" =~ ^[0-9]+$ ]] && [ "$out" -ge 1 ] && [ "$out" -le 100 ]'
run random_int --seed 42
check "random_int: the same seed gives the same integer" succeeded "$first"
values=""
for seed in 1 2 3 4 5 6 7 8; do
    run random_int --seed "$seed"
    values+="$out "
done
check "random_int: different seeds give different integers" \
    eval '[ "$(tr " " "\n" <<<"$values" | sed "/^$/d" | sort -u | wc -l)" -gt 1 ]'

# ---- the exercises -----------------------------------------------------

run 0-basic_async_syntax --seed 7
mapfile -t lines <<<"$out"
check "0-basic_async_syntax: wait_random(), (5), (15) within their bounds" \
    eval '[ "$status" -eq 0 ] && [ ${#lines[@]} -eq 3 ] &&
          is_float "${lines[0]}" 10 && is_float "${lines[1]}" 5 && is_float "${lines[2]}" 15'
run 0-basic_async_syntax --seed 7 1 0 2.5
mapfile -t lines <<<"$out"
check "0-basic_async_syntax: one line per max_delay, 0 gives 0.0" \
    eval '[ "$status" -eq 0 ] && [ ${#lines[@]} -eq 3 ] &&
          is_float "${lines[0]}" 1 && [ "${lines[1]}" = 0.0 ] && is_float "${lines[2]}" 2.5'
run 0-basic_async_syntax --seed 7 2
single=$out

run 1-concurrent_coroutines --seed 7
mapfile -t lines <<<"$out"
check "1-concurrent_coroutines: wait_n(5, 5), (10, 7), (10, 0) ascending" \
    eval '[ "$status" -eq 0 ] && [ ${#lines[@]} -eq 3 ] &&
          is_list "${lines[0]}" 5 5 sorted && is_list "${lines[1]}" 10 7 sorted &&
          [ "${lines[2]}" = "[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]" ]'
first=$out
run 1-concurrent_coroutines --seed 7
check "1-concurrent_coroutines: the same seed gives the same lists" succeeded "$first"
run 1-concurrent_coroutines --seed 8
check "1-concurrent_coroutines: a different seed gives different lists" \
    eval '[ "$status" -eq 0 ] && [ "$out" != "$first" ]'

run 1-concurrent_coroutines --seed 7 1000 1
check "1-concurrent_coroutines 1000 1: 1000 delays in [0, 1], ascending" \
    eval '[ "$status" -eq 0 ] && is_list "$out" 1000 1 sorted'
run 1-concurrent_coroutines 0 5
check "1-concurrent_coroutines 0 5 prints an empty list" succeeded "[]"

run 1-concurrent_coroutines --seed 7 5 6
first=$out
all_same=yes
for args in "5 6 --seed 7" "--seed=7 5 6" "5 --seed 7 6" "--seed 7 -- 5 6"; do
    # shellcheck disable=SC2086 # the arguments are meant to split
    run 1-concurrent_coroutines $args
    [ "$status" -eq 0 ] && [ "$out" = "$first" ] || all_same=no
done
check "--seed is accepted anywhere, also as --seed=N" [ "$all_same" = yes ]

run 1-concurrent_coroutines --seed 11 5 9
longest=$(list_max "$out")
run 2-measure_runtime --seed 11
check "2-measure_runtime: the longest of wait_n(5, 9)'s delays over 5" \
    eval '[ "$status" -eq 0 ] && is_float "$out" 1.8 && near_fraction "$out" "$longest" 5'

start=$(now_ms)
run 2-measure_runtime --seed 11 5 3600
elapsed=$(($(now_ms) - start))
check "2-measure_runtime 5 3600 on the virtual clock: simulated time, at once" \
    eval '[ "$status" -eq 0 ] && is_float "$out" 720 &&
          awk -v x="$out" "BEGIN { exit !(x > 100) }" && [ "$elapsed" -lt 1000 ]'

run 3-tasks --seed 7
mapfile -t lines <<<"$out"
check "3-tasks: describes the pending task, then the finished one" \
    eval '[ "$status" -eq 0 ] && [ ${#lines[@]} -eq 2 ] &&
          [ "${lines[0]}" = "<Task pending name='"'Task-2'"' id=2 state=ready>" ] &&
          [[ "${lines[1]}" =~ ^"<Task finished name='"'Task-2'"' id=2 status=0 result="([^>]+)">"$ ]] &&
          is_float "${BASH_REMATCH[1]}" 5'
run 3-tasks --seed 7 2
check "3-tasks: the task's delay is the one wait_random draws" \
    eval '[ "$status" -eq 0 ] && [[ "$out" == *" result=$single>" ]]'

run 4-tasks --seed 7
check "4-tasks: task_wait_n(5, 6) gives 5 delays in [0, 6], ascending" \
    eval '[ "$status" -eq 0 ] && is_list "$out" 5 6 sorted'
first=$out
run 4-tasks --seed 7
check "4-tasks: the same seed gives the same list" succeeded "$first"
run 4-tasks --seed 8
check "4-tasks: a different seed gives a different list" \
    eval '[ "$status" -eq 0 ] && [ "$out" != "$first" ]'
run 1-concurrent_coroutines --seed 7 200 6
first=$out
run 4-tasks --seed 7 200 6
check "4-tasks 200 6 gives the very list wait_n gives" \
    eval '[ "$status" -eq 0 ] && [ "$out" = "$first" ] && is_list "$out" 200 6 sorted'
run 4-tasks 0 1
check "4-tasks 0 1 prints an empty list" succeeded "[]"

# ---- --timeline: each exercise's loop, with wait_random's fibers --------

# timeline_rows N: the rows of the timeline the last run printed after its
# N lines of output, each cut to "id 'name' (function)".
timeline_rows() {
    sed -n "$(($1 + 3)),\$p" <<<"$out" | grep -o "^[0-9]* '[^']*' ([a-z_]*)"
}

run 0-basic_async_syntax --seed 7 --timeline 2
check "0-basic_async_syntax --timeline: its loop runs wait_random as main" \
    eval '[ "$status" -eq 0 ] && [ "$(sed -n 3p <<<"$out")" = "timeline of loop 1 (virtual clock): 1.401 s, one column is 21.9 ms" ] &&
          [ "$(timeline_rows 1)" = "1 '"'main'"' (wait_random)" ]'
for exercise in "1-concurrent_coroutines wait_n" "4-tasks task_wait_n"; do
    read -r program fn <<<"$exercise"
    run "$program" --seed 7 --timeline 3 2
    check "$program --timeline: $fn as main, three wait_random tasks" \
        eval '[ "$status" -eq 0 ] && is_list "$(head -n 1 <<<"$out")" 3 2 sorted &&
              [[ "$(sed -n 3p <<<"$out")" == "timeline of loop 1 (virtual clock): "* ]] &&
              [ "$(timeline_rows 1 | tr "\n" ,)" = "1 '"'main'"' ($fn),2 '"'Task-2'"' (wait_random),3 '"'Task-3'"' (wait_random),4 '"'Task-4'"' (wait_random)," ]'
done
run 2-measure_runtime --seed 11 --timeline
check "2-measure_runtime --timeline: the one loop measure_time runs is wait_n's" \
    eval '[ "$status" -eq 0 ] && [ "$(timeline_rows 1 | head -n 2 | tr "\n" ,)" = "1 '"'main'"' (wait_n),2 '"'Task-2'"' (wait_random)," ] &&
          [ "$(grep -c "^timeline of loop" <<<"$out")" -eq 1 ]'
run 3-tasks --seed 7 --timeline
check "3-tasks --timeline: test as main, the task runs wait_random" \
    eval '[ "$status" -eq 0 ] && [ "$(timeline_rows 2 | tr "\n" ,)" = "1 '"'main'"' (test),2 '"'Task-2'"' (wait_random)," ]'

# ---- the command line --------------------------------------------------

for program in "${programs[@]}"; do
    run "$program" --help
    check "$program --help prints its usage and exits 0" \
        eval '[ "$status" -eq 0 ] && [ -z "$err" ] && [[ "$out" == "usage: $program "* ]]'
done

bad_cases=(
    "1-concurrent_coroutines abc 1"
    "1-concurrent_coroutines 5x 1"
    "1-concurrent_coroutines -3 1"
    "1-concurrent_coroutines 1.5 1"
    "1-concurrent_coroutines 5"
    "1-concurrent_coroutines 5 1 2"
    "1-concurrent_coroutines 18446744073709551615 1"
    "1-concurrent_coroutines 99999999999999999999999 1"
    "1-concurrent_coroutines 5 nan"
    "1-concurrent_coroutines 5 inf"
    "1-concurrent_coroutines 5 -1"
    "1-concurrent_coroutines 5 1e999"
    "1-concurrent_coroutines 5 2s"
    "1-concurrent_coroutines --bogus"
    "1-concurrent_coroutines -x 5 1"
    "1-concurrent_coroutines 5 1 --seed"
    "1-concurrent_coroutines --seed abc"
    "1-concurrent_coroutines --seed -1"
    "0-basic_async_syntax 1 oops"
    "0-basic_async_syntax 1e10"
    "2-measure_runtime 0 5"
    "2-measure_runtime 5 NaN"
    "3-tasks 1 2"
    "3-tasks -0.5"
    "4-tasks ten 6"
    "4-tasks 5 Infinity"
    "hello extra"
    "gather --verbose"
    "create_task 1"
    "timeout 3"
    "random_int --seed=1x"
)
for case in "${bad_cases[@]}"; do
    # shellcheck disable=SC2086 # the arguments are meant to split
    check "refused with status 2 and one line: $case" refused $case
done
check "refused with status 2 and one line: 4-tasks 5 ''" refused 4-tasks 5 ''

# ---- failures while running --------------------------------------------

FIBER_CLOCK=sundial run hello
check "a loop that cannot start: status 1, its error on the last line" \
    eval '[ "$status" -eq 1 ] && [ "$(tail -n 1 "$scratch/err")" = "hello: Invalid argument" ]'

"$demo_dir/4-tasks" >/dev/full 2>"$scratch/err"
status=$?
check "an output that cannot be written: status 1 and a message" \
    eval '[ "$status" -eq 1 ] && grep -q "^4-tasks: cannot write the output" "$scratch/err"'

# ---- the real clock ----------------------------------------------------

# measure_time wraps the whole run: on the real clock, the longest delay
# (the same seed draws the same delays on either clock) and a little more.
run 1-concurrent_coroutines --seed 11 5 0.5
longest=$(list_max "$out")
FIBER_CLOCK=real run 2-measure_runtime --seed 11 5 0.5
check "real clock: measure_time(5, 0.5) is the longest delay, $longest s, over 5 and a little more: $out" \
    eval '[ "$status" -eq 0 ] && is_float "$out" 1 &&
          awk -v x="$out" -v m="$longest" "BEGIN { exit !(x * 5 >= m && x * 5 < m + 0.5) }"'

# A thousand sleeps of up to 1 s take about 1 s.

start=$(now_ms)
FIBER_CLOCK=real run 1-concurrent_coroutines 1000 1
elapsed=$(($(now_ms) - start))
longest=$(list_max "$out")
# Only the order is not checked: each fiber starts its sleep a little after
# the one before, so delays closer than that may finish swapped.
check "real clock: 1000 concurrent wait_random(1) end in ${elapsed} ms, well under 2 s" \
    eval '[ "$status" -eq 0 ] && is_list "$out" 1000 1 && [ "$elapsed" -lt 2000 ] &&
          awk -v e="$elapsed" -v m="$longest" "BEGIN { exit !(e >= m * 1000 - 1) }"'

print_results
exit 0
