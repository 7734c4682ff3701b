/*
 * task_wait_n.c - wait_n built on task_wait_random.  See task_wait_n.h.
 */
#include "task_wait_n.h"

#include <errno.h>
#include <math.h>

#include "../demo_util.h"
#include "fiber.h"
#include "task_wait_random.h"

/* What the n awaiting fibers of one task_wait_n call share. */
struct task_wait_n_run {
    double max_delay;
    double *delays;  /* filled in completion order */
    size_t count;    /* delays stored so far */
    int error;       /* the first failure, 0 if none */
};

/* Start one task and append its delay the moment it finishes.  A task
 * wakes its awaiting fiber when it ends, and woken fibers run in the order
 * they were woken, so the appends happen in the tasks' completion order. */
static void *start_and_await(void *arg)
{
    struct task_wait_n_run *run = arg;
    fiber_task_t *task;
    double delay;
    int status;

    int rc = task_wait_random(run->max_delay, &delay, &task);
    /* fiber_await returns only once the task has finished, even when this
     * fiber is cancelled meanwhile, so delay outlives the task. */
    if (rc == 0)
        rc = fiber_await(task, NULL, &status);
    if (rc == 0)
        rc = status;
    if (rc < 0) {
        if (run->error == 0)
            run->error = rc;
        return fiber_fail(rc);
    }
    run->delays[run->count++] = delay;
    return NULL;
}

int task_wait_n(size_t n, double max_delay, double *delays)
{
    if ((n > 0 && !delays) || !isfinite(max_delay) || max_delay < 0)
        return -EINVAL;
    if (!fiber_self())
        return -EPERM;

    struct task_wait_n_run run = {.max_delay = max_delay, .delays = delays};
    int rc = demo_spawn_gather(n, start_and_await, &run);
    return rc < 0 ? rc : run.error;
}
