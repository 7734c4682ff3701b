#!/usr/bin/env bash
# redis_gather.sh - demo/redis_gather against a redis-server started here:
# ten BLPOPs of 0.1 to 0.5 s each, gathered in order, take about the
# longest one, not the sum.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/integration_helpers.sh"

prog="${top_builddir:-.}/demo/redis_gather"
[ -x "$prog" ] || skip_all "built without hiredis (apt-get install libhiredis-dev, then configure)"
command -v redis-server >/dev/null 2>&1 || skip_all "redis-server is not installed"
start_redis || { echo "Bail out! redis-server did not start"; exit 1; }

"$prog" --seed 7 "127.0.0.1:$redis_port" 10 >"$scratch/out" 2>"$scratch/err"
status=$?
check "ten commands succeed (status $status)" eval '[ "$status" -eq 0 ] && [ ! -s "$scratch/err" ]'
check "the replies come in the order given" \
    eval '[ "$(sed -n "s/^Reply \([0-9]*\): BLPOP redis_gather:\1 0\.[0-9]* ([0-9.]* s): (nil)$/\1/p" "$scratch/out" | tr "\n" " ")" = "0 1 2 3 4 5 6 7 8 9 " ]'
read -r total sum <<<"$(sed -n 's/^Gathered 10 replies in \([0-9.]*\) s (sum of individual times: \([0-9.]*\) s)$/\1 \2/p' "$scratch/out")"
check "they overlap: ${total:-none} s in all, ${sum:-none} s summed" \
    awk -v t="${total:-}" -v s="${sum:-}" 'BEGIN { exit !(t != "" && t < 0.9 && s > 2 * t) }'
"$prog" "127.0.0.1:$(free_port)" 2 >"$scratch/out" 2>&1
status=$?
check "a server that is not there is an error line each, and exit 1" \
    eval '[ "$status" -eq 1 ] && [ "$(grep -c "^Error from [01]: .*Connection refused" "$scratch/out")" -eq 2 ]'
print_results
[ "$failures" -eq 0 ]
