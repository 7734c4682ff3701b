#!/usr/bin/env bash
# fetch_https.sh - demo/fetch over HTTPS through libcurl and libfiber-hook,
# against tests/https_server.py started here with certificates made here:
# requests overlap, redirects are followed, an untrusted certificate, an
# unreachable host and an HTTP error are each one clear line, and any
# failure makes fetch exit 1.  (No machine running the tests reaches the
# internet; the default URLs are only checked to fail cleanly.)
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/integration_helpers.sh"

fetch="${top_builddir:-.}/demo/fetch"
[ -x "$fetch" ] || { echo "Bail out! $fetch is not built"; exit 1; }
"$fetch" --help | grep -q 'https://' ||
    skip_all "demo/fetch was built without libcurl (apt-get install libcurl4-openssl-dev, then configure)"
command -v openssl >/dev/null 2>&1 || skip_all "openssl is not installed"

make_certs "$scratch" || { echo "Bail out! openssl could not make the certificates"; exit 1; }
start_https "$scratch/server.pem" "$scratch/server.key" ||
    { echo "Bail out! the HTTPS server did not start"; exit 1; }
good=$https_port
start_https "$scratch/untrusted.pem" "$scratch/untrusted.key" ||
    { echo "Bail out! the second HTTPS server did not start"; exit 1; }
untrusted=$https_port

# is_between X LOW HIGH: LOW <= X < HIGH, as decimals.
is_between() {
    awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x >= lo && x < hi) }'
}

run_fetch() {
    CURL_CA_BUNDLE="$scratch/ca.pem" "$fetch" "$@" >"$scratch/out" 2>"$scratch/err"
    status=$?
}

base="https://127.0.0.1:$good"
run_fetch "$base/sleep?s=0.4" "https://localhost:$good/sleep?s=0.4" "$base/sleep?s=0.4" "$base/redirect"
check "four HTTPS fetches verified against the test's CA succeed" \
    eval '[ "$status" -eq 0 ] && [ ! -s "$scratch/err" ]'
check "each shows its status and the start of its body" \
    eval '[ "$(grep -c "^Content from https://.*/sleep?s=0.4 (200 OK, 17 bytes, [0-9.]* s): Slept 0.4 seconds$" "$scratch/out")" -eq 3 ]'
check "a redirect is followed" \
    grep -q "^Content from $base/redirect (200 OK, 237 bytes, [0-9.]* s): Hello over TLS from the test server. x*$" "$scratch/out"
total=$(sed -n 's/^Fetched 4 URLs in \([0-9.]*\) s (sum of individual times: .*$/\1/p' "$scratch/out")
check "the requests overlap: 0.4 s each, about 0.4 s in all (got ${total:-none})" \
    is_between "${total:-}" 0.4 1.0

run_fetch "https://127.0.0.1:$untrusted/"
check "an untrusted certificate is one line, and fetch exits 1" \
    eval '[ "$status" -eq 1 ] && grep -q "^Error from https://127.0.0.1:$untrusted/ ([0-9.]* s): bad certificate or TLS failure: SSL certificate problem: self-signed certificate$" "$scratch/out"'

"$fetch" "$base/" >"$scratch/out" 2>&1
status=$?
check "without the test's CA, the system store does not trust the server" \
    eval '[ "$status" -eq 1 ] && grep -q "^Error from $base/ ([0-9.]* s): bad certificate or TLS failure: SSL certificate problem: unable to get local issuer certificate$" "$scratch/out"'

closed=$(free_port)
run_fetch "$base/missing" "https://127.0.0.1:$closed/" "https://no-such-host.invalid/" "$base/sleep?s=0"
check "an HTTP error, a refused connection and an unknown host are one line each" \
    eval '[ "$status" -eq 1 ] &&
          grep -q "^Error from $base/missing ([0-9.]* s): HTTP 404 Not Found$" "$scratch/out" &&
          grep -q "^Error from https://127.0.0.1:$closed/ ([0-9.]* s): Connection refused$" "$scratch/out" &&
          grep -q "^Error from https://no-such-host.invalid/ ([0-9.]* s): unreachable host: Could not resolve host: no-such-host.invalid$" "$scratch/out" &&
          grep -q "^Content from $base/sleep?s=0 (200 OK" "$scratch/out"'

run_fetch
check "without URLs, the three default https URLs are fetched (here, unreachable)" \
    eval '[ "$status" -eq 1 ] && [ "$(grep -c "^\(Content\|Error\) from https://www\.\(example\.com\|python\.org\|github\.com\) " "$scratch/out")" -eq 3 ]'

print_results
[ "$failures" -eq 0 ]
