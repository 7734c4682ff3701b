/*
 * loop.h - the loop and the fiber control block, shared by the modules of
 * the library.  Nothing here is public.
 */
#ifndef FIBER_LOOP_H
#define FIBER_LOOP_H

#include "fiber.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "context.h"
#include "stack.h"
#include "timer_heap.h"
#include "waitq.h"

enum fiber__state {
    FIBER__READY,     /* in the run queue */
    FIBER__RUNNING,   /* the loop's current fiber */
    FIBER__SLEEPING,  /* in fiber_sleep*, maybe in the timer heap */
    FIBER__AWAITING,  /* waiting for another task to finish */
    FIBER__WAITING,   /* on a wait queue or a file descriptor */
    FIBER__DONE,      /* returned; only the handle remains */
};

struct fiber_task {
    struct fiber__context ctx;
    struct fiber_loop *loop;
    fiber_fn fn;
    void *arg;
    void *result;
    int status;            /* final status, valid once DONE */
    int fail_status;       /* set by fiber_fail, 0 if none */
    int wake_result;       /* what the blocking call returns on resume */
    int saved_errno;
    enum fiber__state state;
    bool cancel_requested;
    bool cancel_delivered; /* a blocking call returned -ECANCELED */
    /* A cancel came before the fiber ran or while it ran, and it has made
     * no blocking call since: if it returns so, it ends cancelled, as an
     * asyncio task whose cancel could not be thrown in yet. */
    bool cancel_unseen;
    bool cancellable;      /* a cancel may interrupt the current wait */
    bool detached;
    bool is_main;
    bool marked;           /* scratch bit for fiber_gather's checks */
    bool compact;          /* runs on the loop's shared stack (compact.h) */
    uint64_t id;
    struct fiber__timer timer;
    struct fiber__stack stack;       /* the part the fiber runs on */
    void *slot_base;                 /* the whole mapping: stack and task */
    size_t slot_size;
    /* A compact fiber's frames while they are off the shared stack. */
    void *frames;
    size_t frames_len, frames_cap;
    struct fiber_task *next_ready;   /* run queue link */
    struct fiber_task *waiter;       /* the fiber awaiting this one */
    struct fiber_task *awaiting;     /* the task this one awaits */
    struct fiber_task *claimed_by;   /* the fiber gathering this one */
    struct fiber__waitq *waitq;      /* the queue this one waits on */
    struct fiber_task *wq_prev, *wq_next;
    const char *wait_what;           /* what a WAITING fiber waits for */
    void *wait_item;                 /* a queue item handed to or from it */
    struct fiber_task *all_prev, *all_next;  /* every task of the loop */
    /* Structured concurrency (scope.h, collector.h): the innermost timeout
     * scope entered; the group or waitset that owns this task, with its
     * list links; the groups and waitsets this fiber created. */
    struct fiber_scope *scope;
    unsigned shields;              /* shielded scopes among them */
    struct fiber__collector *collector;
    struct fiber_task *coll_prev, *coll_next, *done_next;
    struct fiber__collector *owned;
    /* Empty until first asked for when no name was given: formatting
     * "Task-<id>" at every spawn would cost more than the spawn. */
    char name[FIBER_NAME_MAX + 1];
    /* Debug mode's marks (see debug.h): whether the handle is live or
     * consumed, and what it noticed about the task. */
    uint32_t debug_magic, debug_flags;
};

struct fiber_loop {
    struct fiber__context sched_ctx;  /* the thread's context in fiber_run */
    struct fiber_task *current;       /* NULL while the scheduler runs */
    struct fiber_task *ready_head, *ready_tail;
    size_t nready;
    /* Fibers may hand over to each other directly this many more times
     * before the scheduler must look at timers again. */
    size_t round_left;
    /* Dispatches left before the clock is read again within a round, and
     * the last fiber that a timer woke still in the run queue: fibers
     * woken within a round go ahead of the rest, after those woken before
     * them, so that they still run in deadline order. */
    unsigned timer_countdown;
    struct fiber_task *woken_tail;
    struct fiber__timer_heap timers;
    struct fiber__clock clock;
    struct fiber__stack_pool stacks;
    size_t stack_size;
    /* Finished tasks whose stacks have the default usable size, linked
     * through next_ready: the next default spawn takes one as it is,
     * without asking the stack pool. */
    struct fiber_task *task_free;
    size_t default_usable;
    struct fiber_task *all_head;  /* every task not yet freed */
    size_t nalive;                /* tasks not DONE */
    struct fiber_task *zombie;    /* finished; its stack awaits release */
    /* Compact fibers (compact.h): the stack they share, the one whose
     * frames are on it, the one the scheduler must load and run next, and
     * finished compact tasks kept for reuse. */
    struct fiber__stack shared_stack;
    struct fiber_task *shared_owner;
    struct fiber_task *handoff;
    struct fiber_task *compact_free;
    size_t compact_hint;          /* bytes of frames last saved */
    struct fiber_task *main;
    uint64_t next_id;
    /* This loop's number among the loops the process has run, from 1:
     * with a task's id, an identity never reused (a mutex's owner). */
    uint64_t serial;
    bool main_done;
    bool shutting_down;           /* every live fiber has been cancelled */
    bool observed;                /* call the observe.h hooks */
    int *errno_at;                /* this thread's errno */
    struct fiber__poller *poller; /* NULL until a fiber first waits on I/O */
    struct fiber__debug *debug;   /* debugging aids (debug.h); NULL if none */
};

/* The loop running on this thread, or NULL.  initial-exec: read with one
 * instruction, not a call to __tls_get_addr, even from the shared library. */
