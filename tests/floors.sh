#!/bin/sh
# floors.sh - the modules of lib/ call each other one way: core, features,
# observers, fiber_run (see lib/README.md and tests/floors.py).  Speaks TAP.
if ! command -v python3 >/dev/null 2>&1; then
    echo "1..0 # SKIP python3 is not installed"
    exit 0
fi
exec python3 "${top_srcdir:-.}/tests/floors.py" "${top_srcdir:-.}"
