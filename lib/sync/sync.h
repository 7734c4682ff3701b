/*
 * sync.h - what the coordination primitives (sync.c, queue.c) share: the
 * wait queues inside their public structs, the marks that tell an
 * initialized primitive from garbage, and waiting with a deadline.
 */
#ifndef FIBER_SYNC_H
#define FIBER_SYNC_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "waitq.h"

/* The public structs reserve room for wait queues without showing their
 * layout; the library's queue must fit that room exactly. */
_Static_assert(sizeof(struct fiber_waitq_storage) == sizeof(struct fiber__waitq),
               "fiber_waitq_storage must be the size of a wait queue");
_Static_assert(alignof(struct fiber_waitq_storage) == alignof(struct fiber__waitq),
               "fiber_waitq_storage must be aligned like a wait queue");

/* Marks in an initialized primitive, cleared when it is destroyed, so that
 * using one uninitialized or destroyed is an error rather than a crash. */
#define FIBER__MUTEX_MAGIC UINT32_C(0x6d757478)     /* "mutx" */
#define FIBER__EVENT_MAGIC UINT32_C(0x6576656e)     /* "even" */
#define FIBER__SEM_MAGIC UINT32_C(0x73656d61)       /* "sema" */
#define FIBER__COND_MAGIC UINT32_C(0x636f6e64)      /* "cond" */
#define FIBER__QUEUE_MAGIC UINT32_C(0x71756575)     /* "queu" */

static inline struct fiber__waitq *fiber__waiters(struct fiber_waitq_storage *s)
{
    return (struct fiber__waitq *)(void *)s;
}

static inline size_t fiber__waiters_len(const struct fiber_waitq_storage *s)
{
    return ((const struct fiber__waitq *)(const void *)s)->len;
}

/* Wake the oldest waiter of q, on its own loop, with result.  Returns it,
 * or NULL when nobody waits.  Callable outside a fiber. */
struct fiber_task *fiber__sync_wake_one(struct fiber__waitq *q, int result);

/* Wake every waiter of q with result, oldest first. */
void fiber__sync_wake_all(struct fiber__waitq *q, int result);

/*
 * Wait at the tail of q until a waker's result, the deadline (loop clock,
 * FIBER__FOREVER for none) or a cancel.  A deadline already passed gives
 * -ETIMEDOUT at once, without blocking.  what names the wait in deadlock
 * reports.
 */
int fiber__sync_wait(struct fiber_task *self, struct fiber__waitq *q,
                     int64_t deadline, const char *what);

#endif
