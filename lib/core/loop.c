/*
 * loop.c - the scheduler: run queue, timers, switching, running a loop.
 *
 * Fibers hand the CPU to each other directly: a fiber that blocks switches
 * straight to the next ready fiber.  Only when a round is over (every fiber
 * that was ready when it began has had its turn) or nothing is ready does
 * control go back to the scheduler context, the thread's own stack inside
 * fiber_run.  The scheduler fires due timers, sleeps until the next
 * deadline when nothing is ready, notices deadlocks and winds the loop down.
 * So a yield costs one switch, and a loop of yields cannot starve sleepers.
 *
 * The life of a wait.  Every blocking call opens with one entry check
 * (fiber__canblock, loop.h): is it in a fiber (debug mode reports a call
 * outside one), is a cancel pending, has a timeout scope expired?  Only
 * then does it link the fiber to what it waits for (a wait queue, a task,
 * a job) and call fiber__wait with its deadline and a constant wait
 * record: the state to wait in, whether a cancel ends the wait, how to
 * unlink the fiber again, and a name for deadlock reports.  fiber__wait
 * takes the earlier of the deadline and the fiber's scopes'
 * (fiber__wait_deadline: the call's own wins a tie), puts the fiber in
 * the timer heap if there is one, and switches away.  The fiber comes
 * back made ready by exactly one of three: the waker, with its result;
 * the timer, with -ETIMEDOUT (0 for a sleep); or a cancel, with
 * -ECANCELED.  Each goes through fiber__wake, which takes the fiber out of
 * the heap and calls the record's unlink, so the scheduler never needs to
 * know what the fiber was waiting for.  Back in fiber__wait, a cancel or
 * a scope's deadline is handed to whom it is for (fiber__wait_timed_out:
 * the fiber's own cancel first, then the call's own timeout, then the
 * outermost scope), and the call returns that.  A call that can tell a
 * completion at the very instant of its timeout (an await, a waitset)
 * checks that before asking fiber__wait_timed_out: a completion wins.
 *
 * The loop is the core's top: it reaches the observers only through the
 * table of hooks and the report of calls made outside a fiber, and the
 * features only through the list of extensions and what they put in the
 * loop (the poller's io_wait, the scopes' scope_deliver, the collectors'
 * table), never by name (loop.h, state.h).  lib/README.md maps the floors
 * of the library and the life of a fiber.
 */
#include "config.h"

#include "loop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "compact.h"
#include "sanitizers.h"
#include "task_memory.h"

/* How many dispatches within a round may pass before the clock is read
 * for deadlines: a read costs about 20 ns, a dispatch more, and a million
 * deadlines in a second leave one microsecond each. */
#define FIBER__TIMER_CHECK_EVERY 16

_Thread_local struct fiber_loop *fiber__loop
    __attribute__((tls_model("initial-exec")));

const char *fiber__state_name(enum fiber__state state)
{
    switch (state) {
    case FIBER__READY: return "ready";
    case FIBER__RUNNING: return "running";
    case FIBER__SLEEPING: return "sleeping";
    case FIBER__AWAITING: return "awaiting";
    case FIBER__WAITING: return "waiting";
    case FIBER__DONE: return "done";
    }
    return "?";
}

/* ---- run queue --------------------------------------------------------- */


static struct fiber_task *ready_pop(struct fiber_loop *loop)
{
    struct fiber_task *f = fiber__ready_task(fiber__list_pop_front(&loop->ready));

    if (f)
        loop->nready--;
    return f;
}


static bool is_blocked(const struct fiber_task *f)
{
    return f->state == FIBER__SLEEPING || f->state == FIBER__AWAITING ||
           f->state == FIBER__WAITING;
}

void fiber__wake(struct fiber_loop *loop, struct fiber_task *f, int result)
{
    /* Only a blocked fiber can be woken: one already ready keeps the result
     * it was first woken with, and must not be queued twice. */
    if (!is_blocked(f))
        return;
    fiber__timer_heap_remove(&loop->timers, &f->timer);
    /* Whatever it waits on is its wait's business (struct fiber__wait). */
    if (f->wait_unlink) {
        f->wait_unlink(f);
        f->wait_unlink = NULL;
    }
    fiber__make_ready(loop, f, result);
}


