#!/usr/bin/env bash
# httpd_keepalive.sh - httpd's connections, as TAP: keep-alive, pipelined
# requests answered in order, HTTP/1.0 and Connection: close, the idle
# timeout, a client trickling a head cut off, a client closing between
# requests or resetting before its answer, 1,000 idle connections not
# delaying a request, a megabyte of headers, SIGTERM with 2,000
# connections open, no accept spin at 'ulimit -n 64', no descriptor or
# memory growth over 100,000 keep-alive requests, and --defer-accept.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/server_helpers.sh"

client=${top_builddir:-.}/tests/http_client
[ -x "$client" ] || { echo "Bail out! $client is not built"; exit 1; }

fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# is_between X LOW HIGH: LOW <= X < HIGH, as decimals.
is_between() {
    awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x >= lo && x < hi) }'
}

# wait_fds PID N: wait (at most 5 s) until PID holds at most N descriptors.
wait_fds() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(fd_count "$1")" -le "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# exchange REQUEST: send REQUEST's bytes (printf %b escapes) in one write
# on one connection, then read until the server closes it (at most 3 s);
# the answer, CRs removed.
exchange() {
    printf '%b' "$1" >"$scratch/request"
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && cat "$2" >&3 &&
                       cat <&3' _ "$port" "$scratch/request" 2>/dev/null | tr -d '\r'
}

require_demos httpd
# A timeout of 1 s keeps the timeout tests short.
check "httpd with a 1 s timeout says where it listens" start_server httpd 1
base_fds=$(fd_count "$server_pid")

out=$("$client" load "$port" 1 5 1 2>&1)
check "five requests in turn on one connection are answered ($out)" \
    [ "$out" = "responses=5" ]
out=$("$client" load "$port" 3 2 50 2>&1)
check "fifty pipelined requests, twice, on three connections, in order ($out)" \
    [ "$out" = "responses=300" ]

answer=$(exchange 'GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /missing HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n')
check "Connection: close ends the connection after its answer, in order" \
    eval '[ "$(grep -c "^HTTP/1.1" <<<"$answer")" -eq 2 ] &&
          [ "$(grep "^HTTP/1.1" <<<"$answer" | tr "\n" " ")" = "HTTP/1.1 200 OK HTTP/1.1 404 Not Found " ] &&
          [ "$(grep -c "^Connection: close$" <<<"$answer")" -eq 1 ]'

answer=$(exchange 'GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n')
check "HTTP/1.0 gets one answer with Connection: close" \
    eval '[ "$(grep -c "^HTTP/1.1 200 OK$" <<<"$answer")" -eq 1 ] &&
          grep -q "^Connection: close$" <<<"$answer"'
