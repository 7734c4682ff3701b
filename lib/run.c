/*
 * run.c - fiber_run: where the floors meet.  The core runs the loop
 * (loop.c); the observers' table of hooks is handed to it here, so that
 * nothing below the observers names one of them.
 */
#include "config.h"

#include "loop.h"
#include "observe.h"

FIBER_API int fiber_run(fiber_fn main, void *arg, const fiber_options_t *opts,
                        void **result, int *status)
{
    return fiber__loop_run(&fiber__observers, main, arg, opts, result, status);
}
