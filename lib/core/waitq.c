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
    f->wq_next = NULL;
    f->wq_prev = q->tail;
    if (q->tail)
        q->tail->wq_next = f;
    else
        q->head = f;
    q->tail = f;
    q->len++;
}

void fiber__waitq_unlink(struct fiber_task *f)
{
    struct fiber__waitq *q = f->waitq;

    if (!q)
        return;
    if (f->wq_prev)
        f->wq_prev->wq_next = f->wq_next;
    else
        q->head = f->wq_next;
    if (f->wq_next)
        f->wq_next->wq_prev = f->wq_prev;
    else
        q->tail = f->wq_prev;
    q->len--;
    f->waitq = NULL;
    f->wq_prev = f->wq_next = NULL;
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
    self->wait_what = what;
    return fiber__wait(self->loop, &queue_wait, deadline, 0);
}

int fiber__waitq_wait_uncancellable(struct fiber__waitq *q, const char *what)
{
    struct fiber_task *self = fiber__current();

    if (!self)
        return -EPERM;
    push_tail(q, self);
    self->wait_what = what;
    return fiber__wait(self->loop, &queue_wait_uncancellable, FIBER__FOREVER, 0);
}

struct fiber_task *fiber__waitq_wake_one(struct fiber_loop *loop,
                                         struct fiber__waitq *q, int result)
{
    struct fiber_task *f = q->head;

    if (f)
        fiber__wake(loop, f, result);
    return f;
}

size_t fiber__waitq_wake_all(struct fiber_loop *loop, struct fiber__waitq *q,
                             int result)
{
    size_t n = 0;

    while (q->head) {
        fiber__wake(loop, q->head, result);
        n++;
    }
    return n;
}
