/*
 * wait_random.h - exercise 0 of the course: the basic syntax of a
 * coroutine.  Python's
 *
 *     async def wait_random(max_delay: int = 10) -> float:
 *         delay = random.uniform(0, max_delay)
 *         await asyncio.sleep(delay)
 *         return delay
 *
 * becomes a function that a fiber calls and that blocks that fiber only.
 */
#ifndef EXERCISES_WAIT_RANDOM_H
#define EXERCISES_WAIT_RANDOM_H

/* The course's default max_delay. */
#define WAIT_RANDOM_DEFAULT_MAX_DELAY 10.0

/*
 * wait_random - sleep for a delay drawn uniformly from [0, max_delay]
 * seconds (fiber_uniform) and store that delay in *delay.
 *
 * Must be called from a fiber; other fibers run while it sleeps.  *delay is
 * written only on success.  Returns 0; -EINVAL if delay is NULL or
 * max_delay is negative, NaN or infinite; -EPERM outside a fiber;
 * -ECANCELED if the calling fiber is cancelled (fiber_sleep's errors).
 */
int wait_random(double max_delay, double *delay);

#endif