int fiber__cancel(struct fiber_loop *loop, struct fiber_task *f)
{
    if (f->state == FIBER__DONE)
        return -EALREADY;
    f->cancel_requested = true;
    /* A fiber cancelling itself meets the cancel only at its next
     * blocking call.  One inside a blocking call meets it there, even if
     * its wake-up has come already (the completion came first), and one
     * that never ran meets it nowhere: fiber_entry marks that. */
    if (f->state == FIBER__RUNNING)
        f->cancel_unseen = true;
    /* A shield hides the request until it ends: the first blocking call
     * after it gets -ECANCELED. */
    if (is_blocked(f) && f->cancellable && f->shields == 0)
        fiber__wake(loop, f, -ECANCELED);
    return 0;
}

/* ---- entry checks ------------------------------------------------------ */

fiber__outside_fn *fiber__outside_report;

int fiber__outside_fiber(const char *api)
{
    if (fiber__outside_report)
        fiber__outside_report(api, true);
    return -EPERM;
}

int fiber__outside_loop(const char *api)
{
    if (fiber__outside_report)
        fiber__outside_report(api, false);
    return -EPERM;
}

/* ---- blocking ---------------------------------------------------------- */

/* The fiber's own cancellation alone: -ECANCELED (marked delivered) if it
 * is pending, else 0. */
static int deliver_own_cancel(struct fiber_task *self)
{
    if (!fiber__cancel_pending(self))
        return 0;
    self->cancel_delivered = true;
    return -ECANCELED;
}

/* The error of the outermost scope self obeys that is cancelled or past
 * its deadline, delivered to it; 0 if none.  The scopes decide which that
 * is (loop->scope_deliver): the loop names none of them. */
static int deliver_to_scope(struct fiber_task *self)
{
    return self->scope ? self->loop->scope_deliver(self) : 0;
}

/* What stops a blocking call of self now, delivered: its own cancel, then
 * the outermost of its scopes that is cancelled or expired; else 0. */
static int deliver_stop(struct fiber_task *self)
{
    int rc = deliver_own_cancel(self);

    return rc < 0 ? rc : deliver_to_scope(self);
}

/* A cancel or a timeout scope is pending: the blocking call returns what
 * stops it, if anything does. */
int fiber__enter_blocking_slow(struct fiber_task *self)
{
    self->cancel_unseen = false;
    return deliver_stop(self);
}

int fiber__wait_timed_out(struct fiber_task *self, const struct fiber__wait *w,
                          bool by_scope)
{
    /* A cancel that came meanwhile wins over the timeout. */
    int rc = deliver_own_cancel(self);

    if (rc < 0)
        return rc;
    if (!by_scope)
        return w->state == FIBER__SLEEPING ? 0 : -ETIMEDOUT;
    /* A scope's deadline cut the wait short: deliver it to the outermost
     * scope that has expired or is cancelled. */
    rc = deliver_to_scope(self);
    return rc < 0 ? rc : -ETIMEDOUT;
}

int fiber__wait(struct fiber_loop *loop, const struct fiber__wait *w,
                int64_t deadline, uint64_t early)
{
    struct fiber_task *self = loop->current;

    self->state = w->state;
    self->wait_unlink = w->unlink;
    if (w->what)
        self->wait_what = w->what;
    if (w->uncancellable) {
        /* fiber__cancel wakes only cancellable waits; the request stays
         * pending for the next blocking call. */
        self->cancellable = false;
        return fiber__suspend(loop);
    }

    bool by_scope;
    int64_t until = fiber__wait_deadline(self, deadline, &by_scope);
    self->cancellable = true;
    if (until != FIBER__FOREVER)
        fiber__timer_heap_insert_early(&loop->timers, &self->timer, until,
                                       by_scope ? 0 : early);
    int rc = fiber__suspend(loop);

    /* Woken by the timer at a scope's deadline: first let the fibers
     * woken at the same instant run once, so that a cancel among them
     * wins, as with wait_for; then deliver it to whom it is for. */
    int timer_rc = w->state == FIBER__SLEEPING ? 0 : -ETIMEDOUT;
    if (by_scope && rc == timer_rc &&
        fiber__clock_now(&loop->clock) >= until) {
        fiber__make_ready(loop, self, 0);
        fiber__suspend(loop);
        return fiber__wait_timed_out(self, w, true);
    }
    /* Woken by a cancel: the fiber's own, or a scope's. */
    if (rc == -ECANCELED) {
        int stop = deliver_stop(self);
        if (stop < 0)
            rc = stop;
        else
            self->cancel_delivered = true;
    }
    return rc;
}

