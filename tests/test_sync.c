/*
 * test_sync.c - mutex, event, semaphore and condition variable as the
 * header promises them: waiters served first come first served, by
 * hand-off; deadlines; cancellation while blocked, never losing what was
 * handed over; misuse errors that change nothing; deadlock reports that
 * name what fibers wait on.
 *
 * Scenarios run as the main fiber of a loop on the virtual clock, so times
 * are exact; fibers log what happens and each test compares the log with
 * the exact sequence expected.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fiber.h"

#define GROUP_NAME "sync"

#include "event_log.h"

/* ---- mutex --------------------------------------------------------------- */

/* A fiber that takes a mutex, holds it hold_s seconds, and releases it. */
struct locker {
    const char *name;
    fiber_mutex_t *m;
    double hold_s;
    int lock_rc;
};

static void *lock_hold_unlock(void *arg)
{
    struct locker *l = arg;

    log_event("%s waits", l->name);
    l->lock_rc = fiber_mutex_lock(l->m);
    if (l->lock_rc < 0) {
        log_event("%s lock %s", l->name, rc_name(l->lock_rc));
        return NULL;
    }
    log_event("%s locked", l->name);
    if (l->hold_s > 0)
        CHECK_EQ(fiber_sleep(l->hold_s), 0);
    log_event("%s unlocks", l->name);
    CHECK_EQ(fiber_mutex_unlock(l->m), 0);
    return NULL;
}

/* Initialize m, lock it, and start n lockers that line up behind main in
 * array order. */
static void queue_lockers_behind_main(fiber_mutex_t *m, struct locker lockers[],
                                      fiber_task_t *tasks[], size_t n)
{
    CHECK_EQ(fiber_mutex_init(m), 0);
    CHECK_EQ(fiber_mutex_lock(m), 0);
    for (size_t i = 0; i < n; i++)
        tasks[i] = spawn_named(lock_hold_unlock, &lockers[i], lockers[i].name);
}

static void *mutex_fifo(void *arg)
{
    fiber_mutex_t m;
    struct locker lockers[] = {{"A", &m, 1, 1}, {"B", &m, 1, 1}, {"C", &m, 1, 1}};
    fiber_task_t *tasks[3];
    (void)arg;

    queue_lockers_behind_main(&m, lockers, tasks, 3);
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main unlocks");
    CHECK_EQ(fiber_mutex_unlock(&m), 0);
    CHECK_EQ(fiber_gather(tasks, 3, NULL, NULL), 0);
    CHECK_EQ(fiber_mutex_locked(&m), 0);
    CHECK_EQ(fiber_mutex_destroy(&m), 0);
    return NULL;
}

static void test_mutex_waiters_lock_in_arrival_order(void **state)
{
    (void)state;
    run_scenario(mutex_fifo, NULL);
    ASSERT_EVENTS("A waits @0ms", "B waits @0ms", "C waits @0ms",
                  "main unlocks @1000ms", "A locked @1000ms",
                  "A unlocks @2000ms", "B locked @2000ms",
                  "B unlocks @3000ms", "C locked @3000ms",
                  "C unlocks @4000ms");
}