extern _Thread_local struct fiber_loop *fiber__loop
    __attribute__((tls_model("initial-exec")));

/* The running fiber, or NULL outside one. */
static inline struct fiber_task *fiber__current(void)
{
    return fiber__loop ? fiber__loop->current : NULL;
}

/* Append f to the run queue. */
static inline void fiber__ready_push(struct fiber_loop *loop,
                                     struct fiber_task *f)
{
    f->next_ready = NULL;
    if (loop->ready_tail)
        loop->ready_tail->next_ready = f;
    else
        loop->ready_head = f;
    loop->ready_tail = f;
    loop->nready++;
}

/* Make a blocked or new fiber ready, with the result its blocking call
 * will return. */
static inline void fiber__make_ready(struct fiber_loop *loop,
                                     struct fiber_task *f, int wake_result)
{
    f->state = FIBER__READY;
    f->wake_result = wake_result;
    f->cancellable = false;
    fiber__ready_push(loop, f);
}

/*
 * Suspend the running fiber, whose state the caller has set (ready, sleeping
 * or awaiting, with a timer if it has a deadline), and run others until it
 * is made ready again.  Returns its wake result.  Only fiber__block tells
 * whom a -ECANCELED wake-up is for (the fiber or one of its scopes).
 */
int fiber__suspend(struct fiber_loop *loop);

/* Wake a blocked fiber early: take it out of the heap and any wait. */
void fiber__wake(struct fiber_loop *loop, struct fiber_task *f, int result);

/* Request cancellation of f; wake it if its wait is cancellable. */
int fiber__cancel(struct fiber_loop *loop, struct fiber_task *f);

/* Create a task and queue it.  Returns 0 or a negative errno. */
int fiber__spawn(struct fiber_loop *loop, struct fiber_task **out, fiber_fn fn,
                 void *arg, const fiber_attr_t *attr);

/* Unlink a finished task from the loop and free it. */
void fiber__free_task(struct fiber_loop *loop, struct fiber_task *f);

/* Hand an unlinked task's memory, its stack with it, back for reuse. */
void fiber__release_task(struct fiber_loop *loop, struct fiber_task *f);

/*
 * A call that only a fiber may make, made outside one, or one that needs a
 * running loop, made outside any: reported in debug mode (FIBER_DEBUG=1
 * when no loop runs on this thread; see debug.c).  Return -EPERM.
 */
int fiber__outside_fiber(const char *api) __attribute__((cold));
int fiber__outside_loop(const char *api) __attribute__((cold));

/*
 * The entry check of every public call that only a fiber may make: the
 * running fiber, or NULL outside one, reported in debug mode (the caller
 * returns -EPERM then).  One test in the common case; the report is out of
 * line.
 */
static inline struct fiber_task *fiber__enter_fiber(const char *api)
{
    struct fiber_task *self = fiber__current();

    if (__builtin_expect(!self, 0))
        fiber__outside_fiber(api);
    return self;
}

/* The same for the calls that need a running loop but no fiber (cancels,
 * dumps): the loop, or NULL, reported in debug mode. */
static inline struct fiber_loop *fiber__enter_loop(const char *api)
{
    struct fiber_loop *loop = fiber__loop;

    if (__builtin_expect(!loop, 0))
        fiber__outside_loop(api);
    return loop;
}

/*
 * The check at the start of every blocking call: returns -ECANCELED (and
 * marks it delivered) if the running fiber self has a pending cancellation
 * that no shield hides, else the error of the outermost of its timeout
 * scopes that is cancelled (-ECANCELED) or past its deadline (-ETIMEDOUT),
 * else 0.  See scope.h.
 */
int fiber__enter_blocking_slow(struct fiber_task *self);

static inline int fiber__enter_blocking(struct fiber_task *self)
{
    /* One test in the common case: no cancel, no timeout scope.  (A cancel
     * not yet seen is a cancel requested: the slow path clears it.) */
    if (!self->cancel_requested && !self->scope)
        return 0;
    return fiber__enter_blocking_slow(self);
}

/*
 * Block the running fiber in state (SLEEPING, AWAITING or WAITING, with
 * whatever links the caller has set) until it is woken, or until deadline
 * (FIBER__FOREVER for none).  A cancel wakes it.  Returns the wake result:
 * the waker's, or -ETIMEDOUT when the deadline passed (0 for a sleep, whose
 * deadline is its purpose), or -ECANCELED.  The fiber's timeout scopes
 * take part: one whose deadline comes strictly before deadline ends the
 * wait then with -ETIMEDOUT (a sleep too), and cancelling one wakes it
 * with -ECANCELED, unless a shield stands in between.  early is how far
 * below deadline the time asked for lay, in 2^-64 ns (timer_heap.h): it
 * orders fibers whose deadlines round to the same nanosecond.
 */
int fiber__block_early(struct fiber_loop *loop, enum fiber__state state,
                       int64_t deadline, uint64_t early);

/* The same, for a deadline that is exactly what was asked for. */
static inline int fiber__block(struct fiber_loop *loop,
                               enum fiber__state state, int64_t deadline)
{
    return fiber__block_early(loop, state, deadline, 0);
}

/* The task's name, formatted on first use if it was not given. */
const char *fiber__task_name(const struct fiber_task *f);

const char *fiber__state_name(enum fiber__state state);

/* Where every fiber starts: backtraces stop at this trampoline, and a
 * saved context still pointing at it belongs to a fiber that never ran. */
extern void (*const fiber__entry_point)(void);

#endif
