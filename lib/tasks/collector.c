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
    struct fiber_task *owner = c->owner;

    c->owned_prev = NULL;
    c->owned_next = owner->owned;
    if (owner->owned)
        owner->owned->owned_prev = c;
    owner->owned = c;
}

static void owned_unlink(struct fiber__collector *c)
{
    if (c->owned_prev)
        c->owned_prev->owned_next = c->owned_next;
    else if (c->owner->owned == c)
        c->owner->owned = c->owned_next;
    if (c->owned_next)
        c->owned_next->owned_prev = c->owned_prev;
    c->owned_prev = c->owned_next = NULL;
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
    t->coll_next = NULL;
    t->coll_prev = c->tail;
    if (c->tail)
        c->tail->coll_next = t;
    else
        c->head = t;
    c->tail = t;
    c->nmembers++;
    if (t->state != FIBER__DONE)
        c->nlive++;
}

void fiber__collector_remove(struct fiber__collector *c, struct fiber_task *t)
{
    if (t->coll_prev)
        t->coll_prev->coll_next = t->coll_next;
    else
        c->head = t->coll_next;
    if (t->coll_next)
        t->coll_next->coll_prev = t->coll_prev;
    else
        c->tail = t->coll_prev;
    c->nmembers--;
    if (t->state != FIBER__DONE)
        c->nlive--;
    t->collector = NULL;
    t->coll_prev = t->coll_next = NULL;
}

void fiber__collector_cancel_live(struct fiber__collector *c)
{
    for (struct fiber_task *t = c->head; t; t = t->coll_next)
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
    while (c->head) {
        struct fiber_task *t = c->head;
        fiber__collector_remove(c, t);
        fiber__free_task(c->loop, t);
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
    /* A cancel still ends the waits below and cancels the tasks, but the
     * fiber's function has returned: its status stays what it made it. */
    bool delivered = self->cancel_delivered;

    while (self->owned)
        self->owned->ops->close(self->owned);
    self->cancel_delivered = delivered;
}

/* The loop ends: free the collectors of fibers that were abandoned and
 * never returned.  Their tasks are freed with the loop. */
static void loop_end(struct fiber_loop *loop)
{
    for (struct fiber_task *f = loop->all_head; f; f = f->all_next) {
        while (f->owned) {
            struct fiber__collector *c = f->owned;
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