static void *mutex_no_barging(void *arg)
{
    fiber_mutex_t m;
    struct locker waiter = {"W", &m, 1, 1};
    (void)arg;

    CHECK_EQ(fiber_mutex_init(&m), 0);
    CHECK_EQ(fiber_mutex_lock(&m), 0);
    fiber_task_t *task = spawn_named(lock_hold_unlock, &waiter, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main unlocks");
    CHECK_EQ(fiber_mutex_unlock(&m), 0);
    /* W owns it already, though it has not run yet: main cannot take it
     * back, and its lock queues behind W. */
    CHECK_EQ(fiber_mutex_locked(&m), 1);
    CHECK_EQ(fiber_mutex_trylock(&m), -EBUSY);
    CHECK_EQ(fiber_mutex_destroy(&m), -EBUSY);
    CHECK_EQ(fiber_mutex_lock(&m), 0);
    log_event("main locked");
    CHECK_EQ(fiber_mutex_unlock(&m), 0);
    CHECK_EQ(await_status(task), 0);
    CHECK_EQ(fiber_mutex_destroy(&m), 0);
    return NULL;
}

static void test_mutex_is_handed_off_without_barging(void **state)
{
    (void)state;
    run_scenario(mutex_no_barging, NULL);
    ASSERT_EVENTS("W waits @0ms", "main unlocks @1000ms", "W locked @1000ms",
                  "W unlocks @2000ms", "main locked @2000ms");
}

static void *lock_with_deadlines(void *arg)
{
    fiber_mutex_t *m = arg;

    /* A deadline already passed fails at once, without blocking. */
    log_event("W lock_until(now) %s", rc_name(fiber_mutex_lock_until(m, fiber_now_ns())));
    log_event("W lock_until(+1s) %s", rc_name(fiber_mutex_lock_until(m, deadline_in(1))));
    return NULL;
}

static void *mutex_timeouts(void *arg)
{
    fiber_mutex_t m;
    (void)arg;

    CHECK_EQ(fiber_mutex_init(&m), 0);
    /* A free mutex is taken even with a deadline in the past. */
    CHECK_EQ(fiber_mutex_lock_until(&m, 0), 0);
    fiber_task_t *task = spawn_named(lock_with_deadlines, &m, "W");
    CHECK_EQ(fiber_sleep(2), 0);
    log_event("main unlocks");
    CHECK_EQ(fiber_mutex_unlock(&m), 0);
    /* W left the line when it timed out: nobody got the mutex. */
    CHECK_EQ(fiber_mutex_locked(&m), 0);
    CHECK_EQ(await_status(task), 0);
    CHECK_EQ(fiber_mutex_destroy(&m), 0);
    return NULL;
}

static void test_mutex_lock_until_times_out(void **state)
{
    (void)state;
    run_scenario(mutex_timeouts, NULL);
    ASSERT_EVENTS("W lock_until(now) ETIMEDOUT @0ms",
                  "W lock_until(+1s) ETIMEDOUT @1000ms",
                  "main unlocks @2000ms");
}

static void *lock_for_one_second(void *arg)
{
    fiber_mutex_t *m = arg;

    log_event("W lock_until(+1s) %s", rc_name(fiber_mutex_lock_until(m, deadline_in(1))));
    return NULL;
}

static void *mutex_cancel_at_the_deadline(void *arg)
{
    fiber_mutex_t m;
    (void)arg;

    CHECK_EQ(fiber_mutex_init(&m), 0);
    CHECK_EQ(fiber_mutex_lock(&m), 0);
    /* main's sleep and W's deadline end at the same instant, main's timer
     * first: W has timed out but not yet run when main cancels it. */
    int64_t wake = deadline_in(1);
    fiber_task_t *task = spawn_named(lock_for_one_second, &m, "W");
    CHECK_EQ(fiber_sleep_until(wake), 0);
    log_event("main cancels W");
    CHECK_EQ(fiber_cancel(task), 0);
    CHECK_EQ(await_status(task), -ECANCELED);
    CHECK_EQ(fiber_mutex_unlock(&m), 0);
    CHECK_EQ(fiber_mutex_destroy(&m), 0);
    return NULL;
}

static void test_mutex_cancel_at_the_deadline_wins(void **state)
{
    (void)state;
    run_scenario(mutex_cancel_at_the_deadline, NULL);
    ASSERT_EVENTS("main cancels W @1000ms", "W lock_until(+1s) ECANCELED @1000ms");
}

static void *mutex_cancel_waiter(void *arg)
{
    fiber_mutex_t m;
    struct locker lockers[] = {{"A", &m, 1, 1}, {"B", &m, 1, 1}, {"C", &m, 1, 1}};
    fiber_task_t *tasks[3];
    (void)arg;

    queue_lockers_behind_main(&m, lockers, tasks, 3);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(tasks[1]), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main unlocks");
    CHECK_EQ(fiber_mutex_unlock(&m), 0);
    GATHER_EXPECTING(tasks, 0, -ECANCELED, 0);
    CHECK_EQ(fiber_mutex_destroy(&m), 0);
    return NULL;
}

static void test_mutex_waiter_cancelled_leaves_the_line(void **state)
{
    (void)state;
    run_scenario(mutex_cancel_waiter, NULL);
    ASSERT_EVENTS("A waits @0ms", "B waits @0ms", "C waits @0ms",
                  "B lock ECANCELED @1000ms", "main unlocks @2000ms",
                  "A locked @2000ms", "A unlocks @3000ms", "C locked @3000ms",
                  "C unlocks @4000ms");
}

/* Takes the mutex, then finds itself cancelled at its next blocking call,
 * and still releases the mutex while unwinding. */
static void *lock_then_get_cancelled(void *arg)
{
    fiber_mutex_t *m = arg;

    log_event("W lock %s", rc_name(fiber_mutex_lock(m)));
    log_event("W sleep %s", rc_name(fiber_sleep(1)));
    log_event("W unlock %s", rc_name(fiber_mutex_unlock(m)));
    return NULL;
}

static void *mutex_handed_then_cancelled(void *arg)
{
    fiber_mutex_t m;
    struct locker next = {"X", &m, 0, 1};
    (void)arg;

    CHECK_EQ(fiber_mutex_init(&m), 0);
    CHECK_EQ(fiber_mutex_lock(&m), 0);
    fiber_task_t *w = spawn_named(lock_then_get_cancelled, &m, "W");
    fiber_task_t *x = spawn_named(lock_hold_unlock, &next, "X");
    CHECK_EQ(fiber_sleep(1), 0);
    /* The hand-off comes first, then the cancel, before W runs. */
    CHECK_EQ(fiber_mutex_unlock(&m), 0);
    CHECK_EQ(fiber_cancel(w), 0);
    log_event("main unlocked and cancelled W");
    CHECK_EQ(await_status(w), -ECANCELED);
    CHECK_EQ(await_status(x), 0);
    CHECK_EQ(fiber_mutex_destroy(&m), 0);
    return NULL;
}

static void test_mutex_handed_to_a_waiter_then_cancelled_is_not_lost(void **state)
{
    (void)state;
    run_scenario(mutex_handed_then_cancelled, NULL);
    ASSERT_EVENTS("X waits @0ms", "main unlocked and cancelled W @1000ms",
                  "W lock ok @1000ms", "W sleep ECANCELED @1000ms",
                  "W unlock ok @1000ms", "X locked @1000ms", "X unlocks @1000ms");
}

static void *misuse_mutex_from_another_fiber(void *arg)
{
    fiber_mutex_t *m = arg;

    CHECK_EQ(fiber_mutex_unlock(m), -EPERM);
    CHECK_EQ(fiber_mutex_trylock(m), -EBUSY);
    CHECK_EQ(fiber_mutex_lock_until(m, deadline_in(1)), -ETIMEDOUT);
    return NULL;
}

static void *lock_while_cancelled(void *arg)
{
    fiber_mutex_t *m = arg;

    /* Level-triggered: even a free mutex is refused to a cancelled fiber,
     * which can still take it without waiting. */
    CHECK_EQ(fiber_mutex_lock(m), -ECANCELED);
    CHECK_EQ(fiber_mutex_locked(m), 0);
    CHECK_EQ(fiber_mutex_trylock(m), 0);
    CHECK_EQ(fiber_mutex_unlock(m), 0);
    return NULL;
}

static void *mutex_misuse(void *arg)
{
    fiber_mutex_t *m = arg;
    fiber_mutex_t zeroed;

    memset(&zeroed, 0, sizeof(zeroed));
    CHECK_EQ(fiber_mutex_init(NULL), -EINVAL);
    CHECK_EQ(fiber_mutex_lock(NULL), -EINVAL);
    CHECK_EQ(fiber_mutex_lock(&zeroed), -EINVAL);
    CHECK_EQ(fiber_mutex_trylock(&zeroed), -EINVAL);
    CHECK_EQ(fiber_mutex_unlock(&zeroed), -EINVAL);
    CHECK_EQ(fiber_mutex_locked(&zeroed), -EINVAL);
    CHECK_EQ(fiber_mutex_destroy(&zeroed), -EINVAL);

    CHECK_EQ(fiber_mutex_unlock(m), -EPERM);
    CHECK_EQ(fiber_mutex_lock(m), 0);
    CHECK_EQ(fiber_mutex_lock(m), -EDEADLK);
    CHECK_EQ(fiber_mutex_lock_until(m, 0), -EDEADLK);
    CHECK_EQ(fiber_mutex_trylock(m), -EBUSY);
    CHECK_EQ(fiber_mutex_destroy(m), -EBUSY);
    CHECK_EQ(await_status(spawn_named(misuse_mutex_from_another_fiber, m, "O")), 0);
    /* None of that changed anything: main still owns it. */
    CHECK_EQ(fiber_mutex_locked(m), 1);
    CHECK_EQ(fiber_mutex_unlock(m), 0);
    CHECK_EQ(fiber_mutex_unlock(m), -EPERM);

    fiber_task_t *k = spawn_named(lock_while_cancelled, m, "K");
    CHECK_EQ(fiber_cancel(k), 0);
    CHECK_EQ(await_status(k), -ECANCELED);
    CHECK_EQ(fiber_mutex_locked(m), 0);
    return NULL;
}

static void test_mutex_misuse_is_refused_and_changes_nothing(void **state)
{
    fiber_mutex_t m;
    (void)state;

    /* init, destroy and locked work anywhere; locking needs a fiber. */
    assert_int_equal(fiber_mutex_init(&m), 0);
    assert_int_equal(fiber_mutex_lock(&m), -EPERM);
    assert_int_equal(fiber_mutex_lock_until(&m, 0), -EPERM);
    assert_int_equal(fiber_mutex_trylock(&m), -EPERM);
    assert_int_equal(fiber_mutex_unlock(&m), -EPERM);
    assert_int_equal(fiber_mutex_locked(&m), 0);
    run_scenario(mutex_misuse, &m);
    /* The mutex outlives the loop and serves the next one. */
    run_scenario(mutex_misuse, &m);
    assert_int_equal(fiber_mutex_destroy(&m), 0);
    assert_int_equal(fiber_mutex_destroy(&m), -EINVAL);
    assert_int_equal(fiber_mutex_locked(&m), -EINVAL);
}

/* ---- a mutex left locked by a fiber that finished -------------------- */

static void *lock_and_return(void *arg)
{
    CHECK_EQ(fiber_mutex_lock(arg), 0);
    return NULL;
}

/* The mutex is locked for ever, and by nobody who runs now. */
static void *check_not_owner(void *arg)
{
    fiber_mutex_t *m = arg;
    fiber_cond_t c;

    CHECK_EQ(fiber_mutex_locked(m), 1);
    CHECK_EQ(fiber_mutex_unlock(m), -EPERM);
    CHECK_EQ(fiber_mutex_trylock(m), -EBUSY);
    CHECK_EQ(fiber_mutex_lock_until(m, fiber_now_ns()), -ETIMEDOUT);
    CHECK_EQ(fiber_cond_init(&c), 0);
    CHECK_EQ(fiber_cond_wait_until(&c, m, fiber_now_ns()), -EPERM);
    CHECK_EQ(fiber_cond_destroy(&c), 0);
    CHECK_EQ(fiber_mutex_destroy(m), -EBUSY);
    return NULL;
}

static void *mutex_of_a_finished_fiber(void *arg)
{
    fiber_mutex_t *m = arg;
    fiber_task_t *t;
    bool reused = false;

    CHECK_EQ(fiber_mutex_init(m), 0);
    t = spawn_named(lock_and_return, m, "holder");
    uintptr_t holder = (uintptr_t)t;
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    /* Finished tasks are recycled; debug mode keeps them aside for a
     * while first.  Spawn until the holder's task comes round again. */
    for (int i = 0; i < 3 * FIBER_DEBUG_QUARANTINE && !reused; i++) {
        CHECK_EQ(fiber_spawn(&t, check_not_owner, m, NULL), 0);
        reused = (uintptr_t)t == holder;
        CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    }
    CHECK(reused);
    check_not_owner(m);
    return NULL;
}

static void run_with_checks(fiber_fn fn, void *arg, int checks)
{
    fiber_debug_options_t debug = {.checks = checks};
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &debug};
    int status = -1;

    assert_int_equal(run_loop(fn, arg, &opts, NULL, &status), 0);
    assert_int_equal(status, 0);
}