/* ---- switching --------------------------------------------------------- */

/* Free a finished detached fiber, now that nobody runs on its stack. */
static void reap_zombie(struct fiber_loop *loop)
{
    struct fiber_task *f = loop->zombie;

    if (!f)
        return;
    loop->zombie = NULL;
    /* The stack goes with the task, which lives at its top: a task that
     * someone will await keeps both until then. */
    if (f->detached)
        fiber__free_task(loop, f);
}

/*
 * Move the fibers that fire_timers just appended, first to last, from the
 * tail of the run queue to just after the fibers woken by timers before
 * them (the head if none is left): in the middle of a round they run
 * next, as Go runs a goroutine whose timer fired, and yet in deadline
 * order with those woken earlier.
 */
static void move_woken_forward(struct fiber_loop *loop,
                               struct fiber_task *first)
{
    struct fiber_task *after = loop->woken_tail;

    loop->woken_tail = fiber__ready_task(fiber__list_last(&loop->ready));
    /* Already in place when they follow after, or the queue holds
     * nothing else. */
    fiber__list_move_tail_after(&loop->ready, &first->ready,
                                after ? &after->ready : NULL);
}

/* How many due timers are taken out of the heap at a time: their fibers'
 * lines are asked for together, before any is woken. */
#define FIRE_BATCH 16

static struct fiber_task *timer_task(struct fiber__timer *t)
{
    return (struct fiber_task *)(void *)
        ((char *)t - offsetof(struct fiber_task, timer));
}

/* Move every fiber whose deadline has come at now to the run queue, in
 * (deadline, early, seq) order: within a round (ahead) to the front, where
 * they run next and count in the round, else to the tail.  Kept out of
 * line: inlined, its registers would be saved at every round, with or
 * without timers. */
static __attribute__((noinline)) void fire_timers(struct fiber_loop *loop,
                                                  bool ahead, int64_t now)
{
    struct fiber__link *before = fiber__list_last(&loop->ready);
    size_t nready = loop->nready;
    struct fiber__timer *due[FIRE_BATCH];
    size_t n;

    do {
        n = fiber__timer_heap_pop_due_many(&loop->timers, now, due, FIRE_BATCH);
        /* Among a million sleepers each fiber woken is a string of cache
         * misses, in waking it and then in running it: asked for all at
         * once, they overlap. */
        for (size_t i = 0; i < n; i++)
            fiber__task_prefetch(timer_task(due[i]));
        for (size_t i = 0; i < n; i++)
            fiber__timer_popped(due[i]);
        for (size_t i = 0; i < n; i++) {
            struct fiber_task *f = timer_task(due[i]);
            /* A sleep's deadline is its purpose; any other wait timed out. */
            fiber__wake(loop, f, f->state == FIBER__SLEEPING ? 0 : -ETIMEDOUT);
        }
        /* Their lines are in: where their frames are can be read now. */
        for (size_t i = 0; i < n; i++)
            fiber__frames_prefetch(timer_task(due[i]));
    } while (n == FIRE_BATCH);
    /* The next to wake, likely a microsecond from now among a million:
     * its lines will be in the cache when it runs. */
    struct fiber__timer *t;
    if ((t = fiber__timer_heap_first(&loop->timers)))
        fiber__task_prefetch(timer_task(t));
    size_t woken = loop->nready - nready;
    if (woken == 0)
        return;
    struct fiber_task *first =
        fiber__ready_task(before ? before->next : fiber__list_first(&loop->ready));
    if (ahead || loop->woken_tail) {
        move_woken_forward(loop, first);
        if (ahead)
            loop->round_left += woken;
    } else {
        loop->woken_tail = fiber__ready_task(fiber__list_last(&loop->ready));
    }
}

