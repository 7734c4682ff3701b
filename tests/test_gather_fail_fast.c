/*
 * test_gather_fail_fast.c - fiber_gather_fail_fast: the first failure
 * ends the wait at once, the tasks still running are cancelled and reaped,
 * the results of those that finished are kept, and which task failed is
 * reported; a cancelled caller, a timeout scope, tasks that failed before
 * the call, a task cancelled from elsewhere, and arguments refused without
 * touching a handle.
 *
 * Every scenario runs on the virtual clock, so the instants checked are
 * exact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fiber.h"
#include "fiber_check.h"
#include "io_helpers.h"

/* What one task does: sleep, then return a result or fail; and what it
 * saw. */
struct job {
    double sleep_s;       /* how long it works */
    int fail;             /* 0, or the status it fails with */
    double cleanup_s;     /* how long it takes to unwind once cancelled */
    intptr_t result;      /* what it returns when it succeeds */
    int slept;            /* what its sleep returned */
    int64_t ended_ns;     /* when it finished */
};

static void *run_job(void *arg)
{
    struct job *j = arg;

    j->slept = fiber_sleep(j->sleep_s);
    if (j->slept < 0 && j->cleanup_s > 0) {
        /* Cleanup that must block: a shield lets it. */
        fiber_scope_t shield;
        CHECK_EQ(fiber_scope_enter_shielded(&shield, INFINITY), 0);
        CHECK_EQ(fiber_sleep(j->cleanup_s), 0);
        CHECK_EQ(fiber_scope_exit(&shield), 0);
    }
    j->ended_ns = elapsed_ns();
    if (j->slept < 0)
        return NULL;
    if (j->fail)
        return fiber_fail(j->fail);
    return (void *)j->result;
}

static void spawn_jobs(fiber_task_t *tasks[], struct job jobs[], size_t n)
{
    for (size_t i = 0; i < n; i++)
        tasks[i] = spawn(run_job, &jobs[i]);
}

/* ---- the first failure ends the wait --------------------------------- */

static void *scenario_first_failure_stops_the_wait(void *arg)
{
    struct job jobs[4] = {
        {.sleep_s = 1, .result = 11},
        {.sleep_s = 2, .fail = -EIO},
        {.sleep_s = 10, .result = 33},
        {.sleep_s = 3, .fail = -ENOENT},
    };
    fiber_task_t *tasks[4];
    void *results[4] = {0};
    int statuses[4] = {1, 1, 1, 1};
    size_t failed = 99;

    (void)arg;
    spawn_jobs(tasks, jobs, 4);
    int rc = fiber_gather_fail_fast(tasks, 4, results, statuses, &failed);
    CHECK_EQ(rc, -EIO);
    CHECK_EQ(failed, 1);
    /* At the failure, not at the end of the slowest task. */
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    /* The finished task's result is kept; the others were cancelled. */
    CHECK_PTR(results[0], 11);
    CHECK_EQ(statuses[0], 0);
    CHECK_EQ(statuses[1], -EIO);
    CHECK_EQ(statuses[2], -ECANCELED);
    CHECK_EQ(statuses[3], -ECANCELED);
    CHECK_PTR(results[2], NULL);
    CHECK_EQ(jobs[2].slept, -ECANCELED);
    CHECK_EQ(jobs[2].ended_ns, 2 * SEC);
    CHECK_EQ(jobs[3].slept, -ECANCELED);
    return NULL;
}

static void test_first_failure_stops_the_wait(void **state)
{
    (void)state;
    run_virtual(scenario_first_failure_stops_the_wait, NULL);
}

static void *scenario_all_succeed(void *arg)
{
    struct job jobs[3] = {
        {.sleep_s = 3, .result = 1},
        {.sleep_s = 1, .result = 2},
        {.sleep_s = 2, .result = 3},
    };
    fiber_task_t *tasks[3];
    void *results[3];
    int statuses[3];
    size_t failed = 99;

    (void)arg;
    spawn_jobs(tasks, jobs, 3);
    CHECK_EQ(fiber_gather_fail_fast(tasks, 3, results, statuses, &failed), 0);
    CHECK_EQ(failed, 3);
    CHECK_EQ(elapsed_ns(), 3 * SEC);
    for (int i = 0; i < 3; i++) {
        CHECK_PTR(results[i], i + 1);
        CHECK_EQ(statuses[i], 0);
    }
    /* Nothing to wait for: at once, and NULL arrays are fine. */
    CHECK_EQ(fiber_gather_fail_fast(NULL, 0, NULL, NULL, &failed), 0);
    CHECK_EQ(failed, 0);
    return NULL;
}

