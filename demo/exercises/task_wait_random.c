/* task_wait_random.c - exercise 3: wait_random as a task, started at once. */
#include "exercises.h"

int task_wait_random(double *max_delay, fiber_task_t **task)
{
    return fiber_spawn(task, wait_random, max_delay, NULL);
}
