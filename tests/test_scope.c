/*
 * test_scope.c - timeout scopes and shields as the header promises them:
 * one deadline over a block of blocking calls, level-triggered until the
 * scope exits, nesting, cancelling a scope from another fiber, shields,
 * and what wins when a cancel, a timeout and a completion coincide.
 *
 * Every scenario runs on the virtual clock and compares an event log, with
 * exact times, with the expected sequence (see event_log.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "fiber.h"
#include "event_log.h"

#define GROUP_NAME "scope"

/* ---- one deadline over a block ------------------------------------------ */

static void *sleep_past_the_deadline(void *arg)
{
    fiber_scope_t scope;
    (void)arg;

    CHECK_EQ(fiber_scope_enter_after(&scope, 2), 0);
    log_event("sleep %s", rc_name(fiber_sleep(5)));
    /* Level-triggered: every blocking call fails until the scope exits. */
    log_event("yield %s", rc_name(fiber_yield()));
    log_event("sleep_ns %s", rc_name(fiber_sleep_ns(1)));
    log_event("sleep_until %s", rc_name(fiber_sleep_until(fiber_now_ns())));
    CHECK_EQ(fiber_scope_expired(&scope), 1);
    log_event("exit %s", rc_name(fiber_scope_exit(&scope)));
    /* The fiber itself is not cancelled: after the scope, calls work. */
    CHECK_EQ(fiber_cancelling(), 0);
    CHECK_EQ(fiber_scope_expired(&scope), 1);
    log_event("sleep %s", rc_name(fiber_sleep(1)));
    return NULL;
}

static void test_deadline_cuts_the_block_then_calls_work_again(void **state)
{
    (void)state;
    /* run_scenario also checks that main ends with status 0, not
     * -ECANCELED: a scope does not cancel its fiber. */
    run_scenario(sleep_past_the_deadline, NULL);
    ASSERT_EVENTS("sleep ETIMEDOUT @2000ms", "yield ETIMEDOUT @2000ms",
                  "sleep_ns ETIMEDOUT @2000ms", "sleep_until ETIMEDOUT @2000ms",
                  "exit ETIMEDOUT @2000ms", "sleep ok @3000ms");
}

static void *finish_before_the_deadline(void *arg)
{
    fiber_scope_t scope;
    (void)arg;

    CHECK_EQ(fiber_scope_enter_after(&scope, 5), 0);
    log_event("sleep %s", rc_name(fiber_sleep(1)));
    log_event("sleep %s", rc_name(fiber_sleep(2)));
    CHECK_EQ(fiber_scope_expired(&scope), 0);
    log_event("exit %s", rc_name(fiber_scope_exit(&scope)));
    /* Past the deadline it would have had, an exited scope stays as it
     * ended. */
    log_event("sleep %s", rc_name(fiber_sleep(10)));
    CHECK_EQ(fiber_scope_expired(&scope), 0);
    return NULL;
}

static void test_block_done_in_time_exits_with_zero(void **state)
{
    (void)state;
    run_scenario(finish_before_the_deadline, NULL);
    ASSERT_EVENTS("sleep ok @1000ms", "sleep ok @3000ms", "exit ok @3000ms",
                  "sleep ok @13000ms");
}

/* The deadline in nanoseconds, through fiber_scope_enter; INT64_MAX and
 * infinity mean none. */
static void *enter_with_absolute_deadlines(void *arg)
{
    fiber_scope_t never, never_after, absolute;
    (void)arg;

    CHECK_EQ(fiber_scope_enter(&never, INT64_MAX), 0);
    CHECK_EQ(fiber_scope_enter_after(&never_after, INFINITY), 0);
    CHECK_EQ(fiber_scope_enter(&absolute, events.origin_ns + 1500 * MS), 0);
    log_event("sleep %s", rc_name(fiber_sleep(1)));
    log_event("sleep %s", rc_name(fiber_sleep(1)));
    log_event("exit %s", rc_name(fiber_scope_exit(&absolute)));
    log_event("sleep %s", rc_name(fiber_sleep(1e6)));
    CHECK_EQ(fiber_scope_expired(&never_after), 0);
    CHECK_EQ(fiber_scope_exit(&never_after), 0);
    CHECK_EQ(fiber_scope_exit(&never), 0);
    return NULL;
}

static void test_absolute_deadline_and_no_deadline(void **state)
{
    (void)state;
    run_scenario(enter_with_absolute_deadlines, NULL);
    ASSERT_EVENTS("sleep ok @1000ms", "sleep ETIMEDOUT @1500ms",
                  "exit ETIMEDOUT @1500ms", "sleep ok @1000001500ms");
}

