/*
 * collector.c - tasks owned on behalf of a fiber: the common part of task
 * groups (group.c) and waitsets (waitset.c).  See collector.h.
 */
#include "config.h"

#include "collector.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


static void owned_link(struct fiber__collector *c)
{
    fiber__list_push_front(&c->owner->owned, &c->owned_link);
}

static void owned_unlink(struct fiber__collector *c)
{
    fiber__list_remove(&c->owner->owned, &c->owned_link);
}

/* The most recently created collector that f still owns, or NULL. */
static struct fiber__collector *owned_first(struct fiber_task *f)
{
    return fiber__list_entry(fiber__list_first(&f->owned),
                             struct fiber__collector, owned_link);
}

static const struct fiber__collector_hooks collector_hooks;

void fiber__collector_init(struct fiber__collector *c,
                           const struct fiber__collector_ops *ops,
                           struct fiber_task *owner)
{
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->loop = owner->loop;
    c->owner = owner;
    c->loop->collectors = &collector_hooks;
    fiber__waitq_init(&c->waiters);
    if (ops->close)
        owned_link(c);
}

void fiber__collector_add(struct fiber__collector *c, struct fiber_task *t)
{
    t->collector = c;
    fiber__list_push_back(&c->members, &t->coll);
    c->nmembers++;
    if (t->state != FIBER__DONE)
        c->nlive++;
}

void fiber__collector_remove(struct fiber__collector *c, struct fiber_task *t)
{
    fiber__list_remove(&c->members, &t->coll);
    c->nmembers--;
    if (t->state != FIBER__DONE)
        c->nlive--;
    t->collector = NULL;
}

void fiber__collector_cancel_live(struct fiber__collector *c)
{
    for (struct fiber_task *t = fiber__collector_first(c); t;
         t = fiber__collector_next(t))
        if (t->state != FIBER__DONE)
            fiber__cancel(c->loop, t);
}

int fiber__collector_wait_until(struct fiber__collector *c, int64_t deadline,
                                bool (*ready)(const struct fiber__collector *c))
{
    struct fiber_loop *loop = c->loop;
    struct fiber_task *self = loop->current;
    /* Wait until the earlier of the call's deadline and its scopes', as
     * until a deadline of its own, and tell afterwards whose it was: a
     * member finishing at that instant is settled here first. */
    bool by_scope;
    int64_t until = fiber__wait_deadline(self, deadline, &by_scope);

    bool waited = false;
    while (!ready(c)) {
        if (fiber__deadline_passed(loop, until))
            break;
        int rc = fiber__waitq_wait(&c->waiters, until, c->ops->what);
        waited = true;
        if (rc == -ETIMEDOUT)
            break;
        if (rc < 0)
            return rc;
    }
    if (ready(c))
        return 0;

    /* Timed out while waiting.  Fibers woken at this same instant have not
     * run yet: give each a turn, so that a member whose wake-up was due
     * finishes and wins over the timeout, as fiber_wait_for lets it.  A
     * poll, which never waited, switches to nobody. */
    if (waited) {
        fiber__make_ready(loop, self, 0);
        fiber__suspend(loop);
        if (ready(c))
            return 0;
    }
    static const struct fiber__wait members = {.state = FIBER__WAITING};
    return fiber__wait_timed_out(self, &members, by_scope);
}

void fiber__collector_reap(struct fiber__collector *c)
{
    while (c->nlive > 0)
        fiber__waitq_wait_uncancellable(&c->waiters, c->ops->what);
}

void fiber__collector_release(struct fiber__collector *c)
{
    struct fiber_task *t;
    size_t freed = 0;

    while ((t = fiber__collector_first(c))) {
        fiber__collector_remove(c, t);
        fiber__free_task(c->loop, t);
        /* Freeing a million takes long enough for deadlines to pass. */
        if (++freed % FIBER__TASKS_PER_DUE_CHECK == 0)
            fiber__yield_if_due(c->loop);
    }
    if (c->ops->close)
        owned_unlink(c);
}

/* Member t has finished. */
static void task_done(struct fiber_loop *loop, struct fiber_task *t)
{
    struct fiber__collector *c = t->collector;

    c->nlive--;
    c->ops->task_done(loop, c, t);
}

/* self has returned; close what it still owns. */
static void owner_returned(struct fiber_task *self)
{
    struct fiber__collector *c;

    while ((c = owned_first(self)))
        c->ops->close(c);
}

/* The loop ends: free the collectors of fibers that were abandoned and
 * never returned.  Their tasks are freed with the loop. */
static void loop_end(struct fiber_loop *loop)
{
    struct fiber_task *f;

    fiber__foreach_task(f, loop) {
        struct fiber__collector *c;

        while ((c = owned_first(f))) {
            owned_unlink(c);
            /* Every kind of collector the owner keeps is allocated on its
             * own, starting with the collector (checked where defined). */
            free(c);
        }
    }
}

/* What the loop calls (loop.h), put in by fiber__collector_init. */
static const struct fiber__collector_hooks collector_hooks = {
    .task_done = task_done,
    .owner_returned = owner_returned,
    .loop_end = loop_end,
};
