/*
 * queue.c - a bounded FIFO queue of void * items between fibers, like
 * asyncio.Queue, with close.
 *
 * Items travel by hand-off, as in sync.c.  A put that finds a getter
 * waiting gives the item to that getter directly; a get that makes room
 * while putters wait moves the oldest putter's item into the ring.  The
 * item rides in the waiting fiber's wait_item.  So a woken fiber never has
 * to compete for what it was woken for, nobody arriving later can take it
 * first, and items come out in the order their puts were served.
 *
 * Invariants: getters wait only while the ring is empty, putters only
 * while it is full, and nobody waits on a closed queue.
 */
#include "config.h"

#include "sync.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

static bool queue_valid(const fiber_queue_t *q)
{
    return q && q->private_magic == FIBER__QUEUE_MAGIC;
}

static struct fiber__waitq *getters(fiber_queue_t *q)
{
    return fiber__waiters(&q->private_getters);
}

static struct fiber__waitq *putters(fiber_queue_t *q)
{
    return fiber__waiters(&q->private_putters);
}

static struct fiber__waitq *joiners(fiber_queue_t *q)
{
    return fiber__waiters(&q->private_joiners);
}

/* ---- the ring ----------------------------------------------------------- */

static void ring_push(fiber_queue_t *q, void *item)
{
    size_t tail = (q->private_head + q->private_len) % q->private_capacity;

    q->private_items[tail] = item;
    q->private_len++;
}

static void *ring_pop(fiber_queue_t *q)
{
    void *item = q->private_items[q->private_head];

    q->private_head = (q->private_head + 1) % q->private_capacity;
    q->private_len--;
    return item;
}

/* ---- life --------------------------------------------------------------- */

FIBER_API int fiber_queue_init(fiber_queue_t *q, size_t capacity)
{
    if (!q || capacity == 0)
        return -EINVAL;
    /* Checked here rather than left to calloc, which sanitizers would
     * report instead of returning NULL. */
    if (capacity > SIZE_MAX / sizeof(void *))
        return -ENOMEM;
    void **items = calloc(capacity, sizeof(*items));
    if (!items)
        return -ENOMEM;
    fiber__waitq_init(getters(q));
    fiber__waitq_init(putters(q));
    fiber__waitq_init(joiners(q));
    q->private_items = items;
    q->private_capacity = capacity;
    q->private_head = 0;
    q->private_len = 0;
    q->private_unfinished = 0;
    q->private_closed = 0;
    q->private_magic = FIBER__QUEUE_MAGIC;
    return 0;
}

FIBER_API int fiber_queue_destroy(fiber_queue_t *q)
{
    if (!queue_valid(q))
        return -EINVAL;
    if (getters(q)->len > 0 || putters(q)->len > 0 || joiners(q)->len > 0)
        return -EBUSY;
    free(q->private_items);
    q->private_items = NULL;
    q->private_magic = 0;
    return 0;
}

/* ---- put ---------------------------------------------------------------- */

/* Accept item without waiting, if the queue can: 0, -EAGAIN when full. */
static int put_now(fiber_queue_t *q, void *item)
{
    if (q->private_len == q->private_capacity)
        return -EAGAIN;
    struct fiber_task *getter = fiber__waitq_first(getters(q));
    if (getter) {
        assert(q->private_len == 0);
        getter->wait_item = item;
        fiber__sync_wake_one(getters(q), 0);
    } else {
        ring_push(q, item);
    }
    q->private_unfinished++;
    return 0;
}

static int queue_put(fiber_queue_t *q, void *item, int64_t deadline,
                     const char *api)
{
    if (!queue_valid(q))
        return -EINVAL;
    struct fiber_task *self;
    int rc = fiber__canblock(api, &self);
    if (rc < 0)
        return rc;
    if (q->private_closed)
        return -EPIPE;
    rc = put_now(q, item);
    if (rc != -EAGAIN)
        return rc;
    /* A get that makes room moves the item into the ring and wakes us
     * with 0; close wakes us with -EPIPE. */
    self->wait_item = item;
    return fiber__sync_wait(self, putters(q), deadline, "queue put");
}

FIBER_API int fiber_queue_put(fiber_queue_t *q, void *item)
{
    return queue_put(q, item, FIBER__FOREVER, "fiber_queue_put");
}

