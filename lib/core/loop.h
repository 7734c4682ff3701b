/*
 * loop.h - what the loop does for the modules of the library: the run
 * queue, blocking and waking, spawning, the entry checks, the table of
 * hooks and the list of extensions.  The layout of the loop and of the
 * fiber control block is in state.h.  Nothing here is public.
 */
#ifndef FIBER_LOOP_H
#define FIBER_LOOP_H

#include "fiber.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "clock.h"
#include "context.h"
#include "list.h"
#include "stack.h"
#include "state.h"
#include "timer_heap.h"

/*
 * The one table through which the core reaches the observers: debug mode,
 * dumps, backtraces, traces and deadlock reports.  The loop calls them by
 * pointer, never by name, so the core depends on no observer; the
 * observers fill the table (observe.c) and fiber_run (run.c) hands it to
 * the loop.  The switch, spawn and exit hooks are called only while
 * loop->observed is set, the round, quarantine and handle hooks only while
 * loop->debug is set, so a loop that nobody observes pays one predictable
 * branch where the core calls in.
 */
struct fiber__hooks {
    /* Set up the aids that opts (NULL: the environment alone) and the
     * environment ask for, before the main fiber is spawned.  Returns 0,
     * -EINVAL for a bad option or environment variable, -ENOMEM. */
    int (*attach)(struct fiber_loop *loop, const fiber_debug_options_t *opts);
    /* The end of the loop, before its tasks are freed; also after a
     * failed or partial attach. */
    void (*detach)(struct fiber_loop *loop);
    /* At the start of every round. */
    void (*round)(struct fiber_loop *loop);
    /* Before a switch from one fiber to another; NULL stands for the
     * scheduler's own context. */
    void (*switched)(struct fiber_loop *loop, struct fiber_task *from,
                     struct fiber_task *to);
    /* After parent spawned child (parent is NULL for the main fiber). */
    void (*spawned)(struct fiber_loop *loop, struct fiber_task *parent,
                    struct fiber_task *child);
    /* When f has returned, before its stack is released. */
    void (*exited)(struct fiber_loop *loop, struct fiber_task *f);
    /* Keep a freed task out of reuse for a while: true if it was taken. */
    bool (*quarantine)(struct fiber_loop *loop, struct fiber_task *f);
    /* Give every quarantined task back, when memory runs out: true if
     * there was any. */
    bool (*unquarantine)(struct fiber_loop *loop);
    /* A handle that is no longer a live task, passed to api: reported,
     * -EINVAL; 0 for a good handle. */
    int (*bad_handle)(struct fiber_loop *loop, const struct fiber_task *t,
                      const char *api);
    /* Always, whatever aids are on: every live fiber is blocked for good.
     * Write the reason and what each fiber waits for to out. */
    void (*deadlock)(struct fiber_loop *loop, FILE *out, const char *reason);
};

/*
 * A per-loop extension: a feature with state of its own in each loop that
 * uses it (the poller, the thread pool, signals, processes).  It starts on
 * first use and links itself into the loop's list with fiber__ext_start;
 * when the loop ends it walks the list, last started first, and calls each
 * one's stop, so the loop never names what it stops.  Each keeps its state
 * in its own slot of the loop (the poller, which the scheduler asks at
 * every round, in loop->poller).
 */
struct fiber__ext {
    void (*stop)(struct fiber_loop *loop, struct fiber__ext *ext);
    struct fiber__link link;      /* in loop->exts */
};

/*
 * What the task groups and waitsets (collector.h), which own tasks on
 * behalf of a fiber, put in loop->collectors when a fiber first creates
 * one: the loop calls these, never the collectors by name, when a member
 * finishes, when a fiber that owns some returns, and at the loop's end.
 */
