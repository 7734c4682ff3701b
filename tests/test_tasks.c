/*
 * test_tasks.c - tasks as the header promises them: spawn, await, gather,
 * wait_for, cancellation, detach, fiber_run, wake-up order, the clock,
 * errno, descriptions and random numbers.
 *
 * Every scenario runs as the main fiber of a loop on the virtual clock, so
 * times are exact and nothing really sleeps.  Fibers record what happens,
 * with the virtual time, in an event log, and each test compares the log
 * with the exact sequence expected.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fiber.h"

#define GROUP_NAME "tasks"

#include "event_log.h"

/* ---- spawn and await ---------------------------------------------------- */

static void *spawn_then_yield(void *arg)
{
    struct job child = {.label = "child", .no_block = true, .result = 7};
    void *result = NULL;
    int status = 1;
    (void)arg;

    fiber_task_t *task = spawn_job(&child);
    log_event("spawned");
    CHECK_EQ(fiber_done(task), 0);
    CHECK_EQ(fiber_result(task, &result, &status), -EAGAIN);

    CHECK_EQ(fiber_yield(), 0);
    log_event("yielded");
    CHECK_EQ(fiber_done(task), 1);
    /* fiber_result reads without consuming: the await below still works. */
    CHECK_EQ(fiber_result(task, &result, &status), 0);
    CHECK_PTR(result, RESULT(7));
    CHECK_EQ(status, 0);
    await_expecting(task, 0, 7, 0);
    log_event("awaited");
    return NULL;
}

static void test_spawn_runs_child_at_next_blocking_call(void **state)
{
    (void)state;
    run_scenario(spawn_then_yield, NULL);
    ASSERT_EVENTS("spawned @0ms", "child start @0ms", "yielded @0ms",
                  "awaited @0ms");
}

/* Spawns C, yields, then awaits C. */
static void *spawn_grandchild_then_yield(void *arg)
{
    struct job *grandchild = arg;

    log_event("A start");
    fiber_task_t *task = spawn_job(grandchild);
    CHECK_EQ(fiber_yield(), 0);
    log_event("A resumed");
    await_expecting(task, 0, 0, 0);
    return NULL;
}

static void *spawn_behind_ready_fibers(void *arg)
{
    struct job b = {.label = "B", .no_block = true};
    struct job c = {.label = "C", .no_block = true};
    fiber_task_t *tasks[2];
    (void)arg;

    tasks[0] = spawn_named(spawn_grandchild_then_yield, &c, "A");
    tasks[1] = spawn_job(&b);
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    return NULL;
}

static void test_spawned_child_starts_after_fibers_already_ready(void **state)
{
    (void)state;
    run_scenario(spawn_behind_ready_fibers, NULL);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "A resumed @0ms");
}

static void *check_ids_and_names(void *arg)
{
    char long_name[FIBER_NAME_MAX + 10];
    (void)arg;

    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    struct job quick = {.label = "quick", .no_block = true};
    fiber_task_t *unnamed = NULL;
    CHECK_EQ(fiber_spawn(&unnamed, run_job, &quick, NULL), 0);
    fiber_task_t *named = spawn_named(run_job, &quick, long_name);

    CHECK_EQ(fiber_id(fiber_self()), 1);
    CHECK_EQ(strcmp(fiber_name(fiber_self()), "main"), 0);
    CHECK_EQ(fiber_id(unnamed), 2);
    CHECK_EQ(strcmp(fiber_name(unnamed), "Task-2"), 0);
    CHECK_EQ(fiber_id(named), 3);
    CHECK_EQ(strlen(fiber_name(named)), FIBER_NAME_MAX);
    CHECK_EQ(strncmp(fiber_name(named), long_name, FIBER_NAME_MAX), 0);
    await_expecting(unnamed, 0, 0, 0);
    await_expecting(named, 0, 0, 0);
    return NULL;
}

static void test_ids_follow_spawn_order_and_names_are_cut(void **state)
{
    (void)state;
    run_scenario(check_ids_and_names, NULL);
}

/* ---- gather ------------------------------------------------------------- */

struct gathering {
    struct job jobs[3];
    fiber_task_t *tasks[3];
    void *results[3];
    int statuses[3];
    int rc;
};

static void *gather_jobs(void *arg)
{
    struct gathering *g = arg;

    spawn_jobs(g->jobs, g->tasks, 3);
    g->rc = fiber_gather(g->tasks, 3, g->results, g->statuses);
    log_event("gathered %s", rc_name(g->rc));
    return NULL;
}

static void test_gather_results_in_order_passed_in_max_time(void **state)
{
    struct gathering g = {.jobs = {
        {.label = "A", .sleep_s = 3, .result = 1},
        {.label = "B", .sleep_s = 1, .result = 2},
        {.label = "C", .sleep_s = 2, .result = 3},
    }};
    (void)state;

    run_scenario(gather_jobs, &g);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "B slept ok @1000ms", "C slept ok @2000ms",
                  "A slept ok @3000ms", "gathered ok @3000ms");
    for (int i = 0; i < 3; i++) {
        assert_ptr_equal(g.results[i], RESULT(i + 1));
        assert_int_equal(g.statuses[i], 0);
    }
}

static void test_gather_failure_keeps_other_results(void **state)
{
    struct gathering g = {.jobs = {
        {.label = "A", .sleep_s = 1, .fail = -EIO},
        {.label = "B", .sleep_s = 2, .result = 2},
        {.label = "C", .sleep_s = 3, .result = 3},
    }};
    (void)state;

    run_scenario(gather_jobs, &g);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "A slept ok @1000ms", "B slept ok @2000ms",
                  "C slept ok @3000ms", "gathered ok @3000ms");
    assert_int_equal(g.rc, 0);
    assert_null(g.results[0]);
    assert_int_equal(g.statuses[0], -EIO);
    assert_ptr_equal(g.results[1], RESULT(2));
    assert_int_equal(g.statuses[1], 0);
    assert_ptr_equal(g.results[2], RESULT(3));
    assert_int_equal(g.statuses[2], 0);
}

static void *gather_nothing(void *arg)
{
    void *results[1] = {RESULT(5)};
    int statuses[1] = {5};
    (void)arg;

    CHECK_EQ(fiber_gather(NULL, 0, NULL, NULL), 0);
    CHECK_EQ(fiber_gather(NULL, 0, results, statuses), 0);
    /* Nothing to fill in: the arrays are left alone. */
    CHECK_PTR(results[0], RESULT(5));
    CHECK_EQ(statuses[0], 5);
    log_event("gathered");
    return NULL;
}

static void test_gather_of_no_tasks(void **state)
{
    (void)state;
    run_scenario(gather_nothing, NULL);
    ASSERT_EVENTS("gathered @0ms");
}

/* A gather refused for a task listed twice, the last of twenty, claims
 * and marks nothing: another fiber may await one of them, and a gather of
 * the rest, each listed once, takes them all.  Twenty tasks take the walk
 * past the tasks it asks for ahead of the one it checks. */
#define GATHER_MANY 20

static void *return_arg(void *arg)
{
    return arg;
}

static void *await_one(void *arg)
{
    void *result = NULL;
    int status = 1;

    CHECK_EQ(fiber_await(arg, &result, &status), 0);
    CHECK_EQ(status, 0);
    return result;
}