static void test_all_succeed_results_in_order(void **state)
{
    (void)state;
    run_virtual(scenario_all_succeed, NULL);
}

/* The cancelled tasks are waited for while they unwind, however long. */
static void *scenario_reaps_slow_unwinding(void *arg)
{
    struct job jobs[3] = {
        {.sleep_s = 10, .cleanup_s = 0.5},
        {.sleep_s = 1, .fail = -EPROTO},
        {.sleep_s = 10, .cleanup_s = 1.5},
    };
    fiber_task_t *tasks[3];
    int statuses[3];
    size_t failed;

    (void)arg;
    spawn_jobs(tasks, jobs, 3);
    CHECK_EQ(fiber_gather_fail_fast(tasks, 3, NULL, statuses, &failed), -EPROTO);
    CHECK_EQ(failed, 1);
    CHECK_EQ(jobs[0].ended_ns, 1500 * MS);
    CHECK_EQ(jobs[2].ended_ns, 2500 * MS);
    CHECK_EQ(elapsed_ns(), 2500 * MS);
    CHECK_EQ(statuses[0], -ECANCELED);
    CHECK_EQ(statuses[2], -ECANCELED);
    return NULL;
}

static void test_cancelled_tasks_are_reaped_before_return(void **state)
{
    (void)state;
    run_virtual(scenario_reaps_slow_unwinding, NULL);
}

/* Failures before the call: the lowest index is reported, at once. */
static void *scenario_failed_before_the_call(void *arg)
{
    struct job jobs[4] = {
        {.sleep_s = 5},
        {.sleep_s = 0.5, .fail = -EIO},
        {.sleep_s = 0.25, .fail = -EBADMSG},
        {.sleep_s = 0.1, .result = 4},
    };
    fiber_task_t *tasks[4];
    void *results[4];
    int statuses[4];
    size_t failed;

    (void)arg;
    spawn_jobs(tasks, jobs, 4);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_gather_fail_fast(tasks, 4, results, statuses, &failed), -EIO);
    CHECK_EQ(failed, 1);
    CHECK_EQ(elapsed_ns(), 1 * SEC);
    CHECK_EQ(statuses[0], -ECANCELED);
    CHECK_EQ(statuses[2], -EBADMSG);
    CHECK_EQ(statuses[3], 0);
    CHECK_PTR(results[3], 4);
    return NULL;
}

static void test_failures_before_the_call_lowest_index(void **state)
{
    (void)state;
    run_virtual(scenario_failed_before_the_call, NULL);
}

/* A task cancelled by some other fiber has no result: a failure. */
static void *cancel_after(void *arg)
{
    CHECK_EQ(fiber_sleep(1.5), 0);
    CHECK_EQ(fiber_cancel(arg), 0);
    return NULL;
}

static void *scenario_task_cancelled_from_elsewhere(void *arg)
{
    struct job jobs[2] = {{.sleep_s = 5, .result = 1}, {.sleep_s = 5, .result = 2}};
    fiber_task_t *tasks[2];
    int statuses[2];
    size_t failed;

    (void)arg;
    spawn_jobs(tasks, jobs, 2);
    fiber_task_t *canceller = spawn(cancel_after, tasks[1]);
    CHECK_EQ(fiber_gather_fail_fast(tasks, 2, NULL, statuses, &failed), -ECANCELED);
    CHECK_EQ(failed, 1);
    CHECK_EQ(elapsed_ns(), 1500 * MS);
    CHECK_EQ(statuses[0], -ECANCELED);
    CHECK_EQ(statuses[1], -ECANCELED);
    CHECK_EQ(await_status(canceller), 0);
    return NULL;
}

static void test_task_cancelled_elsewhere_is_a_failure(void **state)
{
    (void)state;
    run_virtual(scenario_task_cancelled_from_elsewhere, NULL);
}

/* ---- the caller's cancellation and timeout scopes -------------------- */

