# integration_helpers.sh - sourced by the tests that run real clients
# against real servers (redis-server, PostgreSQL, an HTTPS server): a
# scratch directory removed on exit with every server started, skipping
# when a package is missing (a failure under CI), free ports on 127.0.0.1.

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