static void *zero_timeout(void *arg)
{
    fiber_scope_t scope;
    (void)arg;

    CHECK_EQ(fiber_scope_enter_after(&scope, 0), 0);
    log_event("yield %s", rc_name(fiber_yield()));
    log_event("exit %s", rc_name(fiber_scope_exit(&scope)));
    return NULL;
}

static void test_zero_timeout_fails_the_first_call(void **state)
{
    (void)state;
    run_scenario(zero_timeout, NULL);
    ASSERT_EVENTS("yield ETIMEDOUT @0ms", "exit ETIMEDOUT @0ms");
}

/* ---- awaits, gathers and waits stopped by a scope ----------------------- */

struct stopped_awaits {
    struct job slow, finished, gathered[2];
};

static void *await_in_an_expired_scope(void *arg)
{
    struct stopped_awaits *s = arg;
    fiber_scope_t scope;
    fiber_task_t *tasks[2];
    void *results[2] = {NULL, NULL};
    int statuses[2] = {1, 1};

    fiber_task_t *finished = spawn_job(&s->finished);
    fiber_task_t *slow = spawn_job(&s->slow);
    CHECK_EQ(fiber_scope_enter_after(&scope, 1), 0);
    /* The scope's deadline cuts the await short: the task is cancelled and
     * reaped, its result kept. */
    await_expecting(slow, -ETIMEDOUT, 1, -ECANCELED);
    log_event("await slow done");
    /* Level-triggered: even a finished task's await fails, result given. */
    await_expecting(finished, -ETIMEDOUT, 2, 0);
    log_event("await finished done");
    tasks[0] = spawn_job(&s->gathered[0]);
    tasks[1] = spawn_job(&s->gathered[1]);
    log_event("gather %s", rc_name(fiber_gather(tasks, 2, results, statuses)));
    CHECK_PTR(results[0], RESULT(3));
    CHECK_EQ(statuses[0], -ECANCELED);
    CHECK_PTR(results[1], RESULT(4));
    CHECK_EQ(statuses[1], -ECANCELED);
    log_event("exit %s", rc_name(fiber_scope_exit(&scope)));
    return NULL;
}

static void test_expired_scope_stops_awaits_and_gathers(void **state)
{
    struct stopped_awaits s = {
        .slow = {.label = "S", .sleep_s = 10, .result = 1},
        .finished = {.label = "F", .no_block = true, .result = 2},
        .gathered = {{.label = "X", .sleep_s = 1, .result = 3},
                     {.label = "Y", .sleep_s = 1, .result = 4}},
    };
    (void)state;

    run_scenario(await_in_an_expired_scope, &s);
    ASSERT_EVENTS("F start @0ms", "S start @0ms", "S slept ECANCELED @1000ms",
                  "await slow done @1000ms", "await finished done @1000ms",
                  "X start @1000ms", "X slept ECANCELED @1000ms",
                  "Y start @1000ms", "Y slept ECANCELED @1000ms",
                  "gather ETIMEDOUT @1000ms", "exit ETIMEDOUT @1000ms");
}

struct timed_awaits {
    struct job early, late;
};

static void *wait_for_inside_a_scope(void *arg)
{
    struct timed_awaits *t = arg;
    fiber_scope_t scope;
    void *result;
    int status;

    CHECK_EQ(fiber_scope_enter_after(&scope, 3), 0);
    /* Its own timeout comes first: the call's own -ETIMEDOUT, and the
     * scope has not cut anything short. */
    fiber_task_t *task = spawn_job(&t->early);
    log_event("wait_for 1 s %s",
              rc_name(fiber_wait_for(task, 1, &result, &status)));
    /* The scope's deadline comes first. */
    task = spawn_job(&t->late);
    log_event("wait_for 5 s %s",
              rc_name(fiber_wait_for(task, 5, &result, &status)));
    CHECK_PTR(result, RESULT(2));
    CHECK_EQ(status, -ECANCELED);
    log_event("exit %s", rc_name(fiber_scope_exit(&scope)));
    return NULL;
}

static void test_wait_for_obeys_the_earlier_deadline(void **state)
{
    struct timed_awaits t = {
        .early = {.label = "A", .sleep_s = 2, .result = 1},
        .late = {.label = "B", .sleep_s = 10, .result = 2},
    };
    (void)state;

    run_scenario(wait_for_inside_a_scope, &t);
    ASSERT_EVENTS("A start @0ms", "A slept ECANCELED @1000ms",
                  "wait_for 1 s ETIMEDOUT @1000ms", "B start @1000ms",
                  "B slept ECANCELED @3000ms", "wait_for 5 s ETIMEDOUT @3000ms",
                  "exit ETIMEDOUT @3000ms");
}

