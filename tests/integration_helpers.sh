# integration_helpers.sh - sourced by the tests that run real clients
# against real servers (redis-server, PostgreSQL, an HTTPS server): a
# scratch directory removed on exit with every server started, skipping
# when a package is missing (a failure under CI), free ports on 127.0.0.1.

. "${top_srcdir:-$(dirname "${BASH_SOURCE[0]}")/..}/tests/tap_helpers.sh"

scratch=$(mktemp -d) || { echo "Bail out! mktemp failed"; exit 1; }
chmod 755 "$scratch"
server_pids=()
cleanup_steps=()
cleanup() {
    local pid step
    for step in "${cleanup_steps[@]}"; do
        eval "$step" >/dev/null 2>&1
    done
    for pid in "${server_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    sleep 0.1
    for pid in "${server_pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

unset FIBER_CLOCK

# skip_all REASON: nothing to test here.  A developer's make check shows a
# SKIP; under CI (CI=true), where every package is installed, it fails.
skip_all() {
    if [ "${CI:-}" = true ]; then
        echo "Bail out! $1 (CI=true: the integration tests must run)"
        exit 1
    fi
    echo "1..0 # SKIP $1"
    exit 0
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS COMMAND...: retry COMMAND every 0.05 s until it
# succeeds; fails after SECONDS.
wait_for() {
    local tries=$(($1 * 20))
    shift
    while [ "$tries" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
        tries=$((tries - 1))
    done
    return 1
}

# relay_tap PROGRAM ARGS...: run a program that prints TAP itself, through
# libtool for an uninstalled one; the exit status is the program's.
relay_tap() {
    "${top_builddir:-.}/libtool" --mode=execute "$@"
}

# make_certs DIR: a CA (DIR/ca.pem) and a certificate it signed for
# 127.0.0.1 and localhost (DIR/server.pem, DIR/server.key); and a
# self-signed one nobody trusts (DIR/untrusted.pem, DIR/untrusted.key).
make_certs() {
    local d=$1
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=libfiber test CA" \
        -keyout "$d/ca.key" -out "$d/ca.pem" &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$d/server.key" -out "$d/server.csr" &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$d/ext.cnf" &&
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
        -CAcreateserial -days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$d/untrusted.key" -out "$d/untrusted.pem"
} >/dev/null 2>&1

# start_https CERT KEY: tests/https_server.py in the background; sets
# $https_port.  Fails if it does not listen within 10 seconds.
start_https() {
    local portfile="$scratch/https.$RANDOM.port"
    python3 "${top_srcdir:-.}/tests/https_server.py" "$1" "$2" "$portfile" \
        >"$scratch/https.log" 2>&1 &
    server_pids+=($!)
    wait_for 10 test -s "$portfile" || return 1
    https_port=$(cat "$portfile")
}

# start_redis: a redis-server on a free port of 127.0.0.1, its files in
# the scratch directory; sets $redis_port.  Tries twice, in case another
# program took the port meanwhile.
start_redis() {
    local try
    for try in 1 2; do
        redis_port=$(free_port)
        redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$scratch" --daemonize no --maxclients 1000 \
            >"$scratch/redis.log" 2>&1 &
        server_pids+=($!)
        wait_for 10 redis-cli -h 127.0.0.1 -p "$redis_port" ping && return 0
    done
    cat "$scratch/redis.log" >&2
    return 1
}
