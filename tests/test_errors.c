/*
 * test_errors.c - every error the header documents: calls outside a fiber,
 * NULL and invalid arguments, awaiting what cannot be awaited, invalid
 * options, running out of memory and deadlocks.
 *
 * An argument error must change nothing, so most tests make the failing
 * calls and then show that the handles involved still work.  Scenarios run
 * as the main fiber of a loop on the virtual clock.
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
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber.h"

#define GROUP_NAME "errors"

#define SEC INT64_C(1000000000)

/* A task result that carries a small number. */
#define RESULT(n) ((void *)(intptr_t)(n))

/* A stack size no machine can map. */
#define UNMAPPABLE_STACK_SIZE ((size_t)1 << 62)

#include "fiber_check.h"
#include "stderr_capture.h"

/* ---- running scenarios -------------------------------------------------- */

struct scenario {
    fiber_fn fn;
    void *arg;
    int64_t origin_ns; /* the loop clock when the scenario began */
};

static struct scenario *current_scenario;

static void *scenario_main(void *arg)
{
    struct scenario *s = arg;

    s->origin_ns = fiber_now_ns();
    return s->fn(s->arg);
}

/* Virtual nanoseconds since the running scenario began. */
static int64_t elapsed_ns(void)
{
    return fiber_now_ns() - current_scenario->origin_ns;
}

/* Run fn(arg) as the main fiber on the virtual clock.  Returns what
 * fiber_run returned; checks failed inside fibers are counted in
 * failed_checks. */
static int run_virtual_unchecked(fiber_fn fn, void *arg, void **result,
                                 int *status)
{
    const fiber_options_t virtual_clock = {.clock = FIBER_CLOCK_VIRTUAL};
    struct scenario s = {fn, arg, 0};

    failed_checks = 0;
    current_scenario = &s;
    int rc = fiber_run(scenario_main, &s, &virtual_clock, result, status);
    current_scenario = NULL;
    return rc;
}

/* As run_virtual_unchecked, then fail the test if a check failed. */
static int run_virtual(fiber_fn fn, void *arg, void **result, int *status)
{
    int rc = run_virtual_unchecked(fn, arg, result, status);

    if (failed_checks > 0)
        fail_msg("%d check(s) failed inside fibers", failed_checks);
    return rc;
}

/* Most scenarios expect the loop and main to end normally. */
static void run_scenario(fiber_fn fn, void *arg)
{
    int status = -1;

    assert_int_equal(run_virtual(fn, arg, NULL, &status), 0);
    assert_int_equal(status, 0);
}

/*
 * Run fn(arg) as a scenario in a child process.  This is for scenarios that
 * change process-wide limits, and for those that go on using a handle after
 * a call that must fail: had the call wrongly succeeded and consumed the
 * handle, the use-after-free would take the whole test program down.  The
 * child's exit code is its number of failed checks.
 */
static void run_scenario_in_child(fiber_fn fn, void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int status = -1;
        int rc = run_virtual_unchecked(fn, arg, NULL, &status);
        CHECK_EQ(rc, 0);
        CHECK_EQ(status, 0);
        _exit(failed_checks > 100 ? 100 : failed_checks);
    }
    int wstatus;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    if (WIFSIGNALED(wstatus))
        fail_msg("the scenario was killed by signal %d", WTERMSIG(wstatus));
    assert_true(WIFEXITED(wstatus));
    if (WEXITSTATUS(wstatus) != 0)
        fail_msg("%d check(s) failed in the child", WEXITSTATUS(wstatus));
}

/* Cut text before the line holding part; return that line and the rest. */
static const char *split_at_line_of(char *text, const char *part)
{
    char *line = strstr(text, part);

    if (!line)
        fail_msg("\"%s\" is not in:\n%s", part, text);
    while (line > text && line[-1] != '\n')
        line--;
    if (line > text)
        line[-1] = '\0';
    return line;
}

/* ---- building blocks ---------------------------------------------------- */

/* A worker: sleeps unless told not to block, then returns its result. */
struct job {
    double sleep_s;
    bool no_block;
    intptr_t result;
    bool started;
    int sleep_rc;
};