static void test_mutex_of_a_finished_fiber_stays_locked(void **state)
{
    fiber_mutex_t m;

    (void)state;
    run_with_checks(mutex_of_a_finished_fiber, &m, -1);
}

static void test_mutex_of_a_finished_fiber_stays_locked_in_debug_mode(void **state)
{
    fiber_mutex_t m;

    (void)state;
    run_with_checks(mutex_of_a_finished_fiber, &m, 1);
}

/* A mutex left locked by a fiber of an earlier loop is nobody's in the
 * next, though the new loop's fibers have the same ids. */
static void *lock_in_a_child(void *arg)
{
    fiber_task_t *t = spawn_named(lock_and_return, arg, "holder");

    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    return NULL;
}

static void *not_owner_in_a_child(void *arg)
{
    fiber_task_t *t = spawn_named(check_not_owner, arg, "stranger");

    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    return NULL;
}

static void test_mutex_locked_in_an_earlier_loop_is_nobodys(void **state)
{
    static fiber_mutex_t m;

    (void)state;
    assert_int_equal(fiber_mutex_init(&m), 0);
    run_with_checks(lock_in_a_child, &m, -1);
    run_with_checks(not_owner_in_a_child, &m, -1);
}

/* ---- event --------------------------------------------------------------- */

struct event_waiter {
    const char *name;
    fiber_event_t *e;
    int64_t deadline; /* INT64_MAX for none */
};

