/*
 * task_memory.c - a new slot for a task: its stack mapping, with the task
 * at the top (task_memory.h has the rest, which every spawn runs).
 */
#include "config.h"

#include "task_memory.h"

/* A task and its stack of usable bytes in a slot of its own, or NULL with
 * *rc set. */
struct fiber_task *fiber__task_map(struct fiber_loop *loop, size_t usable, int *rc)
{
    struct fiber__stack slot;

    if (usable == 0 || usable > SIZE_MAX - FIBER__TASK_AREA) {
        *rc = -ENOMEM;
        return NULL;
    }
    *rc = fiber__stack_alloc(&loop->stacks, usable + FIBER__TASK_AREA, &slot);
    if (*rc < 0)
        return NULL;
    char *task_at = (char *)slot.base + slot.size - FIBER__TASK_AREA;
    struct fiber_task *f = (struct fiber_task *)(void *)task_at;
    /* A reused slot holds an old task: its frame buffer goes too. */
    fiber__task_clear(f, sizeof(*f));
    /* The fiber runs on exactly the size asked for, just below the task;
     * what page rounding leaves over lies between it and the guard. */
    f->stack.base = task_at - usable;
    f->stack.size = usable;
    f->slot_base = slot.base;
    f->slot_size = slot.size;
    return f;
}