static void *gather_refused_then_taken(void *arg)
{
    fiber_task_t *tasks[GATHER_MANY + 1];
    void *results[GATHER_MANY];
    int statuses[GATHER_MANY];
    (void)arg;

    for (int i = 0; i < GATHER_MANY; i++)
        CHECK_EQ(fiber_spawn(&tasks[i], return_arg, RESULT(i + 1), NULL), 0);
    tasks[GATHER_MANY] = tasks[3];
    CHECK_EQ(fiber_gather(tasks, GATHER_MANY + 1, results, statuses), -EINVAL);

    /* Not claimed: another fiber awaits the last one. */
    fiber_task_t *other;
    void *got = NULL;
    CHECK_EQ(fiber_spawn(&other, await_one, tasks[GATHER_MANY - 1], NULL), 0);
    CHECK_EQ(fiber_await(other, &got, NULL), 0);
    CHECK_PTR(got, RESULT(GATHER_MANY));

    /* Not marked: the others, once each, are gathered. */
    CHECK_EQ(fiber_gather(tasks, GATHER_MANY - 1, results, statuses), 0);
    for (int i = 0; i < GATHER_MANY - 1; i++) {
        CHECK_PTR(results[i], RESULT(i + 1));
        CHECK_EQ(statuses[i], 0);
    }
    log_event("gathered");
    return NULL;
}

static void test_gather_refused_claims_nothing(void **state)
{
    (void)state;
    run_scenario(gather_refused_then_taken, NULL);
    ASSERT_EVENTS("gathered @0ms");
}

static void *cancel_gatherer_after_one_second(void *arg)
{
    struct gathering *g = arg;

    fiber_task_t *gatherer = spawn_named(gather_jobs, g, "G");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel G");
    CHECK_EQ(fiber_cancel(gatherer), 0);
    await_expecting(gatherer, 0, 0, -ECANCELED);
    return NULL;
}

static void test_gather_cancelled_cancels_and_reaps_all(void **state)
{
    struct gathering g = {.jobs = {
        {.label = "A", .sleep_s = 0.5, .result = 1},
        {.label = "B", .sleep_s = 5, .result = 2},
        {.label = "C", .sleep_s = 10, .result = 3},
    }};
    (void)state;

    run_scenario(cancel_gatherer_after_one_second, &g);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "A slept ok @500ms", "cancel G @1000ms",
                  "B slept ECANCELED @1000ms", "C slept ECANCELED @1000ms",
                  "gathered ECANCELED @1000ms");
    assert_int_equal(g.rc, -ECANCELED);
    int expected_statuses[3] = {0, -ECANCELED, -ECANCELED};
    for (int i = 0; i < 3; i++) {
        assert_ptr_equal(g.results[i], RESULT(i + 1));
        assert_int_equal(g.statuses[i], expected_statuses[i]);
    }
}

/* ---- wait_for and await_until ------------------------------------------- */

/* The outcome of one timed await. */
struct timed_await {
    int rc;
    void *result;
    int status;
};

static void wait_for_logged(const char *label, fiber_task_t *task,
                            double timeout, struct timed_await *out)
{
    out->status = 1;
    out->rc = fiber_wait_for(task, timeout, &out->result, &out->status);
    log_event("%s %s", label, rc_name(out->rc));
}

static void await_until_logged(const char *label, fiber_task_t *task,
                               int64_t deadline_ns, struct timed_await *out)
{
    out->status = 1;
    out->rc = fiber_await_until(task, deadline_ns, &out->result, &out->status);
    log_event("%s %s", label, rc_name(out->rc));
}

static void assert_timed_await(const struct timed_await *w, int rc,
                               intptr_t result, int status)
{
    assert_int_equal(w->rc, rc);
    assert_ptr_equal(w->result, RESULT(result));
    assert_int_equal(w->status, status);
}

/* A job awaited by main with a timeout. */
struct timed_job {
    struct job job;
    double timeout;
    bool let_job_start_first; /* yield before wait_for */
    struct timed_await outcome;
};

static void *wait_for_job(void *arg)
{
    struct timed_job *t = arg;

    fiber_task_t *task = spawn_job(&t->job);
    if (t->let_job_start_first)
        CHECK_EQ(fiber_yield(), 0);
    wait_for_logged("wait_for", task, t->timeout, &t->outcome);
    return NULL;
}

static void test_wait_for_task_finishing_in_time(void **state)
{
    struct timed_job t = {
        .job = {.label = "A", .sleep_s = 1, .result = 5}, .timeout = 2};
    (void)state;

    run_scenario(wait_for_job, &t);
    ASSERT_EVENTS("A start @0ms", "A slept ok @1000ms", "wait_for ok @1000ms");
    assert_timed_await(&t.outcome, 0, 5, 0);
}

static void test_wait_for_timeout_keeps_result_returned_unwinding(void **state)
{
    struct timed_job t = {
        .job = {.label = "A", .sleep_s = 5, .result = 9}, .timeout = 1.5};
    (void)state;

    run_scenario(wait_for_job, &t);
    ASSERT_EVENTS("A start @0ms", "A slept ECANCELED @1500ms",
                  "wait_for ETIMEDOUT @1500ms");
    assert_timed_await(&t.outcome, -ETIMEDOUT, 9, -ECANCELED);
}

static void *return_its_arg(void *arg);

/* A task whose work is shielded: the timeout's cancel cannot reach it. */
static void *shielded_work(void *arg)
{
    fiber_scope_t shield;

    log_event("work start");
    CHECK_EQ(fiber_scope_enter_shielded(&shield, INFINITY), 0);
    log_event("work slept %s", rc_name(fiber_sleep(3)));
    CHECK_EQ(fiber_scope_exit(&shield), 0);
    CHECK_EQ(fiber_cancelling(), 1);
    return arg;
}

static void *wait_for_shielded_work(void *arg)
{
    struct timed_await *out = arg;
    fiber_task_t *task;

    CHECK_EQ(fiber_spawn(&task, shielded_work, RESULT(11), NULL), 0);
    wait_for_logged("wait_for", task, 1, out);
    return NULL;
}

/* The task finishes after the timeout, without the cancel ever reaching
 * it: fiber_wait_for returns 0 with its result, as asyncio 3.12 does. */
static void test_wait_for_shielded_work_finishing_late_gives_result(void **state)
{
    struct timed_await out;
    (void)state;

    run_scenario(wait_for_shielded_work, &out);
    ASSERT_EVENTS("work start @0ms", "work slept ok @3000ms",
                  "wait_for ok @3000ms");
    assert_timed_await(&out, 0, 11, 0);
}

/* A task not yet started when a zero timeout polls it is cancelled before
 * it runs: it ends cancelled even if it never blocks, and the poll timed
 * out. */
static void *poll_unstarted(void *arg)
{
    struct timed_await *out = arg;
    fiber_task_t *task;

    CHECK_EQ(fiber_spawn(&task, return_its_arg, RESULT(12), NULL), 0);
    wait_for_logged("wait_for", task, 0, out);
    return NULL;
}

static void test_wait_for_zero_on_unstarted_task_times_out(void **state)
{
    struct timed_await out;
    (void)state;

    run_scenario(poll_unstarted, &out);
    ASSERT_EVENTS("wait_for ETIMEDOUT @0ms");
    assert_timed_await(&out, -ETIMEDOUT, 12, -ECANCELED);
}

