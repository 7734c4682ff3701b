#!/bin/sh
# process_argv.sh - fiber_process_spawn takes main's char **argv as execv
# does: process_argv, built with -Werror, passes its own argv on.  TAP.
set -u
prog=${top_builddir:-.}/tests/process_argv
echo "1..2"
if [ ! -x "$prog" ]; then
    echo "Bail out! $prog is not built (run make first)"
    exit 1
fi
"$prog" sh -c 'exit 7'
status=$?
if [ "$status" -eq 7 ]; then
    echo "ok 1 - the child named by main's argv ran with its arguments"
else
    echo "not ok 1 - the child named by main's argv ran with its arguments (status $status)"
fi
"$prog" sh -c 'test "$1" = "two words"' sh "two words"
status=$?
if [ "$status" -eq 0 ]; then
    echo "ok 2 - each argument reaches the child as it was given"
else
    echo "not ok 2 - each argument reaches the child as it was given (status $status)"
fi
