/*
 * sync.c - coordination between fibers: mutex, event, semaphore and
 * condition variable.
 *
 * Every wait is a FIFO wait queue (waitq.c).  A released resource is
 * handed to the oldest waiter on the spot (the mutex gets a new owner, the
 * semaphore's unit is not counted back) before that waiter even runs, so a
 * fiber arriving in between finds nothing free and queues behind it: no
 * barging, no starvation.  A waiter that times out or is cancelled has been
 * taken off its queue by the time anything is released again, so nothing
 * is ever handed to a fiber that has given up.
 */
#include "config.h"

#include "sync.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>


/* ---- shared by the primitives ------------------------------------------ */

struct fiber_task *fiber__sync_wake_one(struct fiber__waitq *q, int result)
{
    struct fiber_task *first = fiber__waitq_first(q);

    if (!first)
        return NULL;
    return fiber__waitq_wake_one(first->loop, q, result);
}

void fiber__sync_wake_all(struct fiber__waitq *q, int result)
{
    struct fiber_task *first = fiber__waitq_first(q);

    if (first)
        fiber__waitq_wake_all(first->loop, q, result);
}

/* What a primitive's waiter waits in, as the tie rules see it. */
static const struct fiber__wait sync_wait = {.state = FIBER__WAITING};

int fiber__sync_wait(struct fiber_task *self, struct fiber__waitq *q,
                     int64_t deadline, const char *what)
{
    if (fiber__deadline_passed(self->loop, deadline))
        return -ETIMEDOUT;
    int rc = fiber__waitq_wait(q, deadline, what);
    /* A cancel that came at the instant the deadline passed, before this
     * fiber ran again, wins over the timeout, as with fiber_wait_for: the
     * tie rules decide (fiber__wait_timed_out).  Nothing was handed to a
     * fiber that timed out, so nothing is lost. */
    if (rc == -ETIMEDOUT)
        return fiber__wait_timed_out(self, &sync_wait, false);
    return rc;
}

/* ---- mutex -------------------------------------------------------------- */

/*
 * A mutex names its owner by the fiber's id and its loop's serial, not by
 * its control block: a finished fiber's block is recycled for the next
 * spawn, and the mutex it left locked must not pass to that stranger.
 * Neither pair is ever used again in the process.
 */
static bool owned_by(const fiber_mutex_t *m, const struct fiber_task *f)
{
    return m->private_owner_id == f->id &&
           m->private_owner_loop == f->loop->serial;
}

static bool mutex_is_locked(const fiber_mutex_t *m)
{
    return m->private_owner_id != 0;
}

/* Make f (NULL: nobody) the owner of m. */
static void set_owner(fiber_mutex_t *m, const struct fiber_task *f)
{
    m->private_owner_id = f ? f->id : 0;
    m->private_owner_loop = f ? f->loop->serial : 0;
}

static bool mutex_valid(const fiber_mutex_t *m)
{
    return m && m->private_magic == FIBER__MUTEX_MAGIC;
}

FIBER_API int fiber_mutex_init(fiber_mutex_t *m)
{
    if (!m)
        return -EINVAL;
    fiber__waitq_init(fiber__waiters(&m->private_waiters));
    set_owner(m, NULL);
    m->private_magic = FIBER__MUTEX_MAGIC;
    return 0;
}

FIBER_API int fiber_mutex_destroy(fiber_mutex_t *m)
{
    if (!mutex_valid(m))
        return -EINVAL;
    if (mutex_is_locked(m) || fiber__waiters_len(&m->private_waiters) > 0)
        return -EBUSY;
    m->private_magic = 0;
    return 0;
}

/* Give m to its oldest waiter, or leave it free when nobody waits. */
static void mutex_release(fiber_mutex_t *m)
{
    set_owner(m, fiber__sync_wake_one(fiber__waiters(&m->private_waiters), 0));
}

static int mutex_lock(fiber_mutex_t *m, int64_t deadline,
                      const char *api)
{
    if (!mutex_valid(m))
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber(api);
    if (!self)
        return -EPERM;
    if (owned_by(m, self))
        return -EDEADLK;
    int rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    if (!mutex_is_locked(m)) {
        /* Hand-off means a free mutex has nobody waiting for it. */
        assert(fiber__waiters_len(&m->private_waiters) == 0);
        set_owner(m, self);
        return 0;
    }
    rc = fiber__sync_wait(self, fiber__waiters(&m->private_waiters), deadline,
                          "mutex");
    /* Woken with 0 only by mutex_release, which made us the owner. */
    assert(rc != 0 || owned_by(m, self));
    return rc;
}

