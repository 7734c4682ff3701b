/*
 * collector.h - what task groups and waitsets share: a set of tasks owned
 * on behalf of one fiber, told when each member finishes, and the owner's
 * waits for them.
 *
 * Members are linked through their own control blocks (fiber_task
 * .collector, .coll), so adding a task never allocates.
 * A member's handle belongs to the collector: await, detach and gather
 * refuse it with -EBUSY.  A collector with a close operation is also
 * linked to its owner, which closes it if it returns without doing so:
 * no fiber ends with tasks of its own still running.
 */
#ifndef FIBER_COLLECTOR_H
#define FIBER_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "waitq.h"

struct fiber__collector;

struct fiber__collector_ops {
    /* Called when member t has finished (state DONE, status set), after
     * nlive has been decremented, on the finishing fiber's stack. */
    void (*task_done)(struct fiber_loop *loop, struct fiber__collector *c,
                      struct fiber_task *t);
    /* Close and free the collector for its owner, which is returning
     * without having done so; NULL for a collector the owner never keeps
     * (a wait on the stack). */
    void (*close)(struct fiber__collector *c);
    /* What the owner waits on, as deadlock reports name it. */
    const char *what;
};

struct fiber__collector {
    const struct fiber__collector_ops *ops;
    struct fiber_loop *loop;
    struct fiber_task *owner;        /* the fiber that created it */
    struct fiber__link owned_link;   /* in owner->owned */
    struct fiber__list members;      /* by fiber_task.coll, in the order added */
    size_t nmembers;
    size_t nlive;                    /* members not finished */
    struct fiber__waitq waiters;     /* the owner, waiting for members */
};

/* The member that link, a fiber_task.coll, belongs to; NULL for NULL. */
static inline struct fiber_task *fiber__collector_member(struct fiber__link *link)
{
    return fiber__list_entry(link, struct fiber_task, coll);
}

/* The first member of c, or the one after member t; NULL if none. */
static inline struct fiber_task *fiber__collector_first(const struct fiber__collector *c)
{
    return fiber__collector_member(fiber__list_first(&c->members));
}

static inline struct fiber_task *fiber__collector_next(const struct fiber_task *t)
{
    return fiber__collector_member(t->coll.next);
}

/* Start an empty collector owned by the running fiber owner.  The loop
 * then tells the collectors when a member finishes or an owner returns
 * (struct fiber__collector_hooks, loop.h). */
void fiber__collector_init(struct fiber__collector *c,
                           const struct fiber__collector_ops *ops,
                           struct fiber_task *owner);

/* Make t a member (t belongs to no collector yet). */
void fiber__collector_add(struct fiber__collector *c, struct fiber_task *t);

/* Give member t back: it belongs to no collector any more. */
void fiber__collector_remove(struct fiber__collector *c, struct fiber_task *t);

/* Cancel every member that has not finished. */
void fiber__collector_cancel_live(struct fiber__collector *c);

/*
 * Wait, as the owner, until ready(c) holds or deadline (loop clock; and
 * the owner's scopes) passes.  Returns 0 when ready, -ETIMEDOUT, or the
 * error of the owner's cancellation or expired scope.  A member finishing
 * at the very instant of the timeout still counts: the completion wins,
 * as with fiber_wait_for.  Must be called after fiber__enter_blocking.
 */
int fiber__collector_wait_until(struct fiber__collector *c, int64_t deadline,
                                bool (*ready)(const struct fiber__collector *c));

/* Wait, as the owner, until every member has finished; no cancel ends
 * this wait (the members have been cancelled, or are meant to finish). */
void fiber__collector_reap(struct fiber__collector *c);

/* Free every member (all finished) and unlink c from its owner; the
 * caller then frees the memory that holds c.  Between frees, fibers whose
 * deadline has passed may run (fiber__yield_if_due). */
void fiber__collector_release(struct fiber__collector *c);

#endif
