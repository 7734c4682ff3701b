/*
 * report.c - reports that name fibers and what they are waiting for.
 */
#include "config.h"

#include "report.h"

#include <inttypes.h>

#include "loop.h"

static void describe_wait(const struct fiber_task *f, FILE *out)
{
    fprintf(out, "  fiber %" PRIu64 " '%s': ", f->id, fiber__task_name(f));
    switch (f->state) {
    case FIBER__AWAITING:
        if (f->awaiting)
            fprintf(out, "awaiting fiber %" PRIu64 " '%s'%s\n", f->awaiting->id,
                    fiber__task_name(f->awaiting),
                    f->cancellable ? "" : " (reaping it after a cancel)");
        else
            fprintf(out, "awaiting\n");
        break;
    case FIBER__SLEEPING:
        fprintf(out, "sleeping for ever\n");
        break;
    case FIBER__WAITING:
        fprintf(out, "waiting on %s\n", f->wait_what ? f->wait_what : "?");
        break;
    default:
        fprintf(out, "%s\n", fiber__state_name(f->state));
        break;
    }
}

void fiber__report_deadlock(struct fiber_loop *loop, FILE *out,
                            const char *reason)
{
    const struct fiber_task *last = NULL;
    size_t n = 0;

    for (const struct fiber_task *f = loop->all_head; f; f = f->all_next) {
        last = f;
        if (f->state != FIBER__DONE)
            n++;
    }
    fprintf(out, "libfiber: deadlock: %s (%zu fiber%s):\n", reason, n,
            n == 1 ? "" : "s");
    /* The list is newest first; report in spawn order. */
    for (const struct fiber_task *f = last; f; f = f->all_prev)
        if (f->state != FIBER__DONE)
            describe_wait(f, out);
    fflush(out);
}
