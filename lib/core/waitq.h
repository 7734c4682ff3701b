/*
 * waitq.h - FIFO queues of blocked fibers, the building block of every
 * wait that is not a sleep or an await: mutexes, events, queues, I/O.
 *
 * A fiber waits on at most one queue.  The queue is intrusive and doubly
 * linked, so a fiber woken early (cancelled, timed out) leaves it in O(1).
 */
#ifndef FIBER_WAITQ_H
#define FIBER_WAITQ_H

#include <stddef.h>
#include <stdint.h>

#include "list.h"

struct fiber_loop;
struct fiber_task;

struct fiber__waitq {
    struct fiber__list waiters;   /* by fiber_task.wq, oldest first */
    size_t len;
};

static inline void fiber__waitq_init(struct fiber__waitq *q)
{
    fiber__list_init(&q->waiters);
    q->len = 0;
}

/* The oldest waiter of q, or NULL.  A macro: struct fiber_task is
 * complete only where it is used. */
#define fiber__waitq_first(q) \
    fiber__list_entry(fiber__list_first(&(q)->waiters), struct fiber_task, wq)

/*
 * Block the running fiber at the tail of q until it is woken, the deadline
 * passes or it is cancelled.  what names the wait in reports ("mutex",
 * "queue get", ...).  Returns the waker's result (0 unless the waker says
 * otherwise), -ETIMEDOUT, -ECANCELED, or -EPERM outside a fiber.
 */
int fiber__waitq_wait(struct fiber__waitq *q, int64_t deadline,
                      const char *what);

/*
 * As fiber__waitq_wait without a deadline, but a cancel does not end the
 * wait: for a wait that must finish, such as taking a mutex back at the end
 * of a condition wait.  A pending cancel is left for the next blocking
 * call.  Returns the waker's result, or -EPERM outside a fiber.
 */
int fiber__waitq_wait_uncancellable(struct fiber__waitq *q, const char *what);

/* Wake the oldest waiter with result; returns it, or NULL if none. */
struct fiber_task *fiber__waitq_wake_one(struct fiber_loop *loop,
                                         struct fiber__waitq *q, int result);

/* Wake every waiter with result, oldest first; returns how many. */
size_t fiber__waitq_wake_all(struct fiber_loop *loop, struct fiber__waitq *q,
                             int result);

/* Take f out of the queue it waits on, if any (used when f is woken). */
void fiber__waitq_unlink(struct fiber_task *f);

#endif
