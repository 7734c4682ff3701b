/*
 * task_wait_n.h - exercise 4 of the course: wait_n again, with tasks.
 *
 *     async def task_wait_n(n: int, max_delay: int) -> List[float]
 *
 * is wait_n with task_wait_random in place of wait_random: n tasks run
 * concurrently and their delays come back in the order they completed,
 * ascending, without sorting.
 */
#ifndef EXERCISES_TASK_WAIT_N_H
#define EXERCISES_TASK_WAIT_N_H

#include <stddef.h>

/*
 * task_wait_n - start n tasks with task_wait_random(max_delay), wait for
 * all of them and store their delays in delays[0..n), in the order the
 * tasks finished.
 *
 * Each task is awaited by a fiber of its own that appends the task's delay
 * as soon as it finishes, which is what asyncio.as_completed does for the
 * course's version.  Order, duration and the fine print on ties are as for
 * wait_n (see wait_n.h).
 *
 * Must be called from a fiber; n = 0 returns 0 at once.  On failure the
 * contents of delays are unspecified; every task started has finished and
 * everything allocated is freed.  Returns 0; -EINVAL if delays is NULL
 * (with n > 0) or max_delay is negative, NaN or infinite; -EPERM outside a
 * fiber; -ENOMEM; -ECANCELED if the caller, or one of the tasks, was
 * cancelled.
 */
int task_wait_n(size_t n, double max_delay, double *delays);

#endif
