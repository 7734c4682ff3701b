#!/usr/bin/env bash
# echo.sh - the echo_server and echo_client demos, as TAP: lines from the
# command line and from stdin come back exactly, fifty clients at once are
# all served, and the server stops cleanly on SIGTERM.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/server_helpers.sh"

check "echo_server says where it listens" start_server echo_server

"$demo_dir/echo_client" "$port" hello "two words" "" >"$scratch/args.out" 2>&1
printf 'hello\ntwo words\n\n' >"$scratch/args.expected"
check "lines given as arguments come back, an empty one too" \
    cmp -s "$scratch/args.out" "$scratch/args.expected"

out=$(printf 'one\ntwo\nthree' | "$demo_dir/echo_client" "127.0.0.1:$port" 2>&1)
check "lines read from stdin come back" [ "$out" = $'one\ntwo\nthree' ]

client_pids=()
for i in $(seq 1 50); do
    "$demo_dir/echo_client" "$port" "client $i line 1" "client $i line 2" \
        >"$scratch/client.$i" 2>&1 &
    client_pids+=($!)
done
wait "${client_pids[@]}"
bad=0
for i in $(seq 1 50); do
    [ "$(cat "$scratch/client.$i")" = "client $i line 1
client $i line 2" ] || bad=$((bad + 1))
done
check "fifty clients at once all get their lines back ($bad did not)" [ "$bad" -eq 0 ]

stop_server TERM
check "echo_server stops on SIGTERM (status $server_status)" [ "$server_status" -eq 0 ]
check "echo_server counts the connections it served" \
    grep -q '^echo_server: got SIGTERM, stopping after 52 connections$' "$server_out"

"$demo_dir/echo_client" "$port" hi >"$scratch/gone.out" 2>"$scratch/gone.err"
status=$?
check "echo_client to a stopped server exits 1" \
    eval '[ $status -eq 1 ] && grep -q "Connection refused" "$scratch/gone.err"'

"$demo_dir/echo_client" >"$scratch/bad.out" 2>"$scratch/bad.err"
status=$?
check "echo_client without an address exits 2" \
    eval '[ $status -eq 2 ] && [ "$(wc -l <"$scratch/bad.err")" -eq 1 ]'

finish
