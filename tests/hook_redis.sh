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

start_redis || { echo "Bail out! redis-server did not start"; exit 1; }

relay_tap "$prog" "$redis_port"
