/*
 * run.c - fiber_run: where the floors meet.  The core runs the loop
 * (loop.c); the observers' table of hooks is handed to it here, and the
 * report of calls made outside a fiber, so that nothing below the
 * observers names one of them.
 */
#include "config.h"

#include "debug.h"
#include "loop.h"
#include "observe.h"

/* A call made outside a fiber is reported in debug mode even where no
 * loop runs, before any has: the report is handed to the core when the
 * library is loaded. */
__attribute__((constructor)) static void hand_over_outside_report(void)
{
    fiber__outside_report = fiber__debug_outside;
}

FIBER_API int fiber_run(fiber_fn main, void *arg, const fiber_options_t *opts,
                        void **result, int *status)
{
    return fiber__loop_run(&fiber__observers, main, arg, opts, result, status);
}