static void *wait_for_event(void *arg)
{
    struct event_waiter *w = arg;

    log_event("%s waits", w->name);
    int rc = w->deadline == INT64_MAX ? fiber_event_wait(w->e)
                                      : fiber_event_wait_until(w->e, w->deadline);
    log_event("%s woke %s", w->name, rc_name(rc));
    return NULL;
}

static void *event_wakes_all(void *arg)
{
    fiber_event_t e;
    struct event_waiter waiters[] = {
        {"A", &e, INT64_MAX}, {"B", &e, INT64_MAX}, {"C", &e, INT64_MAX}};
    fiber_task_t *tasks[3];
    (void)arg;

    CHECK_EQ(fiber_event_init(&e), 0);
    for (size_t i = 0; i < 3; i++)
        tasks[i] = spawn_named(wait_for_event, &waiters[i], waiters[i].name);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_event_destroy(&e), -EBUSY);
    log_event("main sets");
    CHECK_EQ(fiber_event_set(&e), 0);
    /* Cleared before the waiters run: each was woken, each returns 0. */
    CHECK_EQ(fiber_event_clear(&e), 0);
    CHECK_EQ(fiber_gather(tasks, 3, NULL, NULL), 0);

    CHECK_EQ(fiber_event_is_set(&e), 0);
    log_event("wait_until(+1s) %s", rc_name(fiber_event_wait_until(&e, deadline_in(1))));
    CHECK_EQ(fiber_event_set(&e), 0);
    CHECK_EQ(fiber_event_is_set(&e), 1);
    /* Set: no wait at all, even with a deadline passed. */
    log_event("wait %s", rc_name(fiber_event_wait(&e)));
    log_event("wait_until(0) %s", rc_name(fiber_event_wait_until(&e, 0)));
    CHECK_EQ(fiber_event_destroy(&e), 0);
    return NULL;
}

static void test_event_set_wakes_every_waiter_in_order(void **state)
{
    (void)state;
    run_scenario(event_wakes_all, NULL);
    ASSERT_EVENTS("A waits @0ms", "B waits @0ms", "C waits @0ms",
                  "main sets @1000ms", "A woke ok @1000ms", "B woke ok @1000ms",
                  "C woke ok @1000ms", "wait_until(+1s) ETIMEDOUT @2000ms",
                  "wait ok @2000ms", "wait_until(0) ok @2000ms");
}

static void *event_cancel_and_timeout(void *arg)
{
    fiber_event_t e;
    struct event_waiter waiters[] = {
        {"A", &e, INT64_MAX}, {"B", &e, INT64_MAX}, {"T", &e, 0}};
    fiber_task_t *tasks[3];
    (void)arg;

    CHECK_EQ(fiber_event_init(&e), 0);
    waiters[2].deadline = deadline_in(0.5);
    for (size_t i = 0; i < 3; i++)
        tasks[i] = spawn_named(wait_for_event, &waiters[i], waiters[i].name);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(tasks[0]), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main sets");
    CHECK_EQ(fiber_event_set(&e), 0);
    GATHER_EXPECTING(tasks, -ECANCELED, 0, 0);
    CHECK_EQ(fiber_event_destroy(&e), 0);
    return NULL;
}

static void test_event_waiters_time_out_and_cancel(void **state)
{
    (void)state;
    run_scenario(event_cancel_and_timeout, NULL);
    ASSERT_EVENTS("A waits @0ms", "B waits @0ms", "T waits @0ms",
                  "T woke ETIMEDOUT @500ms", "A woke ECANCELED @1000ms",
                  "main sets @2000ms", "B woke ok @2000ms");
}

static void test_event_misuse(void **state)
{
    fiber_event_t e;
    (void)state;

    memset(&e, 0, sizeof(e));
    assert_int_equal(fiber_event_set(&e), -EINVAL);
    assert_int_equal(fiber_event_wait(&e), -EINVAL);
    assert_int_equal(fiber_event_is_set(NULL), -EINVAL);
    assert_int_equal(fiber_event_init(NULL), -EINVAL);
    assert_int_equal(fiber_event_init(&e), 0);
    /* Setting and clearing need no fiber; waiting does. */
    assert_int_equal(fiber_event_set(&e), 0);
    assert_int_equal(fiber_event_is_set(&e), 1);
    assert_int_equal(fiber_event_wait(&e), -EPERM);
    assert_int_equal(fiber_event_wait_until(&e, 0), -EPERM);
    assert_int_equal(fiber_event_clear(&e), 0);
    assert_int_equal(fiber_event_is_set(&e), 0);
    assert_int_equal(fiber_event_destroy(&e), 0);
    assert_int_equal(fiber_event_set(&e), -EINVAL);
    assert_int_equal(fiber_event_destroy(&e), -EINVAL);
}

/* ---- semaphore ----------------------------------------------------------- */

struct sem_worker {
    const char *name;
    fiber_sem_t *s;
};

static void *acquire_work_release(void *arg)
{
    struct sem_worker *w = arg;

    int rc = fiber_sem_acquire(w->s);
    log_event("%s acquire %s", w->name, rc_name(rc));
    if (rc < 0)
        return NULL;
    rc = fiber_sleep(1);
    if (rc < 0)
        log_event("%s sleep %s", w->name, rc_name(rc));
    /* Released even when cancelled: releasing never blocks. */
    CHECK_EQ(fiber_sem_release(w->s), 0);
    return NULL;
}

static void *sem_limits_concurrency(void *arg)
{
    fiber_sem_t s;
    struct sem_worker workers[] = {
        {"w1", &s}, {"w2", &s}, {"w3", &s}, {"w4", &s}, {"w5", &s}};
    fiber_task_t *tasks[5];
    (void)arg;

    CHECK_EQ(fiber_sem_init(&s, 2), 0);
    for (size_t i = 0; i < 5; i++)
        tasks[i] = spawn_named(acquire_work_release, &workers[i], workers[i].name);
    CHECK_EQ(fiber_gather(tasks, 5, NULL, NULL), 0);
    CHECK_EQ(fiber_sem_value(&s), 2);
    CHECK_EQ(fiber_sem_destroy(&s), 0);
    return NULL;
}

