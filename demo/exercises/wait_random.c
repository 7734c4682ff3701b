/*
 * wait_random.c - sleep a random delay and report it.  See wait_random.h.
 */
#include "wait_random.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>

#include "fiber.h"

int wait_random(double max_delay, double *delay)
{
    if (!delay || !isfinite(max_delay) || max_delay < 0)
        return -EINVAL;
    /* Checked before drawing, so that a misplaced call does not use up a
     * number of the seeded sequence. */
    if (!fiber_self())
        return -EPERM;

    double drawn = fiber_uniform(0, max_delay);
    int rc = fiber_sleep(drawn);
    if (rc < 0)
        return rc;
    *delay = drawn;
    return 0;
}