static void test_wait_for_infinite_timeout_waits_like_await(void **state)
{
    struct timed_job t = {
        .job = {.label = "A", .sleep_s = 1e6, .result = 5},
        .timeout = INFINITY};
    (void)state;

    run_scenario(wait_for_job, &t);
    ASSERT_EVENTS("A start @0ms", "A slept ok @1000000000ms",
                  "wait_for ok @1000000000ms");
    assert_timed_await(&t.outcome, 0, 5, 0);
}

struct polls {
    struct job finished, unfinished;
    struct timed_await of_finished, of_unfinished;
};

static void *poll_with_zero_timeout(void *arg)
{
    struct polls *p = arg;

    fiber_task_t *finished = spawn_job(&p->finished);
    CHECK_EQ(fiber_yield(), 0);
    fiber_task_t *unfinished = spawn_job(&p->unfinished);
    wait_for_logged("poll finished", finished, 0, &p->of_finished);
    wait_for_logged("poll unfinished", unfinished, 0, &p->of_unfinished);
    return NULL;
}

static void test_wait_for_zero_timeout_polls(void **state)
{
    struct polls p = {
        .finished = {.label = "A", .no_block = true, .result = 1},
        .unfinished = {.label = "B", .sleep_s = 1, .result = 2},
    };
    (void)state;

    run_scenario(poll_with_zero_timeout, &p);
    ASSERT_EVENTS("A start @0ms", "poll finished ok @0ms", "B start @0ms",
                  "B slept ECANCELED @0ms", "poll unfinished ETIMEDOUT @0ms");
    assert_timed_await(&p.of_finished, 0, 1, 0);
    assert_timed_await(&p.of_unfinished, -ETIMEDOUT, 2, -ECANCELED);
}

struct deadlines {
    struct job finished, sleeping, slow;
    struct timed_await past_on_finished, past_on_sleeping, future_on_slow;
};

static void *await_until_deadlines(void *arg)
{
    struct deadlines *d = arg;

    fiber_task_t *finished = spawn_job(&d->finished);
    fiber_task_t *sleeping = spawn_job(&d->sleeping);
    fiber_task_t *slow = spawn_job(&d->slow);
    CHECK_EQ(fiber_yield(), 0);
    int64_t past = fiber_now_ns() - SEC;
    await_until_logged("past on A", finished, past, &d->past_on_finished);
    await_until_logged("past on B", sleeping, past, &d->past_on_sleeping);
    await_until_logged("future on C", slow, fiber_now_ns() + SEC,
                       &d->future_on_slow);
    return NULL;
}

static void test_await_until_past_deadline_polls(void **state)
{
    struct deadlines d = {
        .finished = {.label = "A", .no_block = true, .result = 1},
        .sleeping = {.label = "B", .sleep_s = 1, .result = 2},
        .slow = {.label = "C", .sleep_s = 2, .result = 3},
    };
    (void)state;

    run_scenario(await_until_deadlines, &d);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "past on A ok @0ms", "B slept ECANCELED @0ms",
                  "past on B ETIMEDOUT @0ms", "C slept ECANCELED @1000ms",
                  "future on C ETIMEDOUT @1000ms");
    assert_timed_await(&d.past_on_finished, 0, 1, 0);
    assert_timed_await(&d.past_on_sleeping, -ETIMEDOUT, 2, -ECANCELED);
    assert_timed_await(&d.future_on_slow, -ETIMEDOUT, 3, -ECANCELED);
}

/* ---- coincidences ------------------------------------------------------- */

/* A one-second task awaited with a one-second timeout: both fall due at
 * the same instant, and the completion must win. */
static void assert_completion_wins_over_timeout(bool let_job_start_first)
{
    struct timed_job t = {
        .job = {.label = "A", .sleep_s = 1, .result = 4},
        .timeout = 1,
        .let_job_start_first = let_job_start_first};

    run_scenario(wait_for_job, &t);
    ASSERT_EVENTS("A start @0ms", "A slept ok @1000ms", "wait_for ok @1000ms");
    assert_timed_await(&t.outcome, 0, 4, 0);
}

/* The waiter's deadline is set first: the task's sleep is set when it
 * starts, at the waiter's wait_for. */
static void test_wait_for_completion_wins_task_timer_set_last(void **state)
{
    (void)state;
    assert_completion_wins_over_timeout(false);
}

/* The task is already asleep when the waiter sets its deadline. */
static void test_wait_for_completion_wins_task_timer_set_first(void **state)
{
    (void)state;
    assert_completion_wins_over_timeout(true);
}

struct cancel_at_timeout {
    struct job job;
    bool waiter_deadline_first; /* else main's cancel timer comes first */
    struct timed_await outcome;
};

static void *waiter_with_one_second_timeout(void *arg)
{
    struct cancel_at_timeout *c = arg;

    fiber_task_t *task = spawn_job(&c->job);
    wait_for_logged("W wait_for", task, 1, &c->outcome);
    return NULL;
}

static void *cancel_waiter_as_it_times_out(void *arg)
{
    struct cancel_at_timeout *c = arg;

    fiber_task_t *waiter = spawn_named(waiter_with_one_second_timeout, c, "W");
    if (c->waiter_deadline_first)
        CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel W");
    CHECK_EQ(fiber_cancel(waiter), 0);
    await_expecting(waiter, 0, 0, -ECANCELED);
    return NULL;
}

static void assert_cancel_wins_over_timeout(bool waiter_deadline_first)
{
    struct cancel_at_timeout c = {
        .job = {.label = "A", .sleep_s = 10, .result = 6},
        .waiter_deadline_first = waiter_deadline_first};

    run_scenario(cancel_waiter_as_it_times_out, &c);
    ASSERT_EVENTS("A start @0ms", "cancel W @1000ms",
                  "A slept ECANCELED @1000ms", "W wait_for ECANCELED @1000ms");
    assert_timed_await(&c.outcome, -ECANCELED, 6, -ECANCELED);
    assert_int_equal(c.job.sleep_rc, -ECANCELED);
    assert_int_equal(c.job.woke_at_ns, SEC);
}

static void test_wait_for_cancel_wins_cancel_timer_set_first(void **state)
{
    (void)state;
    assert_cancel_wins_over_timeout(false);
}

static void test_wait_for_cancel_wins_waiter_timer_set_first(void **state)
{
    (void)state;
    assert_cancel_wins_over_timeout(true);
}

struct late_cancel {
    fiber_task_t *target;
};

static void *cancel_target_after_one_second(void *arg)
{
    struct late_cancel *c = arg;

    CHECK_EQ(fiber_sleep(1), 0);
    log_event("C cancels %s", fiber_name(c->target));
    CHECK_EQ(fiber_cancel(c->target), 0);
    return NULL;
}

static void *sleep_one_second_then_yield(void *arg)
{
    (void)arg;
    log_event("T slept %s", rc_name(fiber_sleep(1)));
    log_event("T yielded %s", rc_name(fiber_yield()));
    return NULL;
}

