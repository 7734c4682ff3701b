/*
 * waitset.c - waiting for the first of several tasks: asyncio.as_completed
 * (a waitset hands its tasks back in the order they finish) and
 * asyncio.wait(return_when=FIRST_COMPLETED) (fiber_wait_any).
 *
 * A finishing member is appended to its waitset's list of finished tasks
 * from the finishing fiber itself, so the list is in completion order by
 * construction: nothing is sorted, and taking the next task is O(1).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

#include "collector.h"
#include "loop.h"
#include "task.h"

struct fiber_waitset {
    struct fiber__collector coll;   /* first: see loop_end in collector.c */
    /* Finished members not yet handed back, oldest first, linked through
     * fiber_task.done. */
    struct fiber__list done;
};

_Static_assert(offsetof(struct fiber_waitset, coll) == 0,
               "a waitset is freed through its collector");

static void done_append(struct fiber_waitset *set, struct fiber_task *t)
{
    fiber__list_push_back(&set->done, &t->done);
}

static void waitset_task_done(struct fiber_loop *loop,
                              struct fiber__collector *c, struct fiber_task *t)
{
    done_append((struct fiber_waitset *)(void *)c, t);
    fiber__waitq_wake_all(loop, &c->waiters, 0);
}

static bool waitset_ready(const struct fiber__collector *c)
{
    return ((const struct fiber_waitset *)(const void *)c)->done.first != NULL;
}

/* Cancel what has not finished, wait for it, free every handle left. */
static void waitset_destroy(struct fiber_waitset *set)
{
    fiber__collector_cancel_live(&set->coll);
    fiber__collector_reap(&set->coll);
    fiber__collector_release(&set->coll);
    free(set);
}

static void waitset_close(struct fiber__collector *c)
{
    waitset_destroy((struct fiber_waitset *)(void *)c);
}

static const struct fiber__collector_ops waitset_ops = {
    .task_done = waitset_task_done,
    .close = waitset_close,
    .what = "waitset",
};

/* 0 if the running fiber (in *self) owns set, in api. */
static int check_owner(const fiber_waitset_t *set, struct fiber_task **self,
                       const char *api)
{
    if (!set)
        return -EINVAL;
    *self = fiber__enter_fiber(api);
    if (!*self || set->coll.owner != *self)
        return -EPERM;
    return 0;
}

FIBER_API int fiber_waitset_create(fiber_waitset_t **set)
{
    if (!set)
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber("fiber_waitset_create");
    if (!self)
        return -EPERM;
    struct fiber_waitset *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    fiber__collector_init(&s->coll, &waitset_ops, self);
    *set = s;
    return 0;
}

FIBER_API int fiber_waitset_add(fiber_waitset_t *set, fiber_task_t *task)
{
    struct fiber_task *self;
    int rc = check_owner(set, &self, "fiber_waitset_add");

    if (rc == 0 && !task)
        rc = -EINVAL;
    if (rc == 0)
        rc = fiber__check_awaitable(self, task);
    if (rc < 0)
        return rc;
    fiber__collector_add(&set->coll, task);
    /* A task that has finished already is next in line at once. */
    if (task->state == FIBER__DONE)
        done_append(set, task);
    return 0;
}

FIBER_API int fiber_waitset_next(fiber_waitset_t *set, double timeout,
                                 fiber_task_t **task)
{
    struct fiber_task *self;
    int64_t deadline = FIBER__FOREVER;
    int rc = check_owner(set, &self, "fiber_waitset_next");

    if (rc == 0 && !task)
        rc = -EINVAL;
    if (rc == 0) {
        deadline = fiber__seconds_to_deadline(timeout, fiber_now_ns());
        rc = deadline < 0 ? (int)deadline : 0;
    }
    if (rc == 0)
        rc = fiber__enter_blocking(self);
    if (rc == 0 && set->coll.nmembers == 0)
        rc = -ECHILD;
    if (rc == 0)
        rc = fiber__collector_wait_until(&set->coll, deadline, waitset_ready);
    if (rc < 0)
        return rc;

    struct fiber_task *t = fiber__container_of(fiber__list_pop_front(&set->done),
                                               struct fiber_task, done);
    fiber__collector_remove(&set->coll, t);
    *task = t;
    return 0;
}

FIBER_API size_t fiber_waitset_size(const fiber_waitset_t *set)
{
    return set ? set->coll.nmembers : 0;
}

FIBER_API int fiber_waitset_destroy(fiber_waitset_t *set)
{
    struct fiber_task *self;
    int rc = check_owner(set, &self, "fiber_waitset_destroy");

    if (rc < 0)
        return rc;
    waitset_destroy(set);
    return 0;
}

/* ---- fiber_wait_any ------------------------------------------------------ */

/* One fiber_wait_any call: a collector for the length of the call.  It is
 * on the heap: finishing tasks write to it while the caller is suspended,
 * when a compact fiber's stack is elsewhere. */
struct any_wait {
    struct fiber__collector coll;
    struct fiber_task *first;       /* the first task to finish */
};

static void any_task_done(struct fiber_loop *loop, struct fiber__collector *c,
                          struct fiber_task *t)
{
    struct any_wait *any = (struct any_wait *)(void *)c;

    if (!any->first)
        any->first = t;
    fiber__waitq_wake_all(loop, &c->waiters, 0);
}

static bool any_ready(const struct fiber__collector *c)
{
    return ((const struct any_wait *)(const void *)c)->first != NULL;
}

static const struct fiber__collector_ops any_ops = {
    .task_done = any_task_done,
    .close = NULL,
    .what = "any of several tasks",
};

static int index_of(fiber_task_t *const tasks[], size_t n,
                    const struct fiber_task *t)
{
    for (size_t i = 0; i < n; i++)
        if (tasks[i] == t)
            return (int)i;
    return -EINVAL; /* not reached: t is one of the tasks */
}

FIBER_API int fiber_wait_any(fiber_task_t *const tasks[], size_t n,
                             double timeout)
{
    if (!tasks || n == 0 || n > INT_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!tasks[i])
            return -EINVAL;
    int64_t deadline = fiber__seconds_to_deadline(timeout, fiber_now_ns());
    if (deadline < 0)
        return (int)deadline;
    struct fiber_task *self = fiber__enter_fiber("fiber_wait_any");
    if (!self)
        return -EPERM;
    int rc = fiber__check_awaitable_all(self, tasks, n, false);
    if (rc < 0)
        return rc;
    rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (tasks[i]->state == FIBER__DONE)
            return (int)i;

    /* Watch every task for the length of the wait: each one finishing
     * tells the collector, and nobody else may await it meanwhile. */
    struct any_wait *any = malloc(sizeof(*any));
    if (!any)
        return -ENOMEM;
    fiber__collector_init(&any->coll, &any_ops, self);
    any->first = NULL;
    for (size_t i = 0; i < n; i++)
        fiber__collector_add(&any->coll, tasks[i]);
    rc = fiber__collector_wait_until(&any->coll, deadline, any_ready);
    for (size_t i = 0; i < n; i++)
        fiber__collector_remove(&any->coll, tasks[i]);
    if (rc == 0)
        rc = index_of(tasks, n, any->first);
    free(any);
    return rc;
}
