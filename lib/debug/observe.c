/*
 * observe.c - the observers' table of hooks (loop.h), through which the
 * core reaches debug mode, dumps, traces and deadlock reports, and the
 * observation hooks that feed debug mode's checks and the trace.  The
 * scheduler calls those only while loop->observed is set, which debug.c
 * does when either is on.
 */
#include "config.h"

#include "observe.h"

#include "debug.h"
#include "dump.h"
#include "loop.h"
#include "trace.h"

const struct fiber__hooks fiber__observers = {
    .attach = fiber__debug_attach,
    .detach = fiber__debug_detach,
    .round = fiber__debug_round,
    .switched = fiber__observe_switch,
    .spawned = fiber__observe_spawn,
    .exited = fiber__observe_exit,
    .quarantine = fiber__debug_quarantine,
    .unquarantine = fiber__debug_unquarantine,
    .bad_handle = fiber__debug_bad_handle,
    .deadlock = fiber__report_deadlock,
};

void fiber__observe_switch(struct fiber_loop *loop, struct fiber_task *from,
                           struct fiber_task *to)
{
    struct fiber__debug *d = loop->debug;

    if (d->checks)
        fiber__debug_switch(loop, from);
    if (d->log) {
        int64_t now = fiber__clock_now(&loop->clock);
        if (from)
            fiber__trace_stop(d->log, now, from);
        if (to)
            fiber__trace_run(d->log, now, to);
    }
}

void fiber__observe_spawn(struct fiber_loop *loop, struct fiber_task *parent,
                          struct fiber_task *child)
{
    struct fiber__debug *d = loop->debug;

    if (d->checks) {
        child->debug_magic = FIBER__MAGIC_LIVE;
        if (fiber__stack_paint(loop, child))
            child->debug_flags |= FIBER__FLAG_PAINTED;
    }
    if (d->log)
        fiber__trace_spawn(d->log, fiber__clock_now(&loop->clock), parent, child);
}

void fiber__observe_exit(struct fiber_loop *loop, struct fiber_task *f)
{
    struct fiber__debug *d = loop->debug;
    struct fiber_task *t;

    if (d->log && f->waiter)
        fiber__trace_wake(d->log, fiber__clock_now(&loop->clock), f, f->waiter);
    /* Whatever still runs when main returns is cancelled by the loop;
     * unless someone awaits or detaches it, that is worth a word. */
    if (d->checks && f->is_main)
        fiber__foreach_task(t, loop)
            if (t != f && t->state != FIBER__DONE)
                t->debug_flags |= FIBER__FLAG_PENDING_AT_EXIT;
}