/* No reading of the clock at hand. */
#define UNREAD INT64_MIN

/* Start a round without waiting: fire due timers, pick up finished I/O,
 * and let every fiber now ready have one turn.  now is the clock's time
 * if it was read a moment ago, else UNREAD.  Returns the time it fired
 * timers at, or UNREAD if there were none. */
static inline __attribute__((always_inline)) int64_t
begin_round_at(struct fiber_loop *loop, int64_t now)
{
    if (loop->debug)
        loop->hooks->round(loop);
    loop->timer_countdown = FIBER__TIMER_CHECK_EVERY;
    if (loop->timers.len) {
        if (now == UNREAD)
            now = fiber__clock_now(&loop->clock);
        fire_timers(loop, false, now);
    }
    if (loop->io_waiting) {
        loop->io_wait(loop, INT64_MIN);
        now = UNREAD;
    }
    loop->round_left = loop->nready;
    return now;
}

/* The same between two fibers, where no time is at hand: apart, so that
 * the switch does not carry the waiting's bookkeeping. */
static void begin_round(struct fiber_loop *loop)
{
    begin_round_at(loop, UNREAD);
}

/* Fire the timers due now, their fibers ahead of the rest of the round;
 * whether any was.  The virtual clock stands still within a round, so
 * there only a wait whose deadline had already come when it began (a
 * poll) could be due: it keeps waiting for the round's end, and the
 * fibers ready before it, a completion among them, their turn. */
static bool fire_due_ahead(struct fiber_loop *loop)
{
    if (loop->clock.is_virtual)
        return false;
    int64_t now = fiber__clock_now(&loop->clock);
    if (!fiber__timer_heap_due(&loop->timers, now))
        return false;
    fire_timers(loop, true, now);
    return true;
}

/* Within a round, every FIBER__TIMER_CHECK_EVERY dispatches: a deadline
 * passed wakes its fiber now, not after the round, which among a million
 * fibers may last a second. */
static void check_timers(struct fiber_loop *loop)
{
    loop->timer_countdown = FIBER__TIMER_CHECK_EVERY;
    fire_due_ahead(loop);
}

/* Within a long round the fibers after the next one last ran long ago:
 * ask for the lines of the second after it, and for the frames of the
 * first, whose lines were asked for a dispatch ago.  Out of line, so that
 * dispatch stays small enough to be inlined into every switch. */
static __attribute__((noinline)) void prefetch_ahead(struct fiber__link *after)
{
    fiber__frames_prefetch(fiber__ready_task(after));
    if (after->next)
        fiber__task_prefetch(fiber__ready_task(after->next));
}

/* Pop the next fiber to run and make it current. */
static struct fiber_task *dispatch(struct fiber_loop *loop)
{
    loop->round_left--;
    struct fiber_task *next = ready_pop(loop);
    if (next == loop->woken_tail)
        loop->woken_tail = NULL;
    /* Within a short round the fibers are in the cache, and asking costs
     * a yield. */
    if (loop->round_left > FIBER__TIMER_CHECK_EVERY &&
        !fiber__list_empty(&loop->ready))
        prefetch_ahead(fiber__list_first(&loop->ready));
    next->state = FIBER__RUNNING;
    loop->current = next;
    return next;
}

/*
 * The context that runs next, now current: the code switching from
 * self (NULL for the scheduler) runs on the shared stack if self is
 * compact, and then cannot copy another compact fiber's frames onto it; the
 * scheduler does that, and runs it.
 */
static inline struct fiber__context *enter(struct fiber_loop *loop,
                                           struct fiber_task *self,
                                           struct fiber_task *next)
{
    if (__builtin_expect(next->compact, 0) && !fiber__compact_resident(loop, next)) {
        if (self && self->compact) {
            loop->handoff = next;
            return &loop->sched_ctx;
        }
        fiber__compact_load(loop, next);
    }
    return &next->ctx;
}

