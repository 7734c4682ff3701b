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

# raw_status FILE: send FILE's bytes to httpd as they are and print the
# status line of the answer, without its CR (nothing if httpd closed the
# connection without one, or gave none within 5 seconds).
raw_status() {
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && cat "$2" >&3 &&
                       head -n 1 <&3' _ "$port" "$1" 2>/dev/null | tr -d '\r'
}

# head_of_size FILE SIZE: a GET / whose head, blank line included, is SIZE
# bytes long, padded with one long header.
head_of_size() {
    local start=$'GET / HTTP/1.1\r\nX-Pad: ' end=$'\r\n\r\n'
    { printf '%s' "$start"; head -c $(($2 - ${#start} - ${#end})) /dev/zero | tr '\0' a
      printf '%s' "$end"; } >"$1"
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

# Heads of up to 8 KiB are served; a longer one gets 431, and a head with a
# NUL byte in it 400, at once, whether or not its end has come.
head_of_size "$scratch/8192" 8192
check "a request head of 8192 bytes is served" \
    [ "$(raw_status "$scratch/8192")" = "HTTP/1.1 200 OK" ]
head_of_size "$scratch/8193" 8193
check "a request head of 8193 bytes gets 431" \
    [ "$(raw_status "$scratch/8193")" = "HTTP/1.1 431 Request Header Fields Too Large" ]
head -c 100000 /dev/zero | tr '\0' a >"$scratch/huge"
check "100000 bytes without an end of head get 431" \
    [ "$(raw_status "$scratch/huge")" = "HTTP/1.1 431 Request Header Fields Too Large" ]
printf 'GET /\0 HTTP/1.1\r\n\r\n' >"$scratch/nul"
check "a NUL byte in the request line gets 400" \
    [ "$(raw_status "$scratch/nul")" = "HTTP/1.1 400 Bad Request" ]
printf 'GET / HTTP/1.1\r\nX: a\0b' >"$scratch/nul-unended"
check "a NUL byte in a head not yet ended gets 400 at once" \
    [ "$(raw_status "$scratch/nul-unended")" = "HTTP/1.1 400 Bad Request" ]
fetch "$base/"
check "httpd still serves after those" \
    grep -q "^Content from $base/ (200 OK" "$scratch/fetch.out"

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
