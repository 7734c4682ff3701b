# server_helpers.sh - sourced by the network demos' TAP scripts: collect
# results, start a server demo and learn its port, stop it with a signal.
# Every wait is bounded, so a broken server fails a test instead of hanging.

. "${top_srcdir:-$(dirname "${BASH_SOURCE[0]}")/..}/tests/tap_helpers.sh"

demo_dir=${top_builddir:-.}/demo
scratch=$(mktemp -d) || { echo "Bail out! mktemp failed"; exit 1; }
server_pids=()
cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$scratch"
}
trap cleanup EXIT

unset FIBER_CLOCK

# finish: print the plan and the results; the exit status says if all passed.
finish() {
    print_results
    [ "$failures" -eq 0 ]
}

# start_server NAME [ARG...]: run demo NAME on port 0 (then ARGs) in the
# background; sets $server_pid, $port and $server_out (its stdout file).
# Fails if it does not say where it listens within 10 seconds.
start_server() {
    local name=$1 i
    shift
    server_out="$scratch/$name.$RANDOM.out"
    : >"$server_out"   # before the server does, so that sed finds it
    "$demo_dir/$name" 0 "$@" >"$server_out" 2>"$server_out.err" &
    server_pid=$!
    server_pids+=("$server_pid")
    port=
    for ((i = 0; i < 200; i++)); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$server_out")
        [ -n "$port" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# stop_server SIGNAL: send SIGNAL to the server and wait (at most 5
# seconds) for it to exit; sets $server_status (124 if it did not).
stop_server() {
    local i
    kill -"$1" "$server_pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid"
            server_status=$?
            return 0
        fi
        sleep 0.05
    done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid"
    server_status=124
}