static void test_sem_admits_value_fibers_at_a_time_in_order(void **state)
{
    (void)state;
    run_scenario(sem_limits_concurrency, NULL);
    ASSERT_EVENTS("w1 acquire ok @0ms", "w2 acquire ok @0ms",
                  "w3 acquire ok @1000ms", "w4 acquire ok @1000ms",
                  "w5 acquire ok @2000ms");
}

static void *sem_hand_off_and_bound(void *arg)
{
    fiber_sem_t s;
    struct sem_worker waiter = {"W", &s};
    (void)arg;

    CHECK_EQ(fiber_sem_init_bounded(&s, 1), 0);
    CHECK_EQ(fiber_sem_acquire(&s), 0);
    CHECK_EQ(fiber_sem_value(&s), 0);
    fiber_task_t *task = spawn_named(acquire_work_release, &waiter, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main releases");
    CHECK_EQ(fiber_sem_release(&s), 0);
    /* The unit went to W, not back to the semaphore. */
    CHECK_EQ(fiber_sem_value(&s), 0);
    CHECK_EQ(fiber_sem_try_acquire(&s), -EAGAIN);
    log_event("main acquire_until(+0.5s) %s",
              rc_name(fiber_sem_acquire_until(&s, deadline_in(0.5))));
    /* W gives its unit back at 2 s, straight to main. */
    log_event("main acquire %s", rc_name(fiber_sem_acquire(&s)));
    CHECK_EQ(fiber_sem_value(&s), 0);
    CHECK_EQ(fiber_sem_release(&s), 0);
    CHECK_EQ(await_status(task), 0);
    CHECK_EQ(fiber_sem_value(&s), 1);
    /* Bounded: one more release than acquires is refused. */
    CHECK_EQ(fiber_sem_release(&s), -EOVERFLOW);
    CHECK_EQ(fiber_sem_value(&s), 1);
    CHECK_EQ(fiber_sem_destroy(&s), 0);
    return NULL;
}

static void test_sem_hands_units_off_and_bounded_refuses_overflow(void **state)
{
    (void)state;
    run_scenario(sem_hand_off_and_bound, NULL);
    ASSERT_EVENTS("main releases @1000ms", "W acquire ok @1000ms",
                  "main acquire_until(+0.5s) ETIMEDOUT @1500ms",
                  "main acquire ok @2000ms");
}

static void *sem_cancel_waiters(void *arg)
{
    fiber_sem_t s;
    struct sem_worker workers[] = {{"A", &s}, {"B", &s}, {"C", &s}};
    fiber_task_t *tasks[3];
    (void)arg;

    CHECK_EQ(fiber_sem_init(&s, 0), 0);
    for (size_t i = 0; i < 3; i++)
        tasks[i] = spawn_named(acquire_work_release, &workers[i], workers[i].name);
    CHECK_EQ(fiber_sleep(1), 0);
    /* A is cancelled while it waits: it leaves the line empty-handed. */
    CHECK_EQ(fiber_cancel(tasks[0]), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main releases, then cancels B");
    /* B is handed the unit, then cancelled before it runs: it keeps the
     * unit (its acquire returns 0), the cancel hits its sleep, and it
     * gives the unit back while unwinding. */
    CHECK_EQ(fiber_sem_release(&s), 0);
    CHECK_EQ(fiber_cancel(tasks[1]), 0);
    CHECK_EQ(fiber_sem_destroy(&s), -EBUSY);
    log_event("main releases");
    CHECK_EQ(fiber_sem_release(&s), 0);
    GATHER_EXPECTING(tasks, -ECANCELED, -ECANCELED, 0);
    /* Both units released by main came back. */
    CHECK_EQ(fiber_sem_value(&s), 2);
    CHECK_EQ(fiber_sem_destroy(&s), 0);
    return NULL;
}

static void test_sem_cancelled_waiters_neither_take_nor_lose_units(void **state)
{
    (void)state;
    run_scenario(sem_cancel_waiters, NULL);
    ASSERT_EVENTS("A acquire ECANCELED @1000ms",
                  "main releases, then cancels B @2000ms",
                  "main releases @2000ms", "B acquire ok @2000ms",
                  "B sleep ECANCELED @2000ms", "C acquire ok @2000ms");
}

static void test_sem_misuse(void **state)
{
    fiber_sem_t s;
    (void)state;

    memset(&s, 0, sizeof(s));
    assert_int_equal(fiber_sem_release(&s), -EINVAL);
    assert_int_equal(fiber_sem_try_acquire(&s), -EINVAL);
    assert_int_equal(fiber_sem_value(&s), 0);
    assert_int_equal(fiber_sem_init(NULL, 1), -EINVAL);
    assert_int_equal(fiber_sem_init_bounded(NULL, 1), -EINVAL);
    /* try_acquire and release need no fiber; acquire does. */
    assert_int_equal(fiber_sem_init(&s, 1), 0);
    assert_int_equal(fiber_sem_acquire(&s), -EPERM);
    assert_int_equal(fiber_sem_acquire_until(&s, 0), -EPERM);
    assert_int_equal(fiber_sem_value(&s), 1);
    assert_int_equal(fiber_sem_try_acquire(&s), 0);
    assert_int_equal(fiber_sem_try_acquire(&s), -EAGAIN);
    assert_int_equal(fiber_sem_release(&s), 0);
    assert_int_equal(fiber_sem_release(&s), 0);
    assert_int_equal(fiber_sem_value(&s), 2);
    assert_int_equal(fiber_sem_destroy(&s), 0);
    assert_int_equal(fiber_sem_release(&s), -EINVAL);
    /* Even an unbounded semaphore cannot count past SIZE_MAX. */
    assert_int_equal(fiber_sem_init(&s, SIZE_MAX), 0);
    assert_int_equal(fiber_sem_release(&s), -EOVERFLOW);
    assert_true(fiber_sem_value(&s) == SIZE_MAX);
    assert_int_equal(fiber_sem_destroy(&s), 0);
}

/* ---- condition variable -------------------------------------------------- */

/* A box of tokens guarded by a mutex; takers wait on a condition until
 * there is a token. */
struct box {
    fiber_mutex_t m;
    fiber_cond_t c;
    int tokens;
};

struct taker {
    const char *name;
    struct box *box;
};

static void *take_token(void *arg)
{
    struct taker *t = arg;
    struct box *box = t->box;

    CHECK_EQ(fiber_mutex_lock(&box->m), 0);
    while (box->tokens == 0) {
        int rc = fiber_cond_wait(&box->c, &box->m);
        if (rc < 0) {
            log_event("%s wait %s", t->name, rc_name(rc));
            CHECK_EQ(fiber_mutex_unlock(&box->m), 0);
            return NULL;
        }
    }
    box->tokens--;
    log_event("%s took a token", t->name);
    CHECK_EQ(fiber_mutex_unlock(&box->m), 0);
    return NULL;
}

static void put_token(struct box *box, bool broadcast)
{
    CHECK_EQ(fiber_mutex_lock(&box->m), 0);
    box->tokens++;
    log_event("main puts a token and %s", broadcast ? "broadcasts" : "signals");
    CHECK_EQ(broadcast ? fiber_cond_broadcast(&box->c) : fiber_cond_signal(&box->c), 0);
    CHECK_EQ(fiber_mutex_unlock(&box->m), 0);
}

static void *cond_signal_in_order(void *arg)
{
    struct box box = {.tokens = 0};
    struct taker takers[] = {{"A", &box}, {"B", &box}, {"C", &box}};
    fiber_task_t *tasks[3];
    int statuses[3];
    (void)arg;

    CHECK_EQ(fiber_mutex_init(&box.m), 0);
    CHECK_EQ(fiber_cond_init(&box.c), 0);
    for (size_t i = 0; i < 3; i++)
        tasks[i] = spawn_named(take_token, &takers[i], takers[i].name);
    CHECK_EQ(fiber_sleep(1), 0);
    put_token(&box, false);
    CHECK_EQ(fiber_sleep(1), 0);
    /* A broadcast wakes B and C; B takes the token, C waits again. */
    put_token(&box, true);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cond_destroy(&box.c), -EBUSY);
    CHECK_EQ(fiber_cancel(tasks[2]), 0);
    CHECK_EQ(fiber_gather(tasks, 3, NULL, statuses), 0);
    CHECK_EQ(statuses[2], -ECANCELED);
    CHECK_EQ(fiber_cond_destroy(&box.c), 0);
    CHECK_EQ(fiber_mutex_destroy(&box.m), 0);
    return NULL;
}

static void test_cond_signal_wakes_the_oldest_waiter(void **state)
{
    (void)state;
    run_scenario(cond_signal_in_order, NULL);
    ASSERT_EVENTS("main puts a token and signals @1000ms", "A took a token @1000ms",
                  "main puts a token and broadcasts @2000ms",
                  "B took a token @2000ms", "C wait ECANCELED @3000ms");
}

struct cond_waiter {
    const char *name;
    struct box *box;
    int64_t deadline; /* INT64_MAX for none */
    double hold_s;    /* how long to keep the mutex after the wait */
};

/* Lock, wait once, report, prove ownership by unlocking. */
static void *wait_once(void *arg)
{
    struct cond_waiter *w = arg;
    struct box *box = w->box;

    CHECK_EQ(fiber_mutex_lock(&box->m), 0);
    log_event("%s waits", w->name);
    int rc = w->deadline == INT64_MAX
                 ? fiber_cond_wait(&box->c, &box->m)
                 : fiber_cond_wait_until(&box->c, &box->m, w->deadline);
    log_event("%s wait %s", w->name, rc_name(rc));
    if (w->hold_s > 0)
        log_event("%s sleep %s", w->name, rc_name(fiber_sleep(w->hold_s)));
    CHECK_EQ(fiber_mutex_unlock(&box->m), 0);
    return NULL;
}

static void *cond_broadcast_relocks_in_order(void *arg)
{
    struct box box = {.tokens = 0};
    struct cond_waiter waiters[] = {{"A", &box, INT64_MAX, 1},
                                    {"B", &box, INT64_MAX, 1},
                                    {"C", &box, INT64_MAX, 1}};
    fiber_task_t *tasks[3];
    (void)arg;

    CHECK_EQ(fiber_mutex_init(&box.m), 0);
    CHECK_EQ(fiber_cond_init(&box.c), 0);
    for (size_t i = 0; i < 3; i++)
        tasks[i] = spawn_named(wait_once, &waiters[i], waiters[i].name);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_mutex_lock(&box.m), 0);
    log_event("main broadcasts, holding the mutex 1s");
    CHECK_EQ(fiber_cond_broadcast(&box.c), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_mutex_unlock(&box.m), 0);
    CHECK_EQ(fiber_gather(tasks, 3, NULL, NULL), 0);
    CHECK_EQ(fiber_cond_destroy(&box.c), 0);
    CHECK_EQ(fiber_mutex_destroy(&box.m), 0);
    return NULL;
}