static void *own_timeout_only(void *arg)
{
    struct job *job = arg;
    fiber_scope_t scope;

    CHECK_EQ(fiber_scope_enter_after(&scope, 3), 0);
    fiber_task_t *task = spawn_job(job);
    log_event("wait_for %s", rc_name(fiber_wait_for(task, 1, NULL, NULL)));
    log_event("exit %s", rc_name(fiber_scope_exit(&scope)));
    return NULL;
}

static void test_own_timeout_is_not_the_scopes(void **state)
{
    struct job job = {.label = "A", .sleep_s = 2};
    (void)state;

    run_scenario(own_timeout_only, &job);
    ASSERT_EVENTS("A start @0ms", "A slept ECANCELED @1000ms",
                  "wait_for ETIMEDOUT @1000ms", "exit ok @1000ms");
}

/* ---- nesting ------------------------------------------------------------ */

static void *inner_scope_later_than_outer(void *arg)
{
    fiber_scope_t outer, inner;
    (void)arg;

    CHECK_EQ(fiber_scope_enter_after(&outer, 1), 0);
    CHECK_EQ(fiber_scope_enter_after(&inner, 5), 0);
    log_event("sleep %s", rc_name(fiber_sleep(3)));
    /* The error was the outer scope's: the inner one returns 0. */
    log_event("inner exit %s", rc_name(fiber_scope_exit(&inner)));
    log_event("sleep %s", rc_name(fiber_sleep(3)));
    log_event("outer exit %s", rc_name(fiber_scope_exit(&outer)));
    return NULL;
}

static void test_inner_scope_cannot_extend_the_outer(void **state)
{
    (void)state;
    run_scenario(inner_scope_later_than_outer, NULL);
    ASSERT_EVENTS("sleep ETIMEDOUT @1000ms", "inner exit ok @1000ms",
                  "sleep ETIMEDOUT @1000ms", "outer exit ETIMEDOUT @1000ms");
}

static void *inner_scope_earlier_than_outer(void *arg)
{
    fiber_scope_t outer, inner;
    (void)arg;

    CHECK_EQ(fiber_scope_enter_after(&outer, 3), 0);
    CHECK_EQ(fiber_scope_enter_after(&inner, 1), 0);
    log_event("sleep %s", rc_name(fiber_sleep(2)));
    log_event("inner exit %s", rc_name(fiber_scope_exit(&inner)));
    log_event("sleep %s", rc_name(fiber_sleep(1)));
    log_event("sleep %s", rc_name(fiber_sleep(2)));
    log_event("outer exit %s", rc_name(fiber_scope_exit(&outer)));
    return NULL;
}

static void test_inner_scope_earlier_ends_first(void **state)
{
    (void)state;
    run_scenario(inner_scope_earlier_than_outer, NULL);
    ASSERT_EVENTS("sleep ETIMEDOUT @1000ms", "inner exit ETIMEDOUT @1000ms",
                  "sleep ok @2000ms", "sleep ETIMEDOUT @3000ms",
                  "outer exit ETIMEDOUT @3000ms");
}

struct two_scopes {
    fiber_scope_t outer, inner;
    bool entered;
};

static void *sleep_in_two_scopes(void *arg)
{
    struct two_scopes *s = arg;

    CHECK_EQ(fiber_scope_enter(&s->outer, INT64_MAX), 0);
    CHECK_EQ(fiber_scope_enter_after(&s->inner, 2), 0);
    s->entered = true;
    log_event("W sleep %s", rc_name(fiber_sleep(10)));
    /* Level-triggered, and still the outer scope's: the inner one has
     * nothing to report. */
    log_event("W sleep %s", rc_name(fiber_sleep(0.5)));
    log_event("W inner exit %s", rc_name(fiber_scope_exit(&s->inner)));
    log_event("W outer exit %s", rc_name(fiber_scope_exit(&s->outer)));
    log_event("W sleep %s", rc_name(fiber_sleep(1)));
    return NULL;
}