/*
 * The context to run after self stops: the next ready fiber, starting a
 * new round on the spot if this one is over, else the scheduler, which
 * waits when nothing is ready.
 */
static struct fiber__context *next_context(struct fiber_loop *loop,
                                           struct fiber_task *self)
{
    if (loop->round_left == 0 && !fiber__list_empty(&loop->ready))
        begin_round(loop);
    else if (loop->timers.len && --loop->timer_countdown == 0)
        check_timers(loop);
    if (!fiber__list_empty(&loop->ready))
        return enter(loop, self, dispatch(loop));
    loop->current = NULL;
    return &loop->sched_ctx;
}

/* Tell debug mode and the tracer that from hands over to the current
 * fiber (NULL: the scheduler). */
static void note_switch(struct fiber_loop *loop, struct fiber_task *from)
{
    if (loop->observed)
        loop->hooks->switched(loop, from, loop->current);
}

static void switch_context(struct fiber_loop *loop, struct fiber_task *from,
                           struct fiber__context *from_ctx,
                           struct fiber__context *to_ctx)
{
    note_switch(loop, from);
    fiber__context_switch(from_ctx, to_ctx);
}

int fiber__suspend(struct fiber_loop *loop)
{
    struct fiber_task *self = loop->current;

    /* errno is per thread; each fiber keeps its own across the switch.
     * The loop caches its address: errno itself is a function call. */
    int *errno_at = loop->errno_at;
    self->saved_errno = *errno_at;
    struct fiber__context *to = next_context(loop, self);
    if (to != &self->ctx)
        switch_context(loop, self, &self->ctx, to);
    /* Resumed: whoever switched here set loop->current to self. */
    if (loop->zombie)
        reap_zombie(loop);
    self->state = FIBER__RUNNING;
    *errno_at = self->saved_errno;
    return self->wake_result;
}

void fiber__yield_if_due(struct fiber_loop *loop)
{
    /* The woken go to the front, this fiber to the back. */
    if (loop->timers.len && fire_due_ahead(loop)) {
        fiber__make_ready(loop, loop->current, 0);
        fiber__suspend(loop);
    }
}

/* Every fiber starts here, on its own stack, and never returns. */
static void fiber_entry(void)
{
    struct fiber_loop *loop = fiber__loop;
    struct fiber_task *self = loop->current;

    fiber__context_started(&self->ctx);
    reap_zombie(loop);
    self->state = FIBER__RUNNING;
    *loop->errno_at = 0;
    /* Cancelled before it ran: it runs, to release what arg owns, but its
     * cancel has been met by no blocking call. */
    self->cancel_unseen = self->cancel_requested;
    self->result = self->fn(self->arg);
    /* Returned without meeting a cancel that came before or while it ran:
     * cancelled all the same (asyncio's _must_cancel), and awaiting it
     * tells so as for a cancel delivered.  Decided before the groups it
     * owns are closed below, which may block. */
    if (self->cancel_unseen)
        self->cancel_delivered = true;
    /* The scopes it entered lived in frames that have returned.  Groups
     * and waitsets it still owns are closed now, waiting for their tasks:
     * no fiber ends with tasks of its own still running. */
    self->scope = NULL;
    self->shields = 0;
    if (!fiber__list_empty(&self->owned)) {
        /* A cancel still ends the waits there and cancels the tasks, but
         * the fiber's function has returned: its status stays what it
         * made it. */
        bool delivered = self->cancel_delivered;
        loop->collectors->owner_returned(self);
        self->cancel_delivered = delivered;
    }

    if (self->fail_status < 0)
        self->status = self->fail_status;
    else if (self->cancel_delivered)
        self->status = -ECANCELED;
    else
        self->status = 0;
    if (loop->observed)
        loop->hooks->exited(loop, self);
    self->state = FIBER__DONE;
    loop->nalive--;
    if (self->waiter)
        fiber__wake(loop, self->waiter, 0);
    if (self->collector)
        loop->collectors->task_done(loop, self);
    if (self->is_main)
        loop->main_done = true;

    /* The stack is released by whoever runs next, off this stack.  When
     * main ends, go straight to the scheduler so the rest are cancelled
     * at once, as asyncio.run does. */
    loop->zombie = self;
    self->ctx.finished = true;
    /* Frames of a finished fiber are not worth saving. */
    if (loop->shared_owner == self)
        loop->shared_owner = NULL;
    struct fiber__context *to;
    if (self->is_main) {
        loop->current = NULL;
        to = &loop->sched_ctx;
    } else {
        to = next_context(loop, self);
    }
    note_switch(loop, self);
    fiber__context_exit(&self->ctx, to);
}