static void test_cond_woken_waiters_take_the_mutex_back_in_order(void **state)
{
    (void)state;
    run_scenario(cond_broadcast_relocks_in_order, NULL);
    ASSERT_EVENTS("A waits @0ms", "B waits @0ms", "C waits @0ms",
                  "main broadcasts, holding the mutex 1s @1000ms",
                  "A wait ok @2000ms", "A sleep ok @3000ms",
                  "B wait ok @3000ms", "B sleep ok @4000ms",
                  "C wait ok @4000ms", "C sleep ok @5000ms");
}

static void *cond_timeout_and_cancel_own_the_mutex(void *arg)
{
    struct box box = {.tokens = 0};
    struct cond_waiter waiters[] = {{"T", &box, 0, 0}, {"K", &box, INT64_MAX, 0}};
    fiber_task_t *tasks[2];
    (void)arg;

    CHECK_EQ(fiber_mutex_init(&box.m), 0);
    CHECK_EQ(fiber_cond_init(&box.c), 0);
    waiters[0].deadline = deadline_in(1);
    for (size_t i = 0; i < 2; i++)
        tasks[i] = spawn_named(wait_once, &waiters[i], waiters[i].name);
    CHECK_EQ(fiber_sleep(0.5), 0);
    CHECK_EQ(fiber_mutex_lock(&box.m), 0);
    /* T times out and K is cancelled while main holds the mutex: both
     * return only once they own it again. */
    CHECK_EQ(fiber_cancel(tasks[1]), 0);
    CHECK_EQ(fiber_sleep(2), 0);
    log_event("main unlocks");
    CHECK_EQ(fiber_mutex_unlock(&box.m), 0);
    GATHER_EXPECTING(tasks, 0, -ECANCELED);
    CHECK_EQ(fiber_cond_destroy(&box.c), 0);
    CHECK_EQ(fiber_mutex_destroy(&box.m), 0);
    return NULL;
}