start=$(date +%s.%N)
answer=$(exchange 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nHEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
check "HTTP/1.0 with keep-alive is kept, then closed by the 1 s timeout (${elapsed} s)" \
    eval '[ "$(grep -c "^HTTP/1.1 200 OK$" <<<"$answer")" -eq 2 ] &&
          [ "$(grep -c "^Connection: keep-alive$" <<<"$answer")" -eq 2 ] &&
          is_between "$elapsed" 0.8 2.9'

start=$(date +%s.%N)
answer=$(exchange '')
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
check "a connection that sends nothing is closed after about 1 s (${elapsed} s)" \
    eval '[ -z "$answer" ] && is_between "$elapsed" 0.8 2.9'

out=$("$client" trickle "$port" 100 5 2>&1)
check "a client trickling a head byte by byte is cut off after about 1 s ($out)" \
    eval 'is_between "${out#closed_after=}" 0.8 2.5'

answer=$(exchange 'POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n')
check "a request with a body gets 405 and the connection ends" \
    eval '[ "$(grep -c "^HTTP/1.1" <<<"$answer")" -eq 1 ] &&
          grep -q "^HTTP/1.1 405 Method Not Allowed$" <<<"$answer"'
answer=$(exchange 'GET / HTTP/1.1\r\n\r\nNONSENSE\r\n\r\nGET / HTTP/1.1\r\n\r\n')
check "a bad request after a good one gets 400 after the first answer, then the end" \
    eval '[ "$(grep "^HTTP/1.1" <<<"$answer" | tr "\n" " ")" = "HTTP/1.1 200 OK HTTP/1.1 400 Bad Request " ]'
answer=$(exchange 'GET / HTTP/1.1\r\n\r\nGET /\0 HTTP/1.1\r\n\r\n')
check "a NUL byte in a pipelined request gets 400 after the first answer" \
    eval '[ "$(grep -a "^HTTP/1.1" <<<"$answer" | tr "\n" " ")" = "HTTP/1.1 200 OK HTTP/1.1 400 Bad Request " ]'
{ printf 'GET / HTTP/1.1\r\n'; head -c 1048576 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } \
    >"$scratch/mega"
status=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && cat "$2" >&3 2>/dev/null;
                            head -n 1 <&3' _ "$port" "$scratch/mega" 2>/dev/null | tr -d '\r')
check "a megabyte of headers gets 431 ($status)" \
    [ "$status" = "HTTP/1.1 431 Request Header Fields Too Large" ]

for ((i = 0; i < 20; i++)); do
    "$client" reset "$port" || break
done
for ((i = 0; i < 20; i++)); do
    exchange 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n' >/dev/null
done
check "clients resetting before their answer or closing between requests leave no descriptor behind" \
    wait_fds "$server_pid" "$base_fds"
out=$("$client" load "$port" 1 1 1 2>&1)
check "httpd still serves after those ($out)" [ "$out" = "responses=1" ]
stop_server TERM
check "httpd stops on SIGTERM (status $server_status)" [ "$server_status" -eq 0 ]

# Many idle connections: a request beside them is answered at once, and
# the timeout closes them all.  The server has room for them.
ulimit -S -n 4096 2>/dev/null
check "httpd with a 2 s timeout starts" start_server httpd 2
base_fds=$(fd_count "$server_pid")
# A holder of N idle connections, which waits for its stdin to end: fed by
# a FIFO rather than a coproc, whose variables bash unsets as soon as the
# process exits.  start_holder N sets held to its first line ("open=N").
start_holder() {
    rm -f "$scratch/hold_in" "$scratch/hold_out"
    mkfifo "$scratch/hold_in"
    "$client" hold "$port" "$1" <"$scratch/hold_in" >"$scratch/hold_out" 2>&1 &
    hold_pid=$!
    exec {hold_in}>"$scratch/hold_in"
    for ((i = 0; i < 100; i++)); do
        [ -s "$scratch/hold_out" ] && break
        sleep 0.1
    done
    held=$(head -n 1 "$scratch/hold_out")
}
# Let the holder go; sets closed to its last line ("closed_by_server=N").
end_holder() {
    exec {hold_in}>&-
    wait "$hold_pid" 2>/dev/null
    closed=$(sed -n 2p "$scratch/hold_out")
}
start_holder 1000
start=$(date +%s.%N)
out=$("$client" load "$port" 1 1 1 2>&1)
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
check "beside 1000 idle connections ($held) a request is answered at once (${elapsed} s)" \
    eval '[ "$out" = "responses=1" ] && is_between "$elapsed" 0 0.5'
sleep 2.5
end_holder
check "the timeout closed the 1000 idle connections ($closed)" \
    eval '[ "$closed" = "closed_by_server=1000" ] && wait_fds "$server_pid" "$base_fds"'

# 100,000 keep-alive requests: no descriptor and no memory kept.
"$client" load "$port" 10 200 5 >/dev/null 2>&1   # warm up the allocator
wait_fds "$server_pid" "$base_fds"
fds_before=$(fd_count "$server_pid") rss_before=$(rss_kb "$server_pid")
out=$("$client" load "$port" 10 2000 5 2>&1)
wait_fds "$server_pid" "$fds_before"
fds_after=$(fd_count "$server_pid") rss_after=$(rss_kb "$server_pid")
check "100,000 keep-alive requests on 10 connections are all answered ($out)" \
    [ "$out" = "responses=100000" ]
check "no descriptor kept after them ($fds_before before, $fds_after after)" \
    [ "$fds_after" -eq "$fds_before" ]
# Sanitizers keep freed memory in quarantine: the RSS says nothing there.
if [ -n "${FIBER_TEST_UNDER_TOOL:-}" ]; then
    results+=("ok $((${#results[@]} + 1)) - # SKIP RSS under a sanitizer")
else
    check "RSS grew by less than 4 MiB over them ($rss_before -> $rss_after KiB)" \
        [ $((rss_after - rss_before)) -lt 4096 ]
fi

# SIGTERM with 2000 connections open stops the server at once.
start_holder 2000
stop_server TERM
check "httpd stops on SIGTERM with 2000 connections open ($held, status $server_status)" \
    [ "$server_status" -eq 0 ]
end_holder

# Out of descriptors: the listener stays readable, but httpd must not spin.
ulimit -S -n 64
check "httpd starts with 'ulimit -n 64'" start_server httpd 1
ulimit -S -n 4096 2>/dev/null
start_holder 100
sleep 0.2
ticks_before=$(cpu_ticks "$server_pid")
sleep 1
ticks_after=$(cpu_ticks "$server_pid")
check "with 100 clients and 64 descriptors httpd does not spin ($((ticks_after - ticks_before)) ticks in 1 s)" \
    [ $((ticks_after - ticks_before)) -lt 30 ]
end_holder
sleep 1.5
out=$("$client" load "$port" 1 1 1 2>&1)
check "it serves again once they are gone ($out)" [ "$out" = "responses=1" ]
stop_server TERM
check "and stops on SIGTERM (status $server_status)" [ "$server_status" -eq 0 ]

# --defer-accept: the kernel keeps a silent client; one that speaks is
# served at once, in keep-alive or not.
check "httpd --defer-accept starts" start_server httpd --defer-accept 5
base_fds=$(fd_count "$server_pid")
start_holder 20
sleep 0.3
held_fds=$(fd_count "$server_pid")
check "20 silent connections ($held) are not handed over ($base_fds descriptors before, $held_fds with them)" \
    [ "$held_fds" -eq "$base_fds" ]
out=$("$client" load "$port" 2 5 1 2>&1)
check "beside them, clients that speak are answered ($out)" [ "$out" = "responses=10" ]
answer=$(exchange 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n')
check "and Connection: close is answered, then closed" \
    eval '[ "$(grep -c "^HTTP/1.1 200 OK$" <<<"$answer")" -eq 1 ]'
end_holder
stop_server TERM
check "httpd --defer-accept stops on SIGTERM (status $server_status)" [ "$server_status" -eq 0 ]

finish
