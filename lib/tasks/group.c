/*
 * group.c - task groups: asyncio.TaskGroup, trio's nursery.
 *
 * A group owns the tasks spawned into it.  Its owner (the fiber that
 * created it) waits for all of them; the first child to fail makes the
 * group cancel the others, and the owner's cancellation (or an expired
 * scope) does the same when it reaches the owner's wait.  Either way the
 * group still waits for every child to finish, and keeps every handle
 * until it is destroyed, so no status is lost and no child outlives it.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "collector.h"
#include "loop.h"

struct fiber_group {
    struct fiber__collector coll;   /* first: see loop_end in collector.c */
    int first_error;                /* status of the first child to fail */
    struct fiber_task *first_failed;
    bool cancelled;                 /* children start cancelled from now on */
};

_Static_assert(offsetof(struct fiber_group, coll) == 0,
               "a group is freed through its collector");

/* A child's status that fails the group: an error other than the
 * -ECANCELED with which cancelled tasks end. */
static bool is_failure(int status)
{
    return status < 0 && status != -ECANCELED;
}

static void group_cancel(struct fiber_group *g)
{
    g->cancelled = true;
    fiber__collector_cancel_live(&g->coll);
}

static void group_task_done(struct fiber_loop *loop, struct fiber__collector *c,
                            struct fiber_task *t)
{
    struct fiber_group *g = (struct fiber_group *)(void *)c;

    if (is_failure(t->status) && g->first_error == 0) {
        g->first_error = t->status;
        g->first_failed = t;
        group_cancel(g);
    }
    if (c->nlive == 0)
        fiber__waitq_wake_all(loop, &c->waiters, 0);
}

/*
 * Wait for every child.  The owner's cancellation or expired scope, at the
 * start or while waiting, cancels the children; they are waited for all
 * the same, and the error is returned.  Otherwise the first failure, or 0.
 */
static int group_wait(struct fiber_group *g, struct fiber_task *self)
{
    int stop = fiber__enter_blocking(self);

    while (stop == 0 && g->coll.nlive > 0) {
        int rc = fiber__waitq_wait(&g->coll.waiters, FIBER__FOREVER,
                                   g->coll.ops->what);
        /* Children that all ended at the instant the scope's deadline
         * came (the block gives them that turn) completed first: the
         * completion wins, and the scope stops the next call instead.  A
         * cancel that woke this fiber came before them and wins. */
        if (rc < 0 && !(rc == -ETIMEDOUT && g->coll.nlive == 0))
            stop = rc;
    }
    if (stop < 0) {
        group_cancel(g);
        fiber__collector_reap(&g->coll);
    }
    return stop < 0 ? stop : g->first_error;
}

static int group_destroy(struct fiber_group *g, struct fiber_task *self)
{
    int rc = group_wait(g, self);

    fiber__collector_release(&g->coll);
    free(g);
    return rc;
}

static void group_close(struct fiber__collector *c)
{
    group_destroy((struct fiber_group *)(void *)c, c->owner);
}

static const struct fiber__collector_ops group_ops = {
    .task_done = group_task_done,
    .close = group_close,
    .what = "task group",
};

/* 0 if the running fiber (in *self) may wait for or destroy g, in api. */
static int check_owner(const fiber_group_t *g, struct fiber_task **self,
                       const char *api)
{
    if (!g)
        return -EINVAL;
    *self = fiber__enter_fiber(api);
    if (!*self || g->coll.owner != *self)
        return -EPERM;
    return 0;
}

FIBER_API int fiber_group_create(fiber_group_t **group)
{
    if (!group)
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber("fiber_group_create");
    if (!self)
        return -EPERM;
    struct fiber_group *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    fiber__collector_init(&g->coll, &group_ops, self);
    *group = g;
    return 0;
}

FIBER_API int fiber_group_spawn(fiber_group_t *group, fiber_task_t **task,
                                fiber_fn fn, void *arg,
                                const fiber_attr_t *attr)
{
    struct fiber_task *child;

    if (!group || !fn)
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber("fiber_group_spawn");
    if (!self)
        return -EPERM;
    if (group->coll.loop != self->loop)
        return -EINVAL;
    int rc = fiber__spawn(self->loop, &child, fn, arg, attr);
    if (rc < 0)
        return rc;
    fiber__collector_add(&group->coll, child);
    /* Like a task cancelled before it started, it still runs, so that it
     * can release what arg owns. */
    if (group->cancelled)
        fiber__cancel(self->loop, child);
    if (task)
        *task = child;
    return 0;
}

FIBER_API int fiber_group_wait(fiber_group_t *group)
{
    struct fiber_task *self;
    int rc = check_owner(group, &self, "fiber_group_wait");

    return rc < 0 ? rc : group_wait(group, self);
}

FIBER_API int fiber_group_cancel(fiber_group_t *group)
{
    if (!group)
        return -EINVAL;
    struct fiber_loop *loop = fiber__enter_loop("fiber_group_cancel");
    if (!loop)
        return -EPERM;
    if (group->coll.loop != loop)
        return -EINVAL;
    group_cancel(group);
    return 0;
}

FIBER_API int fiber_group_error(const fiber_group_t *group,
                                fiber_task_t **failed)
{
    if (!group)
        return -EINVAL;
    if (failed)
        *failed = group->first_failed;
    return group->first_error;
}

FIBER_API fiber_task_t *fiber_group_next(const fiber_group_t *group,
                                         const fiber_task_t *prev)
{
    if (!group)
        return NULL;
    if (!prev)
        return fiber__collector_first(&group->coll);
    return prev->collector == &group->coll ? fiber__collector_next(prev) : NULL;
}

FIBER_API int fiber_group_destroy(fiber_group_t *group)
{
    struct fiber_task *self;
    int rc = check_owner(group, &self, "fiber_group_destroy");

    return rc < 0 ? rc : group_destroy(group, self);
}
