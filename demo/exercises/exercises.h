/*
 * exercises.h - the five exercises of the course "Python - Async", in C.
 * An `async def` is a fiber function: its result a void *, its error a
 * negative errno given to fiber_fail.  A plain `def` is a plain function.
 */
#ifndef EXERCISES_H
#define EXERCISES_H

#include <stddef.h>

#include "fiber.h"

/* async def wait_random(max_delay: int = 10) -> float: sleep a random delay
 * of up to max_delay seconds.  arg points to a double holding max_delay,
 * where the delay is left; the result is arg. */
void *wait_random(void *arg);

/* The arguments of wait_n and task_wait_n. */
struct wait_n_args {
    size_t n;
    double max_delay;
};

/* async def wait_n(n: int, max_delay: int) -> List[float]: n wait_random at
 * once.  arg is a struct wait_n_args; the result is an array of the n
 * delays in the order they completed, for the caller to free. */
void *wait_n(void *arg);

/* def measure_time(n: int, max_delay: int) -> float: the time that
 * asyncio.run(wait_n(n, max_delay)) took on its loop clock, divided by n;
 * a negative errno on failure. */
double measure_time(size_t n, double max_delay);

/* def task_wait_random(max_delay: int) -> asyncio.Task: start wait_random
 * (see above for *max_delay, which must outlive the task) as a task, in
 * *task.  Returns 0 or fiber_spawn's negative errno. */
int task_wait_random(double *max_delay, fiber_task_t **task);

/* async def task_wait_n(n: int, max_delay: int) -> List[float]: wait_n
 * with task_wait_random in place of wait_random. */
void *task_wait_n(void *arg);

/* The options of the loop measure_time runs, as of every loop the demos
 * run: all zero (the clock FIBER_CLOCK says) unless a demo's --timeline or
 * a test sets them. */
extern fiber_options_t loop_options;

#endif
