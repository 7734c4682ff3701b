/*
 * wait_n.h - exercise 1 of the course: running coroutines concurrently.
 *
 *     async def wait_n(n: int, max_delay: int) -> List[float]
 *
 * spawns wait_random n times and returns the delays in the order the
 * calls completed, which is ascending without any sorting: every call
 * starts at the same moment, and the loop wakes sleepers in deadline order.
 */
#ifndef EXERCISES_WAIT_N_H
#define EXERCISES_WAIT_N_H

#include <stddef.h>

/*
 * wait_n - run wait_random(max_delay) in n fibers at once, wait for all of
 * them and store their delays in delays[0..n), in the order they finished.
 *
 * The whole call takes about max_delay seconds, not n times as long.
 * Under the virtual clock every call starts at the same instant, so the
 * delays come out ascending.  The loop clock counts whole nanoseconds, so
 * two delays less than a nanosecond apart wake together, in spawn order,
 * and may come out swapped.  Under the real clock each call starts a
 * little after the previous one, so delays closer together than the time
 * it took to start them all may come out swapped too.
 *
 * Must be called from a fiber; n = 0 returns 0 at once.  On failure the
 * contents of delays are unspecified; every fiber started has finished and
 * everything allocated is freed.  Returns 0; -EINVAL if delays is NULL
 * (with n > 0) or max_delay is negative, NaN or infinite; -EPERM outside a
 * fiber; -ENOMEM; -ECANCELED if the caller, or one of the fibers, was
 * cancelled.
 */
int wait_n(size_t n, double max_delay, double *delays);

#endif
