#!/usr/bin/env bash
# producer_consumer.sh - the producer_consumer demo's behaviour, as TAP.
#
# On the virtual clock with a fixed seed the output is exact and instant.
# Run by 'make check' from the build directory, with top_builddir set; by
# hand: top_builddir=. tests/producer_consumer.sh
set -u

demo=${top_builddir:-.}/demo/producer_consumer
if [ ! -x "$demo" ]; then
    echo "Bail out! $demo is not built (run make first)"
    exit 1
fi

export FIBER_CLOCK=virtual
unset FIBER_SEED

tests=0
failures=0

# check DESCRIPTION COMMAND...: one test, passing when COMMAND succeeds.
check() {
    local description=$1
    shift
    tests=$((tests + 1))
    if "$@"; then
        echo "ok $tests - $description"
    else
        echo "not ok $tests - $description"
        failures=$((failures + 1))
    fi
}

# run ARGS...: run the demo; sets $out, $err and $status.
run() {
    local scratch
    scratch=$(mktemp) || exit 1
    out=$("$demo" "$@" 2>"$scratch")
    status=$?
    err=$(cat "$scratch")
    rm -f "$scratch"
}

# count PATTERN: how many lines of $out match the extended regex PATTERN.
count() {
    grep -cE "$1" <<<"$out"
}

echo "1..9"

run --seed 1
first=$out
check "default run: 10 puts, 10 jobs done, a summary, exit 0" \
    eval '[ "$status" -eq 0 ] && [ -z "$err" ] &&
          [ "$(count " producer [12] put job [12]\.[1-5] ")" -eq 10 ] &&
          [ "$(count " consumer [123] did job [12]\.[1-5] in ")" -eq 10 ] &&
          [ "$(tail -n 1 <<<"$out" | sed "s/ in .*//")" = "10 jobs from 2 producers done by 3 consumers" ]'

check "every job is done exactly once" \
    eval '[ "$(grep -oE "did job [0-9]+\.[0-9]+" <<<"$out" | sort -u | wc -l)" -eq 10 ]'

# The queue holds at most 4 jobs: no put ever reports more.
check "the queue never holds more than its capacity" \
    eval '! grep -qE "\(([5-9]|[0-9]{2,}) queued\)" <<<"$out"'

check "the consumers' counts add up to every job" \
    eval '[ "$(sed -nE "s/^consumer [0-9]+ did ([0-9]+) jobs?$/\1/p" <<<"$out" | awk "{ s += \$1 } END { print s }")" -eq 10 ]'

check "the queue is closed after the last put, every job done after that" \
    eval '[ "$(grep -n "queue closed" <<<"$out" | cut -d: -f1)" -gt "$(grep -n " put job " <<<"$out" | tail -n 1 | cut -d: -f1)" ] &&
          [ "$(grep -n "every job done" <<<"$out" | cut -d: -f1)" -gt "$(grep -n " did job " <<<"$out" | tail -n 1 | cut -d: -f1)" ]'

run --seed 1
check "the same seed gives the same output" eval '[ "$status" -eq 0 ] && [ "$out" = "$first" ]'

run --seed 3 4 2 25 1
check "4 producers, 2 consumers, 25 jobs each, capacity 1" \
    eval '[ "$status" -eq 0 ] && [ "$(count " did job ")" -eq 100 ] &&
          ! grep -qE "\(([2-9]|[0-9]{2,}) queued\)" <<<"$out" &&
          [ "$(tail -n 1 <<<"$out" | sed "s/ in .*//")" = "100 jobs from 4 producers done by 2 consumers" ]'

all_refused=yes
for args in "0" "1 0" "x" "1 1 1 1 1" "1 1 0" "1 1 1 0" "10001" "--bogus" "1 1 1000001"; do
    # shellcheck disable=SC2086 # the arguments are meant to split
    run $args
    if [ "$status" -ne 2 ] || [ -n "$out" ] || [ "$(wc -l <<<"$err")" -ne 1 ]; then
        all_refused=no
        echo "# '$args' gave status $status, stdout '$out', stderr '$err'"
    fi
done
check "bad arguments exit 2 with one line on stderr" [ "$all_refused" = yes ]

run --help
check "--help prints the usage and exits 0" \
    eval '[ "$status" -eq 0 ] && grep -q "^usage: producer_consumer" <<<"$out"'

[ "$failures" -eq 0 ]