static void *cancel_after_wake_up(void *arg)
{
    struct late_cancel c;
    fiber_task_t *tasks[2];
    int statuses[2] = {1, 1};
    (void)arg;

    /* C sleeps first, so it wakes first and cancels T once T's wake-up
     * has already happened. */
    tasks[0] = spawn_named(cancel_target_after_one_second, &c, "C");
    tasks[1] = c.target = spawn_named(sleep_one_second_then_yield, NULL, "T");
    CHECK_EQ(fiber_gather(tasks, 2, NULL, statuses), 0);
    CHECK_EQ(statuses[0], 0);
    CHECK_EQ(statuses[1], -ECANCELED);
    return NULL;
}

static void test_cancel_after_wake_up_keeps_the_sleep_result(void **state)
{
    (void)state;
    run_scenario(cancel_after_wake_up, NULL);
    ASSERT_EVENTS("C cancels T @1000ms", "T slept ok @1000ms",
                  "T yielded ECANCELED @1000ms");
}

/* Awaits the task it is given, then yields, logging what each returned. */
static void *await_then_yield(void *arg)
{
    void *result = NULL;
    int status = 1;

    int rc = fiber_await(arg, &result, &status);
    log_event("W await %s result=%d status=%s", rc_name(rc),
              (int)(intptr_t)result, rc_name(status));
    log_event("W yielded %s", rc_name(fiber_yield()));
    return NULL;
}

static void *cancel_after_await_completed(void *arg)
{
    struct job awaited = {.label = "T", .sleep_s = 1, .result = 5};
    struct late_cancel c;
    fiber_task_t *tasks[2];
    int statuses[2] = {1, 1};
    (void)arg;

    /* T sleeps before C, so at one second T finishes and wakes W, then C
     * cancels W before W has run again. */
    fiber_task_t *task = spawn_job(&awaited);
    tasks[0] = c.target = spawn_named(await_then_yield, task, "W");
    tasks[1] = spawn_named(cancel_target_after_one_second, &c, "C");
    CHECK_EQ(fiber_gather(tasks, 2, NULL, statuses), 0);
    CHECK_EQ(statuses[0], -ECANCELED);
    CHECK_EQ(statuses[1], 0);
    return NULL;
}

static void test_cancel_after_await_completed_keeps_the_result(void **state)
{
    (void)state;
    run_scenario(cancel_after_await_completed, NULL);
    ASSERT_EVENTS("T start @0ms", "T slept ok @1000ms", "C cancels W @1000ms",
                  "W await ok result=5 status=ok @1000ms",
                  "W yielded ECANCELED @1000ms");
}

/* ---- cancellation ------------------------------------------------------- */

static void *cancel_long_sleeper(void *arg)
{
    struct job *jobs = arg;

    fiber_task_t *sleeper = spawn_job(&jobs[0]);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_cancel(sleeper), 0);
    /* Cancelling again changes nothing. */
    CHECK_EQ(fiber_cancel(sleeper), 0);
    await_expecting(sleeper, 0, 1, -ECANCELED);
    /* A timer left behind by the cancelled sleep would fire at 1000 s, on
     * a freed task whose memory the next task may well reuse. */
    fiber_task_t *next = spawn_job(&jobs[1]);
    await_expecting(next, 0, 2, 0);
    return NULL;
}

static void test_cancel_sleeping_task_wakes_it_at_once(void **state)
{
    struct job jobs[2] = {
        {.label = "A", .sleep_s = 1000, .result = 1},
        {.label = "B", .sleep_s = 2000, .result = 2},
    };
    (void)state;

    run_scenario(cancel_long_sleeper, jobs);
    ASSERT_EVENTS("A start @0ms", "A slept ECANCELED @0ms", "B start @0ms",
                  "B slept ok @2000000ms");
}

static void *return_its_arg(void *arg)
{
    return arg;
}

/* Once cancelled, every blocking call fails: the task keeps calling. */
static void *keep_blocking_after_cancel(void *arg)
{
    struct job *children = arg;
    void *results[2] = {NULL, NULL};
    int statuses[2] = {1, 1};
    fiber_task_t *tasks[2];
    fiber_task_t *task = NULL;

    fiber_task_t *finished = spawn_job(&children[3]);
    log_event("sleep %s", rc_name(fiber_sleep(10)));
    CHECK_EQ(fiber_cancelling(), 1);
    log_event("sleep %s", rc_name(fiber_sleep(1)));
    log_event("sleep_ns %s", rc_name(fiber_sleep_ns(1)));
    log_event("sleep_until %s", rc_name(fiber_sleep_until(fiber_now_ns())));
    log_event("yield %s", rc_name(fiber_yield()));

    /* Already cancelled: even a task that has finished is awaited with
     * -ECANCELED, its result delivered all the same. */
    await_expecting(finished, -ECANCELED, 4, 0);
    log_event("await finished done");

    task = spawn_job(&children[0]);
    await_expecting(task, -ECANCELED, 1, -ECANCELED);
    log_event("await done");

    spawn_jobs(&children[1], tasks, 2);
    log_event("gather %s", rc_name(fiber_gather(tasks, 2, results, statuses)));
    CHECK_PTR(results[0], RESULT(2));
    CHECK_EQ(statuses[0], -ECANCELED);
    CHECK_PTR(results[1], RESULT(3));
    CHECK_EQ(statuses[1], -ECANCELED);

    /* Even a task that never blocks is reaped with the cancel passed on:
     * cancelled before it ran, it ends cancelled, its result kept. */
    CHECK_EQ(fiber_spawn(&task, return_its_arg, RESULT(4), NULL), 0);
    struct timed_await w;
    wait_for_logged("wait_for", task, 5, &w);
    CHECK_PTR(w.result, RESULT(4));
    CHECK_EQ(w.status, -ECANCELED);
    return RESULT(10);
}

static void *cancel_task_after_one_second(void *arg)
{
    fiber_task_t *task = spawn_named(keep_blocking_after_cancel, arg, "T");
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(task), 0);
    await_expecting(task, 0, 10, -ECANCELED);
    return NULL;
}

static void test_cancel_is_level_triggered(void **state)
{
    struct job children[4] = {
        {.label = "X", .sleep_s = 1, .result = 1},
        {.label = "Y", .sleep_s = 1, .result = 2},
        {.label = "Z", .sleep_s = 1, .result = 3},
        {.label = "D", .no_block = true, .result = 4},
    };
    (void)state;

    run_scenario(cancel_task_after_one_second, children);
    ASSERT_EVENTS("D start @0ms", "sleep ECANCELED @1000ms",
                  "sleep ECANCELED @1000ms", "sleep_ns ECANCELED @1000ms",
                  "sleep_until ECANCELED @1000ms", "yield ECANCELED @1000ms",
                  "await finished done @1000ms", "X start @1000ms",
                  "X slept ECANCELED @1000ms", "await done @1000ms",
                  "Y start @1000ms", "Y slept ECANCELED @1000ms",
                  "Z start @1000ms", "Z slept ECANCELED @1000ms",
                  "gather ECANCELED @1000ms", "wait_for ECANCELED @1000ms");
}

/* A task cancelled before it runs still runs (to release what its arg
 * owns) and ends cancelled, whether or not it meets the cancel. */
