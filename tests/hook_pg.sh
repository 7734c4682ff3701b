#!/usr/bin/env bash
# hook_pg.sh - libpq's synchronous API in fibers through libfiber-hook,
# against a PostgreSQL cluster made here with initdb, listening on a Unix
# socket in the scratch directory only, and stopped on exit
# (tests/hook_pg.c says what is checked).  PostgreSQL refuses to run as
# root, so as root (CI) the cluster belongs to the user nobody.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/tests/integration_helpers.sh"

prog="${top_builddir:-.}/tests/hook_pg"
[ -x "$prog" ] || skip_all "built without libpq (apt-get install libpq-dev, then configure)"
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || skip_all "PostgreSQL's server is not installed (apt-get install postgresql)"

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null 2>&1 || skip_all "setpriv is needed to run PostgreSQL as nobody"
    uid=$(id -u nobody) gid=$(id -g nobody)
    as_owner=(setpriv --reuid="$uid" --regid="$gid" --clear-groups env HOME="$scratch")
fi
mkdir -p "$scratch/pg" "$scratch/sock"
[ "${#as_owner[@]}" -gt 0 ] && chown nobody "$scratch/pg" "$scratch/sock"

"${as_owner[@]}" "$bindir/initdb" -D "$scratch/pg/data" -U fibertest --auth=trust \
    --no-sync >"$scratch/initdb.log" 2>&1 ||
    { cat "$scratch/initdb.log" >&2; echo "Bail out! initdb failed"; exit 1; }
port=$(free_port)
"${as_owner[@]}" "$bindir/postgres" -D "$scratch/pg/data" -p "$port" \
    -c listen_addresses='' -c unix_socket_directories="$scratch/sock" \
    -c fsync=off -c max_connections=60 >"$scratch/postgres.log" 2>&1 &
server_pids+=($!)
conninfo="host=$scratch/sock port=$port user=fibertest dbname=postgres"
wait_for 30 "$bindir/pg_isready" -q -h "$scratch/sock" -p "$port" ||
    { cat "$scratch/postgres.log" >&2; echo "Bail out! postgres did not start"; exit 1; }

relay_tap "$prog" "$conninfo"