struct fiber__collector_hooks {
    /* Task t, a member of one (t->collector), has finished: state DONE,
     * status set, on its own stack. */
    void (*task_done)(struct fiber_loop *loop, struct fiber_task *t);
    /* self returns still owning some (self->owned): close them, waiting
     * for their tasks. */
    void (*owner_returned)(struct fiber_task *self);
    /* The loop ends: free those that fibers abandoned before they
     * returned still own, before the tasks are freed. */
    void (*loop_end)(struct fiber_loop *loop);
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

/* The task that link, a fiber_task.ready, or .all, belongs to; NULL
 * for NULL. */
static inline struct fiber_task *fiber__ready_task(struct fiber__link *link)
{
    return fiber__list_entry(link, struct fiber_task, ready);
}

static inline struct fiber_task *fiber__all_task(struct fiber__link *link)
{
    return fiber__list_entry(link, struct fiber_task, all);
}

/* Walk every task of loop not yet freed, newest first (or, _reverse,
 * oldest first), with t, a declared struct fiber_task pointer. */
#define fiber__foreach_task(t, loop) \
    for (struct fiber__link *t##_link_ = (loop)->all.first; \
         t##_link_ && ((t) = fiber__all_task(t##_link_), 1); \
         t##_link_ = t##_link_->next)
#define fiber__foreach_task_reverse(t, loop) \
    for (struct fiber__link *t##_link_ = (loop)->all.last; \
         t##_link_ && ((t) = fiber__all_task(t##_link_), 1); \
         t##_link_ = t##_link_->prev)

/* Append f to the run queue. */
static inline void fiber__ready_push(struct fiber_loop *loop,
                                     struct fiber_task *f)
{
    fiber__list_push_back(&loop->ready, &f->ready);
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
 * is made ready again.  Returns its wake result.  Only fiber__wait tells
 * whom a -ECANCELED wake-up is for (the fiber or one of its scopes).
 */
int fiber__suspend(struct fiber_loop *loop);

/*
 * For a fiber in a long stretch of work that never blocks (reaping a
 * hundred thousand finished tasks): if a deadline has passed, let the
 * fibers woken for it run, then the others ready, as a yield would; else
 * nothing.  No cancel is delivered here.  Nothing can have become due
 * under the virtual clock, which stands still while fibers run.
 */
void fiber__yield_if_due(struct fiber_loop *loop);

/* How many tasks such a stretch handles between two calls: a clock read
 * for 64 reaps or frees is next to nothing, and 64 take a few µs. */
#define FIBER__TASKS_PER_DUE_CHECK 64

/* Wake a blocked fiber early: take it out of the heap and any wait. */
void fiber__wake(struct fiber_loop *loop, struct fiber_task *f, int result);

/* Request cancellation of f; wake it if its wait is cancellable. */
int fiber__cancel(struct fiber_loop *loop, struct fiber_task *f);

/* Create a task and queue it.  Returns 0 or a negative errno. */
int fiber__spawn(struct fiber_loop *loop, struct fiber_task **out, fiber_fn fn,
                 void *arg, const fiber_attr_t *attr);

/* Unlink a finished task from the loop and free it. */
void fiber__free_task(struct fiber_loop *loop, struct fiber_task *f);


/*
 * A call that only a fiber may make, made outside one, or one that needs a
 * running loop, made outside any: reported in debug mode (FIBER_DEBUG=1
 * when no loop runs on this thread).  Return -EPERM.
 */
int fiber__outside_fiber(const char *api) __attribute__((cold));
int fiber__outside_loop(const char *api) __attribute__((cold));

/*
 * The report they make: api was called outside a fiber (need_fiber) or
 * outside a running loop.  With no loop on the thread there is no table of
 * hooks to ask, so the observers' report is put in for the whole process
 * when the library is loaded (run.c), before any loop runs; NULL: none.
 */
typedef void fiber__outside_fn(const char *api, bool need_fiber);
extern fiber__outside_fn *fiber__outside_report;

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

/* True when self has a cancellation pending that no shield hides. */
static inline bool fiber__cancel_pending(const struct fiber_task *self)
{
    return self->cancel_requested && self->shields == 0;
}

/*
 * The second half of the entry check: returns -ECANCELED (and marks it
 * delivered) if the running fiber self has a pending cancellation that no
 * shield hides, else the error of the outermost of its timeout scopes that
 * is cancelled (-ECANCELED) or past its deadline (-ETIMEDOUT), else 0.
 * A fiber's scopes form a stack (fiber_task.scope is the innermost): a
 * blocking call obeys them from the innermost outwards up to and
 * including the first shield, and the fiber's own cancellation only when
 * no shield is on the stack.  Of everything that stops a call, the
 * outermost wins, so an inner scope never swallows a cancellation meant
 * for a wider one.
 */
int fiber__enter_blocking_slow(struct fiber_task *self);

/* Name what self is about to wait for, when the name varies per call
 * (the wait record's what is NULL then). */
static inline void fiber__wait_name(struct fiber_task *self, const char *what)
{
    self->wait_what = what;
}

static inline int fiber__enter_blocking(struct fiber_task *self)
{
    /* One test in the common case: no cancel, no timeout scope.  (A cancel
     * not yet seen is a cancel requested: the slow path clears it.) */
    if (!self->cancel_requested && !self->scope)
        return 0;
    return fiber__enter_blocking_slow(self);
}

/*
 * The entry check of every blocking call api: in a fiber (the running one
 * in *self; outside one -EPERM, reported in debug mode), with no cancel
 * pending and no scope expired (fiber__enter_blocking's error).  Returns 0
 * when the call may block.  A call whose argument errors need the fiber
 * to be found (a mutex's owner, a descriptor's number) makes the same
 * check in its two halves, fiber__enter_fiber and fiber__enter_blocking,
 * with those errors in between, so that they keep coming first.
 */
static inline int fiber__canblock(const char *api, struct fiber_task **self)
{
    *self = fiber__enter_fiber(api);
    if (!*self)
        return -EPERM;
    return fiber__enter_blocking(*self);
}

/*
 * What a blocking call waits for, as the core sees it: the state to wait
 * in, whether a cancel ends the wait, how to take the fiber out of
 * whatever links it to what it waits for when something else ends the
 * wait first, and a name for reports.  The scheduler knows nothing else
 * of it.  A record is a constant, one per kind of wait: the deadline, the
 * only part that varies from call to call, is passed apart, so that a
 * suspended fiber keeps no record in its frames (a compact fiber's saved
 * frames are on the heap).
 */
struct fiber__wait {
    enum fiber__state state;  /* SLEEPING, AWAITING or WAITING */
    /* Neither a cancel nor a timeout scope ends the wait (reaping a task
     * that was cancelled, taking a mutex back), and it has no deadline.
     * A pending cancel stays for the next call. */
    bool uncancellable;
    /* Called by the core when the fiber is woken, by whomever or at the
     * loop's end: takes it out of the queue or task it waits on, if it is
     * still there.  NULL when there is nothing to undo. */
    void (*unlink)(struct fiber_task *f);
    /* A WAITING fiber's wait, in reports; NULL when the caller has set
     * the fiber's wait_what itself (a name that varies per call). */
    const char *what;
};

/*
 * The deadline a wait ends at: the earlier of the call's own deadline and
 * its timeout scopes'; at a tie the call's own, as a completion wins over
 * a timeout, and the scope stops the next call instead.  *by_scope tells
 * whether it is a scope's.  Inline: a fiber in no scope pays one test.
 */
static inline int64_t fiber__wait_deadline(const struct fiber_task *self,
                                           int64_t deadline, bool *by_scope)
{
    int64_t scope = self->scope ? self->scope_deadline : FIBER__FOREVER;

    *by_scope = scope < deadline;
    return *by_scope ? scope : deadline;
}

/* True when deadline, a finite one, has passed on the loop's clock: a
 * call that may not block for it times out at once. */
static inline bool fiber__deadline_passed(const struct fiber_loop *loop,
                                          int64_t deadline)
{
    return deadline != FIBER__FOREVER &&
           deadline <= fiber__clock_now(&loop->clock);
}

/*
 * The one way to block: suspend the running fiber as w says until it is
 * woken, or until fiber__wait_deadline(deadline) passes (FIBER__FOREVER:
 * no deadline).  A cancel wakes it unless the wait is uncancellable.
 * early is how far below deadline the time asked for lay, in 2^-64 ns
 * (timer_heap.h): it orders fibers whose deadlines round to the same
 * nanosecond (0 for a deadline exactly as asked).  Returns the wake
 * result: the waker's, or at the call's own deadline -ETIMEDOUT (0 for a
 * sleep, whose deadline is its purpose), or on a cancel or at a scope's
 * deadline what fiber__wait_timed_out says: -ECANCELED, or the scope's
 * -ETIMEDOUT (a sleep's too), unless a shield stands in between.
 */
int fiber__wait(struct fiber_loop *loop, const struct fiber__wait *w,
                int64_t deadline, uint64_t early);

/*
 * The tie rules of a wait that came to its deadline (or found it passed)
 * without what it waited for: a cancel of the fiber that came meanwhile
 * wins, then the call's own timeout (-ETIMEDOUT, 0 for a sleep), then
 * the outermost scope that has expired or is cancelled, to which the
 * error is delivered.  A caller with a completion that may have come at
 * the same instant checks that first: a completion wins over all three.
 */
int fiber__wait_timed_out(struct fiber_task *self, const struct fiber__wait *w,
                          bool by_scope);

/* Link a newly started extension into the loop's list: its stop runs
 * when the loop ends, before that of any extension started earlier. */
static inline void fiber__ext_start(struct fiber_loop *loop,
                                    struct fiber__ext *ext,
                                    void (*stop)(struct fiber_loop *loop,
                                                 struct fiber__ext *ext))
{
    ext->stop = stop;
    fiber__list_push_front(&loop->exts, &ext->link);
}

/* The check every public call taking a handle makes first: one test
 * unless debug mode is on. */
static inline int fiber__check_handle(const struct fiber_task *t, const char *api)
{
    struct fiber_loop *loop = fiber__loop;

    if (loop && loop->debug && t)
        return loop->hooks->bad_handle(loop, t, api);
    return 0;
}

/*
 * fiber_run with the observers' table of hooks, which run.c
 * passes: run main on a new loop on this thread until every fiber has
 * finished.
 */
int fiber__loop_run(const struct fiber__hooks *hooks, fiber_fn main,
                    void *arg, const fiber_options_t *opts, void **result,
                    int *status);

const char *fiber__state_name(enum fiber__state state);

/* Where every fiber starts: backtraces stop at this trampoline, and a
 * saved context still pointing at it belongs to a fiber that never ran. */
extern void (*const fiber__entry_point)(void);

#endif