static void *cancel_before_start(void *arg)
{
    struct job *job = arg;

    fiber_task_t *task = spawn_job(job);
    CHECK_EQ(fiber_cancel(task), 0);
    log_event("cancelled");
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_done(task), 1);
    CHECK_EQ(fiber_cancelled(task), 1);
    await_expecting(task, 0, 3, -ECANCELED);
    CHECK_EQ(fiber_cancelling(), 0);
    return NULL;
}

static void test_task_cancelled_before_start_still_runs(void **state)
{
    struct job job = {.label = "A", .sleep_s = 1, .result = 3};
    (void)state;

    run_scenario(cancel_before_start, &job);
    ASSERT_EVENTS("cancelled @0ms", "A start @0ms", "A slept ECANCELED @0ms");
}

static void test_cancelled_before_start_never_blocking(void **state)
{
    struct job job = {.label = "A", .no_block = true, .result = 3};
    (void)state;

    run_scenario(cancel_before_start, &job);
    ASSERT_EVENTS("cancelled @0ms", "A start @0ms");
}

/* A task cancelled while it runs that returns without another blocking
 * call never meets the cancel, and ends cancelled (asyncio: the
 * CancelledError had no await to be raised at). */
static void *cancel_self_and_return(void *arg)
{
    CHECK_EQ(fiber_cancel(fiber_self()), 0);
    CHECK_EQ(fiber_cancelling(), 1);
    return arg;
}

/* The same task, meeting the cancel at a blocking call after it. */
static void *cancel_self_and_sleep(void *arg)
{
    CHECK_EQ(fiber_cancel(fiber_self()), 0);
    CHECK_EQ(fiber_sleep(1), -ECANCELED);
    return arg;
}

/* A task in a blocking call when the cancel comes: its wake-up was due
 * first (the completion wins) and it returns without blocking again, so
 * the cancel never reached it and its status is its own. */
static void *sleep_then_return(void *arg)
{
    CHECK_EQ(fiber_sleep(1), 0);
    return arg;
}

static void *cancel_while_running(void *arg)
{
    void *result = NULL;
    int status = 1;
    (void)arg;

    fiber_task_t *task;
    CHECK_EQ(fiber_spawn(&task, cancel_self_and_return, RESULT(5), NULL), 0);
    CHECK_EQ(fiber_await(task, &result, &status), 0);
    CHECK_PTR(result, RESULT(5));
    CHECK_EQ(status, -ECANCELED);

    CHECK_EQ(fiber_spawn(&task, cancel_self_and_return, RESULT(6), NULL), 0);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_done(task), 1);
    CHECK_EQ(fiber_cancelled(task), 1);
    CHECK_EQ(fiber_await(task, NULL, NULL), 0);

    CHECK_EQ(fiber_spawn(&task, cancel_self_and_sleep, RESULT(7), NULL), 0);
    CHECK_EQ(fiber_await(task, &result, &status), 0);
    CHECK_PTR(result, RESULT(7));
    CHECK_EQ(status, -ECANCELED);

    /* Both timers fall due at 1 s, this fiber's set first: it runs first,
     * and finds the task ready with its sleep done. */
    CHECK_EQ(fiber_spawn(&task, sleep_then_return, RESULT(8), NULL), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_done(task), 0);
    CHECK_EQ(fiber_cancel(task), 0);
    CHECK_EQ(fiber_await(task, &result, &status), 0);
    CHECK_PTR(result, RESULT(8));
    CHECK_EQ(status, 0);
    return NULL;
}

static void test_cancelled_while_running(void **state)
{
    (void)state;
    run_scenario(cancel_while_running, NULL);
}

static void *cancel_finished_task(void *arg)
{
    struct job job = {.label = "A", .no_block = true, .result = 8};
    (void)arg;

    fiber_task_t *task = spawn_job(&job);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_cancel(task), -EALREADY);
    CHECK_EQ(fiber_cancelled(task), 0);
    await_expecting(task, 0, 8, 0);
    return NULL;
}

static void test_cancel_finished_task_is_ealready(void **state)
{
    (void)state;
    run_scenario(cancel_finished_task, NULL);
    ASSERT_EVENTS("A start @0ms");
}

static void *report_cancelling(void *arg)
{
    (void)arg;
    log_event("cancelling=%d", fiber_cancelling());
    log_event("slept %s", rc_name(fiber_sleep(5)));
    log_event("cancelling=%d", fiber_cancelling());
    return NULL;
}

static void *watch_cancel_flags(void *arg)
{
    struct job failing = {.label = "F", .no_block = true, .fail = -EIO};
    (void)arg;

    fiber_task_t *task = spawn_named(report_cancelling, NULL, "T");
    fiber_task_t *failed = spawn_job(&failing);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_cancelled(task), 0);
    CHECK_EQ(fiber_cancel(task), 0);
    /* Requested but not yet finished: not cancelled yet. */
    CHECK_EQ(fiber_cancelled(task), 0);
    CHECK_EQ(fiber_done(task), 0);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_done(task), 1);
    CHECK_EQ(fiber_cancelled(task), 1);
    /* A failure other than a cancel is not "cancelled". */
    CHECK_EQ(fiber_cancelled(failed), 0);
    CHECK_EQ(fiber_cancelling(), 0);
    await_expecting(task, 0, 0, -ECANCELED);
    await_expecting(failed, 0, 0, -EIO);
    return NULL;
}

static void test_cancelled_and_cancelling_report_the_state(void **state)
{
    (void)state;
    run_scenario(watch_cancel_flags, NULL);
    ASSERT_EVENTS("cancelling=0 @0ms", "F start @0ms", "slept ECANCELED @0ms",
                  "cancelling=1 @0ms");
}

static void *await_job(void *arg)
{
    struct job *job = arg;
    void *result = NULL;
    int status = 1;

    fiber_task_t *task = spawn_job(job);
    int rc = fiber_await(task, &result, &status);
    log_event("W await %s result=%d status=%s", rc_name(rc),
              (int)(intptr_t)result, rc_name(status));
    return NULL;
}

static void *cancel_awaiting_task(void *arg)
{
    fiber_task_t *waiter = spawn_named(await_job, arg, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(waiter), 0);
    await_expecting(waiter, 0, 0, -ECANCELED);
    return NULL;
}

static void test_cancel_while_awaiting_cancels_the_awaited(void **state)
{
    struct job job = {.label = "A", .sleep_s = 10, .result = 6};
    (void)state;

    run_scenario(cancel_awaiting_task, &job);
    ASSERT_EVENTS("A start @0ms", "A slept ECANCELED @1000ms",
                  "W await ECANCELED result=6 status=ECANCELED @1000ms");
}

/* ---- detach ------------------------------------------------------------- */

static void *detach_sleeper(void *arg)
{
    fiber_task_t *task = spawn_job(arg);
    CHECK_EQ(fiber_detach(task), 0);
    CHECK_EQ(fiber_sleep(2), 0);
    log_event("main slept");
    return NULL;
}

static void test_detached_task_runs_to_completion(void **state)
{
    struct job job = {.label = "A", .sleep_s = 1};
    (void)state;

    run_scenario(detach_sleeper, &job);
    ASSERT_EVENTS("A start @0ms", "A slept ok @1000ms", "main slept @2000ms");
}

static void *detach_finished(void *arg)
{
    fiber_task_t *task = spawn_job(arg);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_done(task), 1);
    CHECK_EQ(fiber_detach(task), 0);
    log_event("detached");
    return NULL;
}