static void *run_job(void *arg)
{
    struct job *job = arg;

    job->started = true;
    if (!job->no_block)
        job->sleep_rc = fiber_sleep(job->sleep_s);
    return RESULT(job->result);
}

static fiber_task_t *spawn_named(fiber_fn fn, void *arg, const char *name)
{
    fiber_task_t *task = NULL;
    fiber_attr_t attr = {.name = name};

    CHECK_EQ(fiber_spawn(&task, fn, arg, &attr), 0);
    return task;
}

static fiber_task_t *spawn_job(struct job *job)
{
    return spawn_named(run_job, job, NULL);
}

/* Await a task and check it returned result with status. */
static void await_expecting(fiber_task_t *task, intptr_t expected_result,
                            int expected_status)
{
    void *result = NULL;
    int status = 1;

    CHECK_EQ(fiber_await(task, &result, &status), 0);
    CHECK_PTR(result, RESULT(expected_result));
    CHECK_EQ(status, expected_status);
}

static void *return_its_arg(void *arg)
{
    return arg;
}

/* Counts runs of functions given to a call that must refuse them. */
static int refused_functions_run;

static void *must_not_run(void *arg)
{
    (void)arg;
    refused_functions_run++;
    return NULL;
}

/* ---- outside a fiber ---------------------------------------------------- */

/* No handle outlives its loop, so calls made outside any loop get this
 * stand-in; each must fail for want of a fiber before touching it. */
static max_align_t stand_in_storage;
#define STAND_IN ((fiber_task_t *)(void *)&stand_in_storage)

static void test_blocking_calls_outside_a_fiber_are_eperm(void **state)
{
    fiber_task_t *const stand_ins[1] = {STAND_IN};
    fiber_task_t *task = NULL;
    (void)state;

    assert_int_equal(fiber_sleep(1), -EPERM);
    assert_int_equal(fiber_sleep(0), -EPERM);
    assert_int_equal(fiber_sleep_ns(1), -EPERM);
    assert_int_equal(fiber_sleep_until(0), -EPERM);
    assert_int_equal(fiber_yield(), -EPERM);
    assert_int_equal(fiber_spawn(&task, return_its_arg, NULL, NULL), -EPERM);
    assert_null(task);
    assert_int_equal(fiber_await(STAND_IN, NULL, NULL), -EPERM);
    assert_int_equal(fiber_wait_for(STAND_IN, 1, NULL, NULL), -EPERM);
    assert_int_equal(fiber_await_until(STAND_IN, 0, NULL, NULL), -EPERM);
    assert_int_equal(fiber_gather(stand_ins, 1, NULL, NULL), -EPERM);
    assert_int_equal(fiber_gather(NULL, 0, NULL, NULL), -EPERM);
    assert_int_equal(fiber_detach(STAND_IN), -EPERM);
    assert_int_equal(fiber_cancel(STAND_IN), -EPERM);
}

static void test_fiber_queries_outside_a_loop(void **state)
{
    (void)state;
    assert_int_equal(fiber_cancelling(), -EPERM);
    assert_int_equal(fiber_clock_virtual(), -EPERM);
    assert_null(fiber_self());
    assert_null(fiber_fail(-EIO));
}

/* ---- fiber_run ---------------------------------------------------------- */

static void test_run_without_main_is_einval(void **state)
{
    const fiber_options_t virtual_clock = {.clock = FIBER_CLOCK_VIRTUAL};
    (void)state;

    assert_int_equal(fiber_run(NULL, NULL, &virtual_clock, NULL, NULL),
                     -EINVAL);
    assert_int_equal(fiber_run(NULL, NULL, NULL, NULL, NULL), -EINVAL);
}

static void test_run_with_invalid_options_is_einval(void **state)
{
    const fiber_options_t invalid[] = {
        {.clock = 99},
        {.clock = -1},
        {.clock = FIBER_CLOCK_VIRTUAL, .stack_size = 1},
        {.clock = FIBER_CLOCK_VIRTUAL, .stack_size = FIBER_MIN_STACK_SIZE - 1},
    };
    (void)state;

    refused_functions_run = 0;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_int_equal(fiber_run(must_not_run, NULL, &invalid[i], NULL, NULL),
                         -EINVAL);
    assert_int_equal(refused_functions_run, 0);
}

