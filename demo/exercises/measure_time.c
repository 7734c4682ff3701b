/* measure_time.c - exercise 2: how long a whole run of wait_n takes, per
 * call, on the loop's clock. */
#include <errno.h>
#include <stdlib.h>

#include "exercises.h"

double measure_time(size_t n, double max_delay)
{
    void *delays = NULL;
    int status = 0;

    if (n == 0)
        return -EINVAL;   /* no time per call: Python's ZeroDivisionError */
    int rc = fiber_run(wait_n, &(struct wait_n_args){n, max_delay},
                       &loop_options, &delays, &status);
    free(delays);
    if (rc == 0)
        rc = status;
    return rc < 0 ? rc : (double)fiber_elapsed_ns() / 1e9 / (double)n;
}
