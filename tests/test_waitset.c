/*
 * test_waitset.c - as completed and wait any, as the header promises them:
 * tasks handed back in completion order, timeouts that cancel nothing, a
 * completion winning over a timeout at the same instant, handles given
 * back to the caller, leftovers cancelled and reaped.  The course's
 * exercises built on waitsets are tested in test_wait_n.c.
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
#include <stdlib.h>

#include "fiber.h"
#include "event_log.h"

#define GROUP_NAME "waitset"

/* Take the next task and log its name and result; await it (at once). */
static int next_logged(fiber_waitset_t *set, double timeout)
{
    fiber_task_t *task = NULL;
    void *result = NULL;
    int status = 1;

    int rc = fiber_waitset_next(set, timeout, &task);
    if (rc < 0) {
        log_event("next %s", rc_name(rc));
        return rc;
    }
    CHECK_EQ(fiber_done(task), 1);
    char name[FIBER_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", fiber_name(task));
    CHECK_EQ(fiber_await(task, &result, &status), 0);
    log_event("next %s result=%d status=%s", name, (int)(intptr_t)result,
              rc_name(status));
    return 0;
}

static fiber_waitset_t *set_of_jobs(struct job jobs[], size_t n)
{
    fiber_waitset_t *set = NULL;

    CHECK_EQ(fiber_waitset_create(&set), 0);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(fiber_waitset_add(set, spawn_job(&jobs[i])), 0);
    return set;
}

/* ---- completion order --------------------------------------------------- */

static void *take_all_in_order(void *arg)
{
    struct job *jobs = arg;
    fiber_waitset_t *set = set_of_jobs(jobs, 3);

    CHECK_EQ(fiber_waitset_size(set), 3);
    while (next_logged(set, INFINITY) == 0)
        log_event("size %zu", fiber_waitset_size(set));
    CHECK_EQ(fiber_waitset_destroy(set), 0);
    return NULL;
}

static void test_tasks_come_back_in_completion_order(void **state)
{
    struct job jobs[3] = {
        {.label = "A", .sleep_s = 3, .result = 1},
        {.label = "B", .sleep_s = 1, .result = 2},
        {.label = "C", .sleep_s = 2, .fail = -EIO},
    };
    (void)state;

    run_scenario(take_all_in_order, jobs);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "B slept ok @1000ms", "next B result=2 status=ok @1000ms",
                  "size 2 @1000ms", "C slept ok @2000ms",
                  "next C result=0 status=EIO @2000ms", "size 1 @2000ms",
                  "A slept ok @3000ms", "next A result=1 status=ok @3000ms",
                  "size 0 @3000ms", "next ECHILD @3000ms");
}

/* Tasks finishing at the same instant come back in the order they
 * finished, which is the order their timers were set. */
static void *take_simultaneous(void *arg)
{
    struct job *jobs = arg;
    fiber_waitset_t *set;

    CHECK_EQ(fiber_waitset_create(&set), 0);
    fiber_task_t *a = spawn_job(&jobs[0]);
    fiber_task_t *b = spawn_job(&jobs[1]);
    /* Added in the other order: the order of completion decides. */
    CHECK_EQ(fiber_waitset_add(set, b), 0);
    CHECK_EQ(fiber_waitset_add(set, a), 0);
    while (next_logged(set, INFINITY) == 0)
        continue;
    CHECK_EQ(fiber_waitset_destroy(set), 0);
    return NULL;
}

static void test_simultaneous_completions_keep_their_order(void **state)
{
    struct job jobs[2] = {
        {.label = "A", .sleep_s = 1, .result = 1},
        {.label = "B", .sleep_s = 1, .result = 2},
    };
    (void)state;

    run_scenario(take_simultaneous, jobs);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "A slept ok @1000ms",
                  "B slept ok @1000ms", "next A result=1 status=ok @1000ms",
                  "next B result=2 status=ok @1000ms", "next ECHILD @1000ms");
}