static void test_cond_wait_ends_owning_the_mutex_on_timeout_and_cancel(void **state)
{
    (void)state;
    run_scenario(cond_timeout_and_cancel_own_the_mutex, NULL);
    ASSERT_EVENTS("T waits @0ms", "K waits @0ms", "main unlocks @2500ms",
                  "K wait ECANCELED @2500ms", "T wait ETIMEDOUT @2500ms");
}

static void *cond_signal_not_lost_to_cancel(void *arg)
{
    struct box box = {.tokens = 0};
    struct cond_waiter w = {"W", &box, INT64_MAX, 1};
    (void)arg;

    CHECK_EQ(fiber_mutex_init(&box.m), 0);
    CHECK_EQ(fiber_cond_init(&box.c), 0);
    fiber_task_t *task = spawn_named(wait_once, &w, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_mutex_lock(&box.m), 0);
    CHECK_EQ(fiber_cond_signal(&box.c), 0);
    /* W runs, finds the mutex held and waits for it: that wait cannot be
     * cancelled, and the signal came first. */
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(task), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main unlocks");
    CHECK_EQ(fiber_mutex_unlock(&box.m), 0);
    CHECK_EQ(await_status(task), -ECANCELED);
    CHECK_EQ(fiber_mutex_locked(&box.m), 0);
    CHECK_EQ(fiber_cond_destroy(&box.c), 0);
    CHECK_EQ(fiber_mutex_destroy(&box.m), 0);
    return NULL;
}

static void test_cond_signal_then_cancel_returns_the_signal(void **state)
{
    (void)state;
    run_scenario(cond_signal_not_lost_to_cancel, NULL);
    ASSERT_EVENTS("W waits @0ms", "main unlocks @3000ms", "W wait ok @3000ms",
                  "W sleep ECANCELED @3000ms");
}

static void *cond_misuse(void *arg)
{
    struct box box = {.tokens = 0};
    fiber_cond_t zeroed;
    (void)arg;

    memset(&zeroed, 0, sizeof(zeroed));
    CHECK_EQ(fiber_mutex_init(&box.m), 0);
    CHECK_EQ(fiber_cond_init(&box.c), 0);
    CHECK_EQ(fiber_cond_init(NULL), -EINVAL);
    CHECK_EQ(fiber_cond_wait(&box.c, &box.m), -EPERM);   /* m not owned */
    CHECK_EQ(fiber_mutex_lock(&box.m), 0);
    CHECK_EQ(fiber_cond_wait(&zeroed, &box.m), -EINVAL);
    CHECK_EQ(fiber_cond_wait(NULL, &box.m), -EINVAL);
    CHECK_EQ(fiber_cond_wait(&box.c, NULL), -EINVAL);
    CHECK_EQ(fiber_cond_signal(&zeroed), -EINVAL);
    CHECK_EQ(fiber_cond_broadcast(NULL), -EINVAL);
    /* A deadline already passed returns at once, the mutex never let go. */
    int64_t before = elapsed_ns();
    CHECK_EQ(fiber_cond_wait_until(&box.c, &box.m, 0), -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), before);
    CHECK_EQ(fiber_mutex_unlock(&box.m), 0);
    /* Signals with nobody waiting are not remembered. */
    CHECK_EQ(fiber_cond_signal(&box.c), 0);
    CHECK_EQ(fiber_cond_broadcast(&box.c), 0);
    CHECK_EQ(fiber_mutex_lock(&box.m), 0);
    CHECK_EQ(fiber_cond_wait_until(&box.c, &box.m, deadline_in(1)), -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), before + SEC);
    CHECK_EQ(fiber_mutex_unlock(&box.m), 0);
    CHECK_EQ(fiber_cond_destroy(&box.c), 0);
    CHECK_EQ(fiber_cond_destroy(&box.c), -EINVAL);
    CHECK_EQ(fiber_mutex_destroy(&box.m), 0);
    return NULL;
}

static void *cond_wait_while_cancelled(void *arg)
{
    struct box *box = arg;

    CHECK_EQ(fiber_mutex_trylock(&box->m), 0);
    CHECK_EQ(fiber_cond_wait(&box->c, &box->m), -ECANCELED);
    /* Refused at entry: the mutex was never released. */
    CHECK_EQ(fiber_mutex_unlock(&box->m), 0);
    return NULL;
}

static void *cond_cancelled_at_entry(void *arg)
{
    struct box box = {.tokens = 0};
    (void)arg;

    CHECK_EQ(fiber_mutex_init(&box.m), 0);
    CHECK_EQ(fiber_cond_init(&box.c), 0);
    fiber_task_t *task = spawn_named(cond_wait_while_cancelled, &box, "K");
    CHECK_EQ(fiber_cancel(task), 0);
    CHECK_EQ(await_status(task), -ECANCELED);
    CHECK_EQ(fiber_mutex_destroy(&box.m), 0);
    CHECK_EQ(fiber_cond_destroy(&box.c), 0);
    return NULL;
}

