#!/usr/bin/env bash
# hook_redis.sh - hiredis's synchronous API in fibers through libfiber-hook,
# against a redis-server started here on a free port of 127.0.0.1, in a
# scratch directory, and stopped on exit (tests/hook_redis.c says what is
# checked).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/integration_helpers.sh"

prog="${top_builddir:-.}/tests/hook_redis"
[ -x "$prog" ] || skip_all "built without hiredis (apt-get install libhiredis-dev, then configure)"
command -v redis-server >/dev/null 2>&1 || skip_all "redis-server is not installed"

start_redis() {
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$scratch" --daemonize no --maxclients 1000 \
        >"$scratch/redis.log" 2>&1 &
    server_pids+=($!)
    wait_for 10 redis-cli -h 127.0.0.1 -p "$port" ping
}
start_redis || start_redis || { cat "$scratch/redis.log" >&2; echo "Bail out! redis-server did not start"; exit 1; }

relay_tap "$prog" "$port"
