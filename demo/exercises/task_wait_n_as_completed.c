/*
 * task_wait_n_as_completed.c - task_wait_n with a waitset.  See
 * task_wait_n_as_completed.h.
 */
#include "task_wait_n_as_completed.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "fiber.h"
#include "task_wait_random.h"
#include "wait_n_as_completed.h"

int task_wait_n_as_completed(size_t n, double max_delay, double *delays)
{
    if ((n > 0 && !delays) || !isfinite(max_delay) || max_delay < 0)
        return -EINVAL;
    if (!fiber_self())
        return -EPERM;
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / sizeof(double))
        return -ENOMEM;

    /* task_wait_random delivers each delay through a slot of the caller's,
     * which must outlive the task: fiber_waitset_destroy below returns only
     * once every task has finished. */
    double *slots = malloc(n * sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    fiber_waitset_t *set = NULL;
    int rc = fiber_waitset_create(&set);
    for (size_t i = 0; i < n && rc == 0; i++) {
        fiber_task_t *task;
        rc = task_wait_random(max_delay, &slots[i], &task);
        if (rc == 0)
            rc = fiber_waitset_add(set, task);
    }
    if (rc == 0)
        rc = delays_as_completed(set, n, delays);
    if (set)
        fiber_waitset_destroy(set);
    free(slots);
    return rc;
}