static void test_cond_misuse(void **state)
{
    struct box box;
    (void)state;

    assert_int_equal(fiber_mutex_init(&box.m), 0);
    assert_int_equal(fiber_cond_init(&box.c), 0);
    assert_int_equal(fiber_cond_wait(&box.c, &box.m), -EPERM);
    assert_int_equal(fiber_cond_wait_until(&box.c, &box.m, 0), -EPERM);
    assert_int_equal(fiber_cond_signal(&box.c), 0);
    assert_int_equal(fiber_cond_broadcast(&box.c), 0);
    assert_int_equal(fiber_cond_destroy(&box.c), 0);
    assert_int_equal(fiber_mutex_destroy(&box.m), 0);
    run_scenario(cond_misuse, NULL);
    run_scenario(cond_cancelled_at_entry, NULL);
}

/* ---- deadlocks ----------------------------------------------------------- */

static void *lock_forever(void *arg)
{
    return fiber_mutex_lock(arg) == -ECANCELED ? NULL : fiber_fail(-EIO);
}

static void *await_a_blocked_locker(void *arg)
{
    fiber_mutex_t *m = arg;

    CHECK_EQ(fiber_mutex_lock(m), 0);
    fiber_task_t *task = spawn_named(lock_forever, m, "locker");
    /* The loop breaks the deadlock by cancelling both. */
    int status = 1;
    CHECK_EQ(fiber_await(task, NULL, &status), -ECANCELED);
    CHECK_EQ(status, -ECANCELED);
    CHECK_EQ(fiber_mutex_unlock(m), 0);
    return NULL;
}

static void test_deadlock_report_names_the_mutex_waiter(void **state)
{
    fiber_mutex_t m;
    char report[16384];
    int status = 1;
    (void)state;

    assert_int_equal(fiber_mutex_init(&m), 0);
    int rc = run_virtual_capturing_stderr(await_a_blocked_locker, &m, &status, report,
                                          sizeof(report));
    assert_int_equal(rc, -EDEADLK);
    assert_int_equal(status, -ECANCELED);
    assert_contains(report, "deadlock");
    assert_reported_waiting(report, "locker", "mutex");
    assert_int_equal(fiber_mutex_locked(&m), 0);
    assert_int_equal(fiber_mutex_destroy(&m), 0);
}

/*
 * A fiber that must take a mutex back after a condition wait, while the
 * mutex's owner waits for that very fiber to finish: a wait nothing can
 * end, not even the loop's cancels.  The loop abandons both fibers; the
 * mutex must not keep a pointer to the abandoned one.
 */
static void *wait_on_cond(void *arg)
{
    struct box *box = arg;

    CHECK_EQ(fiber_mutex_lock(&box->m), 0);
    fiber_cond_wait(&box->c, &box->m);
    CHECK(false); /* never resumed */
    return NULL;
}

static void *await_the_cond_waiter(void *arg)
{
    struct box *box = arg;

    fiber_task_t *task = spawn_named(wait_on_cond, box, "waiter");
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_mutex_lock(&box->m), 0);
    fiber_await(task, NULL, NULL);
    CHECK(false); /* never resumed */
    return NULL;
}

static void test_deadlock_on_taking_a_mutex_back_is_abandoned_cleanly(void **state)
{
    struct box box;
    char report[16384];
    int status = 1;
    (void)state;

    assert_int_equal(fiber_mutex_init(&box.m), 0);
    assert_int_equal(fiber_cond_init(&box.c), 0);
    int rc = run_virtual_capturing_stderr(await_the_cond_waiter, &box, &status, report,
                                          sizeof(report));
    assert_int_equal(rc, -EDEADLK);
    assert_int_equal(status, -EDEADLK);
    assert_reported_waiting(report, "waiter", "condition");
    assert_reported_waiting(report, "waiter", "mutex");
    /* Nobody is left in the condition's or the mutex's line: the private
     * fields are read here only to show that. */
    assert_null(box.c.private_waiters.private_words[0]);
    assert_null(box.m.private_waiters.private_words[0]);
    assert_int_equal(fiber_cond_destroy(&box.c), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutex_waiters_lock_in_arrival_order),
        cmocka_unit_test(test_mutex_is_handed_off_without_barging),
        cmocka_unit_test(test_mutex_lock_until_times_out),
        cmocka_unit_test(test_mutex_of_a_finished_fiber_stays_locked),
        cmocka_unit_test(test_mutex_of_a_finished_fiber_stays_locked_in_debug_mode),
        cmocka_unit_test(test_mutex_locked_in_an_earlier_loop_is_nobodys),
        cmocka_unit_test(test_mutex_cancel_at_the_deadline_wins),
        cmocka_unit_test(test_mutex_waiter_cancelled_leaves_the_line),
        cmocka_unit_test(test_mutex_handed_to_a_waiter_then_cancelled_is_not_lost),
        cmocka_unit_test(test_mutex_misuse_is_refused_and_changes_nothing),
        cmocka_unit_test(test_event_set_wakes_every_waiter_in_order),
        cmocka_unit_test(test_event_waiters_time_out_and_cancel),
        cmocka_unit_test(test_event_misuse),
        cmocka_unit_test(test_sem_admits_value_fibers_at_a_time_in_order),
        cmocka_unit_test(test_sem_hands_units_off_and_bounded_refuses_overflow),
        cmocka_unit_test(test_sem_cancelled_waiters_neither_take_nor_lose_units),
        cmocka_unit_test(test_sem_misuse),
        cmocka_unit_test(test_cond_signal_wakes_the_oldest_waiter),
        cmocka_unit_test(test_cond_woken_waiters_take_the_mutex_back_in_order),
        cmocka_unit_test(test_cond_wait_ends_owning_the_mutex_on_timeout_and_cancel),
        cmocka_unit_test(test_cond_signal_then_cancel_returns_the_signal),
        cmocka_unit_test(test_cond_misuse),
        cmocka_unit_test(test_deadlock_report_names_the_mutex_waiter),
        cmocka_unit_test(test_deadlock_on_taking_a_mutex_back_is_abandoned_cleanly),
    };

    return cmocka_run_group_tests_name(GROUP_NAME, tests, NULL, NULL);
}
