/*
 * compact.h - compact fibers: many mostly-sleeping fibers on one run stack.
 *
 * A compact fiber has no stack of its own.  It runs on its loop's shared
 * stack; when another compact fiber needs that stack, the frames the first
 * one has in use (a few hundred bytes for a typical sleeper) are copied to
 * a buffer of its own, and copied back before it runs again.  A sleeping
 * compact fiber therefore costs its task and that buffer, about 1 KiB, where
 * a fiber with its own stack costs at least the page its frames touch.
 *
 * The shared stack holds the frames of at most one compact fiber, its
 * owner, and acts as a cache: the owner's buffer is only brought up to date
 * when another compact fiber takes the stack, so a compact fiber switching
 * with fibers that have stacks of their own copies nothing.  The copy has
 * to run off the shared stack: a switch from one compact fiber to another
 * goes through the scheduler's context, which makes the copy.
 *
 * The price, stated in fiber.h: a compact fiber's locals are at their
 * addresses only while it runs, so no other fiber or thread may be given a
 * pointer to them.
 */
#ifndef FIBER_COMPACT_H
#define FIBER_COMPACT_H

#include <stdbool.h>
#include <stddef.h>

#include "state.h"

/* Whether compact fibers can run on this machine: the switch must say where
 * a suspended context's frames begin. */
bool fiber__compact_supported(void);

/*
 * Set up compact task f: its stack is the loop's shared stack (mapped at
 * the first compact spawn), and its first frame, which starts entry, is
 * written to its buffer rather than to the stack, where another fiber's
 * frames may be.  Returns 0 or -ENOMEM.
 */
int fiber__compact_make(struct fiber_loop *loop, struct fiber_task *f,
                        void (*entry)(void));

/*
 * Put compact fiber f's frames on the shared stack, first saving those of
 * the fiber that has them there.  Must not run on the shared stack.  Out of
 * memory for the saved copy is fatal, as running out of stack is: the
 * program stops with a message.
 */
void fiber__compact_load(struct fiber_loop *loop, struct fiber_task *f);

/* Whether f's frames are on the shared stack now. */
static inline bool fiber__compact_resident(const struct fiber_loop *loop,
                                           const struct fiber_task *f)
{
    return loop->shared_owner == f;
}

/* Whether the code running now runs on the shared stack: the current
 * fiber is compact.  (While the scheduler hands over from one compact
 * fiber to another, current is already the next one, but the scheduler
 * then only copies frames and switches.) */
static inline bool fiber__compact_running(const struct fiber_loop *loop)
{
    return loop->current && loop->current->compact;
}

/*
 * Put compact fiber f's frames on the shared stack for a look at them (a
 * backtrace), if the code running now is not on that stack.  Returns
 * whether they are there.  Which fiber's frames are on the stack changes
 * nothing a fiber can see, so this may be done at any time.
 */
static inline bool fiber__compact_bring_in(const struct fiber_loop *loop,
                                           const struct fiber_task *f)
{
    if (fiber__compact_resident(loop, f) || f == loop->current)
        return true;
    if (fiber__compact_running(loop))
        return false;
    fiber__compact_load((struct fiber_loop *)loop, (struct fiber_task *)f);
    return true;
}

/* Bytes of stack the suspended compact fiber f has in use. */
size_t fiber__compact_frames_size(const struct fiber_task *f);

/*
 * A compact task, or NULL, with its frames buffer just after it, as large
 * as the frames the last compact fiber saved: fibers spawned together
 * mostly stop at the same depth, so one allocation serves both, and
 * resuming a fiber reads task and frames from neighbouring lines.  Frames
 * that outgrow it move to a buffer of their own.  Tasks are carved from
 * slabs of the loop's, never freed one by one: a finished compact task
 * waits in loop->compact_free for the next compact spawn, and the slabs
 * go when the loop ends (fiber__compact_tasks_free).
 */
struct fiber_task *fiber__compact_task_new(struct fiber_loop *loop);

/* Free every compact task of the loop, all in loop->compact_free, and
 * their frames. */
void fiber__compact_tasks_free(struct fiber_loop *loop);

/*
 * Ask for the lines of task f, which waking it and switching to it read:
 * the fiber after the one about to run, among a million, is otherwise a
 * string of cache misses when its turn comes.  Its frames are asked for
 * apart, once these lines are in (task_memory.h).
 */
static inline void fiber__task_prefetch(const struct fiber_task *f)
{
    const char *p = (const char *)f;

    for (size_t at = 0; at < sizeof(*f); at += 64)
        __builtin_prefetch(p + at, 1);
}

#endif
