#!/bin/sh
# setup.sh - from a fresh clone: install dependencies, build everything and
# run the main demo.  Run it again at any time; it only redoes what changed.
set -eu
cd "$(dirname "$0")"

# The clients libfiber-hook is tested with (hiredis, libpq, libcurl) and
# their servers are optional: without them those tests are skipped and
# demo/fetch fetches plain http:// only.  FIBER_SETUP_MINIMAL=1 leaves them.
if [ "${FIBER_SETUP_MINIMAL:-0}" = 1 ]; then
    sh build-aux/install-deps.sh
else
    sh build-aux/install-deps.sh --integrations
fi
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j"$(nproc)"

echo
echo "--- demo/4-tasks: task_wait_n(5, 6), delays in the order they finished ---"
./demo/4-tasks
