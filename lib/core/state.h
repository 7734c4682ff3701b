/*
 * state.h - the state of a loop and of each of its fibers: struct
 * fiber_loop and struct fiber_task, the data the modules of the library
 * share.  What the loop does with them is in loop.h; this header holds
 * the layout alone, so that the parts of the core the loop calls (compact
 * fibers) can read it without standing on the loop.  Nothing here is
 * public.
 */
#ifndef FIBER_STATE_H
#define FIBER_STATE_H

#include "fiber.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clock.h"
#include "context.h"
#include "list.h"
#include "stack.h"
#include "timer_heap.h"

struct fiber__collector;
struct fiber__collector_hooks;
struct fiber__debug;
struct fiber__ext;
struct fiber__hooks;
struct fiber__poller;
struct fiber__waitq;
struct fiber_loop;

enum fiber__state {
    FIBER__READY,     /* in the run queue */
    FIBER__RUNNING,   /* the loop's current fiber */
    FIBER__SLEEPING,  /* in fiber_sleep*, maybe in the timer heap */
    FIBER__AWAITING,  /* waiting for another task to finish */
    FIBER__WAITING,   /* on a wait queue or a file descriptor */
    FIBER__DONE,      /* returned; only the handle remains */
};

/*
 * A fiber's control block.  Its fields are grouped by the module that
 * writes them: each group opens with a comment naming its owner, and
 * tests/owners.py fails when another module writes one (a few known
 * exceptions are listed there).  The order also keeps together what a
 * switch touches: the state, the run-queue link and the errno share the
 * cache line where the context ends; the timer, the wait and the scopes
 * fill the next one.
 */
struct fiber_task {
    /* Owner: loop.  Scheduling: what a switch and a wake-up touch. */
    struct fiber__context ctx;
    struct fiber_loop *loop;
    enum fiber__state state;
    int wake_result;       /* what the blocking call returns on resume */
    int saved_errno;
    bool cancel_requested;
    bool cancel_delivered; /* a blocking call returned -ECANCELED */
    /* A cancel came before the fiber ran or while it ran, and it has made
     * no blocking call since: if it returns so, it ends cancelled, as an
     * asyncio task whose cancel could not be thrown in yet. */
    bool cancel_unseen;
    bool cancellable;      /* a cancel may interrupt the current wait */
    bool compact;          /* runs on the loop's shared stack (compact.h) */
    bool is_main;
    /* Owner: scope.  Shielded scopes among the fiber's timeout scopes:
     * while there is one, a cancel of the fiber waits for the shield to
     * end.  A count, not a walk of the scopes: they are in the fiber's
     * frames, which are not where they belong while it is a suspended
     * compact fiber, and other fibers read this when they cancel it.  In
     * the padding after the cancel bits, which fiber__cancel reads with
     * it. */
    unsigned shields;
    /* Owner: loop.  In the run queue (loop.ready) while READY, or in
     * debug mode's quarantine once freed. */
    union {
        struct fiber__link ready;
        /* Owner: task_memory.  Once freed, in a free list of tasks
         * (singly linked, see list.h). */
        struct fiber_task *next_free;
    };
    /* Owner: loop. */
    struct fiber__timer timer;
    /* Takes the fiber out of what it waits on (struct fiber__wait). */
    void (*wait_unlink)(struct fiber_task *f);
    const char *wait_what;           /* what a WAITING fiber waits for */

    /* Owner: scope.  The innermost timeout scope entered, and while there
     * is one the earliest deadline among the scopes a blocking call obeys
     * (up to and including the first shield), kept up to date as scopes
     * are entered and exited. */
    struct fiber_scope *scope;
    int64_t scope_deadline;

    /* Owner: waitq.  The wait queue this one waits on, and its link. */
    struct fiber__waitq *waitq;
    struct fiber__link wq;

    /* Owner: task.  Awaiting and being awaited (task.h). */
    struct fiber_task *waiter;       /* the fiber awaiting this one */
    struct fiber_task *awaiting;     /* the task this one awaits */
    struct fiber_task *claimed_by;   /* the fiber gathering this one */
    int fail_status;                 /* set by fiber_fail, 0 if none */
    bool detached;
    bool marked;                     /* scratch bit for fiber_gather's checks */