struct gatherer {
    struct job jobs[3];
    fiber_task_t *tasks[3];
    int statuses[3];
    size_t failed;
    int rc;
    int64_t at_ns;
    double scope_s;       /* a timeout scope around the call, or 0 */
};

static void *gather_them(void *arg)
{
    struct gatherer *g = arg;
    fiber_scope_t scope;

    spawn_jobs(g->tasks, g->jobs, 3);
    if (g->scope_s > 0)
        CHECK_EQ(fiber_scope_enter_after(&scope, g->scope_s), 0);
    g->rc = fiber_gather_fail_fast(g->tasks, 3, NULL, g->statuses, &g->failed);
    g->at_ns = elapsed_ns();
    /* The scope tells whether it cut the call short. */
    if (g->scope_s > 0)
        CHECK_EQ(fiber_scope_exit(&scope), g->rc == -ETIMEDOUT ? -ETIMEDOUT : 0);
    return NULL;
}

static void *scenario_caller_cancelled(void *arg)
{
    struct gatherer g = {
        .jobs = {{.sleep_s = 0.5, .result = 1}, {.sleep_s = 3}, {.sleep_s = 4}},
    };

    (void)arg;
    fiber_task_t *t = spawn(gather_them, &g);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(await_status(t), -ECANCELED);
    CHECK_EQ(g.rc, -ECANCELED);
    CHECK_EQ(g.failed, 3);
    CHECK_EQ(g.at_ns, 1 * SEC);
    CHECK_EQ(g.statuses[0], 0);
    CHECK_EQ(g.statuses[1], -ECANCELED);
    CHECK_EQ(g.statuses[2], -ECANCELED);
    return NULL;
}

static void test_caller_cancelled_cancels_and_reaps(void **state)
{
    (void)state;
    run_virtual(scenario_caller_cancelled, NULL);
}