void (*const fiber__entry_point)(void) = fiber_entry;

/* ---- tasks ------------------------------------------------------------- */

static void all_link(struct fiber_loop *loop, struct fiber_task *f)
{
    fiber__list_push_front(&loop->all, &f->all);
}

static void all_unlink(struct fiber_loop *loop, struct fiber_task *f)
{
    fiber__list_remove(&loop->all, &f->all);
}

void fiber__free_task(struct fiber_loop *loop, struct fiber_task *f)
{
    all_unlink(loop, f);
    /* Debug mode keeps it out of reuse, to recognise its handle later. */
    if (loop->debug && loop->hooks->quarantine(loop, f))
        return;
    fiber__release_task(loop, f);
}

int fiber__spawn(struct fiber_loop *loop, struct fiber_task **out, fiber_fn fn,
                 void *arg, const fiber_attr_t *attr)
{
    size_t stack_size = loop->stack_size;
    bool compact = attr && attr->compact;
    int rc;

    if (attr && attr->stack_size) {
        /* A compact fiber runs on the shared stack, of the loop's size. */
        if (attr->stack_size < FIBER_MIN_STACK_SIZE || compact)
            return -EINVAL;
        stack_size = attr->stack_size;
    }
    if (compact && !fiber__compact_supported())
        return -ENOTSUP;

    /* Room in the timer heap for every live fiber, so sleeping never
     * allocates. */
    rc = fiber__timer_heap_reserve(&loop->timers, loop->nalive + 1);
    if (rc < 0)
        return rc;

    struct fiber_task *f = fiber__task_alloc(loop, stack_size, compact, &rc);
    /* Debug mode keeps freed tasks aside: out of memory, give them back
     * and try once more, as a program recovering from -ENOMEM expects. */
    if (!f && rc == -ENOMEM && loop->debug && loop->hooks->unquarantine(loop))
        f = fiber__task_alloc(loop, stack_size, compact, &rc);
    if (!f)
        return rc;
    f->compact = compact;
    if (compact)
        rc = fiber__compact_make(loop, f, fiber_entry);
    else
        rc = fiber__context_make(&f->ctx, f->stack.base, f->stack.size, fiber_entry);
    if (rc < 0) {
        fiber__release_task(loop, f);
        return rc;
    }

    f->loop = loop;
    f->fn = fn;
    f->arg = arg;
    f->id = loop->next_id++;
    fiber__timer_init(&f->timer);
    if (attr && attr->name)
        snprintf(f->name, sizeof(f->name), "%s", attr->name);
    /* A fiber spawned while the loop winds down is cancelled from birth. */
    f->cancel_requested = loop->shutting_down;

    all_link(loop, f);
    loop->nalive++;
    fiber__make_ready(loop, f, 0);
    if (loop->observed)
        loop->hooks->spawned(loop, loop->current, f);
    *out = f;
    return 0;
}

/* ---- the scheduler ----------------------------------------------------- */

/*
 * Start a new round: fire due timers, pick up I/O and, if nothing is ready,
 * wait until the next deadline or I/O event.  Returns false when nothing is
 * ready, no timer is pending and no I/O is awaited: every live fiber is
 * blocked for good.
 */
