#!/usr/bin/env bash
# redis_bench.sh - GET through hiredis's synchronous API in 50 fibers
# (tests/bench/redis_bench, over libfiber-hook) next to redis-benchmark -t
# get -c 50 -P 1 (redis's own event loop), against one redis-server
# started here on a free port, in the same run.  Prints both and the
# ratio (0.7 or more expected).  Run by 'make bench' and 'make bench-hook'.
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_builddir=${top_builddir:-.}
prog="$top_builddir/tests/bench/redis_bench"
for tool in redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null 2>&1 || { echo "redis_bench: $tool is not installed, not run"; exit 0; }
done
[ -x "$prog" ] || { echo "redis_bench: $prog is not built, not run"; exit 0; }

scratch=$(mktemp -d) || exit 1
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$scratch"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$scratch" \
    >"$scratch/redis.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
done

requests=${REDIS_BENCH_REQUESTS:-200000}
# Alternate the two, three times each, and keep each one's best.
best_peer=0 best_fiber=0
for _ in 1 2 3; do
    peer=$(redis-benchmark -h 127.0.0.1 -p "$port" -t get -c 50 -P 1 -n "$requests" -q 2>/dev/null |
        tr '\r' '\n' | sed -n 's/^GET: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1)
    fiber=$("$top_builddir/libtool" --mode=execute "$prog" "$port" "$requests" 50 |
        sed -n 's/^GET: \([0-9.]*\) requests per second$/\1/p')
    best_peer=$(awk -v a="$best_peer" -v b="${peer:-0}" 'BEGIN { print (b > a ? b : a) }')
    best_fiber=$(awk -v a="$best_fiber" -v b="${fiber:-0}" 'BEGIN { print (b > a ? b : a) }')
done
echo "redis_bench: GET, 50 clients, no pipelining, $requests requests (best of 3)"
printf '  redis-benchmark (event loop)          %10.0f requests/s\n' "$best_peer"
printf '  hiredis sync API in 50 fibers (hooks) %10.0f requests/s\n' "$best_fiber"
awk -v f="$best_fiber" -v p="$best_peer" \
    'BEGIN { if (p > 0) printf "  ratio                                 %10.2f (0.7 or more expected)\n", f / p }'
