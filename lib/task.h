/*
 * task.h - awaiting, shared by fiber_await and fiber_gather.
 */
#ifndef FIBER_TASK_H
#define FIBER_TASK_H

#include <stdint.h>

struct fiber_task;

/* 0 if the running fiber self may await t, else the error to return. */
int fiber__check_awaitable(const struct fiber_task *self,
                           const struct fiber_task *t);

/* Await t until deadline (FIBER__FOREVER for none); see fiber_wait_for. */
int fiber__await(struct fiber_task *t, int64_t deadline, void **result,
                 int *status);

#endif