static void *add_a_finished_task(void *arg)
{
    struct job *jobs = arg;
    fiber_waitset_t *set;

    CHECK_EQ(fiber_waitset_create(&set), 0);
    fiber_task_t *finished = spawn_job(&jobs[0]);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_waitset_add(set, spawn_job(&jobs[1])), 0);
    CHECK_EQ(fiber_waitset_add(set, finished), 0);
    /* A poll takes what has finished, and fails on what has not. */
    next_logged(set, 0);
    next_logged(set, 0);
    next_logged(set, INFINITY);
    CHECK_EQ(fiber_waitset_destroy(set), 0);
    return NULL;
}

static void test_finished_task_is_next_at_once(void **state)
{
    struct job jobs[2] = {
        {.label = "F", .no_block = true, .result = 1},
        {.label = "B", .sleep_s = 1, .result = 2},
    };
    (void)state;

    run_scenario(add_a_finished_task, jobs);
    ASSERT_EVENTS("F start @0ms", "next F result=1 status=ok @0ms",
                  "next ETIMEDOUT @0ms", "B start @0ms", "B slept ok @1000ms",
                  "next B result=2 status=ok @1000ms");
}

/* ---- timeouts ----------------------------------------------------------- */

static void *time_out_then_take(void *arg)
{
    struct job *jobs = arg;
    fiber_waitset_t *set = set_of_jobs(jobs, 1);

    next_logged(set, 0.5);
    /* The timeout cancelled nothing: the set is as it was. */
    CHECK_EQ(fiber_waitset_size(set), 1);
    next_logged(set, INFINITY);
    CHECK_EQ(fiber_waitset_destroy(set), 0);
    return NULL;
}

static void test_timeout_leaves_the_set_unchanged(void **state)
{
    struct job jobs[1] = {{.label = "A", .sleep_s = 2, .result = 1}};
    (void)state;

    run_scenario(time_out_then_take, jobs);
    ASSERT_EVENTS("A start @0ms", "next ETIMEDOUT @500ms", "A slept ok @2000ms",
                  "next A result=1 status=ok @2000ms");
}

struct at_timeout {
    struct job job;
    bool let_job_start_first;
};

static void *take_at_the_timeout(void *arg)
{
    struct at_timeout *a = arg;
    fiber_waitset_t *set = set_of_jobs(&a->job, 1);

    if (a->let_job_start_first)
        CHECK_EQ(fiber_yield(), 0);
    next_logged(set, 1);
    CHECK_EQ(fiber_waitset_destroy(set), 0);
    return NULL;
}

static void assert_completion_wins_over_timeout(bool let_job_start_first)
{
    struct at_timeout a = {
        .job = {.label = "A", .sleep_s = 1, .result = 4},
        .let_job_start_first = let_job_start_first,
    };

    run_scenario(take_at_the_timeout, &a);
    ASSERT_EVENTS("A start @0ms", "A slept ok @1000ms",
                  "next A result=4 status=ok @1000ms");
}

static void test_completion_wins_over_timeout_timer_set_first(void **state)
{
    (void)state;
    assert_completion_wins_over_timeout(false);
}

static void test_completion_wins_over_timeout_task_timer_first(void **state)
{
    (void)state;
    assert_completion_wins_over_timeout(true);
}

static void *take_inside_a_scope(void *arg)
{
    struct job *jobs = arg;
    fiber_waitset_t *set = set_of_jobs(jobs, 1);
    fiber_scope_t scope;

    CHECK_EQ(fiber_scope_enter_after(&scope, 1), 0);
    next_logged(set, INFINITY);
    next_logged(set, INFINITY);
    log_event("exit %s", rc_name(fiber_scope_exit(&scope)));
    next_logged(set, INFINITY);
    CHECK_EQ(fiber_waitset_destroy(set), 0);
    return NULL;
}

static void test_scope_deadline_applies_to_next(void **state)
{
    struct job jobs[1] = {{.label = "A", .sleep_s = 2, .result = 1}};
    (void)state;

    run_scenario(take_inside_a_scope, jobs);
    ASSERT_EVENTS("A start @0ms", "next ETIMEDOUT @1000ms",
                  "next ETIMEDOUT @1000ms", "exit ETIMEDOUT @1000ms",
                  "A slept ok @2000ms", "next A result=1 status=ok @2000ms");
}

/* ---- cancellation and cleanup ------------------------------------------- */

