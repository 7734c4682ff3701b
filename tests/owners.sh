#!/bin/sh
# owners.sh - each field of struct fiber_task is written by the module
# that owns its group (see lib/core/state.h and tests/owners.py).  Speaks TAP.
if ! command -v python3 >/dev/null 2>&1; then
    echo "1..0 # SKIP python3 is not installed"
    exit 0
fi
exec python3 "${top_srcdir:-.}/tests/owners.py" "${top_srcdir:-.}"
