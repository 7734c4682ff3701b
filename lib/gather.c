/*
 * gather.c - fiber_gather: await many tasks, results in the order passed.
 *
 * The tasks already run concurrently, so awaiting them one after another
 * takes as long as the slowest one: while the caller waits for the first,
 * all the others make progress too.
 */
#include "config.h"

#include <errno.h>

#include "debug.h"
#include "loop.h"
#include "task.h"

/* Check every handle before touching any: an argument error changes
 * nothing.  A duplicate is found with each task's scratch mark. */
static int check_all(struct fiber_task *self, fiber_task_t *const tasks[],
                     size_t n)
{
    int rc = 0;
    size_t i;

    for (i = 0; i < n && rc == 0; i++) {
        rc = fiber__check_awaitable(self, tasks[i]);
        if (rc == 0 && tasks[i]->marked)
            rc = -EINVAL;
        if (rc == 0)
            tasks[i]->marked = true;
    }
    /* Clear the marks set so far (on error, the failing one was not). */
    size_t marked = rc == 0 ? n : i - 1;
    for (size_t j = 0; j < marked; j++)
        tasks[j]->marked = false;
    return rc;
}

FIBER_API int fiber_gather(fiber_task_t *const tasks[], size_t n,
                           void *results[], int statuses[])
{
    struct fiber_task *self = fiber__current();

    if (n > 0 && !tasks)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!tasks[i])
            return -EINVAL;
    if (!self)
        return fiber__outside_fiber("fiber_gather");
    int rc = check_all(self, tasks, n);
    if (rc < 0)
        return rc;

    /* Claim every handle, so that no other fiber can await or detach one
     * while this fiber waits on an earlier one. */
    for (size_t i = 0; i < n; i++)
        tasks[i]->claimed_by = self;

    int stop = 0;
    for (size_t i = 0; i < n; i++) {
        rc = fiber__await(tasks[i], FIBER__FOREVER,
                          results ? &results[i] : NULL,
                          statuses ? &statuses[i] : NULL);
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
