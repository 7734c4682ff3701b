#!/usr/bin/env bash
# fetch_httpd.sh - the fetch demo against the local httpd demo, as TAP:
# requests overlap (four half-second requests take about half a second,
# not two), pages, statuses and errors are reported, and httpd stops
# cleanly on SIGTERM and SIGINT, even with a request in flight.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/server_helpers.sh"

# totals: the total and the sum printed by the last fetch, in seconds.
totals() {
    sed -n 's/^Fetched [0-9]* URLs* in \([0-9.]*\) s (sum of individual times: \([0-9.]*\) s)$/\1 \2/p' \
        "$scratch/fetch.out"
}

# is_between X LOW HIGH: LOW <= X < HIGH, as decimals.
is_between() {
    awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x >= lo && x < hi) }'
}

fetch() {
    "$demo_dir/fetch" "$@" >"$scratch/fetch.out" 2>"$scratch/fetch.err"
    fetch_status=$?
}

check "httpd says where it listens" start_server httpd
base="http://127.0.0.1:$port"

fetch "$base/sleep?s=0.5" "$base/sleep?s=0.5" "http://localhost:$port/sleep?s=0.5" \
      "$base/sleep?s=0.5"
check "fetch of four /sleep?s=0.5 succeeds" [ "$fetch_status" -eq 0 ]
check "each response is 200 with its body" \
    [ "$(grep -c '^Content from http://.*/sleep?s=0.5 (200 OK, 18 bytes, [0-9.]* s): Slept 0.5 seconds $' "$scratch/fetch.out")" -eq 4 ]
read -r total sum <<<"$(totals)"
check "the four requests overlap: total about 0.5 s (got ${total:-none})" \
    is_between "${total:-}" 0.5 1.2
check "the sum of individual times is about 2 s (got ${sum:-none})" \
    is_between "${sum:-}" 2.0 4.0

fetch "$base/" "$base/missing"
check "the page is shown, a 404 is an error in one line, and fetch exits 1" \
    eval '[ "$fetch_status" -eq 1 ] &&
          grep -q "^Content from $base/ (200 OK, [0-9]* bytes, [0-9.]* s): Hello from libfiber.s httpd. Each" "$scratch/fetch.out" &&
          grep -q "^Error from $base/missing ([0-9.]* s): HTTP 404 Not Found$" "$scratch/fetch.out"'

# A request still sleeping when the signal comes must not hold httpd up.
"$demo_dir/fetch" "$base/sleep?s=30" >"$scratch/slow.out" 2>&1 &
slow_pid=$!
sleep 0.3
stop_server TERM
check "httpd stops on SIGTERM with a request in flight (status $server_status)" \
    [ "$server_status" -eq 0 ]
check "httpd says why it stopped" \
    grep -q '^httpd: got SIGTERM, stopping after [0-9]* connections*$' "$server_out"
wait "$slow_pid"
check "the request in flight sees the server go" grep -q '^Error from' "$scratch/slow.out"

fetch "$base/"
check "fetch of a closed port exits 1 and says why" \
    eval '[ "$fetch_status" -eq 1 ] && grep -q "^Error from $base/ ([0-9.]* s): Connection refused$" "$scratch/fetch.out"'

fetch "ftp://example.com/"
check "a URL fetch cannot use exits 2 with one line on stderr" \
    eval '[ "$fetch_status" -eq 2 ] && [ ! -s "$scratch/fetch.out" ] &&
          [ "$(wc -l <"$scratch/fetch.err")" -eq 1 ]'

check "a second httpd starts" start_server httpd
stop_server INT
check "httpd stops on SIGINT (status $server_status)" \
    eval '[ "$server_status" -eq 0 ] && grep -q "^httpd: got SIGINT" "$server_out"'

"$demo_dir/httpd" 70000 >"$scratch/bad.out" 2>"$scratch/bad.err"
status=$?
check "httpd rejects a bad port with status 2" \
    eval '[ $status -eq 2 ] && [ ! -s "$scratch/bad.out" ] && [ "$(wc -l <"$scratch/bad.err")" -eq 1 ]'

finish