static void *cancel_outer_scope(void *arg)
{
    struct two_scopes *s = arg;

    fiber_task_t *w = spawn_named(sleep_in_two_scopes, s, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK(s->entered);
    log_event("cancel outer");
    CHECK_EQ(fiber_scope_cancel(&s->outer), 0);
    CHECK_EQ(fiber_scope_cancel(&s->outer), 0);
    await_expecting(w, 0, 0, 0);
    CHECK_EQ(fiber_scope_cancel(&s->outer), -EALREADY);
    return NULL;
}

static void test_outer_cancel_is_not_swallowed_by_inner_scope(void **state)
{
    struct two_scopes s = {.entered = false};
    (void)state;

    run_scenario(cancel_outer_scope, &s);
    ASSERT_EVENTS("cancel outer @1000ms", "W sleep ECANCELED @1000ms",
                  "W sleep ECANCELED @1000ms", "W inner exit ok @1000ms",
                  "W outer exit ECANCELED @1000ms", "W sleep ok @2000ms");
}

/* ---- cancelling a scope, cancelling the fiber --------------------------- */

struct scoped_worker {
    fiber_scope_t scope;
    double timeout;
    bool entered;
    int exit_rc;
};

static void *sleep_in_scope(void *arg)
{
    struct scoped_worker *w = arg;

    CHECK_EQ(fiber_scope_enter_after(&w->scope, w->timeout), 0);
    w->entered = true;
    log_event("W sleep %s", rc_name(fiber_sleep(10)));
    log_event("W yield %s", rc_name(fiber_yield()));
    w->exit_rc = fiber_scope_exit(&w->scope);
    log_event("W exit %s", rc_name(w->exit_rc));
    log_event("W cancelling %d", fiber_cancelling());
    log_event("W sleep %s", rc_name(fiber_sleep(1)));
    return RESULT(7);
}

static void *cancel_workers_scope(void *arg)
{
    struct scoped_worker *w = arg;

    fiber_task_t *worker = spawn_named(sleep_in_scope, w, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel scope");
    CHECK_EQ(fiber_scope_cancel(&w->scope), 0);
    CHECK_EQ(fiber_scope_expired(&w->scope), 1);
    /* W ends normally: a scope's cancel is not the fiber's. */
    await_expecting(worker, 0, 7, 0);
    CHECK_EQ(fiber_scope_cancel(&w->scope), -EALREADY);
    CHECK_EQ(fiber_scope_expired(&w->scope), 1);
    return NULL;
}

static void test_scope_cancelled_by_another_fiber(void **state)
{
    struct scoped_worker w = {.timeout = INFINITY};
    (void)state;

    run_scenario(cancel_workers_scope, &w);
    ASSERT_EVENTS("cancel scope @1000ms", "W sleep ECANCELED @1000ms",
                  "W yield ECANCELED @1000ms", "W exit ECANCELED @1000ms",
                  "W cancelling 0 @1000ms", "W sleep ok @2000ms");
}

static void *cancel_worker(void *arg)
{
    struct scoped_worker *w = arg;

    fiber_task_t *worker = spawn_named(sleep_in_scope, w, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel W");
    CHECK_EQ(fiber_cancel(worker), 0);
    await_expecting(worker, 0, 7, -ECANCELED);
    return NULL;
}

static void test_fiber_cancel_inside_scope_outlives_the_scope(void **state)
{
    struct scoped_worker w = {.timeout = 5};
    (void)state;

    run_scenario(cancel_worker, &w);
    ASSERT_EVENTS("cancel W @1000ms", "W sleep ECANCELED @1000ms",
                  "W yield ECANCELED @1000ms", "W exit ok @1000ms",
                  "W cancelling 1 @1000ms", "W sleep ECANCELED @1000ms");
}

/* ---- coincidences ------------------------------------------------------- */

static void *sleep_ending_at_the_deadline(void *arg)
{
    fiber_scope_t scope;
    (void)arg;

    CHECK_EQ(fiber_scope_enter_after(&scope, 1), 0);
    log_event("sleep %s", rc_name(fiber_sleep(1)));
    CHECK_EQ(fiber_scope_expired(&scope), 1);
    /* Nothing was cut short: the block did all it had to. */
    log_event("exit %s", rc_name(fiber_scope_exit(&scope)));

    CHECK_EQ(fiber_scope_enter_after(&scope, 1), 0);
    log_event("sleep %s", rc_name(fiber_sleep(1)));
    log_event("yield %s", rc_name(fiber_yield()));
    log_event("exit %s", rc_name(fiber_scope_exit(&scope)));
    return NULL;
}

static void test_completion_at_the_deadline_wins(void **state)
{
    (void)state;
    run_scenario(sleep_ending_at_the_deadline, NULL);
    ASSERT_EVENTS("sleep ok @1000ms", "exit ok @1000ms", "sleep ok @2000ms",
                  "yield ETIMEDOUT @2000ms", "exit ETIMEDOUT @2000ms");
}

struct await_at_deadline {
    struct job job;
    bool let_job_start_first;
};

static void *await_task_ending_at_the_deadline(void *arg)
{
    struct await_at_deadline *a = arg;
    fiber_scope_t scope;

    fiber_task_t *task = spawn_job(&a->job);
    if (a->let_job_start_first)
        CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_scope_enter_after(&scope, 1), 0);
    await_expecting(task, 0, 5, 0);
    log_event("awaited");
    log_event("exit %s", rc_name(fiber_scope_exit(&scope)));
    return NULL;
}

static void assert_await_completion_wins(bool let_job_start_first)
{
    struct await_at_deadline a = {
        .job = {.label = "A", .sleep_s = 1, .result = 5},
        .let_job_start_first = let_job_start_first,
    };

    run_scenario(await_task_ending_at_the_deadline, &a);
    ASSERT_EVENTS("A start @0ms", "A slept ok @1000ms", "awaited @1000ms",
                  "exit ok @1000ms");
}

static void test_await_completion_wins_scope_timer_set_first(void **state)
{
    (void)state;
    assert_await_completion_wins(false);
}

static void test_await_completion_wins_task_timer_set_first(void **state)
{
    (void)state;
    assert_await_completion_wins(true);
}

struct cancel_at_deadline {
    struct scoped_worker w;
    bool worker_timer_first;
};

static void *cancel_worker_at_its_deadline(void *arg)
{
    struct cancel_at_deadline *c = arg;

    fiber_task_t *worker = spawn_named(sleep_in_scope, &c->w, "W");
    if (c->worker_timer_first)
        CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel W");
    CHECK_EQ(fiber_cancel(worker), 0);
    await_expecting(worker, 0, 7, -ECANCELED);
    return NULL;
}

static void assert_cancel_wins_over_scope(bool worker_timer_first)
{
    struct cancel_at_deadline c = {
        .w = {.timeout = 1}, .worker_timer_first = worker_timer_first};

    run_scenario(cancel_worker_at_its_deadline, &c);
    ASSERT_EVENTS("cancel W @1000ms", "W sleep ECANCELED @1000ms",
                  "W yield ECANCELED @1000ms", "W exit ok @1000ms",
                  "W cancelling 1 @1000ms", "W sleep ECANCELED @1000ms");
    assert_int_equal(c.w.exit_rc, 0);
}

static void test_cancel_wins_over_scope_cancel_timer_first(void **state)
{
    (void)state;
    assert_cancel_wins_over_scope(false);
}

static void test_cancel_wins_over_scope_scope_timer_first(void **state)
{
    (void)state;
    assert_cancel_wins_over_scope(true);
}

/* A task finishing, the awaiter's scope expiring and the awaiter being
 * cancelled, all at one instant: the cancel wins, so that the awaiter
 * unwinds, and the task's result is kept all the same. */
static void *await_in_scope(void *arg)
{
    fiber_task_t *task = arg;
    fiber_scope_t scope;

    CHECK_EQ(fiber_scope_enter_after(&scope, 1), 0);
    await_expecting(task, -ECANCELED, 5, 0);
    log_event("W awaited");
    log_event("W exit %s", rc_name(fiber_scope_exit(&scope)));
    return NULL;
}

static void *cancel_at_once(void *arg)
{
    fiber_task_t *task = spawn_job(arg);
    fiber_task_t *w = spawn_named(await_in_scope, task, "W");

    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel W");
    CHECK_EQ(fiber_cancel(w), 0);
    await_expecting(w, 0, 0, -ECANCELED);
    return NULL;
}

static void test_cancel_timeout_and_completion_at_one_instant(void **state)
{
    struct job job = {.label = "A", .sleep_s = 1, .result = 5};
    (void)state;

    run_scenario(cancel_at_once, &job);
    ASSERT_EVENTS("A start @0ms", "cancel W @1000ms", "A slept ok @1000ms",
                  "W awaited @1000ms", "W exit ok @1000ms");
}

/* ---- shields ------------------------------------------------------------ */

struct cleanup {
    double shield_s;   /* the shield's bound */
    double cleanup_s;  /* how long the cleanup sleeps */
};

/* Cancelled while sleeping, it cleans up inside a shield, then finds the
 * cancellation in force again. */
static void *clean_up_when_cancelled(void *arg)
{
    struct cleanup *c = arg;
    fiber_scope_t shield;

    log_event("W sleep %s", rc_name(fiber_sleep(10)));
    CHECK_EQ(fiber_scope_enter_shielded(&shield, c->shield_s), 0);
    log_event("W cleanup %s", rc_name(fiber_sleep(c->cleanup_s)));
    log_event("W shield exit %s", rc_name(fiber_scope_exit(&shield)));
    log_event("W yield %s", rc_name(fiber_yield()));
    return RESULT(3);
}

static void *cancel_then_await(void *arg)
{
    fiber_task_t *worker = spawn_named(clean_up_when_cancelled, arg, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel W");
    CHECK_EQ(fiber_cancel(worker), 0);
    await_expecting(worker, 0, 3, -ECANCELED);
    log_event("awaited");
    return NULL;
}

static void test_shield_lets_cleanup_block_after_cancel(void **state)
{
    struct cleanup c = {.shield_s = 5, .cleanup_s = 0.5};
    (void)state;

    run_scenario(cancel_then_await, &c);
    ASSERT_EVENTS("cancel W @1000ms", "W sleep ECANCELED @1000ms",
                  "W cleanup ok @1500ms", "W shield exit ok @1500ms",
                  "W yield ECANCELED @1500ms", "awaited @1500ms");
}

static void test_shield_deadline_bounds_the_cleanup(void **state)
{
    struct cleanup c = {.shield_s = 0.25, .cleanup_s = 3};
    (void)state;

    run_scenario(cancel_then_await, &c);
    ASSERT_EVENTS("cancel W @1000ms", "W sleep ECANCELED @1000ms",
                  "W cleanup ETIMEDOUT @1250ms",
                  "W shield exit ETIMEDOUT @1250ms",
                  "W yield ECANCELED @1250ms", "awaited @1250ms");
}

/* A cancel that comes while the fiber sleeps inside a shield wakes
 * nothing; the first call after the shield gets it. */
static void *sleep_shielded(void *arg)
{
    fiber_scope_t outer, shield;
    (void)arg;

    CHECK_EQ(fiber_scope_enter_after(&outer, 0.5), 0);
    CHECK_EQ(fiber_scope_enter_shielded(&shield, INFINITY), 0);
    /* Neither the outer scope's deadline nor the cancel reaches it. */
    log_event("W sleep %s", rc_name(fiber_sleep(2)));
    log_event("W cancelling %d", fiber_cancelling());
    log_event("W shield exit %s", rc_name(fiber_scope_exit(&shield)));
    /* The cancel is outermost: it wins over the outer scope's deadline. */
    log_event("W sleep %s", rc_name(fiber_sleep(1)));
    log_event("W outer exit %s", rc_name(fiber_scope_exit(&outer)));
    return NULL;
}

static void *cancel_shielded_sleeper(void *arg)
{
    (void)arg;
    fiber_task_t *worker = spawn_named(sleep_shielded, NULL, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel W");
    CHECK_EQ(fiber_cancel(worker), 0);
    await_expecting(worker, 0, 0, -ECANCELED);
    return NULL;
}

static void test_shield_hides_cancel_and_outer_scopes(void **state)
{
    (void)state;
    run_scenario(cancel_shielded_sleeper, NULL);
    ASSERT_EVENTS("cancel W @1000ms", "W sleep ok @2000ms",
                  "W cancelling 1 @2000ms", "W shield exit ok @2000ms",
                  "W sleep ECANCELED @2000ms", "W outer exit ok @2000ms");
}

struct shield_cancel {
    fiber_scope_t shield, inner;
    bool entered;
};

static void *sleep_in_shield_and_inner(void *arg)
{
    struct shield_cancel *s = arg;

    CHECK_EQ(fiber_scope_enter_shielded(&s->shield, INFINITY), 0);
    CHECK_EQ(fiber_scope_enter_after(&s->inner, 1), 0);
    s->entered = true;
    /* A scope inside the shield applies as usual. */
    log_event("W sleep %s", rc_name(fiber_sleep(5)));
    log_event("W inner exit %s", rc_name(fiber_scope_exit(&s->inner)));
    /* The shield itself can be cancelled. */
    log_event("W sleep %s", rc_name(fiber_sleep(5)));
    log_event("W shield exit %s", rc_name(fiber_scope_exit(&s->shield)));
    return NULL;
}

static void *cancel_the_shield(void *arg)
{
    struct shield_cancel *s = arg;

    fiber_task_t *worker = spawn_named(sleep_in_shield_and_inner, s, "W");
    CHECK_EQ(fiber_sleep(2), 0);
    log_event("cancel shield");
    CHECK_EQ(fiber_scope_cancel(&s->shield), 0);
    await_expecting(worker, 0, 0, 0);
    return NULL;
}

static void test_scopes_inside_a_shield_and_the_shield_itself(void **state)
{
    struct shield_cancel s = {.entered = false};
    (void)state;

    run_scenario(cancel_the_shield, &s);
    ASSERT_EVENTS("W sleep ETIMEDOUT @1000ms", "W inner exit ETIMEDOUT @1000ms",
                  "cancel shield @2000ms", "W sleep ECANCELED @2000ms",
                  "W shield exit ECANCELED @2000ms");
}

/* A scope cancelled from outside a shield that stands in between wakes
 * nothing until the shield ends. */
static void *sleep_shielded_in_scope(void *arg)
{
    struct shield_cancel *s = arg;

    CHECK_EQ(fiber_scope_enter(&s->inner, INT64_MAX), 0);
    CHECK_EQ(fiber_scope_enter_shielded(&s->shield, INFINITY), 0);
    s->entered = true;
    log_event("W sleep %s", rc_name(fiber_sleep(3)));
    log_event("W shield exit %s", rc_name(fiber_scope_exit(&s->shield)));
    log_event("W sleep %s", rc_name(fiber_sleep(3)));
    log_event("W exit %s", rc_name(fiber_scope_exit(&s->inner)));
    return NULL;
}

static void *cancel_scope_behind_shield(void *arg)
{
    struct shield_cancel *s = arg;

    fiber_task_t *worker = spawn_named(sleep_shielded_in_scope, s, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel scope");
    CHECK_EQ(fiber_scope_cancel(&s->inner), 0);
    await_expecting(worker, 0, 0, 0);
    return NULL;
}

static void test_scope_cancel_waits_for_the_shield(void **state)
{
    struct shield_cancel s = {.entered = false};
    (void)state;

    run_scenario(cancel_scope_behind_shield, &s);
    ASSERT_EVENTS("cancel scope @1000ms", "W sleep ok @3000ms",
                  "W shield exit ok @3000ms", "W sleep ECANCELED @3000ms",
                  "W exit ECANCELED @3000ms");
}

/* When main returns, the loop cancels the fibers left; one cleaning up in
 * a shield finishes its cleanup first. */
static void *clean_up_at_shutdown(void *arg)
{
    fiber_scope_t shield;
    (void)arg;

    log_event("W sleep %s", rc_name(fiber_sleep(10)));
    CHECK_EQ(fiber_scope_enter_shielded(&shield, 1), 0);
    log_event("W cleanup %s", rc_name(fiber_sleep(0.5)));
    CHECK_EQ(fiber_scope_exit(&shield), 0);
    return NULL;
}

static void *return_with_worker_running(void *arg)
{
    (void)arg;
    spawn_named(clean_up_at_shutdown, NULL, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main returns");
    return NULL;
}

static void test_shield_cleanup_runs_at_loop_shutdown(void **state)
{
    (void)state;
    run_scenario(return_with_worker_running, NULL);
    ASSERT_EVENTS("main returns @1000ms", "W sleep ECANCELED @1000ms",
                  "W cleanup ok @1500ms");
}

/* ---- misuse ------------------------------------------------------------- */

static void *misuse_scopes(void *arg)
{
    fiber_scope_t a, b, never;
    (void)arg;

    memset(&never, 0, sizeof(never));
    CHECK_EQ(fiber_scope_enter(NULL, 0), -EINVAL);
    CHECK_EQ(fiber_scope_enter_after(NULL, 1), -EINVAL);
    CHECK_EQ(fiber_scope_enter_after(&a, -1), -EINVAL);
    CHECK_EQ(fiber_scope_enter_after(&a, NAN), -EINVAL);
    CHECK_EQ(fiber_scope_enter_shielded(&a, -INFINITY), -EINVAL);
    CHECK_EQ(fiber_scope_exit(NULL), -EINVAL);
    CHECK_EQ(fiber_scope_cancel(NULL), -EINVAL);
    CHECK_EQ(fiber_scope_expired(NULL), -EINVAL);
    CHECK_EQ(fiber_scope_cancel(&never), -EINVAL);
    CHECK_EQ(fiber_scope_expired(&never), -EINVAL);

    CHECK_EQ(fiber_scope_enter_after(&a, 1), 0);
    CHECK_EQ(fiber_scope_enter_after(&a, 1), -EBUSY);
    CHECK_EQ(fiber_scope_enter_after(&b, 5), 0);
    CHECK_EQ(fiber_scope_enter(&a, 0), -EBUSY);
    /* Only the innermost exits; a failed exit changes nothing. */
    CHECK_EQ(fiber_scope_exit(&a), -EINVAL);
    log_event("sleep %s", rc_name(fiber_sleep(2)));
    CHECK_EQ(fiber_scope_exit(&b), 0);
    CHECK_EQ(fiber_scope_exit(&b), -EINVAL);
    log_event("exit a %s", rc_name(fiber_scope_exit(&a)));
    return NULL;
}

static void test_misuse_is_refused_and_changes_nothing(void **state)
{
    fiber_scope_t scope;
    (void)state;

    run_scenario(misuse_scopes, NULL);
    ASSERT_EVENTS("sleep ETIMEDOUT @1000ms", "exit a ETIMEDOUT @1000ms");
    assert_int_equal(fiber_scope_enter(&scope, 0), -EPERM);
    assert_int_equal(fiber_scope_enter_after(&scope, 1), -EPERM);
    assert_int_equal(fiber_scope_enter_shielded(&scope, 1), -EPERM);
    assert_int_equal(fiber_scope_exit(&scope), -EPERM);
    assert_int_equal(fiber_scope_cancel(&scope), -EPERM);
}

/* ---- a scope left entered by a fiber that returned ----------------------- */

static fiber_scope_t left_entered;

static void *enter_and_return(void *arg)
{
    (void)arg;
    CHECK_EQ(fiber_scope_enter_after(&left_entered, 3600), 0);
    return NULL;
}

static void *nap_uncancelled(void *arg)
{
    int *rc = arg;

    *rc = fiber_sleep(1);
    return NULL;
}

static void *cancel_a_scope_whose_fiber_returned(void *arg)
{
    fiber_task_t *t = spawn_named(enter_and_return, NULL, "enterer");
    uintptr_t enterer = (uintptr_t)t;
    int nap_rc = 1;
    (void)arg;

    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    /* The next fiber takes the finished one's task: the scope is not its. */
    t = spawn_named(nap_uncancelled, &nap_rc, "napper");
    CHECK_EQ((uintptr_t)t, enterer);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_scope_cancel(&left_entered), -EALREADY);
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    CHECK_EQ(nap_rc, 0);
    return NULL;
}

static void *cancel_a_scope_of_an_earlier_loop(void *arg)
{
    (void)arg;
    CHECK_EQ(fiber_scope_cancel(&left_entered), -EINVAL);
    return NULL;
}

static void test_a_scope_ends_with_the_fiber_that_entered_it(void **state)
{
    (void)state;
    run_scenario(cancel_a_scope_whose_fiber_returned, NULL);
    run_scenario(cancel_a_scope_of_an_earlier_loop, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_cuts_the_block_then_calls_work_again),
        cmocka_unit_test(test_block_done_in_time_exits_with_zero),
        cmocka_unit_test(test_a_scope_ends_with_the_fiber_that_entered_it),
        cmocka_unit_test(test_absolute_deadline_and_no_deadline),
        cmocka_unit_test(test_zero_timeout_fails_the_first_call),
        cmocka_unit_test(test_expired_scope_stops_awaits_and_gathers),
        cmocka_unit_test(test_wait_for_obeys_the_earlier_deadline),
        cmocka_unit_test(test_own_timeout_is_not_the_scopes),
        cmocka_unit_test(test_inner_scope_cannot_extend_the_outer),
        cmocka_unit_test(test_inner_scope_earlier_ends_first),
        cmocka_unit_test(test_outer_cancel_is_not_swallowed_by_inner_scope),
        cmocka_unit_test(test_scope_cancelled_by_another_fiber),
        cmocka_unit_test(test_fiber_cancel_inside_scope_outlives_the_scope),
        cmocka_unit_test(test_completion_at_the_deadline_wins),
        cmocka_unit_test(test_await_completion_wins_scope_timer_set_first),
        cmocka_unit_test(test_await_completion_wins_task_timer_set_first),
        cmocka_unit_test(test_cancel_wins_over_scope_cancel_timer_first),
        cmocka_unit_test(test_cancel_wins_over_scope_scope_timer_first),
        cmocka_unit_test(test_cancel_timeout_and_completion_at_one_instant),
        cmocka_unit_test(test_shield_lets_cleanup_block_after_cancel),
        cmocka_unit_test(test_shield_deadline_bounds_the_cleanup),
        cmocka_unit_test(test_shield_hides_cancel_and_outer_scopes),
        cmocka_unit_test(test_scopes_inside_a_shield_and_the_shield_itself),
        cmocka_unit_test(test_scope_cancel_waits_for_the_shield),
        cmocka_unit_test(test_shield_cleanup_runs_at_loop_shutdown),
        cmocka_unit_test(test_misuse_is_refused_and_changes_nothing),
    };

    return cmocka_run_group_tests_name(GROUP_NAME, tests, NULL, NULL);
}
