/* wait_random.c - exercise 0: sleep a random delay and return it. */
#include "exercises.h"

void *wait_random(void *arg)
{
    double *slot = arg;   /* max_delay in, the delay out */
    double delay = fiber_uniform(0, *slot);
    int rc = fiber_sleep(delay);

    if (rc < 0)
        return fiber_fail(rc);
    *slot = delay;
    return slot;
}