static void test_detach_finished_task_frees_it(void **state)
{
    struct job job = {.label = "A", .no_block = true};
    (void)state;

    run_scenario(detach_finished, &job);
    ASSERT_EVENTS("A start @0ms", "detached @0ms");
}

/* ---- fiber_run ---------------------------------------------------------- */

static void test_run_returns_main_result_and_status(void **state)
{
    void *result = NULL;
    int status = 1;
    (void)state;

    assert_int_equal(
        run_virtual(return_its_arg, RESULT(42), &result, &status), 0);
    assert_ptr_equal(result, RESULT(42));
    assert_int_equal(status, 0);
}

static void *leave_children_behind(void *arg)
{
    struct job *jobs = arg;

    fiber_task_t *sleeping = spawn_job(&jobs[0]);
    fiber_task_t *detached = spawn_job(&jobs[1]);
    CHECK_EQ(fiber_detach(detached), 0);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    /* Spawned last, so it has not started when main returns. */
    fiber_task_t *unstarted = spawn_job(&jobs[2]);
    CHECK(sleeping && unstarted);
    return RESULT(1);
}

static void test_run_cancels_children_left_when_main_returns(void **state)
{
    struct job jobs[3] = {
        {.label = "sleeping", .sleep_s = 100},
        {.label = "detached", .sleep_s = 100},
        {.label = "unstarted", .sleep_s = 100},
    };
    void *result = NULL;
    int status = 1;
    (void)state;

    assert_int_equal(
        run_virtual(leave_children_behind, jobs, &result, &status), 0);
    assert_ptr_equal(result, RESULT(1));
    assert_int_equal(status, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jobs[i].sleep_rc, -ECANCELED);
        assert_int_equal(jobs[i].woke_at_ns, SEC);
    }
}

/* Gathers the first two jobs and leaves the third to the loop's end. */
static void *spawn_some_and_leave_one(void *arg)
{
    struct job *jobs = arg;
    fiber_task_t *tasks[3];

    spawn_jobs(jobs, tasks, 3);
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    return RESULT(jobs[2].result);
}

static void test_run_can_be_called_many_times(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++) {
        /* Outside the loop: the job left running outlives main's stack. */
        struct job jobs[3] = {
            {.label = "A", .sleep_s = 1},
            {.label = "B", .sleep_s = 2},
            {.label = "C", .sleep_s = 3, .result = i},
        };
        void *result = NULL;

        assert_int_equal(
            run_virtual(spawn_some_and_leave_one, jobs, &result, NULL), 0);
        assert_ptr_equal(result, RESULT(i));
        assert_int_equal(jobs[2].sleep_rc, -ECANCELED);
    }
}

static void *cancel_self(void *arg)
{
    (void)arg;
    CHECK_EQ(fiber_cancelling(), 0);
    CHECK_EQ(fiber_cancel(fiber_self()), 0);
    CHECK_EQ(fiber_cancelling(), 1);
    log_event("sleep %s", rc_name(fiber_sleep(1)));
    return RESULT(3);
}

static void test_main_cancelling_itself(void **state)
{
    void *result = NULL;
    int status = 1;
    (void)state;

    assert_int_equal(run_virtual(cancel_self, NULL, &result, &status), 0);
    assert_ptr_equal(result, RESULT(3));
    assert_int_equal(status, -ECANCELED);
    ASSERT_EVENTS("sleep ECANCELED @0ms");
}

static void *fail_with_eio(void *arg)
{
    (void)arg;
    return fiber_fail(-EIO);
}

static void *fail_with_positive_status(void *arg)
{
    /* Not a negative errno: ignored. */
    CHECK_PTR(fiber_fail(EIO), NULL);
    return arg;
}

static void test_main_fail_sets_run_status(void **state)
{
    void *result = RESULT(1);
    int status = 1;
    (void)state;

    assert_int_equal(run_virtual(fail_with_eio, NULL, &result, &status), 0);
    assert_null(result);
    assert_int_equal(status, -EIO);

    assert_int_equal(
        run_virtual(fail_with_positive_status, RESULT(2), &result, &status), 0);
    assert_ptr_equal(result, RESULT(2));
    assert_int_equal(status, 0);
}

/* ---- wake-up order ------------------------------------------------------ */

static void *gather_five_jobs(void *arg)
{
    struct job *jobs = arg;
    fiber_task_t *tasks[5];

    spawn_jobs(jobs, tasks, 5);
    CHECK_EQ(fiber_gather(tasks, 5, NULL, NULL), 0);
    return NULL;
}

static void test_sleepers_wake_in_deadline_order(void **state)
{
    struct job jobs[5] = {
        {.label = "A", .sleep_s = 3}, {.label = "B", .sleep_s = 1},
        {.label = "C", .sleep_s = 4}, {.label = "D", .sleep_s = 5},
        {.label = "E", .sleep_s = 2},
    };
    (void)state;

    run_scenario(gather_five_jobs, jobs);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "D start @0ms", "E start @0ms", "B slept ok @1000ms",
                  "E slept ok @2000ms", "A slept ok @3000ms",
                  "C slept ok @4000ms", "D slept ok @5000ms");
}

struct late_sleeper {
    const char *label;
    int yields; /* yields before it sets its timer */
};

static void *sleep_until_one_second_after_yields(void *arg)
{
    struct late_sleeper *s = arg;

    for (int i = 0; i < s->yields; i++)
        CHECK_EQ(fiber_yield(), 0);
    log_event("%s sleeps", s->label);
    CHECK_EQ(fiber_sleep_until(events.origin_ns + SEC), 0);
    log_event("%s woke", s->label);
    return NULL;
}

static void *sleep_until_same_deadline(void *arg)
{
    struct late_sleeper *sleepers = arg;
    fiber_task_t *tasks[3];

    for (int i = 0; i < 3; i++)
        tasks[i] = spawn_named(sleep_until_one_second_after_yields,
                               &sleepers[i], sleepers[i].label);
    CHECK_EQ(fiber_gather(tasks, 3, NULL, NULL), 0);
    return NULL;
}

static void test_equal_deadlines_wake_in_order_set(void **state)
{
    struct late_sleeper sleepers[3] = {
        {"A", 2}, {"B", 0}, {"C", 1},
    };
    (void)state;

    run_scenario(sleep_until_same_deadline, sleepers);
    ASSERT_EVENTS("B sleeps @0ms", "C sleeps @0ms", "A sleeps @0ms",
                  "B woke @1000ms", "C woke @1000ms", "A woke @1000ms");
}

/* How a fiber hands over: fiber_yield, or a sleep that is already due. */
enum handover { BY_YIELD, BY_SLEEP_UNTIL_PAST, BY_SLEEP_UNTIL_NOW };

struct turn_taker {
    const char *label;
    enum handover how;
};

static int hand_over(enum handover how)
{
    switch (how) {
    case BY_YIELD: return fiber_yield();
    case BY_SLEEP_UNTIL_PAST: return fiber_sleep_until(fiber_now_ns() - SEC);
    case BY_SLEEP_UNTIL_NOW: return fiber_sleep_until(fiber_now_ns());
    }
    return -EINVAL;
}

