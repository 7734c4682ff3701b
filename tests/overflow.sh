#!/usr/bin/env bash
# overflow.sh - a fiber that overflows its stack is named before the
# process dies of SIGSEGV; other faults, and the program's own SIGSEGV
# handler, are left alone.  Reported as TAP.
#
# Run by 'make check' with top_builddir set; by hand: top_builddir=. tests/overflow.sh
set -u

prog=${top_builddir:-.}/tests/overflow_prog
echo "1..14"
if [ -n "${FIBER_TEST_UNDER_TOOL:-}" ]; then
    # Sanitizers and Valgrind catch the overflow their own way.
    for i in $(seq 14); do echo "ok $i # SKIP under a sanitizer or Valgrind"; done
    exit 0
fi
if [ ! -x "$prog" ]; then
    echo "Bail out! $prog is not built (run make first)"
    exit 1
fi

scratch=$(mktemp -d) || { echo "Bail out! mktemp failed"; exit 1; }
trap 'rm -rf "$scratch"' EXIT
# Dying of SIGSEGV on purpose: no core files.
ulimit -c 0

n=0
# check DESCRIPTION COMMAND...: one test, passing when COMMAND succeeds.
check() {
    local description=$1
    shift
    n=$((n + 1))
    if "$@"; then
        echo "ok $n - $description"
    else
        echo "not ok $n - $description"
        sed 's/^/# /' "$scratch/err" | head -20
    fi
}

# run MODE [ENV...]: run the program; sets $status and $err.
run() {
    local mode=$1
    shift
    # In a subshell that waits, so that its shell's "Segmentation fault"
    # goes nowhere.
    (env "$@" "$prog" "$mode" >/dev/null 2>"$scratch/err"; s=$?; exit $s) 2>/dev/null
    status=$?
    err=$(cat "$scratch/err")
}

sigsegv=$((128 + 11))
# Without libunwind, no backtrace and no names of static functions.
if grep -q '^#define HAVE_LIBUNWIND 1' "${top_builddir:-.}/config.h" 2>/dev/null; then
    unwind=yes
else
    unwind=no
fi

run overflow
check "an overflow names the fiber and its stack size" \
    grep -Eq "^libfiber: fiber 2 'deep'( \(deep\))? overflowed its 16384-byte stack$" "$scratch/err"
check "then the process dies of SIGSEGV (status $status)" [ "$status" -eq "$sigsegv" ]
if [ "$unwind" = yes ]; then
    check "with the fiber's backtrace, from the overflowing frame to its entry" \
        eval '[[ "$err" == *"#0 recurse+"* && "$err" == *" deep+"* && "$err" != *"fiber_entry"* ]]'
else
    check "without libunwind, a word that there is no backtrace" \
        eval '[[ "$err" == *"(no backtrace: libfiber was built without libunwind)"* ]]'
fi

run big-frames
check "a big frame that faults deep in the guard page is named too" \
    eval '[ "$status" -eq "$sigsegv" ] && [[ "$err" == *"fiber 2 '"'"'deep'"'"'"*"overflowed its 16384-byte stack"* ]]'

run compact
check "a compact fiber overflowing the stack it shares is named, with the shared stack's size" \
    eval '[ "$status" -eq "$sigsegv" ] && [[ "$err" == *"fiber 3 '"'"'deep'"'"'"*"overflowed its 16384-byte stack"* ]]'

run null
check "a fault outside any guard page is not called an overflow, and kills" \
    eval '[ "$status" -eq "$sigsegv" ] && [ -z "$err" ]'

run user-handler
check "the program's own SIGSEGV handler gets the faults that are not overflows" \
    eval '[ "$status" -eq 42 ] && [ "$err" = "the program'"'"'s own handler ran" ]'

run user-altstack
check "an overflow goes on to the program's handler when it has its own alternate stack" \
    eval '[ "$status" -eq 42 ] && [[ "$err" == *"overflowed its 16384-byte stack"*"own handler ran" ]]'

run user-overflow
check "an overflow is named, then the program's own handler runs" \
    eval '[ "$status" -eq 42 ] && [[ "$err" == *"overflowed its 16384-byte stack"*"own handler ran" ]]'

run user-siginfo
check "an SA_SIGINFO handler of the program's gets the overflow's own siginfo_t" \
    eval '[ "$status" -eq 42 ] && [[ "$err" == *"overflowed its 16384-byte stack"*"siginfo handler ran" ]]'

run user-returns
check "a handler that returns from an overflow runs once, then the process dies of SIGSEGV" \
    eval '[ "$status" -eq "$sigsegv" ] && [[ "$err" == *"overflowed its 16384-byte stack"*"handler returns" ]] &&
          [ "$(grep -c "handler returns" "$scratch/err")" -eq 1 ] &&
          [ "$(grep -c "overflowed its" "$scratch/err")" -eq 1 ]'

run user-ignored
check "an overflow with SIGSEGV ignored is named, and kills" \
    eval '[ "$status" -eq "$sigsegv" ] && [[ "$err" == *"overflowed its 16384-byte stack"* ]]'

run null FIBER_OVERFLOW_CHECK=1
check "without a handler of the program's, a fault that is no overflow kills as before" \
    eval '[ "$status" -eq "$sigsegv" ] && [ -z "$err" ]'

run overflow FIBER_OVERFLOW_CHECK=0
check "FIBER_OVERFLOW_CHECK=0: no handler, the kernel's SIGSEGV alone" \
    eval '[ "$status" -eq "$sigsegv" ] && [ -z "$err" ]'