static void *take_one_then_destroy(void *arg)
{
    struct job *jobs = arg;
    fiber_waitset_t *set = set_of_jobs(jobs, 3);

    next_logged(set, INFINITY);
    log_event("destroy %s", rc_name(fiber_waitset_destroy(set)));
    return NULL;
}

static void test_destroy_cancels_and_reaps_the_rest(void **state)
{
    struct job jobs[3] = {
        {.label = "A", .sleep_s = 1, .result = 1},
        {.label = "B", .sleep_s = 5, .result = 2},
        {.label = "C", .sleep_s = 10, .result = 3},
    };
    (void)state;

    run_scenario(take_one_then_destroy, jobs);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "A slept ok @1000ms", "next A result=1 status=ok @1000ms",
                  "B slept ECANCELED @1000ms", "C slept ECANCELED @1000ms",
                  "destroy ok @1000ms");
}

static void *owner_taking(void *arg)
{
    struct job *jobs = arg;
    fiber_waitset_t *set = set_of_jobs(jobs, 1);

    next_logged(set, INFINITY);
    /* Level-triggered, and still nothing taken nor cancelled. */
    next_logged(set, 0);
    CHECK_EQ(fiber_waitset_size(set), 1);
    CHECK_EQ(fiber_done(fiber_self()), 0);
    log_event("O destroys");
    CHECK_EQ(fiber_waitset_destroy(set), 0);
    return NULL;
}

static void *cancel_owner(void *arg)
{
    fiber_task_t *o = spawn_named(owner_taking, arg, "O");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel O");
    CHECK_EQ(fiber_cancel(o), 0);
    await_expecting(o, 0, 0, -ECANCELED);
    return NULL;
}

static void test_cancelled_owner_leaves_the_set_unchanged(void **state)
{
    struct job jobs[1] = {{.label = "A", .sleep_s = 5, .result = 1}};
    (void)state;

    run_scenario(cancel_owner, jobs);
    ASSERT_EVENTS("A start @0ms", "cancel O @1000ms", "next ECANCELED @1000ms",
                  "next ECANCELED @1000ms", "O destroys @1000ms",
                  "A slept ECANCELED @1000ms");
}

static void *return_with_set_open(void *arg)
{
    struct job *jobs = arg;

    set_of_jobs(jobs, 1);
    log_event("O returns");
    return NULL;
}

static void *await_owner(void *arg)
{
    fiber_task_t *o = spawn_named(return_with_set_open, arg, "O");
    await_expecting(o, 0, 0, 0);
    log_event("O awaited");
    return NULL;
}

static void test_owner_returning_destroys_its_set(void **state)
{
    struct job jobs[1] = {{.label = "A", .sleep_s = 5, .result = 1}};
    (void)state;

    run_scenario(await_owner, jobs);
    ASSERT_EVENTS("O returns @0ms", "A start @0ms", "A slept ECANCELED @0ms",
                  "O awaited @0ms");
}

/* ---- wait any ----------------------------------------------------------- */

static void *wait_for_any(void *arg)
{
    struct job *jobs = arg;
    fiber_task_t *tasks[3];

    spawn_jobs(jobs, tasks, 3);
    log_event("any %d", fiber_wait_any(tasks, 3, INFINITY));
    /* Nothing was consumed: the finished one is awaited as usual. */
    await_expecting(tasks[1], 0, 2, 0);
    tasks[1] = tasks[2];
    log_event("any %d", fiber_wait_any(tasks, 2, INFINITY));
    await_expecting(tasks[1], 0, 3, 0);
    /* A timeout cancels nothing either. */
    log_event("any %s", rc_name(fiber_wait_any(tasks, 1, 0.5)));
    await_expecting(tasks[0], 0, 1, 0);
    log_event("awaited");
    return NULL;
}

static void test_wait_any_returns_the_first_to_finish(void **state)
{
    struct job jobs[3] = {
        {.label = "A", .sleep_s = 3, .result = 1},
        {.label = "B", .sleep_s = 1, .result = 2},
        {.label = "C", .sleep_s = 2, .result = 3},
    };
    (void)state;

    run_scenario(wait_for_any, jobs);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "B slept ok @1000ms", "any 1 @1000ms", "C slept ok @2000ms",
                  "any 1 @2000ms", "any ETIMEDOUT @2500ms", "A slept ok @3000ms",
                  "awaited @3000ms");
}