FIBER_API int fiber_queue_put_until(fiber_queue_t *q, void *item,
                                    int64_t deadline_ns)
{
    return queue_put(q, item, deadline_ns, "fiber_queue_put_until");
}

FIBER_API int fiber_queue_try_put(fiber_queue_t *q, void *item)
{
    if (!queue_valid(q))
        return -EINVAL;
    if (q->private_closed)
        return -EPIPE;
    return put_now(q, item);
}

/* ---- get ---------------------------------------------------------------- */

/* Take the oldest item without waiting, if there is one: 0, -EAGAIN when
 * empty, -EPIPE when empty and closed. */
static int get_now(fiber_queue_t *q, void **item)
{
    if (q->private_len == 0)
        return q->private_closed ? -EPIPE : -EAGAIN;
    *item = ring_pop(q);
    struct fiber_task *putter = fiber__waitq_first(putters(q));
    if (putter) {
        /* The ring was full: the oldest putter's item takes the room. */
        ring_push(q, putter->wait_item);
        q->private_unfinished++;
        fiber__sync_wake_one(putters(q), 0);
    }
    return 0;
}

static int queue_get(fiber_queue_t *q, void **item, int64_t deadline,
                     const char *api)
{
    if (!queue_valid(q) || !item)
        return -EINVAL;
    struct fiber_task *self;
    int rc = fiber__canblock(api, &self);
    if (rc < 0)
        return rc;
    rc = get_now(q, item);
    if (rc != -EAGAIN)
        return rc;
    /* A put hands us its item in wait_item and wakes us with 0; close
     * wakes us with -EPIPE. */
    rc = fiber__sync_wait(self, getters(q), deadline, "queue get");
    if (rc == 0)
        *item = self->wait_item;
    return rc;
}

FIBER_API int fiber_queue_get(fiber_queue_t *q, void **item)
{
    return queue_get(q, item, FIBER__FOREVER, "fiber_queue_get");
}

FIBER_API int fiber_queue_get_until(fiber_queue_t *q, void **item,
                                    int64_t deadline_ns)
{
    return queue_get(q, item, deadline_ns, "fiber_queue_get_until");
}

FIBER_API int fiber_queue_try_get(fiber_queue_t *q, void **item)
{
    if (!queue_valid(q) || !item)
        return -EINVAL;
    return get_now(q, item);
}

/* ---- close, queries ------------------------------------------------------ */

FIBER_API int fiber_queue_close(fiber_queue_t *q)
{
    if (!queue_valid(q))
        return -EINVAL;
    q->private_closed = 1;
    fiber__sync_wake_all(putters(q), -EPIPE);
    fiber__sync_wake_all(getters(q), -EPIPE);
    return 0;
}

FIBER_API int fiber_queue_closed(const fiber_queue_t *q)
{
    if (!queue_valid(q))
        return -EINVAL;
    return q->private_closed;
}

FIBER_API size_t fiber_queue_len(const fiber_queue_t *q)
{
    return queue_valid(q) ? q->private_len : 0;
}

FIBER_API size_t fiber_queue_capacity(const fiber_queue_t *q)
{
    return queue_valid(q) ? q->private_capacity : 0;
}

/* ---- task_done, join ----------------------------------------------------- */

FIBER_API int fiber_queue_task_done(fiber_queue_t *q)
{
    if (!queue_valid(q) || q->private_unfinished == 0)
        return -EINVAL;
    if (--q->private_unfinished == 0)
        fiber__sync_wake_all(joiners(q), 0);
    return 0;
}

static int queue_join(fiber_queue_t *q, int64_t deadline,
                      const char *api)
{
    if (!queue_valid(q))
        return -EINVAL;
    struct fiber_task *self;
    int rc = fiber__canblock(api, &self);
    if (rc < 0)
        return rc;
    if (q->private_unfinished == 0)
        return 0;
    return fiber__sync_wait(self, joiners(q), deadline, "queue join");
}

FIBER_API int fiber_queue_join(fiber_queue_t *q)
{
    return queue_join(q, FIBER__FOREVER, "fiber_queue_join");
}

FIBER_API int fiber_queue_join_until(fiber_queue_t *q, int64_t deadline_ns)
{
    return queue_join(q, deadline_ns, "fiber_queue_join_until");
}