static bool start_round(struct fiber_loop *loop)
{
    int64_t now = UNREAD;

    for (;;) {
        /* Where nothing but timers is awaited, the clock is read once
         * for a wait and the round after it, which at a million
         * deadlines a second is a good part of a wake-up's cost. */
        now = begin_round_at(loop, now);
        if (loop->nready > 0)
            return true;
        const struct fiber__timer_slot *next = fiber__timer_heap_peek(&loop->timers);
        if (loop->io_waiting) {
            loop->io_wait(loop, next ? next->deadline : FIBER__FOREVER);
            now = UNREAD;
        } else if (next) {
            if (now == UNREAD)
                now = fiber__clock_now(&loop->clock);
            now = fiber__clock_wait_until(&loop->clock, next->deadline, now);
        } else {
            return false;
        }
    }
}

static void cancel_all(struct fiber_loop *loop)
{
    loop->shutting_down = true;
    struct fiber_task *f;

    fiber__foreach_task(f, loop) {
        if (f->state != FIBER__DONE) {
            f->cancel_requested = true;
            /* Waits that were not cancellable (reaping a cancelled task)
             * stay; everything else wakes with -ECANCELED. */
            fiber__cancel(loop, f);
        }
    }
}

/* Give up on fibers that can never run again: mark them finished without
 * resuming them.  Whatever they hold on the heap is lost. */
static void abandon_all(struct fiber_loop *loop)
{
    struct fiber_task *f;

    fiber__foreach_task(f, loop) {
        if (f->state == FIBER__DONE)
            continue;
        fiber__timer_heap_remove(&loop->timers, &f->timer);
        /* A wait queue lives in the user's memory (a mutex, a queue) and
         * outlives the loop: leave no pointer to a freed task in it. */
        if (f->wait_unlink) {
            f->wait_unlink(f);
            f->wait_unlink = NULL;
        }
        /* Its stack, which holds the task, goes when the loop frees it. */
        f->state = FIBER__DONE;
        f->status = -EDEADLK;
        f->waiter = NULL;
        f->awaiting = NULL;
        loop->nalive--;
    }
}

/* A compact fiber that switched to the scheduler for the next compact
 * fiber's frames to be copied in (see enter): copy them, and run it. */
static void run_handoffs(struct fiber_loop *loop)
{
    struct fiber_task *next;

    while ((next = loop->handoff)) {
        loop->handoff = NULL;
        fiber__compact_load(loop, next);
        fiber__context_switch(&loop->sched_ctx, &next->ctx);
    }
}

/* Run until every fiber has finished.  Returns 0 or -EDEADLK. */
static int run_scheduler(struct fiber_loop *loop)
{
    int rc = 0;

    while (loop->nalive > 0) {
        reap_zombie(loop);
        if (loop->main_done && !loop->shutting_down)
            cancel_all(loop);
        if (start_round(loop)) {
            struct fiber_task *next = dispatch(loop);
            switch_context(loop, NULL, &loop->sched_ctx, enter(loop, NULL, next));
            run_handoffs(loop);
            continue;
        }
        /* Nothing ready, nothing pending, yet fibers are alive. */
        rc = -EDEADLK;
        if (!loop->shutting_down) {
            loop->hooks->deadlock(loop, stderr,
                                  "every fiber is blocked and nothing can wake them");
            cancel_all(loop);
        } else {
            loop->hooks->deadlock(loop, stderr,
                                  "fibers still blocked after cancellation are abandoned");
            abandon_all(loop);
        }
    }
    reap_zombie(loop);
    return rc;
}

/* ---- running a loop ---------------------------------------------------- */

/* How long this thread's last run lasted on its clock: fiber_elapsed_ns
 * reads it once the loop is gone. */
static _Thread_local int64_t last_run_ns;
/* The part of it the loop spent idle. */
static _Thread_local int64_t last_idle_ns;

static int clock_from_env(int *clock)
{
    const char *v = getenv("FIBER_CLOCK");

    if (!v || !*v || strcmp(v, "real") == 0) {
        *clock = FIBER_CLOCK_REAL;
        return 0;
    }
    if (strcmp(v, "virtual") == 0) {
        *clock = FIBER_CLOCK_VIRTUAL;
        return 0;
    }
    fprintf(stderr, "libfiber: FIBER_CLOCK=%s is neither 'real' nor 'virtual'\n", v);
    return -EINVAL;
}

