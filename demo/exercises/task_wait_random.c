/*
 * task_wait_random.c - wait_random as a task.  See task_wait_random.h.
 */
#include "task_wait_random.h"

#include <errno.h>
#include <math.h>

#include "wait_random.h"

/* The task's argument is the caller's slot: it holds max_delay on the way
 * in and the delay on the way out, so the task needs no memory of its own. */
static void *wait_random_task(void *arg)
{
    double *slot = arg;
    double delay;

    int rc = wait_random(*slot, &delay);
    if (rc < 0) {
        *slot = NAN;
        return fiber_fail(rc);
    }
    *slot = delay;
    return slot;
}

int task_wait_random(double max_delay, double *delay, fiber_task_t **task)
{
    if (!delay || !task || !isfinite(max_delay) || max_delay < 0)
        return -EINVAL;

    /* The task reads its slot when it starts, which fiber_spawn never lets
     * happen before returning, so the slot is filled only on success and a
     * failed call leaves the caller's storage alone, like *task. */
    int rc = fiber_spawn(task, wait_random_task, delay, NULL);
    if (rc == 0)
        *delay = max_delay;
    return rc;
}
