/*
 * gather.c - fiber_gather: await many tasks, results in the order passed;
 * fiber_gather_fail_fast: the same, stopping at the first failure.
 *
 * The tasks already run concurrently, so awaiting them one after another
 * takes as long as the slowest one: while the caller waits for the first,
 * all the others make progress too.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "collector.h"
#include "loop.h"
#include "task.h"

FIBER_API int fiber_gather(fiber_task_t *const tasks[], size_t n,
                           void *results[], int statuses[])
{
    if (n > 0 && !tasks)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!tasks[i])
            return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber("fiber_gather");
    if (!self)
        return -EPERM;
    /* Claim every handle, so that no other fiber can await or detach one
     * while this fiber waits on an earlier one. */
    int rc = fiber__check_awaitable_all(self, tasks, n, true);
    if (rc < 0)
        return rc;

    int stop = 0;
    for (size_t i = 0; i < n; i++) {
        fiber__prefetch_task_ahead(tasks, i, n);
        /* Reaping finished tasks never blocks, and once the awaited one
         * finishes most after it have too: at a million sleepers a run
         * of 100,000 kept the loop for 20 ms while deadlines passed. */
        if (i % FIBER__TASKS_PER_DUE_CHECK == FIBER__TASKS_PER_DUE_CHECK - 1)
            fiber__yield_if_due(self->loop);
        rc = fiber__await(tasks[i], FIBER__FOREVER,
                          results ? &results[i] : NULL,
                          statuses ? &statuses[i] : NULL, "fiber_gather");
        if (rc < 0 && stop == 0) {
            /* Cancelled, or a timeout scope expired: cancel all the rest
             * at once, then reap them in order. */
            stop = rc;
            for (size_t j = i + 1; j < n; j++)
                fiber__cancel(self->loop, tasks[j]);
        }
    }
    return stop;
}

/* ---- fiber_gather_fail_fast ----------------------------------------------
 *
 * The tasks join a collector for the length of the call, as with
 * fiber_wait_any: each one finishing tells it at once, from the finishing
 * fiber, so the first failure ends the wait without the caller polling, and
 * no other fiber can await a task meanwhile.  The collector is on the heap,
 * since finishing tasks write to it while a compact caller's stack is
 * elsewhere.
 */
struct fail_fast {
    struct fiber__collector coll;
    struct fiber_task *failed;   /* the first task to fail while watched */
    bool watching;               /* false while reaping what was cancelled */
};

static void fail_fast_task_done(struct fiber_loop *loop,
                                struct fiber__collector *c,
                                struct fiber_task *t)
{
    struct fail_fast *ff = (struct fail_fast *)(void *)c;

    if (ff->watching && !ff->failed && t->status != 0)
        ff->failed = t;
    /* Only the end of the wait is worth a switch to the caller. */
    if (ff->failed || c->nlive == 0)
        fiber__waitq_wake_all(loop, &c->waiters, 0);
}

static bool fail_fast_ready(const struct fiber__collector *c)
{
    const struct fail_fast *ff = (const struct fail_fast *)(const void *)c;

    return ff->failed != NULL || c->nlive == 0;
}

static const struct fiber__collector_ops fail_fast_ops = {
    .task_done = fail_fast_task_done,
    .close = NULL,
    .what = "gather (fail fast)",
};

static size_t index_of(fiber_task_t *const tasks[], size_t n,
                       const struct fiber_task *t)
{
    size_t i = 0;

    while (i < n && tasks[i] != t)
        i++;
    return i;
}

/* Wait until a task fails or all have finished.  Returns 0 with *first the
 * index of the failed task (n for none), or the caller's cancellation or
 * timeout scope error. */
static int wait_first_failure(struct fiber_task *self, struct fail_fast *ff,
                              fiber_task_t *const tasks[], size_t n,
                              size_t *first)
{
    int rc = fiber__enter_blocking(self);

    *first = n;
    if (rc < 0)
        return rc;
    /* Failures already there: the lowest index, as fiber_wait_any says. */
    for (size_t i = 0; i < n; i++) {
        if (tasks[i]->state == FIBER__DONE && tasks[i]->status != 0) {
            *first = i;
            return 0;
        }
    }
    ff->watching = true;
    rc = fiber__collector_wait_until(&ff->coll, FIBER__FOREVER,
                                     fail_fast_ready);
    ff->watching = false;
    if (rc == 0 && ff->failed)
        *first = index_of(tasks, n, ff->failed);
    return rc;
}

FIBER_API int fiber_gather_fail_fast(fiber_task_t *const tasks[], size_t n,
                                     void *results[], int statuses[],
                                     size_t *failed)
{
    if (n > 0 && !tasks)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!tasks[i])
            return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber("fiber_gather_fail_fast");
    if (!self)
        return -EPERM;
    int rc = fiber__check_awaitable_all(self, tasks, n, false);
    if (rc < 0)
        return rc;
    struct fail_fast *ff = malloc(sizeof(*ff));
    if (!ff)
        return -ENOMEM;

    fiber__collector_init(&ff->coll, &fail_fast_ops, self);
    ff->failed = NULL;
    ff->watching = false;
    for (size_t i = 0; i < n; i++)
        fiber__collector_add(&ff->coll, tasks[i]);

    size_t first;
    rc = wait_first_failure(self, ff, tasks, n, &first);
    if (first < n)
        rc = tasks[first]->status;
    if (rc < 0) {
        /* A failure, or the caller's cancel or scope: the rest are of no
         * use any more.  Reap them all the same, results filled in. */
        fiber__collector_cancel_live(&ff->coll);
        fiber__collector_reap(&ff->coll);
    }
    for (size_t i = 0; i < n; i++) {
        if (results)
            results[i] = tasks[i]->result;
        if (statuses)
            statuses[i] = tasks[i]->status;
    }
    fiber__collector_release(&ff->coll);
    free(ff);
    if (failed)
        *failed = first;
    return rc;
}