/* Stop the per-loop extensions, last started first: one started later
 * may use one started before it (the thread pool uses the poller). */
static void stop_extensions(struct fiber_loop *loop)
{
    struct fiber__link *link;

    while ((link = fiber__list_pop_front(&loop->exts))) {
        struct fiber__ext *ext = fiber__container_of(link, struct fiber__ext, link);
        ext->stop(loop, ext);
    }
}

static void loop_destroy(struct fiber_loop *loop)
{
    loop->hooks->detach(loop);
    /* Groups and waitsets of fibers abandoned before they returned. */
    if (loop->collectors)
        loop->collectors->loop_end(loop);
    while (!fiber__list_empty(&loop->all))
        fiber__free_task(loop, fiber__all_task(fiber__list_first(&loop->all)));
    fiber__compact_tasks_free(loop);
    stop_extensions(loop);
    fiber__timer_heap_destroy(&loop->timers);
    fiber__stack_pool_destroy(&loop->stacks);
    free(loop);
}

/* Loops started in the process so far, for their serial numbers. */
static _Atomic uint64_t loops_started;

int fiber__loop_run(const struct fiber__hooks *hooks, fiber_fn main,
                    void *arg, const fiber_options_t *opts, void **result,
                    int *status)
{
    fiber_options_t o = opts ? *opts : (fiber_options_t){0};
    int rc;

    if (!main)
        return -EINVAL;
    if (fiber__loop)
        return -EBUSY;
    last_run_ns = 0;
    last_idle_ns = 0;
    if (o.stack_size != 0 && o.stack_size < FIBER_MIN_STACK_SIZE)
        return -EINVAL;
    if (o.clock == FIBER_CLOCK_DEFAULT) {
        rc = clock_from_env(&o.clock);
        if (rc < 0)
            return rc;
    } else if (o.clock != FIBER_CLOCK_REAL && o.clock != FIBER_CLOCK_VIRTUAL) {
        return -EINVAL;
    }

    struct fiber_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    loop->stack_size = o.stack_size ? o.stack_size : FIBER_DEFAULT_STACK_SIZE;
    loop->next_id = 1;
    loop->serial = atomic_fetch_add(&loops_started, 1) + 1;
    fiber__timer_heap_init(&loop->timers);
    fiber__stack_pool_init(&loop->stacks);
    loop->default_usable = fiber__stack_round(&loop->stacks, loop->stack_size);
    fiber__clock_init(&loop->clock, o.clock == FIBER_CLOCK_VIRTUAL);
    loop->hooks = hooks;
    rc = hooks->attach(loop, o.debug);
    if (rc < 0) {
        loop_destroy(loop);
        return rc;
    }

    fiber_attr_t main_attr = {.name = "main"};
    rc = fiber__spawn(loop, &loop->main, main, arg, &main_attr);
    if (rc < 0) {
        loop_destroy(loop);
        return rc;
    }
    loop->main->is_main = true;

    /* Under the real clock, ask the kernel for wake-ups on time rather
     * than within its default 50 us slack; put the thread's setting back
     * afterwards. */
    int slack = -1;
    if (!loop->clock.is_virtual) {
        slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
        prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
    }

    loop->errno_at = &errno;
    fiber__loop = loop;
    rc = run_scheduler(loop);
    last_run_ns = fiber__clock_now(&loop->clock) - loop->clock.start;
    last_idle_ns = loop->clock.idle;
    fiber__loop = NULL;

    if (slack > 0)
        prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);

    if (result)
        *result = loop->main->result;
    if (status)
        *status = loop->main->status;
    loop_destroy(loop);
    return rc;
}

FIBER_API int64_t fiber_elapsed_ns(void)
{
    if (fiber__loop)
        return fiber__clock_now(&fiber__loop->clock) - fiber__loop->clock.start;
    return last_run_ns;
}

FIBER_API int64_t fiber_idle_ns(void)
{
    if (fiber__loop)
        return fiber__loop->clock.idle;
    return last_idle_ns;
}