static void *take_three_turns(void *arg)
{
    struct turn_taker *t = arg;

    for (int turn = 0; turn < 3; turn++) {
        log_event("%s%d", t->label, turn);
        CHECK_EQ(hand_over(t->how), 0);
    }
    return NULL;
}

static void *run_turn_takers(void *arg)
{
    struct turn_taker *takers = arg;
    fiber_task_t *tasks[3];

    for (int i = 0; i < 3; i++)
        tasks[i] = spawn_named(take_three_turns, &takers[i], takers[i].label);
    CHECK_EQ(fiber_gather(tasks, 3, NULL, NULL), 0);
    return NULL;
}

/* Each hand-over lets every other ready fiber run once: strict rounds,
 * and no time passes. */
static void assert_takers_take_turns(struct turn_taker takers[3])
{
    run_scenario(run_turn_takers, takers);
    ASSERT_EVENTS("A0 @0ms", "B0 @0ms", "C0 @0ms", "A1 @0ms", "B1 @0ms",
                  "C1 @0ms", "A2 @0ms", "B2 @0ms", "C2 @0ms");
}

static void test_yield_runs_every_ready_fiber_once(void **state)
{
    struct turn_taker takers[3] = {
        {"A", BY_YIELD}, {"B", BY_YIELD}, {"C", BY_YIELD}};
    (void)state;

    assert_takers_take_turns(takers);
}

static void test_sleep_until_due_deadline_behaves_like_yield(void **state)
{
    struct turn_taker takers[3] = {
        {"A", BY_SLEEP_UNTIL_PAST}, {"B", BY_SLEEP_UNTIL_NOW}, {"C", BY_YIELD}};
    (void)state;

    assert_takers_take_turns(takers);
}

/* ---- the clock ---------------------------------------------------------- */

static void *sleep_exact_amounts(void *arg)
{
    (void)arg;
    int64_t start_ns = fiber_now_ns();
    double start_s = fiber_time();

    CHECK_EQ(fiber_clock_virtual(), 1);
    CHECK_EQ(fiber_sleep(0.25), 0);
    CHECK_EQ(fiber_now_ns() - start_ns, 250 * MS);
    CHECK_EQ(fiber_sleep_ns(7), 0);
    CHECK_EQ(fiber_now_ns() - start_ns, 250 * MS + 7);
    CHECK_EQ(fiber_sleep(0), 0);
    CHECK_EQ(fiber_sleep_ns(0), 0);
    CHECK_EQ(fiber_now_ns() - start_ns, 250 * MS + 7);
    CHECK_EQ(fiber_sleep_until(start_ns + 3 * SEC), 0);
    CHECK_EQ(fiber_now_ns() - start_ns, 3 * SEC);
    CHECK(fabs(fiber_time() - start_s - 3.0) < 1e-6);
    CHECK_EQ(fiber_sleep(3600), 0);
    CHECK_EQ(fiber_now_ns() - start_ns, 3603 * SEC);
    return NULL;
}

static void test_virtual_clock_advances_by_slept_amounts(void **state)
{
    (void)state;
    run_scenario(sleep_exact_amounts, NULL);
}

static void *report_clock_kind(void *arg)
{
    *(int *)arg = fiber_clock_virtual();
    return NULL;
}

static void test_clock_virtual_tells_the_clock_kind(void **state)
{
    const fiber_options_t real_clock = {.clock = FIBER_CLOCK_REAL};
    int is_virtual = -1;
    (void)state;

    assert_int_equal(
        run_virtual(report_clock_kind, &is_virtual, NULL, NULL), 0);
    assert_int_equal(is_virtual, 1);
    assert_int_equal(
        run_loop(report_clock_kind, &is_virtual, &real_clock, NULL, NULL), 0);
    assert_int_equal(is_virtual, 0);
    assert_int_equal(fiber_clock_virtual(), -EPERM);
}

/* ---- errno -------------------------------------------------------------- */

static void *keep_own_errno(void *arg)
{
    int mine = (int)(intptr_t)arg;

    errno = mine;
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(errno, mine);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(errno, mine);
    return NULL;
}

static void *run_errno_keepers(void *arg)
{
    fiber_task_t *tasks[2];
    (void)arg;

    tasks[0] = spawn_named(keep_own_errno, RESULT(123), "A");
    tasks[1] = spawn_named(keep_own_errno, RESULT(456), "B");
    errno = 789;
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    CHECK_EQ(errno, 789);
    return NULL;
}

static void test_errno_is_kept_per_fiber(void **state)
{
    (void)state;
    run_scenario(run_errno_keepers, NULL);
}

/* ---- descriptions ------------------------------------------------------- */

static void check_description(const fiber_task_t *task, const char *state_word,
                              const char *detail)
{
    char buf[128];
    int n = fiber_describe(task, buf, sizeof(buf));

    CHECK_EQ(n, strlen(buf));
    CHECK_CONTAINS(buf, state_word);
    CHECK_CONTAINS(buf, fiber_name(task));
    CHECK_CONTAINS(buf, detail);
}

static void *describe_tasks(void *arg)
{
    struct job *jobs = arg;
    char small[8];

    fiber_task_t *worker = spawn_job(&jobs[0]);
    fiber_task_t *quick = spawn_job(&jobs[1]);
    fiber_task_t *victim = spawn_job(&jobs[2]);
    check_description(worker, "pending", "id=2");

    int full = fiber_describe(worker, NULL, 0);
    CHECK_EQ(fiber_describe(worker, small, sizeof(small)), full);
    CHECK_EQ(strlen(small), sizeof(small) - 1);

    CHECK_EQ(fiber_yield(), 0);
    check_description(worker, "pending", "sleeping");
    check_description(quick, "finished", "status=0");
    CHECK_EQ(fiber_cancel(victim), 0);
    check_description(victim, "pending", "cancelling");
    CHECK_EQ(fiber_yield(), 0);
    check_description(victim, "cancelled", "id=4");

    await_expecting(worker, 0, 0, 0);
    await_expecting(quick, 0, 0, 0);
    await_expecting(victim, 0, 0, -ECANCELED);
    return NULL;
}

static void test_describe_names_task_and_state(void **state)
{
    struct job jobs[3] = {
        {.label = "worker", .sleep_s = 1},
        {.label = "quick", .no_block = true},
        {.label = "victim", .sleep_s = 5},
    };
    (void)state;

    run_scenario(describe_tasks, jobs);
}

/* ---- random numbers ----------------------------------------------------- */

static void *draw_repeatably(void *arg)
{
    uint64_t first[8], again[8];
    bool other_seed_differs = false;
    (void)arg;

    fiber_seed(42);
    for (int i = 0; i < 8; i++)
        first[i] = fiber_random_u64();
    fiber_seed(42);
    for (int i = 0; i < 8; i++)
        again[i] = fiber_random_u64();
    fiber_seed(43);
    for (int i = 0; i < 8; i++)
        other_seed_differs |= fiber_random_u64() != first[i];
    CHECK_EQ(memcmp(first, again, sizeof(first)), 0);
    CHECK(other_seed_differs);
    return NULL;
}

static void test_same_seed_gives_same_sequence(void **state)
{
    (void)state;
    run_scenario(draw_repeatably, NULL);
}

