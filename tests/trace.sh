#!/usr/bin/env bash
# trace.sh - the pictures of concurrency: FIBER_TRACE writes a Chrome
# trace that parses as JSON and holds a track per fiber; every demo takes
# --timeline; FIBER_DUMP_SIGNAL makes a signal dump every fiber while the
# program goes on.  Reported as TAP.
#
# Run by 'make check' with top_builddir set; by hand: top_builddir=. tests/trace.sh
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/tap_helpers.sh"

demo_dir=${top_builddir:-.}/demo
programs=(0-basic_async_syntax 1-concurrent_coroutines 2-measure_runtime
          3-tasks 4-tasks hello gather create_task timeout random_int)
require_demos "${programs[@]}"
if ! command -v python3 >/dev/null 2>&1; then
    echo "1..0 # SKIP python3 is needed to parse the traces"
    exit 0
fi

make_scratch
unset FIBER_SEED FIBER_TRACE FIBER_DEBUG FIBER_DUMP_SIGNAL

# summarize FILE: parse FILE as JSON; print, per loop (process), its
# fibers (tracks), the fibers that have a run slice, and whether every
# flow arrow has both ends.
summarize() {
    python3 - "$1" <<'PY'
import collections, json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
tracks, runs = collections.defaultdict(set), collections.defaultdict(set)
ends = collections.defaultdict(set)
for e in events:
    if e.get("ph") == "M" and e["name"] == "thread_name":
        tracks[e["pid"]].add(e["tid"])
    elif e.get("ph") == "X" and e["name"] == "run":
        runs[e["pid"]].add(e["tid"])
    elif e.get("ph") in ("s", "f"):
        ends[e["id"]].add(e["ph"])
paired = all(phases == {"s", "f"} for phases in ends.values())
for pid in sorted(tracks):
    print(len(tracks[pid]), len(runs[pid] & tracks[pid]), "paired" if paired else "unpaired")
PY
}

export FIBER_CLOCK=virtual

# ---- FIBER_TRACE ---------------------------------------------------------

run 1-concurrent_coroutines --seed 1
plain=$out
FIBER_TRACE=$scratch/trace.json run 1-concurrent_coroutines --seed 1
check "FIBER_TRACE changes nothing in what the program prints" \
    eval '[ "$status" -eq 0 ] && [ -z "$err" ] && [ "$out" = "$plain" ]'
summary=$(summarize "$scratch/trace.json" 2>&1)
check "the trace parses as JSON: one process per loop, one track per fiber, each with its runs" \
    [ "$summary" = $'6 6 paired\n11 11 paired\n11 11 paired' ]

FIBER_TRACE=$scratch/trace.json run 1-concurrent_coroutines --seed 1 5 1
summary=$(summarize "$scratch/trace.json" 2>&1)
check "a new run of the program starts the file afresh" [ "$summary" = "6 6 paired" ]

FIBER_TRACE=$scratch/no/such/dir/trace.json run hello
check "a trace that cannot be written is said so, and the program goes on" \
    eval '[ "$status" -eq 0 ] && [[ "$err" == "libfiber: cannot write the trace to "*"No such file or directory" ]]'

# ---- --timeline ----------------------------------------------------------

for program in "${programs[@]}"; do
    run "$program" --seed 3
    plain=$out
    run "$program" --seed 3 --timeline
    check "$program --timeline prints its usual output, then the timeline" \
        eval '[ "$status" -eq 0 ] && [ -z "$err" ] &&
              [ "${out:0:${#plain}}" = "$plain" ] &&
              [[ "${out:${#plain}}" == $'"'"'\n\ntimeline of loop 1 (virtual clock): '"'"'* ]] &&
              [[ "$out" == *$'"'"'\n# ran  ~ ready  - sleeping  . awaiting or waiting'"'"' ]]'
done

# A sleeper's row: its label (with its function where it can be named),
# then its cells.
sleeper="^[0-9]+ 'Task-[0-9]+'( \(wait_random\))? *\|"

run 1-concurrent_coroutines --seed 3 --timeline 4 3
rows=$(grep -Ec "$sleeper#-" <<<"$out")
check "1-concurrent_coroutines --timeline: four fibers sleeping side by side from the start" \
    [ "$rows" -eq 4 ]

run 2-measure_runtime --seed 3 --timeline 5 2
# The total is the longest sleep, not the sum: every row starts sleeping at
# once, and one of them lasts to the end.
rows=$(grep -Ec "$sleeper#-" <<<"$out")
last=$(grep -Ec "$sleeper#-*#\|$" <<<"$out")
check "2-measure_runtime --timeline: the sleeps overlap, and the longest ends the run" \
    eval '[ "$rows" -eq 5 ] && [ "$last" -ge 1 ]'

# ---- FIBER_DUMP_SIGNAL ---------------------------------------------------

(
    FIBER_CLOCK=real FIBER_DUMP_SIGNAL=SIGQUIT "$demo_dir/hello" >"$scratch/out" 2>"$scratch/err" &
    pid=$!
    sleep 0.4
    kill -QUIT "$pid"
    wait "$pid"
    echo "$?" >"$scratch/status"
)
status=$(cat "$scratch/status")
err=$(cat "$scratch/err")
out=$(cat "$scratch/out")
check "FIBER_DUMP_SIGNAL=SIGQUIT: the signal dumps every fiber to stderr" \
    eval '[[ "$err" == "libfiber: dump on signal 3 (1 live fiber)"*"fiber 1 '"'"'main'"'"'"*"sleeping, wakes in 0."* ]]'
check "and the program goes on to its normal end" \
    eval '[ "$status" -eq 0 ] && [[ "$out" == *"World"* ]]'

print_results
exit 0
