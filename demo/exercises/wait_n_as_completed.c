/*
 * wait_n_as_completed.c - wait_n with a waitset.  See wait_n_as_completed.h.
 */
#include "wait_n_as_completed.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "wait_random.h"

/* A fiber running wait_random.  Its argument is its slot: max_delay on the
 * way in, the delay on the way out, and its result points to it. */
static void *wait_random_fiber(void *arg)
{
    double *slot = arg;
    double delay;

    int rc = wait_random(*slot, &delay);
    if (rc < 0)
        return fiber_fail(rc);
    *slot = delay;
    return slot;
}

int delays_as_completed(fiber_waitset_t *set, size_t n, double *delays)
{
    for (size_t taken = 0; taken < n; taken++) {
        fiber_task_t *task;
        void *result;
        int status;

        int rc = fiber_waitset_next(set, INFINITY, &task);
        /* The task has finished: awaiting it takes its result at once and
         * frees the handle. */
        if (rc == 0)
            rc = fiber_await(task, &result, &status);
        if (rc == 0)
            rc = status;
        if (rc < 0)
            return rc;
        delays[taken] = *(const double *)result;
    }
    return 0;
}

int wait_n_as_completed(size_t n, double max_delay, double *delays)
{
    if ((n > 0 && !delays) || !isfinite(max_delay) || max_delay < 0)
        return -EINVAL;
    if (!fiber_self())
        return -EPERM;
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / sizeof(double))
        return -ENOMEM;

    /* The slots outlive every fiber: fiber_waitset_destroy below returns
     * only once all of them have finished. */
    double *slots = malloc(n * sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    fiber_waitset_t *set = NULL;
    int rc = fiber_waitset_create(&set);
    for (size_t i = 0; i < n && rc == 0; i++) {
        fiber_task_t *task;
        slots[i] = max_delay;
        rc = fiber_spawn(&task, wait_random_fiber, &slots[i], NULL);
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