/* Draw many uniforms between a and b; check the bounds and the spread. */
static void check_uniform_range(double a, double b)
{
    double lo = fmin(a, b), hi = fmax(a, b);
    double min = hi, max = lo;

    for (int i = 0; i < 2000; i++) {
        double x = fiber_uniform(a, b);
        CHECK(x >= lo && x <= hi);
        min = fmin(min, x);
        max = fmax(max, x);
    }
    CHECK(min < lo + (hi - lo) / 100);
    CHECK(max > hi - (hi - lo) / 100);
}

static void *draw_uniforms(void *arg)
{
    (void)arg;
    fiber_seed(7);
    check_uniform_range(2, 5);
    check_uniform_range(5, 2);
    check_uniform_range(-1e9, 1e9);
    CHECK(fiber_uniform(3, 3) == 3);
    CHECK(isnan(fiber_uniform(NAN, 1)));
    CHECK(isnan(fiber_uniform(1, NAN)));
    CHECK(isnan(fiber_uniform(INFINITY, 1)));
    CHECK(isnan(fiber_uniform(0, -INFINITY)));
    return NULL;
}

static void test_uniform_stays_in_range_and_rejects_non_finite(void **state)
{
    (void)state;
    run_scenario(draw_uniforms, NULL);
}

static void *draw_small_ints(void *arg)
{
    int seen[5] = {0};
    int64_t x;
    (void)arg;

    fiber_seed(9);
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ(fiber_randint(-2, 2, &x), 0);
        if (x >= -2 && x <= 2)
            seen[x + 2]++;
        else
            CHECK_EQ(x, 0);
    }
    for (int v = 0; v < 5; v++)
        CHECK(seen[v] > 0);
    CHECK_EQ(fiber_randint(5, 5, &x), 0);
    CHECK_EQ(x, 5);
    return NULL;
}

static void test_randint_includes_both_ends(void **state)
{
    (void)state;
    run_scenario(draw_small_ints, NULL);
}

static void *draw_wide_ints(void *arg)
{
    int64_t x, first;
    bool varies = false;
    (void)arg;

    fiber_seed(11);
    CHECK_EQ(fiber_randint(INT64_MIN, INT64_MAX, &first), 0);
    for (int i = 0; i < 16; i++) {
        CHECK_EQ(fiber_randint(INT64_MIN, INT64_MAX, &x), 0);
        varies |= x != first;
    }
    CHECK(varies);
    for (int i = 0; i < 64; i++) {
        CHECK_EQ(fiber_randint(INT64_MAX - 1, INT64_MAX, &x), 0);
        CHECK(x >= INT64_MAX - 1);
        CHECK_EQ(fiber_randint(INT64_MIN, INT64_MIN + 1, &x), 0);
        CHECK(x <= INT64_MIN + 1);
    }
    return NULL;
}

static void test_randint_full_int64_range(void **state)
{
    (void)state;
    run_scenario(draw_wide_ints, NULL);
}

static void *reject_bad_randint(void *arg)
{
    int64_t x = 77;
    (void)arg;

    fiber_seed(5);
    uint64_t expected = fiber_random_u64();
    fiber_seed(5);
    CHECK_EQ(fiber_randint(5, 4, &x), -EINVAL);
    CHECK_EQ(x, 77);
    CHECK_EQ(fiber_randint(0, 10, NULL), -EINVAL);
    /* A rejected call draws nothing: the sequence is where it was. */
    CHECK_EQ(fiber_random_u64(), expected);
    return NULL;
}

static void test_randint_rejects_bad_arguments(void **state)
{
    (void)state;
    run_scenario(reject_bad_randint, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_runs_child_at_next_blocking_call),
        cmocka_unit_test(test_spawned_child_starts_after_fibers_already_ready),
        cmocka_unit_test(test_ids_follow_spawn_order_and_names_are_cut),
        cmocka_unit_test(test_gather_results_in_order_passed_in_max_time),
        cmocka_unit_test(test_gather_failure_keeps_other_results),
        cmocka_unit_test(test_gather_of_no_tasks),
        cmocka_unit_test(test_gather_refused_claims_nothing),
        cmocka_unit_test(test_gather_cancelled_cancels_and_reaps_all),
        cmocka_unit_test(test_wait_for_task_finishing_in_time),
        cmocka_unit_test(test_wait_for_timeout_keeps_result_returned_unwinding),
        cmocka_unit_test(test_wait_for_infinite_timeout_waits_like_await),
        cmocka_unit_test(test_wait_for_zero_timeout_polls),
        cmocka_unit_test(test_wait_for_zero_on_unstarted_task_times_out),
        cmocka_unit_test(test_wait_for_shielded_work_finishing_late_gives_result),
        cmocka_unit_test(test_await_until_past_deadline_polls),
        cmocka_unit_test(test_wait_for_completion_wins_task_timer_set_last),
        cmocka_unit_test(test_wait_for_completion_wins_task_timer_set_first),
        cmocka_unit_test(test_wait_for_cancel_wins_cancel_timer_set_first),
        cmocka_unit_test(test_wait_for_cancel_wins_waiter_timer_set_first),
        cmocka_unit_test(test_cancel_after_wake_up_keeps_the_sleep_result),
        cmocka_unit_test(test_cancel_after_await_completed_keeps_the_result),
        cmocka_unit_test(test_cancel_sleeping_task_wakes_it_at_once),
        cmocka_unit_test(test_cancel_is_level_triggered),
        cmocka_unit_test(test_task_cancelled_before_start_still_runs),
        cmocka_unit_test(test_cancelled_before_start_never_blocking),
        cmocka_unit_test(test_cancelled_while_running),
        cmocka_unit_test(test_cancel_finished_task_is_ealready),
        cmocka_unit_test(test_cancelled_and_cancelling_report_the_state),
        cmocka_unit_test(test_cancel_while_awaiting_cancels_the_awaited),
        cmocka_unit_test(test_detached_task_runs_to_completion),
        cmocka_unit_test(test_detach_finished_task_frees_it),
        cmocka_unit_test(test_run_returns_main_result_and_status),
        cmocka_unit_test(test_run_cancels_children_left_when_main_returns),
        cmocka_unit_test(test_run_can_be_called_many_times),
        cmocka_unit_test(test_main_cancelling_itself),
        cmocka_unit_test(test_main_fail_sets_run_status),
        cmocka_unit_test(test_sleepers_wake_in_deadline_order),
        cmocka_unit_test(test_equal_deadlines_wake_in_order_set),
        cmocka_unit_test(test_yield_runs_every_ready_fiber_once),
        cmocka_unit_test(test_sleep_until_due_deadline_behaves_like_yield),
        cmocka_unit_test(test_virtual_clock_advances_by_slept_amounts),
        cmocka_unit_test(test_clock_virtual_tells_the_clock_kind),
        cmocka_unit_test(test_errno_is_kept_per_fiber),
        cmocka_unit_test(test_describe_names_task_and_state),
        cmocka_unit_test(test_same_seed_gives_same_sequence),
        cmocka_unit_test(test_uniform_stays_in_range_and_rejects_non_finite),
        cmocka_unit_test(test_randint_includes_both_ends),
        cmocka_unit_test(test_randint_full_int64_range),
        cmocka_unit_test(test_randint_rejects_bad_arguments),
    };

    return cmocka_run_group_tests_name(GROUP_NAME, tests, NULL, NULL);
}