FIBER_API int fiber_mutex_lock(fiber_mutex_t *m)
{
    return mutex_lock(m, FIBER__FOREVER, "fiber_mutex_lock");
}

FIBER_API int fiber_mutex_lock_until(fiber_mutex_t *m, int64_t deadline_ns)
{
    return mutex_lock(m, deadline_ns, "fiber_mutex_lock_until");
}

FIBER_API int fiber_mutex_trylock(fiber_mutex_t *m)
{
    if (!mutex_valid(m))
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber("fiber_mutex_trylock");
    if (!self)
        return -EPERM;
    if (mutex_is_locked(m))
        return -EBUSY;
    set_owner(m, self);
    return 0;
}

FIBER_API int fiber_mutex_unlock(fiber_mutex_t *m)
{
    if (!mutex_valid(m))
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber("fiber_mutex_unlock");
    if (!self)
        return -EPERM;
    if (!owned_by(m, self))
        return -EPERM;
    mutex_release(m);
    return 0;
}

FIBER_API int fiber_mutex_locked(const fiber_mutex_t *m)
{
    if (!mutex_valid(m))
        return -EINVAL;
    return mutex_is_locked(m);
}

/* ---- event -------------------------------------------------------------- */

static bool event_valid(const fiber_event_t *e)
{
    return e && e->private_magic == FIBER__EVENT_MAGIC;
}

FIBER_API int fiber_event_init(fiber_event_t *e)
{
    if (!e)
        return -EINVAL;
    fiber__waitq_init(fiber__waiters(&e->private_waiters));
    e->private_is_set = 0;
    e->private_magic = FIBER__EVENT_MAGIC;
    return 0;
}

FIBER_API int fiber_event_destroy(fiber_event_t *e)
{
    if (!event_valid(e))
        return -EINVAL;
    if (fiber__waiters_len(&e->private_waiters) > 0)
        return -EBUSY;
    e->private_magic = 0;
    return 0;
}

FIBER_API int fiber_event_set(fiber_event_t *e)
{
    if (!event_valid(e))
        return -EINVAL;
    e->private_is_set = 1;
    fiber__sync_wake_all(fiber__waiters(&e->private_waiters), 0);
    return 0;
}

FIBER_API int fiber_event_clear(fiber_event_t *e)
{
    if (!event_valid(e))
        return -EINVAL;
    e->private_is_set = 0;
    return 0;
}

FIBER_API int fiber_event_is_set(const fiber_event_t *e)
{
    if (!event_valid(e))
        return -EINVAL;
    return e->private_is_set;
}

static int event_wait(fiber_event_t *e, int64_t deadline,
                      const char *api)
{
    if (!event_valid(e))
        return -EINVAL;
    struct fiber_task *self;
    int rc = fiber__canblock(api, &self);
    if (rc < 0)
        return rc;
    if (e->private_is_set)
        return 0;
    return fiber__sync_wait(self, fiber__waiters(&e->private_waiters), deadline,
                            "event");
}

FIBER_API int fiber_event_wait(fiber_event_t *e)
{
    return event_wait(e, FIBER__FOREVER, "fiber_event_wait");
}

FIBER_API int fiber_event_wait_until(fiber_event_t *e, int64_t deadline_ns)
{
    return event_wait(e, deadline_ns, "fiber_event_wait_until");
}

/* ---- semaphore ---------------------------------------------------------- */

static bool sem_valid(const fiber_sem_t *s)
{
    return s && s->private_magic == FIBER__SEM_MAGIC;
}

static int sem_init(fiber_sem_t *s, size_t value, size_t max)
{
    if (!s)
        return -EINVAL;
    fiber__waitq_init(fiber__waiters(&s->private_waiters));
    s->private_value = value;
    s->private_max = max;
    s->private_magic = FIBER__SEM_MAGIC;
    return 0;
}

FIBER_API int fiber_sem_init(fiber_sem_t *s, size_t value)
{
    return sem_init(s, value, SIZE_MAX);
}

FIBER_API int fiber_sem_init_bounded(fiber_sem_t *s, size_t value)
{
    return sem_init(s, value, value);
}

FIBER_API int fiber_sem_destroy(fiber_sem_t *s)
{
    if (!sem_valid(s))
        return -EINVAL;
    if (fiber__waiters_len(&s->private_waiters) > 0)
        return -EBUSY;
    s->private_magic = 0;
    return 0;
}