static void *wait_for_any_finished(void *arg)
{
    struct job *jobs = arg;
    fiber_task_t *tasks[3];

    spawn_jobs(jobs, tasks, 3);
    CHECK_EQ(fiber_yield(), 0);
    log_event("any %d", fiber_wait_any(tasks, 3, 0));
    CHECK_EQ(fiber_gather(tasks, 3, NULL, NULL), 0);
    return NULL;
}

static void test_wait_any_finished_gives_the_lowest_index(void **state)
{
    struct job jobs[3] = {
        {.label = "A", .sleep_s = 1},
        {.label = "B", .no_block = true},
        {.label = "C", .no_block = true},
    };
    (void)state;

    run_scenario(wait_for_any_finished, jobs);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms", "any 1 @0ms",
                  "A slept ok @1000ms");
}

static void *wait_any_at_the_timeout(void *arg)
{
    struct job *job = arg;
    fiber_task_t *task = spawn_job(job);

    log_event("any %d", fiber_wait_any(&task, 1, 1));
    await_expecting(task, 0, 4, 0);
    return NULL;
}

static void test_wait_any_completion_wins_over_timeout(void **state)
{
    struct job job = {.label = "A", .sleep_s = 1, .result = 4};
    (void)state;

    run_scenario(wait_any_at_the_timeout, &job);
    ASSERT_EVENTS("A start @0ms", "A slept ok @1000ms", "any 0 @1000ms");
}

static void *wait_any_cancelled(void *arg)
{
    fiber_task_t **task = arg;

    log_event("W any %s", rc_name(fiber_wait_any(task, 1, INFINITY)));
    return NULL;
}

static void *cancel_any_waiter(void *arg)
{
    struct job *job = arg;
    fiber_task_t *task = spawn_job(job);

    fiber_task_t *w = spawn_named(wait_any_cancelled, &task, "W");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel W");
    CHECK_EQ(fiber_cancel(w), 0);
    await_expecting(w, 0, 0, -ECANCELED);
    /* The task was neither cancelled nor consumed. */
    await_expecting(task, 0, 5, 0);
    return NULL;
}

static void test_wait_any_cancelled_touches_no_task(void **state)
{
    struct job job = {.label = "A", .sleep_s = 2, .result = 5};
    (void)state;

    run_scenario(cancel_any_waiter, &job);
    ASSERT_EVENTS("A start @0ms", "cancel W @1000ms", "W any ECANCELED @1000ms",
                  "A slept ok @2000ms");
}

/* ---- misuse ------------------------------------------------------------- */

static void *misuse_from_another_fiber(void *arg)
{
    fiber_waitset_t *set = arg;
    fiber_task_t *task = NULL;

    CHECK_EQ(fiber_waitset_add(set, fiber_self()), -EPERM);
    CHECK_EQ(fiber_waitset_next(set, 0, &task), -EPERM);
    CHECK_EQ(fiber_waitset_destroy(set), -EPERM);
    return NULL;
}

struct self_add {
    fiber_waitset_t *set;
    int rc;
};

static void *add_self(void *arg)
{
    struct self_add *s = arg;
    fiber_waitset_t *own;

    CHECK_EQ(fiber_waitset_create(&own), 0);
    s->rc = fiber_waitset_add(own, fiber_self());
    fiber_task_t *me = fiber_self();
    CHECK_EQ(fiber_wait_any(&me, 1, 0), -EDEADLK);
    CHECK_EQ(fiber_waitset_destroy(own), 0);
    return NULL;
}

