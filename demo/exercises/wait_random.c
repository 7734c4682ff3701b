/* wait_random.c - exercise 0: sleep a random delay and return it. */
#include "exercises.h"

void *wait_random(void *arg)
{
    double *max_delay = arg;
    double delay = fiber_uniform(0, *max_delay);
    int rc = fiber_sleep(delay);

    if (rc < 0)
        return fiber_fail(rc);
    *max_delay = delay;
    return max_delay;
}