static void test_run_with_unmappable_stack_is_enomem(void **state)
{
    const fiber_options_t huge = {.clock = FIBER_CLOCK_VIRTUAL,
                                  .stack_size = UNMAPPABLE_STACK_SIZE};
    void *result = NULL;
    (void)state;

    refused_functions_run = 0;
    assert_int_equal(fiber_run(must_not_run, NULL, &huge, NULL, NULL), -ENOMEM);
    assert_int_equal(refused_functions_run, 0);
    /* Nothing was left behind: the next loop runs. */
    assert_int_equal(run_virtual(return_its_arg, RESULT(3), &result, NULL), 0);
    assert_ptr_equal(result, RESULT(3));
}

static void *run_nested_loop(void *arg)
{
    const fiber_options_t virtual_clock = {.clock = FIBER_CLOCK_VIRTUAL};
    (void)arg;

    CHECK_EQ(fiber_run(must_not_run, NULL, &virtual_clock, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_run(must_not_run, NULL, NULL, NULL, NULL), -EBUSY);
    /* The running loop goes on. */
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(elapsed_ns(), SEC);
    return NULL;
}

static void test_run_inside_a_loop_is_ebusy(void **state)
{
    (void)state;
    refused_functions_run = 0;
    run_scenario(run_nested_loop, NULL);
    assert_int_equal(refused_functions_run, 0);
}

static int unset_fiber_clock(void **state)
{
    (void)state;
    unsetenv("FIBER_CLOCK");
    return 0;
}

static void *report_clock_kind(void *arg)
{
    *(int *)arg = fiber_clock_virtual();
    return NULL;
}

static void test_bogus_fiber_clock_environment_is_einval(void **state)
{
    const fiber_options_t default_clock = {.clock = FIBER_CLOCK_DEFAULT};
    struct captured_stderr captured;
    char text[512];
    int is_virtual = -1;
    (void)state;

    refused_functions_run = 0;
    assert_int_equal(setenv("FIBER_CLOCK", "bogus", 1), 0);
    capture_stderr(&captured);
    int rc_without_options = fiber_run(must_not_run, NULL, NULL, NULL, NULL);
    int rc_with_default =
        fiber_run(must_not_run, NULL, &default_clock, NULL, NULL);
    release_stderr(&captured, text, sizeof(text));
    assert_int_equal(rc_without_options, -EINVAL);
    assert_int_equal(rc_with_default, -EINVAL);
    assert_int_equal(refused_functions_run, 0);
    assert_contains(text, "FIBER_CLOCK");

    /* A valid value is honoured, and an explicit clock overrides it. */
    assert_int_equal(setenv("FIBER_CLOCK", "virtual", 1), 0);
    assert_int_equal(
        fiber_run(report_clock_kind, &is_virtual, NULL, NULL, NULL), 0);
    assert_int_equal(is_virtual, 1);
    assert_int_equal(setenv("FIBER_CLOCK", "bogus", 1), 0);
    assert_int_equal(
        run_virtual(report_clock_kind, &is_virtual, NULL, NULL), 0);
    assert_int_equal(is_virtual, 1);
}

/* ---- spawn -------------------------------------------------------------- */

static void *spawn_with_bad_arguments(void *arg)
{
    fiber_attr_t small = {.stack_size = FIBER_MIN_STACK_SIZE - 1};
    fiber_attr_t tiny = {.stack_size = 1};
    fiber_attr_t minimum = {.stack_size = FIBER_MIN_STACK_SIZE};
    fiber_task_t *task = NULL;
    (void)arg;

    CHECK_EQ(fiber_spawn(NULL, return_its_arg, NULL, NULL), -EINVAL);
    CHECK_EQ(fiber_spawn(&task, NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(fiber_spawn(&task, return_its_arg, NULL, &small), -EINVAL);
    CHECK_EQ(fiber_spawn(&task, return_its_arg, NULL, &tiny), -EINVAL);
    CHECK_PTR(task, NULL);

    CHECK_EQ(fiber_spawn(&task, return_its_arg, RESULT(4), &minimum), 0);
    await_expecting(task, 4, 0);
    return NULL;
}

static void test_spawn_rejects_null_arguments_and_small_stacks(void **state)
{
    (void)state;
    run_scenario(spawn_with_bad_arguments, NULL);
}

static void *spawn_with_unmappable_stack(void *arg)
{
    fiber_attr_t huge = {.stack_size = UNMAPPABLE_STACK_SIZE};
    fiber_task_t *task = NULL;
    (void)arg;

    for (int attempt = 0; attempt < 2; attempt++) {
        CHECK_EQ(fiber_spawn(&task, must_not_run, NULL, &huge), -ENOMEM);
        CHECK_PTR(task, NULL);
        /* The loop is still usable. */
        CHECK_EQ(fiber_spawn(&task, return_its_arg, RESULT(attempt + 1), NULL),
                 0);
        await_expecting(task, attempt + 1, 0);
        task = NULL;
    }
    return NULL;
}

static void test_spawn_with_unmappable_stack_is_enomem(void **state)
{
    (void)state;
    refused_functions_run = 0;
    run_scenario(spawn_with_unmappable_stack, NULL);
    assert_int_equal(refused_functions_run, 0);
}

/* ---- NULL handles ------------------------------------------------------- */

static void *pass_null_handles(void *arg)
{
    char buf[64];
    void *result = RESULT(1);
    int status = 1;
    (void)arg;

    CHECK_EQ(fiber_await(NULL, &result, &status), -EINVAL);
    CHECK_EQ(fiber_wait_for(NULL, 1, &result, &status), -EINVAL);
    CHECK_EQ(fiber_await_until(NULL, 0, &result, &status), -EINVAL);
    CHECK_EQ(fiber_cancel(NULL), -EINVAL);
    CHECK_EQ(fiber_detach(NULL), -EINVAL);
    CHECK_EQ(fiber_done(NULL), -EINVAL);
    CHECK_EQ(fiber_cancelled(NULL), -EINVAL);
    CHECK_EQ(fiber_result(NULL, &result, &status), -EINVAL);
    CHECK_EQ(fiber_describe(NULL, buf, sizeof(buf)), -EINVAL);
    CHECK_EQ(fiber_describe(fiber_self(), NULL, sizeof(buf)), -EINVAL);
    CHECK_EQ(fiber_id(NULL), 0);
    CHECK_EQ(strcmp(fiber_name(NULL), ""), 0);
    CHECK_PTR(result, RESULT(1));
    CHECK_EQ(status, 1);
    return NULL;
}

static void test_null_handles_are_einval(void **state)
{
    (void)state;
    run_scenario(pass_null_handles, NULL);
}

/* ---- gather arguments --------------------------------------------------- */

static void *gather_with_bad_arguments(void *arg)
{
    struct job *jobs = arg;
    void *results[3] = {NULL, NULL, NULL};
    int statuses[3] = {1, 1, 1};

    fiber_task_t *a = spawn_job(&jobs[0]);
    fiber_task_t *b = spawn_job(&jobs[1]);
    fiber_task_t *with_null[2] = {a, NULL};
    fiber_task_t *with_duplicate[3] = {a, b, a};
    fiber_task_t *with_late_duplicate[3] = {b, a, a};
    fiber_task_t *with_main[2] = {a, fiber_self()};
    fiber_task_t *valid[2] = {a, b};

    CHECK_EQ(fiber_gather(NULL, 2, results, statuses), -EINVAL);
    CHECK_EQ(fiber_gather(with_null, 2, results, statuses), -EINVAL);
    CHECK_EQ(fiber_gather(with_duplicate, 3, results, statuses), -EINVAL);
    CHECK_EQ(fiber_gather(with_late_duplicate, 3, results, statuses), -EINVAL);
    CHECK_EQ(fiber_gather(with_main, 2, results, statuses), -EINVAL);
    /* Nothing blocked and no task started. */
    CHECK_EQ(elapsed_ns(), 0);
    CHECK_EQ(jobs[0].started || jobs[1].started, 0);

    CHECK_EQ(fiber_gather(valid, 2, results, statuses), 0);
    CHECK_PTR(results[0], RESULT(1));
    CHECK_PTR(results[1], RESULT(2));
    CHECK_EQ(statuses[0], 0);
    CHECK_EQ(statuses[1], 0);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    return NULL;
}

static void test_gather_argument_errors_consume_nothing(void **state)
{
    struct job jobs[2] = {
        {.sleep_s = 1, .result = 1},
        {.sleep_s = 2, .result = 2},
    };
    (void)state;

    run_scenario_in_child(gather_with_bad_arguments, jobs);
}

/* ---- negative and NaN delays -------------------------------------------- */

static void *use_bad_delays(void *arg)
{
    struct job *job = arg;
    void *result = RESULT(1);
    int status = 1;

    fiber_task_t *task = spawn_job(job);
    CHECK_EQ(fiber_sleep(-1), -EINVAL);
    CHECK_EQ(fiber_sleep(-1e-9), -EINVAL);
    CHECK_EQ(fiber_sleep(-INFINITY), -EINVAL);
    CHECK_EQ(fiber_sleep(NAN), -EINVAL);
    CHECK_EQ(fiber_sleep_ns(-1), -EINVAL);
    CHECK_EQ(fiber_sleep_ns(INT64_MIN), -EINVAL);
    CHECK_EQ(fiber_wait_for(task, -1, &result, &status), -EINVAL);
    CHECK_EQ(fiber_wait_for(task, -INFINITY, &result, &status), -EINVAL);
    CHECK_EQ(fiber_wait_for(task, NAN, &result, &status), -EINVAL);
    CHECK_PTR(result, RESULT(1));
    CHECK_EQ(status, 1);

    /* Nothing changed: no switch happened, the fiber is not cancelled and
     * can still sleep, and the task can still be awaited. */
    CHECK_EQ(job->started, 0);
    CHECK_EQ(fiber_cancelling(), 0);
    CHECK_EQ(elapsed_ns(), 0);
    CHECK_EQ(fiber_sleep(0.5), 0);
    CHECK_EQ(elapsed_ns(), SEC / 2);
    await_expecting(task, 7, 0);
    CHECK_EQ(elapsed_ns(), SEC);
    return NULL;
}

static void test_negative_and_nan_delays_are_einval(void **state)
{
    struct job job = {.sleep_s = 1, .result = 7};
    (void)state;

    run_scenario_in_child(use_bad_delays, &job);
}

/* ---- what cannot be awaited --------------------------------------------- */

static void *await_self(void *arg)
{
    fiber_task_t *self = fiber_self();
    fiber_task_t *just_self[1] = {self};
    (void)arg;

    CHECK_EQ(fiber_await(self, NULL, NULL), -EDEADLK);
    CHECK_EQ(fiber_wait_for(self, 1, NULL, NULL), -EDEADLK);
    CHECK_EQ(fiber_await_until(self, 0, NULL, NULL), -EDEADLK);
    CHECK_EQ(fiber_gather(just_self, 1, NULL, NULL), -EDEADLK);
    /* The fiber goes on as if nothing happened. */
    CHECK_EQ(fiber_sleep(1), 0);
    return RESULT(5);
}

static void *spawn_self_awaiter(void *arg)
{
    (void)arg;
    fiber_task_t *task = spawn_named(await_self, NULL, "self-awaiter");
    /* Let it run before anyone awaits it. */
    CHECK_EQ(fiber_yield(), 0);
    await_expecting(task, 5, 0);
    CHECK_EQ(elapsed_ns(), SEC);
    return NULL;
}

static void test_awaiting_yourself_is_edeadlk(void **state)
{
    (void)state;
    run_scenario(spawn_self_awaiter, NULL);
}

static void *await_main(void *arg)
{
    fiber_task_t *main_task = arg;
    fiber_task_t *just_main[1] = {main_task};

    CHECK_EQ(fiber_await(main_task, NULL, NULL), -EINVAL);
    CHECK_EQ(fiber_wait_for(main_task, 1, NULL, NULL), -EINVAL);
    CHECK_EQ(fiber_await_until(main_task, 0, NULL, NULL), -EINVAL);
    CHECK_EQ(fiber_gather(just_main, 1, NULL, NULL), -EINVAL);
    CHECK_EQ(fiber_detach(main_task), -EINVAL);
    return RESULT(6);
}

static void *let_child_await_main(void *arg)
{
    (void)arg;
    CHECK_EQ(fiber_detach(fiber_self()), -EINVAL);
    fiber_task_t *task = spawn_named(await_main, fiber_self(), "main-awaiter");
    await_expecting(task, 6, 0);
    return NULL;
}

static void test_awaiting_the_main_fiber_is_einval(void **state)
{
    (void)state;
    run_scenario(let_child_await_main, NULL);
}

struct awaited_pair {
    struct job job;
    fiber_task_t *awaited;
};

static void *await_the_pair_task(void *arg)
{
    struct awaited_pair *pair = arg;
    void *result = NULL;
    int status = 1;

    CHECK_EQ(fiber_await(pair->awaited, &result, &status), 0);
    CHECK_PTR(result, RESULT(3));
    CHECK_EQ(status, 0);
    return NULL;
}

static void *await_a_task_already_awaited(void *arg)
{
    struct awaited_pair *pair = arg;
    fiber_task_t *just_awaited[1];

    pair->awaited = just_awaited[0] = spawn_job(&pair->job);
    fiber_task_t *waiter = spawn_named(await_the_pair_task, pair, "waiter");
    /* Let the waiter start awaiting. */
    CHECK_EQ(fiber_yield(), 0);

    CHECK_EQ(fiber_await(pair->awaited, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_wait_for(pair->awaited, 1, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_await_until(pair->awaited, 0, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_gather(just_awaited, 1, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_detach(pair->awaited), -EBUSY);
    CHECK_EQ(elapsed_ns(), 0);

    /* The first waiter still gets the result. */
    await_expecting(waiter, 0, 0);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    return NULL;
}

static void test_awaiting_a_task_already_awaited_is_ebusy(void **state)
{
    struct awaited_pair pair = {.job = {.sleep_s = 2, .result = 3}};
    (void)state;

    run_scenario_in_child(await_a_task_already_awaited, &pair);
}

static void *await_a_detached_task(void *arg)
{
    struct job *job = arg;
    fiber_task_t *just_detached[1];

    fiber_task_t *task = just_detached[0] = spawn_job(job);
    CHECK_EQ(fiber_detach(task), 0);
    /* The task has not finished, so its handle is still valid. */
    CHECK_EQ(fiber_await(task, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_wait_for(task, 1, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_await_until(task, 0, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_gather(just_detached, 1, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_detach(task), -EBUSY);
    CHECK_EQ(fiber_sleep(2), 0);
    CHECK_EQ(job->sleep_rc, 0);
    return NULL;
}

static void test_awaiting_a_detached_task_is_ebusy(void **state)
{
    struct job job = {.sleep_s = 1, .sleep_rc = 1};
    (void)state;

    run_scenario_in_child(await_a_detached_task, &job);
}

struct gathered_pair {
    struct job jobs[2];
    fiber_task_t *tasks[2];
    void *results[2];
    int rc;
};

static void *gather_the_pair(void *arg)
{
    struct gathered_pair *pair = arg;

    pair->rc = fiber_gather(pair->tasks, 2, pair->results, NULL);
    return NULL;
}

static void *await_a_task_being_gathered(void *arg)
{
    struct gathered_pair *pair = arg;

    pair->tasks[0] = spawn_job(&pair->jobs[0]);
    pair->tasks[1] = spawn_job(&pair->jobs[1]);
    fiber_task_t *gatherer = spawn_named(gather_the_pair, pair, "gatherer");
    /* Let the gatherer start: it waits for the first task. */
    CHECK_EQ(fiber_yield(), 0);

    /* The second task belongs to the gather too, though it is not the
     * one the gatherer is waiting for right now. */
    int rc = fiber_await(pair->tasks[1], NULL, NULL);
    CHECK_EQ(rc, -EBUSY);
    /* Had the await succeeded, the handle would be gone. */
    if (rc == -EBUSY)
        CHECK_EQ(fiber_detach(pair->tasks[1]), -EBUSY);

    await_expecting(gatherer, 0, 0);
    CHECK_EQ(pair->rc, 0);
    CHECK_PTR(pair->results[0], RESULT(1));
    CHECK_PTR(pair->results[1], RESULT(2));
    return NULL;
}

static void test_awaiting_a_task_being_gathered_is_ebusy(void **state)
{
    struct gathered_pair pair = {
        .jobs = {{.sleep_s = 2, .result = 1}, {.sleep_s = 1, .result = 2}}};
    (void)state;

    run_scenario_in_child(await_a_task_being_gathered, &pair);
}

/* ---- deadlocks ---------------------------------------------------------- */

struct deadlock {
    struct job sleeper;
    fiber_task_t *left, *right;
    int main_rc;
    void *main_result;
    int main_status;
    bool cycle_awaits_returned;
};

static void *await_forever_sleeper(void *arg)
{
    struct deadlock *d = arg;

    fiber_task_t *task = spawn_named(run_job, &d->sleeper, "sleeper");
    d->main_rc = fiber_await(task, &d->main_result, &d->main_status);
    return RESULT(8);
}

/* Run a scenario that must deadlock; return what it wrote to stderr. */
static void run_deadlock(fiber_fn fn, struct deadlock *d, char *report,
                         size_t size)
{
    struct captured_stderr captured;
    void *result = NULL;
    int status = 1;

    capture_stderr(&captured);
    int rc = run_virtual_unchecked(fn, d, &result, &status);
    release_stderr(&captured, report, size);
    if (failed_checks > 0)
        fail_msg("%d check(s) failed inside fibers:\n%s", failed_checks,
                 report);
    assert_int_equal(rc, -EDEADLK);
    assert_ptr_equal(result, RESULT(8));
    /* main saw the cancel the loop sent to break the deadlock. */
    assert_int_equal(status, -ECANCELED);
}

static void test_deadlock_on_a_forever_sleeper_is_reported(void **state)
{
    struct deadlock d = {.sleeper = {.sleep_s = INFINITY, .result = 5}};
    char report[2048];
    (void)state;

    run_deadlock(await_forever_sleeper, &d, report, sizeof(report));
    assert_contains(report, "deadlock");
    assert_contains(report, "'main'");
    assert_contains(report, "'sleeper'");
    /* The sleeper unwound after the cancel: nothing was abandoned. */
    assert_int_equal(count_occurrences(report, "deadlock"), 1);
    assert_null(strstr(report, "abandoned"));
    assert_int_equal(d.sleeper.sleep_rc, -ECANCELED);
    assert_int_equal(d.main_rc, -ECANCELED);
    assert_ptr_equal(d.main_result, RESULT(5));
    assert_int_equal(d.main_status, -ECANCELED);
}

static void *await_right(void *arg)
{
    struct deadlock *d = arg;

    fiber_await(d->right, NULL, NULL);
    d->cycle_awaits_returned = true;
    return NULL;
}

static void *await_left(void *arg)
{
    struct deadlock *d = arg;

    fiber_await(d->left, NULL, NULL);
    d->cycle_awaits_returned = true;
    return NULL;
}

static void *sleep_beside_an_await_cycle(void *arg)
{
    struct deadlock *d = arg;

    d->left = spawn_named(await_right, d, "left");
    d->right = spawn_named(await_left, d, "right");
    d->main_rc = fiber_sleep(INFINITY);
    return RESULT(8);
}

static void test_deadlock_of_an_await_cycle_is_abandoned(void **state)
{
    struct deadlock d = {0};
    char report[2048];
    (void)state;

    run_deadlock(sleep_beside_an_await_cycle, &d, report, sizeof(report));
    /* First the deadlock naming every blocked fiber, then the fibers that
     * could not unwind after the cancel. */
    assert_int_equal(count_occurrences(report, "deadlock"), 2);
    const char *abandoned = split_at_line_of(report, "abandoned");
    assert_contains(report, "'main'");
    assert_contains(report, "'left'");
    assert_contains(report, "'right'");
    assert_contains(abandoned, "'left'");
    assert_contains(abandoned, "'right'");
    assert_null(strstr(abandoned, "'main'"));
    assert_int_equal(d.main_rc, -ECANCELED);
    /* Each await reaps the other for ever: neither ever returns. */
    assert_false(d.cycle_awaits_returned);
}

/* ---- out of memory ------------------------------------------------------ */

#define MAX_OOM_TASKS 8192

/* The address space the process uses now, in bytes. */
static rlim_t address_space_in_use(void)
{
    unsigned long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");

    if (statm) {
        if (fscanf(statm, "%lu", &pages) != 1)
            pages = 0;
        fclose(statm);
    }
    return (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE);
}

static void *quick_nap(void *arg)
{
    fiber_sleep(1);
    return arg;
}

static void *spawn_until_out_of_memory(void *arg)
{
    static fiber_task_t *tasks[MAX_OOM_TASKS];
    static int statuses[MAX_OOM_TASKS];
    fiber_attr_t attr = {.stack_size = 64 * 1024};
    fiber_task_t *task = NULL;
    size_t n = 0;
    int rc = 0;
    (void)arg;

    struct rlimit limit;
    CHECK_EQ(getrlimit(RLIMIT_AS, &limit), 0);
    limit.rlim_cur = address_space_in_use() + ((rlim_t)64 << 20);
    CHECK_EQ(setrlimit(RLIMIT_AS, &limit), 0);

    while (n < MAX_OOM_TASKS) {
        task = NULL;
        rc = fiber_spawn(&task, quick_nap, NULL, &attr);
        if (rc != 0)
            break;
        tasks[n++] = task;
    }
    CHECK_EQ(rc, -ENOMEM);
    CHECK_PTR(task, NULL);
    CHECK_EQ(n > 0, 1);

    /* Everything spawned before the failure still runs to completion. */
    CHECK_EQ(fiber_gather(tasks, n, NULL, statuses), 0);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(statuses[i], 0);
    CHECK_EQ(fiber_spawn(&task, quick_nap, RESULT(9), &attr), 0);
    await_expecting(task, 9, 0);
    return NULL;
}

static void test_spawn_out_of_memory_leaves_loop_usable(void **state)
{
    (void)state;
    if (getenv("FIBER_TEST_UNDER_TOOL"))
        skip(); /* Sanitizers and Valgrind need the address space. */
    run_scenario_in_child(spawn_until_out_of_memory, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocking_calls_outside_a_fiber_are_eperm),
        cmocka_unit_test(test_fiber_queries_outside_a_loop),
        cmocka_unit_test(test_run_without_main_is_einval),
        cmocka_unit_test(test_run_with_invalid_options_is_einval),
        cmocka_unit_test(test_run_with_unmappable_stack_is_enomem),
        cmocka_unit_test(test_run_inside_a_loop_is_ebusy),
        cmocka_unit_test_teardown(test_bogus_fiber_clock_environment_is_einval,
                                  unset_fiber_clock),
        cmocka_unit_test(test_spawn_rejects_null_arguments_and_small_stacks),
        cmocka_unit_test(test_spawn_with_unmappable_stack_is_enomem),
        cmocka_unit_test(test_null_handles_are_einval),
        cmocka_unit_test(test_gather_argument_errors_consume_nothing),
        cmocka_unit_test(test_negative_and_nan_delays_are_einval),
        cmocka_unit_test(test_awaiting_yourself_is_edeadlk),
        cmocka_unit_test(test_awaiting_the_main_fiber_is_einval),
        cmocka_unit_test(test_awaiting_a_task_already_awaited_is_ebusy),
        cmocka_unit_test(test_awaiting_a_detached_task_is_ebusy),
        cmocka_unit_test(test_awaiting_a_task_being_gathered_is_ebusy),
        cmocka_unit_test(test_deadlock_on_a_forever_sleeper_is_reported),
        cmocka_unit_test(test_deadlock_of_an_await_cycle_is_abandoned),
        cmocka_unit_test(test_spawn_out_of_memory_leaves_loop_usable),
    };

    return cmocka_run_group_tests_name(GROUP_NAME, tests, NULL, NULL);
}
