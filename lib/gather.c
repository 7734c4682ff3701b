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
    int rc = fiber__check_awaitable_all(self, tasks, n);
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
