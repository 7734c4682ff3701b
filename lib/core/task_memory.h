/*
 * task_memory.h - where tasks come from and go back to.  A task with a
 * stack of its own lives at the top of its stack mapping; a compact task
 * (compact.h) comes from the compact slabs.  Finished tasks are kept for
 * the next spawn of their kind.  The loop decides when; this module only
 * hands memory out and takes it back.  What every spawn and every return
 * runs is inline here; making a new mapping is in task_memory.c.
 */
#ifndef FIBER_TASK_MEMORY_H
#define FIBER_TASK_MEMORY_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compact.h"
#include "sanitizers.h"
#include "stack.h"
#include "state.h"

/*
 * A task lives at the top of its own stack mapping, above the part the
 * fiber runs on.  The page holding it is touched by the fiber's first
 * frames anyway, so a sleeping fiber costs one page in all, and freeing a
 * task hands stack and task back together: to the loop's list of free
 * default-size tasks, which the next default spawn takes as they are, or
 * for other sizes to the stack pool.
 */
#define FIBER__TASK_AREA (((sizeof(struct fiber_task) + 63) / 64) * 64)

/* Clear a task, all but its saved context, which is made anew, from
 * there up to end: FIBER__KEEP_FRAMES keeps a compact task's frame buffer, which
 * is reused; sizeof(struct fiber_task) empties it too, for a slot that
 * held an old task.  Inlined, so that end is a constant. */
#define FIBER__KEEP_FRAMES offsetof(struct fiber_task, frames)
_Static_assert(FIBER__KEEP_FRAMES % 16 == 0 &&
               offsetof(struct fiber_task, frames_cap) + sizeof(size_t) ==
               sizeof(struct fiber_task),
               "the frame buffer ends the task, in its own 16 bytes");

static inline __attribute__((always_inline)) void fiber__task_clear(struct fiber_task *f,
                                                                    size_t end_at)
{
    /* Sixteen bytes a store: memset of this constant size becomes a
     * rep stos, whose start-up costs more than the whole loop. */
    typedef uint64_t words __attribute__((vector_size(16), may_alias));
    _Static_assert(sizeof(*f) % 16 == 0 && sizeof(f->ctx) % 16 == 0,
                   "a task clears in 16-byte stores");
    words *w = (words *)(void *)((char *)f + sizeof(f->ctx));
    words *end = (words *)(void *)((char *)f + end_at);
#pragma GCC unroll 32
    while (w < end)
        *w++ = (words){0, 0};
}

/* How many bytes of a fiber's frames are asked for ahead of its turn:
 * those of a fiber stopped in a blocking call fit. */
#define FIBER__FRAMES_PREFETCH 256

/*
 * Ask for the lines of f's frames, with f's own lines already asked for
 * and, best, in: it reads where they are.  A compact fiber's are in its
 * buffer; another's at the top of its stack, just below the task.  (The
 * lines after a task with a stack of its own are the next slot's guard
 * page, whose address the processor would walk the page tables for.)
 */
static inline void fiber__frames_prefetch(const struct fiber_task *f)
{
    const char *low = f->compact ? (const char *)f->frames
                                 : (const char *)f - FIBER__FRAMES_PREFETCH;

    for (size_t at = 0; at < FIBER__FRAMES_PREFETCH; at += 64)
        __builtin_prefetch(low + at);
}

/* A task and its stack of usable bytes in a slot of its own, or NULL with
 * *rc set. */
struct fiber_task *fiber__task_map(struct fiber_loop *loop, size_t usable,
                                   int *rc);

/* Hand an unlinked task's memory, its stack with it, back for reuse. */
static inline void fiber__release_task(struct fiber_loop *loop,
                                       struct fiber_task *f)
{
    if (f->compact) {
        /* Kept with its frame buffer for the next compact spawn. */
        if (loop->shared_owner == f)
            loop->shared_owner = NULL;
        f->next_free = loop->compact_free;
        loop->compact_free = f;
        return;
    }
    if (f->stack.size == loop->default_usable) {
        /* Reused as it is: an abandoned fiber's frames must go. */
        fiber__asan_forget(f->stack.base, f->stack.size);
        f->next_free = loop->task_free;
        loop->task_free = f;
        return;
    }
    struct fiber__stack slot = {f->slot_base, f->slot_size};

    fiber__stack_release(&loop->stacks, &slot);
}

/* A compact task: it has no stack of its own, so it comes from the heap,
 * or from those of finished compact fibers. */
static inline struct fiber_task *fiber__task_alloc_compact(struct fiber_loop *loop,
                                                           int *rc)
{
    struct fiber_task *f = loop->compact_free;

    if (f) {
        loop->compact_free = f->next_free;
    } else {
        f = fiber__compact_task_new(loop);
        if (!f) {
            *rc = -ENOMEM;
            return NULL;
        }
    }
    fiber__task_clear(f, FIBER__KEEP_FRAMES);
    return f;
}

/* A task of the default stack size that ran before: its stack and slot
 * stay as they were, as does its frame buffer, always empty here. */
static inline struct fiber_task *fiber__task_reuse(struct fiber_loop *loop)
{
    struct fiber_task *f = loop->task_free;
    struct fiber__stack stack = f->stack;
    void *slot_base = f->slot_base;
    size_t slot_size = f->slot_size;

    loop->task_free = f->next_free;
    fiber__task_clear(f, FIBER__KEEP_FRAMES);
    f->stack = stack;
    f->slot_base = slot_base;
    f->slot_size = slot_size;
    return f;
}

/*
 * A cleared task with a stack of stack_size usable bytes (compact: none,
 * it runs on the loop's shared stack), or NULL with *rc set (-ENOMEM).
 */
static inline struct fiber_task *fiber__task_alloc(struct fiber_loop *loop,
                                                   size_t stack_size,
                                                   bool compact, int *rc)
{
    if (compact)
        return fiber__task_alloc_compact(loop, rc);
    size_t usable = fiber__stack_round(&loop->stacks, stack_size);
    if (usable == loop->default_usable && loop->task_free)
        return fiber__task_reuse(loop);
    return fiber__task_map(loop, usable, rc);
}

#endif
