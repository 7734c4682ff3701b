#!/usr/bin/env bash
# echo_load.sh - load test of demo/echo_server, next to the same load on a
# Go echo server (tests/load/echo_server.go, GOMAXPROCS=1, when go is
# installed) and a Python asyncio one (tests/load/echo_server.py).  Not
# part of 'make check': run it with 'make load', or by hand from the build
# directory:
#
#   top_srcdir=/path/to/source tests/load/echo_load.sh [CONNECTIONS [LINES]]
#
# With SERVER_CPU and CLIENT_CPU set (as 'make bench-io' does), the servers
# and the client run pinned to those CPUs with taskset.
#
# tests/load/echo_load opens CONNECTIONS (default 10,000) connections, all
# open at once, and sends LINES (default 100) lines on each, one at a time,
# checking every echo byte for byte.  For each server this script checks
# that every line came back, that the server holds as many descriptors
# after the load as before (none leaked), and that its memory stays
# bounded: the peak RSS stays under 32 KiB per connection, and a second
# round of the same load does not raise it by more than 10% (libfiber
# only).  It prints lines per second and RSS for both servers and their
# ratios.  Every wait is bounded in time.
set -u

connections=${1:-10000}
lines=${2:-100}
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
client=$top_builddir/tests/load/echo_load
fiber_server=$top_builddir/demo/echo_server
python_server=$top_srcdir/tests/load/echo_server.py
go_source=$top_srcdir/tests/load/echo_server.go
server_pin=() client_pin=()
if [ -n "${SERVER_CPU:-}" ] && [ -n "${CLIENT_CPU:-}" ] && command -v taskset >/dev/null; then
    server_pin=(taskset -c "$SERVER_CPU") client_pin=(taskset -c "$CLIENT_CPU")
fi
client_timeout=300

for f in "$client" "$fiber_server"; do
    [ -x "$f" ] || { echo "echo_load.sh: $f is not built (run make)" >&2; exit 2; }
done

# Each side holds one descriptor per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((connections + 64)) ]; then
    echo "echo_load.sh: RLIMIT_NOFILE is $(ulimit -n), need $((connections + 64))" >&2
    exit 2
fi

scratch=$(mktemp -d) || exit 2
server_pid=
trap '[ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null; rm -rf "$scratch"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# start SERVER...: start a server on port 0 and wait for its address.
start() {
    : >"$scratch/server.out"
    "${server_pin[@]}" "$@" 0 >"$scratch/server.out" 2>&1 &
    server_pid=$!
    port=
    for ((i = 0; i < 200; i++)); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$scratch/server.out")
        [ -n "$port" ] && return 0
        sleep 0.05
    done
    fail "server did not start: $(cat "$scratch/server.out")"
    return 1
}

# stop: SIGTERM, and wait at most 10 seconds for a clean exit.
stop() {
    kill -TERM "$server_pid"
    for ((i = 0; i < 200; i++)); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        fail "server did not stop on SIGTERM"
        kill -KILL "$server_pid"
    fi
    wait "$server_pid"
    local status=$?
    [ "$status" -eq 0 ] || fail "server exited with status $status"
    server_pid=
}

# round NAME: one load round; sets $rate and $peak_kb.
round() {
    local name=$1 fds_before fds_after result
    fds_before=$(fd_count "$server_pid")
    if ! timeout $((client_timeout + 30)) "${client_pin[@]}" "$client" "$port" "$connections" "$lines" \
            "$client_timeout" >"$scratch/client.out" 2>&1; then
        fail "$name: not every line came back: $(tr '\n' ' ' <"$scratch/client.out")"
    fi
    result=$(cat "$scratch/client.out")
    rate=$(sed -n 's/^lines_per_s=//p' <<<"$result")
    exchange_s=$(sed -n 's/^exchange_s=//p' <<<"$result")
    connect_s=$(sed -n 's/^connect_s=//p' <<<"$result")
    bytes=$(sed -n 's/^bytes_received=//p' <<<"$result")
    # The server closes its side when it reads end of file: wait for it.
    for ((i = 0; i < 200; i++)); do
        fds_after=$(fd_count "$server_pid")
        [ "$fds_after" -le "$fds_before" ] && break
        sleep 0.05
    done
    [ "$fds_after" -eq "$fds_before" ] ||
        fail "$name: $fds_before descriptors before the load, $fds_after after"
    peak_kb=$(status_kb "$server_pid" VmHWM)
    rss_kb=$(status_kb "$server_pid" VmRSS)
    printf '%-22s %9s lines/s  exchange %7ss  connect %6ss  %s bytes back  peak RSS %6s KiB  RSS after %6s KiB  fds %s -> %s\n' \
        "$name" "$rate" "$exchange_s" "$connect_s" "$bytes" "$peak_kb" "$rss_kb" \
        "$fds_before" "$fds_after"
}

echo "load: $connections connections at once x $lines lines each, over loopback"

start "$fiber_server" || exit 1
start_kb=$(status_kb "$server_pid" VmRSS)
round "libfiber (round 1)"
fiber_rate=$rate fiber_peak=$peak_kb
round "libfiber (round 2)"
[ "$peak_kb" -le $((fiber_peak * 11 / 10)) ] ||
    fail "libfiber: peak RSS grew from $fiber_peak to $peak_kb KiB in round 2"
per_conn=$(( (fiber_peak - start_kb) * 1024 / connections ))
[ "$per_conn" -lt 32768 ] ||
    fail "libfiber: $per_conn bytes of RSS per connection"
stop

if command -v go >/dev/null; then
    # A cache of its own, so that the build needs neither $HOME nor modules.
    if GOCACHE=$scratch/go-cache GOPATH=$scratch/go-path GO111MODULE=off \
            go build -o "$scratch/echo_server_go" "$go_source" >"$scratch/go.err" 2>&1; then
        GOMAXPROCS=1 start "$scratch/echo_server_go" || exit 1
        round "go (GOMAXPROCS=1)"
        go_rate=$rate go_peak=$peak_kb
        stop
        awk -v fr="$fiber_rate" -v gr="$go_rate" -v fp="$fiber_peak" -v gp="$go_peak" 'BEGIN {
            if (gr > 0) printf "libfiber / go: %.2fx the lines per second\n", fr / gr
            if (fp > 0) printf "go / libfiber: %.2fx the peak RSS\n", gp / fp
        }'
    else
        echo "go: echo_server.go did not build: $(tail -n 1 "$scratch/go.err")"
    fi
else
    echo "go not found (Debian package golang-go): skipped"
fi

if command -v python3 >/dev/null; then
    start python3 "$python_server" || exit 1
    round "python asyncio"
    python_rate=$rate python_peak=$peak_kb
    stop
    awk -v fr="$fiber_rate" -v pr="$python_rate" -v fp="$fiber_peak" -v pp="$python_peak" 'BEGIN {
        if (pr > 0) printf "libfiber / asyncio: %.2fx the lines per second\n", fr / pr
        if (fp > 0) printf "asyncio / libfiber: %.2fx the peak RSS\n", pp / fp
    }'
else
    echo "python3 not found: no comparison"
fi

if [ "$failures" -eq 0 ]; then
    echo "PASS: every line came back, no descriptor leaked, memory bounded"
    exit 0
fi
echo "$failures failure(s)"
exit 1
