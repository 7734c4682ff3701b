/*
 * task.h - awaiting, shared by fiber_await and fiber_gather.
 */
#ifndef FIBER_TASK_H
#define FIBER_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "fiber.h"

struct fiber_task;

/* 0 if the running fiber self may await t, else the error to return. */
int fiber__check_awaitable(const struct fiber_task *self,
                           const struct fiber_task *t);

/* fiber__check_awaitable for every one of n tasks, none NULL, and none
 * listed twice (-EINVAL); nothing is changed when it fails. */
int fiber__check_awaitable_all(struct fiber_task *self,
                               fiber_task_t *const tasks[], size_t n);

/* Claim each of n tasks for self, which gathers them: nobody else may
 * await or detach one meanwhile. */
void fiber__claim_all(struct fiber_task *self, fiber_task_t *const tasks[],
                      size_t n);

/* Await t until deadline (FIBER__FOREVER for none), for the public call
 * api; see fiber_wait_for. */
int fiber__await(struct fiber_task *t, int64_t deadline, void **result,
                 int *status, const char *api);

#endif
