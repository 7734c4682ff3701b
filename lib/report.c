/*
 * report.c - reports that name fibers and what they are waiting for.
 */
#include "config.h"

#include "report.h"

#include "dump.h"
#include "loop.h"

void fiber__report_deadlock(struct fiber_loop *loop, FILE *out,
                            const char *reason)
{
    size_t n = 0;

    for (const struct fiber_task *f = loop->all_head; f; f = f->all_next)
        if (f->state != FIBER__DONE)
            n++;
    fprintf(out, "libfiber: deadlock: %s (%zu fiber%s):\n", reason, n,
            n == 1 ? "" : "s");
    /* Each blocked fiber with its state, stack use and backtrace, so that
     * the report shows where every one of them is stuck. */
    fiber__dump_fibers(loop, out, "  ");
    fflush(out);
}