static void *scenario_caller_cancelled_before(void *arg)
{
    struct gatherer g = {
        .jobs = {{.sleep_s = 0.5, .fail = -EIO}, {.sleep_s = 3}, {.sleep_s = 4}},
    };

    (void)arg;
    fiber_task_t *t = spawn(gather_them, &g);
    /* Cancelled before it ever ran: the call fails at once, yet reaps. */
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(await_status(t), -ECANCELED);
    CHECK_EQ(g.rc, -ECANCELED);
    CHECK_EQ(g.failed, 3);
    CHECK_EQ(g.at_ns, 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(g.statuses[i], -ECANCELED);
    return NULL;
}

static void test_caller_cancelled_before_the_call(void **state)
{
    (void)state;
    run_virtual(scenario_caller_cancelled_before, NULL);
}

static void *scenario_timeout_scope(void *arg)
{
    struct gatherer g = {
        .jobs = {{.sleep_s = 0.5, .result = 1}, {.sleep_s = 3, .fail = -EIO},
                 {.sleep_s = 4}},
        .scope_s = 2,
    };

    (void)arg;
    CHECK_EQ(await_status(spawn(gather_them, &g)), 0);
    CHECK_EQ(g.rc, -ETIMEDOUT);
    CHECK_EQ(g.failed, 3);
    CHECK_EQ(g.at_ns, 2 * SEC);
    CHECK_EQ(g.statuses[0], 0);
    CHECK_EQ(g.statuses[1], -ECANCELED);
    CHECK_EQ(g.statuses[2], -ECANCELED);
    return NULL;
}

static void test_timeout_scope_cancels_and_reaps(void **state)
{
    (void)state;
    run_virtual(scenario_timeout_scope, NULL);
}

/* A failure at the same instant as a scope's deadline: the task's wake-up
 * was due, so the failure wins, as a completion does. */
static void *scenario_failure_at_scope_deadline(void *arg)
{
    struct gatherer g = {
        .jobs = {{.sleep_s = 2, .fail = -EIO}, {.sleep_s = 3}, {.sleep_s = 4}},
        .scope_s = 2,
    };

    (void)arg;
    CHECK_EQ(await_status(spawn(gather_them, &g)), 0);
    CHECK_EQ(g.failed, 0);
    CHECK_EQ(g.rc, -EIO);
    CHECK_EQ(g.at_ns, 2 * SEC);
    return NULL;
}

static void test_failure_at_the_scope_deadline_wins(void **state)
{
    (void)state;
    run_virtual(scenario_failure_at_scope_deadline, NULL);
}

/* ---- arguments -------------------------------------------------------- */

static void *scenario_bad_arguments(void *arg)
{
    struct job jobs[2] = {{.sleep_s = 1, .result = 1}, {.sleep_s = 2, .result = 2}};
    fiber_task_t *tasks[2];
    size_t failed = 42;
    int statuses[2] = {7, 7};

    (void)arg;
    spawn_jobs(tasks, jobs, 2);
    fiber_task_t *twice[2] = {tasks[0], tasks[0]};
    fiber_task_t *with_null[2] = {tasks[0], NULL};
    fiber_task_t *with_self[2] = {tasks[0], fiber_self()};

    CHECK_EQ(fiber_gather_fail_fast(NULL, 2, NULL, statuses, &failed), -EINVAL);
    CHECK_EQ(fiber_gather_fail_fast(twice, 2, NULL, statuses, &failed), -EINVAL);
    CHECK_EQ(fiber_gather_fail_fast(with_null, 2, NULL, statuses, &failed), -EINVAL);
    CHECK_EQ(fiber_gather_fail_fast(with_self, 2, NULL, statuses, &failed), -EINVAL);
    /* Nothing was touched: the handles are still the caller's. */
    CHECK_EQ(failed, 42);
    CHECK_EQ(statuses[0], 7);
    CHECK_EQ(fiber_done(tasks[0]), 0);
    CHECK_EQ(fiber_gather_fail_fast(tasks, 2, NULL, statuses, &failed), 0);
    CHECK_EQ(failed, 2);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    return NULL;
}

static void test_bad_arguments_change_nothing(void **state)
{
    (void)state;
    run_virtual(scenario_bad_arguments, NULL);
    /* Outside a fiber. */
    size_t failed = 5;
    assert_int_equal(fiber_gather_fail_fast(NULL, 0, NULL, NULL, &failed), -EPERM);
    assert_int_equal(failed, 5);
}

/* A task another fiber awaits, or one in a group, is refused with -EBUSY. */
static void *await_it(void *arg)
{
    return (void *)(intptr_t)fiber_await(arg, NULL, NULL);
}

static void *scenario_busy_handles(void *arg)
{
    struct job jobs[2] = {{.sleep_s = 1}, {.sleep_s = 1}};
    fiber_task_t *tasks[2];
    void *rc;

    (void)arg;
    spawn_jobs(tasks, jobs, 2);
    fiber_task_t *awaiter = spawn(await_it, tasks[1]);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_gather_fail_fast(tasks, 2, NULL, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_await(awaiter, &rc, NULL), 0);
    CHECK_PTR(rc, 0);
    CHECK_EQ(fiber_gather_fail_fast(tasks, 1, NULL, NULL, NULL), 0);
    return NULL;
}

static void test_busy_handles_refused(void **state)
{
    (void)state;
    run_virtual(scenario_busy_handles, NULL);
}

/* Many tasks, one failing early: every other one is cancelled and freed
 * (Valgrind checks that no handle leaks), and the call returns at once. */
static void *scenario_many(void *arg)
{
    enum { N = 200 };
    static struct job jobs[N];
    static fiber_task_t *tasks[N];
    static int statuses[N];
    size_t failed;

    (void)arg;
    for (int i = 0; i < N; i++)
        jobs[i] = (struct job){.sleep_s = 1 + i, .result = i};
    jobs[N / 2] = (struct job){.sleep_s = 0.5, .fail = -EIO};
    spawn_jobs(tasks, jobs, N);
    CHECK_EQ(fiber_gather_fail_fast(tasks, N, NULL, statuses, &failed), -EIO);
    CHECK_EQ(failed, N / 2);
    CHECK_EQ(elapsed_ns(), 500 * MS);
    int cancelled = 0;
    for (int i = 0; i < N; i++)
        cancelled += statuses[i] == -ECANCELED;
    CHECK_EQ(cancelled, N - 1);
    return NULL;
}

static void test_many_tasks_one_failure(void **state)
{
    (void)state;
    run_virtual(scenario_many, NULL);
}

/* A compact caller: the tasks finish, and the first failure is recorded,
 * while the caller's frames are off the shared stack. */
static struct job compact_jobs[3] = {
    {.sleep_s = 1, .result = 1}, {.sleep_s = 2, .fail = -EIO}, {.sleep_s = 3},
};

static void *compact_gatherer(void *arg)
{
    fiber_task_t *tasks[3];
    int statuses[3];
    size_t failed;
    const fiber_attr_t attr = {.compact = true};

    (void)arg;
    for (int i = 0; i < 3; i++)
        CHECK_EQ(fiber_spawn(&tasks[i], run_job, &compact_jobs[i], &attr), 0);
    CHECK_EQ(fiber_gather_fail_fast(tasks, 3, NULL, statuses, &failed), -EIO);
    CHECK_EQ(failed, 1);
    CHECK_EQ(statuses[0], 0);
    CHECK_EQ(statuses[2], -ECANCELED);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    return NULL;
}

static void *scenario_compact(void *arg)
{
    const fiber_attr_t attr = {.compact = true};
    fiber_task_t *t;

    (void)arg;
    int rc = fiber_spawn(&t, compact_gatherer, NULL, &attr);
    if (rc == -ENOTSUP)
        return NULL;
    CHECK_EQ(rc, 0);
    CHECK_EQ(await_status(t), 0);
    return NULL;
}

static void test_compact_caller_and_tasks(void **state)
{
    (void)state;
    run_virtual(scenario_compact, NULL);
}

/* Debug mode knows a consumed handle: fiber_result refuses each one after
 * the call, whichever way it went, and the loop's end reports no task left
 * unawaited. */
static void *scenario_every_handle_consumed(void *arg)
{
    struct job jobs[3] = {{.sleep_s = 1, .result = 1}, {.sleep_s = 2, .fail = -EIO},
                          {.sleep_s = 3}};
    fiber_task_t *tasks[3];

    (void)arg;
    spawn_jobs(tasks, jobs, 3);
    CHECK_EQ(fiber_gather_fail_fast(tasks, 3, NULL, NULL, NULL), -EIO);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(fiber_result(tasks[i], NULL, NULL), -EINVAL);
    struct job more[2] = {{.sleep_s = 1}, {.sleep_s = 2}};
    spawn_jobs(tasks, more, 2);
    CHECK_EQ(fiber_gather_fail_fast(tasks, 2, NULL, NULL, NULL), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(fiber_result(tasks[i], NULL, NULL), -EINVAL);
    return NULL;
}

static void test_every_handle_consumed(void **state)
{
    char text[4096];
    FILE *report = tmpfile();
    const fiber_debug_options_t debug = {.checks = 1, .report = report};
    const fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &debug};
    struct scenario s = {scenario_every_handle_consumed, NULL};
    int status = -1;

    (void)state;
    assert_non_null(report);
    failed_checks = 0;
    assert_int_equal(fiber_run(scenario_main, &s, &opts, NULL, &status), 0);
    assert_int_equal(failed_checks, 0);
    assert_int_equal(status, 0);
    rewind(report);
    size_t len = fread(text, 1, sizeof(text) - 1, report);
    text[len] = '\0';
    fclose(report);
    /* The stale handles given to fiber_result were reported as such... */
    assert_non_null(strstr(text, "which was already awaited"));
    /* ...and no task was left behind. */
    assert_null(strstr(text, "never retrieved"));
    assert_null(strstr(text, "pending"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_failure_stops_the_wait),
        cmocka_unit_test(test_all_succeed_results_in_order),
        cmocka_unit_test(test_cancelled_tasks_are_reaped_before_return),
        cmocka_unit_test(test_failures_before_the_call_lowest_index),
        cmocka_unit_test(test_task_cancelled_elsewhere_is_a_failure),
        cmocka_unit_test(test_caller_cancelled_cancels_and_reaps),
        cmocka_unit_test(test_caller_cancelled_before_the_call),
        cmocka_unit_test(test_timeout_scope_cancels_and_reaps),
        cmocka_unit_test(test_failure_at_the_scope_deadline_wins),
        cmocka_unit_test(test_bad_arguments_change_nothing),
        cmocka_unit_test(test_busy_handles_refused),
        cmocka_unit_test(test_many_tasks_one_failure),
        cmocka_unit_test(test_every_handle_consumed),
        cmocka_unit_test(test_compact_caller_and_tasks),
    };

    return cmocka_run_group_tests_name("gather_fail_fast", tests, NULL, NULL);
}
