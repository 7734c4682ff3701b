/*
 * wait_n_as_completed.h - exercise 1 again, in the as-completed style.
 *
 *     async def wait_n(n: int, max_delay: int) -> List[float]:
 *         return [await coro for coro in
 *                 asyncio.as_completed([wait_random(max_delay)
 *                                       for _ in range(n)])]
 *
 * wait_n (wait_n.h) has each fiber append its own delay as it wakes; this
 * one lets a waitset hand the finished fibers back in completion order and
 * appends their delays itself.  Both give the very same list.
 */
#ifndef EXERCISES_WAIT_N_AS_COMPLETED_H
#define EXERCISES_WAIT_N_AS_COMPLETED_H

#include <stddef.h>

#include "fiber.h"

/*
 * wait_n_as_completed - wait_n, built on a waitset: run wait_random(max_delay)
 * in n fibers at once and store their delays in delays[0..n) in the order
 * they finished, ascending without sorting.  Order, duration and the fine
 * print on ties are as for wait_n (see wait_n.h).
 *
 * Must be called from a fiber; n = 0 returns 0 at once.  On failure the
 * contents of delays are unspecified; every fiber started has finished and
 * everything allocated is freed.  Returns 0; -EINVAL if delays is NULL
 * (with n > 0) or max_delay is negative, NaN or infinite; -EPERM outside a
 * fiber; -ENOMEM; -ECANCELED if the caller, or one of the fibers, was
 * cancelled.
 */
int wait_n_as_completed(size_t n, double max_delay, double *delays);

/*
 * delays_as_completed - take n tasks out of set as they finish and store
 * their delays in delays[0..n), in that order.  Each task's result must
 * point to its delay (a double), as wait_random's tasks' results do.
 *
 * Returns 0 once n tasks have been taken and consumed, or the first error:
 * fiber_waitset_next's, or a task's failed status.  The tasks not taken
 * stay in the set, for fiber_waitset_destroy to cancel and reap.
 */
int delays_as_completed(fiber_waitset_t *set, size_t n, double *delays);

#endif
