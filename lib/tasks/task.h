/*
 * task.h - awaiting, shared by fiber_await and fiber_gather.
 */
#ifndef FIBER_TASK_H
#define FIBER_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fiber.h"
#include "state.h"

struct fiber_task;

/* 0 if the running fiber self may await t, else the error to return. */
int fiber__check_awaitable(const struct fiber_task *self,
                           const struct fiber_task *t);

/* fiber__check_awaitable for every one of n tasks, none NULL, and none
 * listed twice (-EINVAL); nothing is changed when it fails.  With claim,
 * each task is then claimed for self, which gathers them: nobody else may
 * await or detach one meanwhile. */
int fiber__check_awaitable_all(struct fiber_task *self,
                               fiber_task_t *const tasks[], size_t n,
                               bool claim);

/* Ask for the lines of tasks[i + FIBER__TASKS_AHEAD] that checking and
 * reaping it read.  A walk over a million tasks is a cache miss a task,
 * and with stacks of their own a TLB miss too, each waited for in turn
 * unless asked for ahead. */
#define FIBER__TASKS_AHEAD 8
static inline void fiber__prefetch_task_ahead(fiber_task_t *const tasks[],
                                              size_t i, size_t n)
{
    if (n - i > FIBER__TASKS_AHEAD) {
        const char *t = (const char *)tasks[i + FIBER__TASKS_AHEAD];
        __builtin_prefetch(t + offsetof(struct fiber_task, loop), 1);
        __builtin_prefetch(t + offsetof(struct fiber_task, waiter), 1);
        __builtin_prefetch(t + offsetof(struct fiber_task, status), 1);
        __builtin_prefetch(t + offsetof(struct fiber_task, collector));
    }
}

/* Await t until deadline (FIBER__FOREVER for none), for the public call
 * api; see fiber_wait_for. */
int fiber__await(struct fiber_task *t, int64_t deadline, void **result,
                 int *status, const char *api);

#endif
