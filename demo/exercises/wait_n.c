/*
 * wait_n.c - n concurrent wait_random calls, delays in completion order.
 * See wait_n.h.
 */
#include "wait_n.h"

#include <errno.h>
#include <math.h>

#include "../demo_util.h"
#include "fiber.h"
#include "wait_random.h"

/* What the n fibers of one wait_n call share. */
struct wait_n_run {
    double max_delay;
    double *delays;  /* filled in completion order */
    size_t count;    /* delays stored so far */
    int error;       /* the first failure of a fiber, 0 if none */
};

static void *wait_one(void *arg)
{
    struct wait_n_run *run = arg;
    double delay;

    int rc = wait_random(run->max_delay, &delay);
    if (rc < 0) {
        if (run->error == 0)
            run->error = rc;
        return fiber_fail(rc);
    }
    /* Appending as each fiber wakes is what puts the list in completion
     * order: the fibers run one at a time, so nothing else can interleave. */
    run->delays[run->count++] = delay;
    return NULL;
}

int wait_n(size_t n, double max_delay, double *delays)
{
    if ((n > 0 && !delays) || !isfinite(max_delay) || max_delay < 0)
        return -EINVAL;
    if (!fiber_self())
        return -EPERM;

    struct wait_n_run run = {.max_delay = max_delay, .delays = delays};
    int rc = demo_spawn_gather(n, wait_one, &run);
    return rc < 0 ? rc : run.error;
}
