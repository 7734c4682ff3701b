/*
 * measure_time.h - exercise 2 of the course: measuring the runtime.
 *
 *     def measure_time(n: int, max_delay: int) -> float
 *
 * times wait_n(n, max_delay) and returns the time per call, total / n.
 * The n calls run concurrently, so the total is the longest delay, not the
 * sum, and the time per call shrinks as n grows.
 */
#ifndef EXERCISES_MEASURE_TIME_H
#define EXERCISES_MEASURE_TIME_H

#include <stddef.h>

/*
 * measure_time - run wait_n(n, max_delay) and store in *per_call the time
 * it took on the loop clock, in seconds, divided by n.
 *
 * Unlike the course's version, which starts its own event loop, this one
 * runs inside the caller's loop, so that it can be timed on that loop's
 * clock: under the virtual clock the result is exact, the longest delay
 * rounded up to the nanosecond, divided by n, and no real time passes.
 *
 * Must be called from a fiber.  Returns 0; -EINVAL if per_call is NULL,
 * n is 0 (no time per call to speak of) or max_delay is not a finite
 * non-negative number; otherwise the errors of wait_n (-EPERM, -ENOMEM,
 * -ECANCELED).
 */
int measure_time(size_t n, double max_delay, double *per_call);

#endif
