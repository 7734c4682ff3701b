/*
 * task_wait_n_as_completed.h - exercise 4 again, in the as-completed style.
 *
 *     async def task_wait_n(n: int, max_delay: int) -> List[float]:
 *         tasks = [task_wait_random(max_delay) for _ in range(n)]
 *         return [await task for task in asyncio.as_completed(tasks)]
 *
 * task_wait_n (task_wait_n.h) gives each task a fiber that awaits it; this
 * one puts the tasks that task_wait_random returns into a waitset, which
 * hands them back as they finish.
 */
#ifndef EXERCISES_TASK_WAIT_N_AS_COMPLETED_H
#define EXERCISES_TASK_WAIT_N_AS_COMPLETED_H

#include <stddef.h>

/*
 * task_wait_n_as_completed - task_wait_n, built on a waitset: start n tasks
 * with task_wait_random(max_delay) and store their delays in
 * delays[0..n) in the order the tasks finished.  Order, duration, the fine
 * print on ties and the errors are as for task_wait_n (task_wait_n.h).
 */
int task_wait_n_as_completed(size_t n, double max_delay, double *delays);

#endif
