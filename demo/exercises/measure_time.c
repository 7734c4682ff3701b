/*
 * measure_time.c - time wait_n on the loop clock.  See measure_time.h.
 */
#include "measure_time.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "fiber.h"
#include "wait_n.h"

int measure_time(size_t n, double max_delay, double *per_call)
{
    if (!per_call || n == 0)
        return -EINVAL;
    if (n > SIZE_MAX / sizeof(double))
        return -ENOMEM;
    double *delays = malloc(n * sizeof(*delays));
    if (!delays)
        return -ENOMEM;

    /* Whole nanoseconds subtract exactly; the loop clock's readings in
     * seconds are large numbers whose difference would lose digits. */
    int64_t start = fiber_now_ns();
    int rc = wait_n(n, max_delay, delays);
    int64_t elapsed = fiber_now_ns() - start;
    free(delays);
    if (rc < 0)
        return rc;
    *per_call = (double)elapsed / 1e9 / (double)n;
    return 0;
}
