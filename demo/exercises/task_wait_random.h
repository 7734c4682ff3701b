/*
 * task_wait_random.h - exercise 3 of the course: tasks.
 *
 *     def task_wait_random(max_delay: int) -> asyncio.Task
 *
 * is a regular function, not a coroutine: it starts wait_random as a task
 * and returns the task at once, for the caller to await later.
 */
#ifndef EXERCISES_TASK_WAIT_RANDOM_H
#define EXERCISES_TASK_WAIT_RANDOM_H

#include "fiber.h"

/*
 * task_wait_random - start a task that runs wait_random(max_delay) and
 * store its handle in *task.  Nothing blocks: the task starts at the
 * caller's next blocking call.
 *
 * The delay is delivered through caller-owned storage rather than a heap
 * block, so that there is nothing to free and nothing to leak, whether the
 * task is awaited, cancelled or left to the loop.  *delay carries max_delay
 * to the task, and when the task finishes with status 0 it has stored its
 * delay there, and its result (from
 * fiber_await or fiber_result) is delay itself.  *delay must therefore stay
 * valid until the task has finished.  On failure the task stores NaN and
 * its status is wait_random's error (-ECANCELED when cancelled).  The
 * handle is the caller's, to await as any other.
 *
 * Must be called from a fiber.  Returns 0; -EINVAL if delay or task is
 * NULL, or max_delay is negative, NaN or infinite; -EPERM outside a fiber;
 * -ENOMEM (fiber_spawn's errors; *task is then left untouched).
 */
int task_wait_random(double max_delay, double *delay, fiber_task_t **task);

#endif
