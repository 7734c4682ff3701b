# tap_helpers.sh - sourced by the TAP test scripts: collect results, print
# the plan ahead of them, make a scratch directory, and run demos and judge
# how they ended.
#
# Results are collected first so that the plan can lead the output.  The
# demo helpers expect the script to set $demo_dir and $scratch first.

results=()
failures=0

# check DESCRIPTION COMMAND...: one test, passing when COMMAND succeeds.
check() {
    local description=$1
    shift
    if "$@"; then
        results+=("ok $((${#results[@]} + 1)) - $description")
    else
        results+=("not ok $((${#results[@]} + 1)) - $description")
        failures=$((failures + 1))
    fi
}

# print_results: the plan, then every result collected.
print_results() {
    echo "1..${#results[@]}"
    printf '%s\n' "${results[@]}"
}

# require_demos PROGRAM...: bail out unless every demo is built.
require_demos() {
    local program
    for program in "$@"; do
        if [ ! -x "$demo_dir/$program" ]; then
            echo "Bail out! $demo_dir/$program is not built (run make first)"
            exit 1
        fi
    done
}

# make_scratch: a fresh directory in $scratch, removed when the script exits.
make_scratch() {
    scratch=$(mktemp -d) || { echo "Bail out! mktemp failed"; exit 1; }
    trap 'rm -rf "$scratch"' EXIT
}

# run PROGRAM ARGS...: run a demo; sets $out, $err (the texts) and $status.
run() {
    local program=$1
    shift
    "$demo_dir/$program" "$@" >"$scratch/out" 2>"$scratch/err"
    status=$?
    out=$(cat "$scratch/out")
    err=$(cat "$scratch/err")
}

# succeeded EXPECTED_OUTPUT: the last run exited 0, silent on stderr, and
# printed exactly EXPECTED_OUTPUT.
succeeded() {
    [ "$status" -eq 0 ] && [ -z "$err" ] && [ "$out" = "$1" ]
}

# refused PROGRAM ARGS...: exit status 2, nothing on stdout, one line on
# stderr naming the program.
refused() {
    run "$@"
    [ "$status" -eq 2 ] && [ -z "$out" ] && [ "$(wc -l <"$scratch/err")" -eq 1 ] &&
        [[ "$err" == "$1: "* ]]
}
