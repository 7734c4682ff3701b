#!/usr/bin/env bash
# hook_curl.sh - libcurl's easy interface in fibers through libfiber-hook,
# against an HTTPS server (tests/https_server.py) started here on
# 127.0.0.1 with a CA and a certificate made here, stopped on exit
# (tests/hook_curl.c says what is checked).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/integration_helpers.sh"

prog="${top_builddir:-.}/tests/hook_curl"
[ -x "$prog" ] || skip_all "built without libcurl (apt-get install libcurl4-openssl-dev, then configure)"
command -v openssl >/dev/null 2>&1 || skip_all "openssl is not installed"
command -v python3 >/dev/null 2>&1 || skip_all "python3 is not installed"

make_certs "$scratch" || { echo "Bail out! openssl could not make the certificates"; exit 1; }
start_https "$scratch/server.pem" "$scratch/server.key" ||
    { cat "$scratch/https.log" >&2; echo "Bail out! the HTTPS server did not start"; exit 1; }

relay_tap "$prog" "$https_port" "$scratch/ca.pem"
