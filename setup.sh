#!/bin/sh
# setup.sh - from a fresh clone: install dependencies, build everything and
# run the main demo.  Run it again at any time; it only redoes what changed.
set -eu
cd "$(dirname "$0")"

sh build-aux/install-deps.sh
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j"$(nproc)"

echo
echo "--- demo/4-tasks: task_wait_n(5, 6), delays in the order they finished ---"
./demo/4-tasks