    /* Owner: loop.  The task itself: its function and outcome, identity
     * and memory. */
    fiber_fn fn;
    void *arg;
    void *result;
    int status;                      /* final status, valid once DONE */
    uint64_t id;
    /* Owner: task_memory.  Where the task lives (task_memory.h). */
    struct fiber__stack stack;       /* the part the fiber runs on */
    void *slot_base;                 /* the whole mapping: stack and task */
    size_t slot_size;
    /* Owner: loop. */
    struct fiber__link all;          /* in loop.all */
    /* Empty until first asked for when no name was given: formatting
     * "Task-<id>" at every spawn would cost more than the spawn. */
    char name[FIBER_NAME_MAX + 1];

    /* Owner: queue.  An item a queue hands to or from this fiber. */
    void *wait_item;

    /* Owner: collector.  The group or waitset that owns this task, with
     * its link there; the groups and waitsets this fiber created. */
    struct fiber__collector *collector;
    struct fiber__link coll;         /* in collector->members */
    struct fiber__list owned;        /* by fiber__collector.owned_link */

    /* Owner: waitset.  In a waitset's list of finished members. */
    struct fiber__link done;

    /* Owner: debug, observe.  Debug mode's marks (see debug.h): whether
     * the handle is live or consumed, and what it noticed about the task. */
    uint32_t debug_magic, debug_flags;

    /* Owner: compact.  A compact fiber's frames while they are off the
     * shared stack.  The buffer comes last: clearing a task for reuse
     * stops short of it (loop.c). */
    size_t frames_len;
    void *frames;
    size_t frames_cap;
};

enum fiber__ext_slot {
    FIBER__EXT_THREAD_POOL,
    FIBER__EXT_SIGNALS,
    FIBER__EXT_PROCESSES,
    FIBER__EXT_SLOTS
};

struct fiber_loop {
    struct fiber__context sched_ctx;  /* the thread's context in fiber_run */
    struct fiber_task *current;       /* NULL while the scheduler runs */
    struct fiber__list ready;         /* the run queue, by fiber_task.ready */
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
     * through next_free: the next default spawn takes one as it is,
     * without asking the stack pool. */
    struct fiber_task *task_free;
    size_t default_usable;
    struct fiber__list all;       /* every task not yet freed, newest first */
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
    /* Where compact tasks come from (compact.c): slabs, freed together
     * when the loop ends, and how many frames buffers outgrew a task. */
    struct fiber__compact_slabs {
        void *list;
        char *at;
        size_t left, next_size, outgrown;
    } compact_slabs;
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
    /* The wait for I/O that the poller puts in when it starts, and how
     * many fibers wait for what it delivers: while any does, the
     * scheduler polls at each round and waits there rather than on its
     * clock, and the loop is neither idle nor deadlocked. */
    int (*io_wait)(struct fiber_loop *loop, int64_t deadline);
    size_t io_waiting;
    /* Put in by the timeout scopes when a fiber of this loop first enters
     * one: the error of the outermost scope that a blocking call of self
     * obeys and that is cancelled or past its deadline, which that scope
     * has now caught; 0 if there is none.  Called only while self is in a
     * scope. */
    int (*scope_deliver)(struct fiber_task *self);
    /* Put in by the task groups and waitsets when a fiber of this loop
     * first creates one (loop.h); NULL until then. */
    const struct fiber__collector_hooks *collectors;
    struct fiber__list exts;      /* started extensions, last started first */
    void *ext_slot[FIBER__EXT_SLOTS]; /* their state, by enum fiber__ext_slot */
    struct fiber__debug *debug;   /* debugging aids (debug.h); NULL if none */
    const struct fiber__hooks *hooks; /* the observers' table */
};

/* The task's name, formatted on first use if it was not given. */
static inline const char *fiber__task_name(const struct fiber_task *f)
{
    if (f->name[0] == '\0') {
        /* The name buffer is a cache; filling it changes nothing visible. */
        char *name = (char *)f->name;
        snprintf(name, sizeof(f->name), "Task-%llu", (unsigned long long)f->id);
    }
    return f->name;
}

#endif