static int sem_acquire(fiber_sem_t *s, int64_t deadline,
                       const char *api)
{
    if (!sem_valid(s))
        return -EINVAL;
    struct fiber_task *self;
    int rc = fiber__canblock(api, &self);
    if (rc < 0)
        return rc;
    if (s->private_value > 0) {
        /* Hand-off means free units have nobody waiting for them. */
        assert(fiber__waiters_len(&s->private_waiters) == 0);
        s->private_value--;
        return 0;
    }
    /* Woken with 0 by fiber_sem_release, which handed us its unit. */
    return fiber__sync_wait(self, fiber__waiters(&s->private_waiters), deadline,
                            "semaphore");
}

FIBER_API int fiber_sem_acquire(fiber_sem_t *s)
{
    return sem_acquire(s, FIBER__FOREVER, "fiber_sem_acquire");
}

FIBER_API int fiber_sem_acquire_until(fiber_sem_t *s, int64_t deadline_ns)
{
    return sem_acquire(s, deadline_ns, "fiber_sem_acquire_until");
}

FIBER_API int fiber_sem_try_acquire(fiber_sem_t *s)
{
    if (!sem_valid(s))
        return -EINVAL;
    if (s->private_value == 0)
        return -EAGAIN;
    s->private_value--;
    return 0;
}

FIBER_API int fiber_sem_release(fiber_sem_t *s)
{
    if (!sem_valid(s))
        return -EINVAL;
    /* Checked before any hand-off, as asyncio's BoundedSemaphore does:
     * with fibers waiting the value is 0, so only a bound of 0 refuses. */
    if (s->private_value >= s->private_max)
        return -EOVERFLOW;
    if (!fiber__sync_wake_one(fiber__waiters(&s->private_waiters), 0))
        s->private_value++;
    return 0;
}

FIBER_API size_t fiber_sem_value(const fiber_sem_t *s)
{
    return sem_valid(s) ? s->private_value : 0;
}

/* ---- condition variable ------------------------------------------------- */

static bool cond_valid(const fiber_cond_t *c)
{
    return c && c->private_magic == FIBER__COND_MAGIC;
}

FIBER_API int fiber_cond_init(fiber_cond_t *c)
{
    if (!c)
        return -EINVAL;
    fiber__waitq_init(fiber__waiters(&c->private_waiters));
    c->private_magic = FIBER__COND_MAGIC;
    return 0;
}

FIBER_API int fiber_cond_destroy(fiber_cond_t *c)
{
    if (!cond_valid(c))
        return -EINVAL;
    if (fiber__waiters_len(&c->private_waiters) > 0)
        return -EBUSY;
    c->private_magic = 0;
    return 0;
}

/* Take m back after a condition wait, whatever cancels come: the caller
 * of fiber_cond_wait must own m when it returns. */
static void mutex_relock(fiber_mutex_t *m, struct fiber_task *self)
{
    if (!mutex_is_locked(m)) {
        set_owner(m, self);
        return;
    }
    fiber__waitq_wait_uncancellable(fiber__waiters(&m->private_waiters),
                                    "mutex");
    assert(owned_by(m, self));
}

static int cond_wait(fiber_cond_t *c, fiber_mutex_t *m, int64_t deadline,
                     const char *api)
{
    if (!cond_valid(c) || !mutex_valid(m))
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber(api);
    if (!self)
        return -EPERM;
    if (!owned_by(m, self))
        return -EPERM;
    int rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    if (fiber__deadline_passed(self->loop, deadline))
        return -ETIMEDOUT;

    mutex_release(m);
    rc = fiber__sync_wait(self, fiber__waiters(&c->private_waiters), deadline,
                          "condition");
    mutex_relock(m, self);
    return rc;
}

FIBER_API int fiber_cond_wait(fiber_cond_t *c, fiber_mutex_t *m)
{
    return cond_wait(c, m, FIBER__FOREVER, "fiber_cond_wait");
}

FIBER_API int fiber_cond_wait_until(fiber_cond_t *c, fiber_mutex_t *m,
                                    int64_t deadline_ns)
{
    return cond_wait(c, m, deadline_ns, "fiber_cond_wait_until");
}

FIBER_API int fiber_cond_signal(fiber_cond_t *c)
{
    if (!cond_valid(c))
        return -EINVAL;
    fiber__sync_wake_one(fiber__waiters(&c->private_waiters), 0);
    return 0;
}

FIBER_API int fiber_cond_broadcast(fiber_cond_t *c)
{
    if (!cond_valid(c))
        return -EINVAL;
    fiber__sync_wake_all(fiber__waiters(&c->private_waiters), 0);
    return 0;
}