static void *misuse_waitsets(void *arg)
{
    struct job quick = {.label = "Q", .no_block = true, .result = 1};
    fiber_waitset_t *set;
    fiber_task_t *task = NULL, *t1, *t2, *none = NULL;
    (void)arg;

    CHECK_EQ(fiber_waitset_create(NULL), -EINVAL);
    CHECK_EQ(fiber_waitset_create(&set), 0);
    CHECK_EQ(fiber_waitset_add(NULL, fiber_self()), -EINVAL);
    CHECK_EQ(fiber_waitset_add(set, NULL), -EINVAL);
    CHECK_EQ(fiber_waitset_add(set, fiber_self()), -EINVAL); /* main */
    CHECK_EQ(fiber_waitset_next(NULL, 0, &task), -EINVAL);
    CHECK_EQ(fiber_waitset_next(set, 0, NULL), -EINVAL);
    CHECK_EQ(fiber_waitset_next(set, -1, &task), -EINVAL);
    CHECK_EQ(fiber_waitset_next(set, NAN, &task), -EINVAL);
    CHECK_EQ(fiber_waitset_next(set, 0, &task), -ECHILD);
    CHECK_PTR(task, NULL);
    CHECK_EQ(fiber_waitset_size(NULL), 0);
    CHECK_EQ(fiber_waitset_destroy(NULL), -EINVAL);

    t1 = spawn_job(&quick);
    CHECK_EQ(fiber_waitset_add(set, t1), 0);
    CHECK_EQ(fiber_waitset_add(set, t1), -EBUSY);
    CHECK_EQ(fiber_await(t1, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_detach(t1), -EBUSY);
    t2 = spawn_job(&quick);
    CHECK_EQ(fiber_detach(t2), 0);
    CHECK_EQ(fiber_waitset_add(set, t2), -EBUSY);

    struct self_add s = {.set = set, .rc = 0};
    fiber_task_t *adder = spawn_named(add_self, &s, "S");
    await_expecting(adder, 0, 0, 0);
    CHECK_EQ(s.rc, -EDEADLK);
    fiber_task_t *stranger = spawn_named(misuse_from_another_fiber, set, "X");
    await_expecting(stranger, 0, 0, 0);

    fiber_task_t *pair[2] = {t1, t1};
    t2 = spawn_job(&quick);
    fiber_task_t *dup[2] = {t2, t2};
    CHECK_EQ(fiber_wait_any(NULL, 1, 0), -EINVAL);
    CHECK_EQ(fiber_wait_any(pair, 0, 0), -EINVAL);
    CHECK_EQ(fiber_wait_any(&none, 1, 0), -EINVAL);
    CHECK_EQ(fiber_wait_any(dup, 2, 0), -EINVAL);
    CHECK_EQ(fiber_wait_any(dup, 1, NAN), -EINVAL);
    CHECK_EQ(fiber_wait_any(dup, 1, -1), -EINVAL);
    /* A rejected call changed nothing: t2 can be awaited. */
    await_expecting(t2, 0, 1, 0);

    CHECK_EQ(fiber_waitset_next(set, INFINITY, &task), 0);
    CHECK_PTR(task, t1);
    CHECK_EQ(fiber_waitset_size(set), 0);
    await_expecting(task, 0, 1, 0);
    CHECK_EQ(fiber_waitset_destroy(set), 0);
    return NULL;
}

static void test_misuse_is_refused(void **state)
{
    fiber_waitset_t *set = NULL;
    fiber_task_t *none = NULL;
    (void)state;

    run_scenario(misuse_waitsets, NULL);
    assert_int_equal(fiber_waitset_create(&set), -EPERM);
    assert_null(set);
    assert_int_equal(fiber_wait_any(&none, 1, 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tasks_come_back_in_completion_order),
        cmocka_unit_test(test_simultaneous_completions_keep_their_order),
        cmocka_unit_test(test_finished_task_is_next_at_once),
        cmocka_unit_test(test_timeout_leaves_the_set_unchanged),
        cmocka_unit_test(test_completion_wins_over_timeout_timer_set_first),
        cmocka_unit_test(test_completion_wins_over_timeout_task_timer_first),
        cmocka_unit_test(test_scope_deadline_applies_to_next),
        cmocka_unit_test(test_destroy_cancels_and_reaps_the_rest),
        cmocka_unit_test(test_cancelled_owner_leaves_the_set_unchanged),
        cmocka_unit_test(test_owner_returning_destroys_its_set),
        cmocka_unit_test(test_wait_any_returns_the_first_to_finish),
        cmocka_unit_test(test_wait_any_finished_gives_the_lowest_index),
        cmocka_unit_test(test_wait_any_completion_wins_over_timeout),
        cmocka_unit_test(test_wait_any_cancelled_touches_no_task),
        cmocka_unit_test(test_misuse_is_refused),
    };

    return cmocka_run_group_tests_name(GROUP_NAME, tests, NULL, NULL);
}
