/* wait_n.c - exercise 1: wait_random n times at once; the delays come back
 * in the order the calls complete, which is ascending without sorting. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "exercises.h"

void *wait_n(void *arg)
{
    const struct wait_n_args *a = arg;
    /* The list, then a slot for each call: max_delay in, its delay out. */
    double *delays = calloc(a->n ? a->n : 1, 2 * sizeof(double));
    fiber_waitset_t *tasks = NULL;
    fiber_task_t *task;
    void *delay;
    int status, rc = delays ? fiber_waitset_create(&tasks) : -ENOMEM;

    /* tasks = [wait_random(max_delay) for _ in range(n)] */
    for (size_t i = 0; i < a->n && rc == 0; i++) {
        delays[a->n + i] = a->max_delay;
        rc = fiber_spawn(&task, wait_random, &delays[a->n + i], NULL);
        if (rc == 0)
            rc = fiber_waitset_add(tasks, task);
    }
    /* for task in asyncio.as_completed(tasks): delays.append(await task) */
    for (size_t i = 0; i < a->n && rc == 0; i++) {
        rc = fiber_waitset_next(tasks, INFINITY, &task);
        if (rc == 0)
            rc = fiber_await(task, &delay, &status);
        if (rc == 0)
            rc = status;
        if (rc == 0)
            delays[i] = *(double *)delay;
    }
    fiber_waitset_destroy(tasks);   /* after a failure, ends those left */
    if (rc == 0)
        return delays;
    free(delays);
    return fiber_fail(rc);
}
