/*
 * waitq.c - FIFO queues of blocked fibers.
 */
#include "config.h"

#include "waitq.h"

#include <errno.h>

#include "loop.h"

static void push_tail(struct fiber__waitq *q, struct fiber_task *f)
{
    f->waitq = q;
    fiber__list_push_back(&q->waiters, &f->wq);
    q->len++;
}

void fiber__waitq_unlink(struct fiber_task *f)
{
    struct fiber__waitq *q = f->waitq;

    if (!q)
        return;
    fiber__list_remove(&q->waiters, &f->wq);
    q->len--;
    f->waitq = NULL;
}

/* A fiber on a queue: named per call, unlinked by whoever wakes it. */
static const struct fiber__wait queue_wait = {
    .state = FIBER__WAITING,
    .unlink = fiber__waitq_unlink,
};

static const struct fiber__wait queue_wait_uncancellable = {
    .state = FIBER__WAITING,
    .uncancellable = true,
    .unlink = fiber__waitq_unlink,
};

int fiber__waitq_wait(struct fiber__waitq *q, int64_t deadline,
                      const char *what)
{
    struct fiber_task *self = fiber__current();

    if (!self)
        return -EPERM;
    int rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    push_tail(q, self);
    fiber__wait_name(self, what);
    return fiber__wait(self->loop, &queue_wait, deadline, 0);
}

int fiber__waitq_wait_uncancellable(struct fiber__waitq *q, const char *what)
{
    struct fiber_task *self = fiber__current();

    if (!self)
        return -EPERM;
    push_tail(q, self);
    fiber__wait_name(self, what);
    return fiber__wait(self->loop, &queue_wait_uncancellable, FIBER__FOREVER, 0);
}

struct fiber_task *fiber__waitq_wake_one(struct fiber_loop *loop,
                                         struct fiber__waitq *q, int result)
{
    struct fiber_task *f = fiber__waitq_first(q);

    if (f)
        fiber__wake(loop, f, result);
    return f;
}

size_t fiber__waitq_wake_all(struct fiber_loop *loop, struct fiber__waitq *q,
                             int result)
{
    size_t n = 0;

    struct fiber_task *f;

    while ((f = fiber__waitq_first(q))) {
        fiber__wake(loop, f, result);
        n++;
    }
    return n;
}
