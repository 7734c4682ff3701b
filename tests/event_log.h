/*
 * event_log.h - an event log with virtual times, shared by the scenario
 * tests (test_tasks, test_scope, test_group, test_waitset, test_sync,
 * test_queue).
 *
 * Each scenario runs as the main fiber of a loop on the virtual clock.
 * Fibers append "<text> @<elapsed>" lines with log_event, and the test
 * compares the whole log with the exact sequence expected (ASSERT_EVENTS).
 * Checks inside fibers use fiber_check.h; run_scenario fails the test
 * once fiber_run has returned if any failed.
 * Scenarios that end in a deadlock report run with stderr captured
 * (stderr_capture.h), so that the test can search the report.
 *
 * Include after <cmocka.h> and "fiber.h".
 */
#ifndef EVENT_LOG_H
#define EVENT_LOG_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fiber_check.h"
#include "stderr_capture.h"

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* A task result that carries a small number. */
#define RESULT(n) ((void *)(intptr_t)(n))

#define EVENT_LOG_UNUSED __attribute__((unused))

/* Room for the longest scenario and the longest line any test logs. */
#define LOG_CAPACITY 96
#define LOG_ENTRY_SIZE 80

static struct {
    char entry[LOG_CAPACITY][LOG_ENTRY_SIZE];
    size_t len;
    int64_t origin_ns; /* the loop clock when the scenario began */
} events;

/* Virtual nanoseconds since the scenario began. */
EVENT_LOG_UNUSED
static int64_t elapsed_ns(void)
{
    return fiber_now_ns() - events.origin_ns;
}

/* The loop-clock deadline seconds from now (which may be negative). */
EVENT_LOG_UNUSED
static int64_t deadline_in(double seconds)
{
    return fiber_now_ns() + (int64_t)(seconds * (double)SEC);
}

/* "ok", the name of a return code the tests expect, or the number.  A few
 * buffers rotate so that one log line may name several codes. */
EVENT_LOG_UNUSED
static const char *rc_name(int rc)
{
    static char other[4][16];
    static unsigned next_other;

    switch (rc) {
    case 0: return "ok";
    case -ECANCELED: return "ECANCELED";
    case -ETIMEDOUT: return "ETIMEDOUT";
    case -EIO: return "EIO";
    case -EPIPE: return "EPIPE";
    case -ECHILD: return "ECHILD";
    case -EBUSY: return "EBUSY";
    case -EAGAIN: return "EAGAIN";
    case -EPERM: return "EPERM";
    case -EINVAL: return "EINVAL";
    }
    char *buf = other[next_other++ % 4];
    snprintf(buf, sizeof(other[0]), "%d", rc);
    return buf;
}

/* Append "<text> @<elapsed>" to the log: in ms when exact, else in ns. */
static void log_event(const char *format, ...)
    __attribute__((format(printf, 1, 2), unused));

static void log_event(const char *format, ...)
{
    int64_t t = elapsed_ns();
    bool whole_ms = t % MS == 0;
    va_list ap;

    if (events.len == LOG_CAPACITY) {
        check_failed(__FILE__, __LINE__, "event log full");
        return;
    }
    char *entry = events.entry[events.len++];
    va_start(ap, format);
    int text_len = vsnprintf(entry, LOG_ENTRY_SIZE, format, ap);
    va_end(ap);
    int time_len = -1;
    if (text_len >= 0 && text_len < LOG_ENTRY_SIZE)
        time_len = snprintf(entry + text_len,
                            (size_t)(LOG_ENTRY_SIZE - text_len),
                            " @%" PRId64 "%s", whole_ms ? t / MS : t,
                            whole_ms ? "ms" : "ns");
    if (time_len < 0 || time_len >= LOG_ENTRY_SIZE - text_len)
        check_failed(__FILE__, __LINE__, "event too long for the log");
}

EVENT_LOG_UNUSED
static void assert_events(const char *const expected[], size_t n)
{
    bool same = events.len == n;

    for (size_t i = 0; same && i < n; i++)
        same = strcmp(events.entry[i], expected[i]) == 0;
    if (same)
        return;
    print_error("expected events:\n");
    for (size_t i = 0; i < n; i++)
        print_error("  %s\n", expected[i]);
    print_error("actual events:\n");
    for (size_t i = 0; i < events.len; i++)
        print_error("  %s\n", events.entry[i]);
    fail_msg("the event log differs from the expected sequence");
}

#define ASSERT_EVENTS(...)                                                    \
    assert_events((const char *const[]){__VA_ARGS__},                         \
                  sizeof((const char *const[]){__VA_ARGS__}) /                \
                      sizeof(const char *))

/* ---- running scenarios -------------------------------------------------- */

struct scenario {
    fiber_fn fn;
    void *arg;
};

static void *scenario_main(void *arg)
{
    struct scenario *s = arg;

    events.origin_ns = fiber_now_ns();
    return s->fn(s->arg);
}

/* Run fn(arg) as the main fiber with opts; returns what fiber_run
 * returned.  Checks failed inside fibers are only counted, for the tests
 * that expect some to fail. */
EVENT_LOG_UNUSED
static int run_loop_unchecked(fiber_fn fn, void *arg,
                              const fiber_options_t *opts, void **result,
                              int *status)
{
    struct scenario s = {fn, arg};

    events.len = 0;
    failed_checks = 0;
    return fiber_run(scenario_main, &s, opts, result, status);
}

/* As run_loop_unchecked, then fail the test if a check inside a fiber
 * failed. */
EVENT_LOG_UNUSED
static int run_loop(fiber_fn fn, void *arg, const fiber_options_t *opts,
                    void **result, int *status)
{
    int rc = run_loop_unchecked(fn, arg, opts, result, status);

    if (failed_checks > 0)
        fail_msg("%d check(s) failed inside fibers", failed_checks);
    return rc;
}

static const fiber_options_t virtual_clock_options = {
    .clock = FIBER_CLOCK_VIRTUAL};

/* Run fn(arg) as the main fiber on the virtual clock, counting failed
 * checks only. */
EVENT_LOG_UNUSED
static int run_virtual_unchecked(fiber_fn fn, void *arg, void **result,
                                 int *status)
{
    return run_loop_unchecked(fn, arg, &virtual_clock_options, result,
                              status);
}

/* Run fn(arg) as the main fiber on the virtual clock, then fail the test
 * if a check inside a fiber failed.  Returns what fiber_run returned. */
EVENT_LOG_UNUSED
static int run_virtual(fiber_fn fn, void *arg, void **result, int *status)
{
    return run_loop(fn, arg, &virtual_clock_options, result, status);
}

/* Run fn(arg) on the virtual clock with stderr captured into report, for
 * scenarios that end in a deadlock report; fail the test, showing the
 * report, if a check inside a fiber failed.  Returns what fiber_run
 * returned. */
EVENT_LOG_UNUSED
static int run_virtual_capturing_stderr(fiber_fn fn, void *arg, int *status,
                                        char *report, size_t size)
{
    struct captured_stderr captured;

    capture_stderr(&captured);
    int rc = run_virtual_unchecked(fn, arg, NULL, status);
    release_stderr(&captured, report, size);
    if (failed_checks > 0)
        fail_msg("%d check(s) failed inside fibers:\n%s", failed_checks,
                 report);
    return rc;
}

/* Most scenarios expect the loop and main to end normally. */
EVENT_LOG_UNUSED
static void run_scenario(fiber_fn fn, void *arg)
{
    int status = -1;

    assert_int_equal(run_virtual(fn, arg, NULL, &status), 0);
    assert_int_equal(status, 0);
}

/* ---- building blocks ---------------------------------------------------- */

/* A worker: it logs its start, sleeps unless told not to block, logs what
 * the sleep returned, then returns its result or fails. */
struct job {
    const char *label;
    double sleep_s;
    bool no_block;
    intptr_t result;
    int fail;           /* a negative errno to fail with, or 0 */
    int sleep_rc;       /* what its sleep returned */
    int64_t woke_at_ns; /* elapsed time when its sleep returned */
};

EVENT_LOG_UNUSED
static void *run_job(void *arg)
{
    struct job *job = arg;

    log_event("%s start", job->label);
    if (!job->no_block) {
        job->sleep_rc = fiber_sleep(job->sleep_s);
        job->woke_at_ns = elapsed_ns();
        log_event("%s slept %s", job->label, rc_name(job->sleep_rc));
    }
    if (job->fail)
        return fiber_fail(job->fail);
    return RESULT(job->result);
}

EVENT_LOG_UNUSED
static fiber_task_t *spawn_named(fiber_fn fn, void *arg, const char *name)
{
    fiber_task_t *task = NULL;
    fiber_attr_t attr = {.name = name};

    CHECK_EQ(fiber_spawn(&task, fn, arg, &attr), 0);
    return task;
}

EVENT_LOG_UNUSED
static fiber_task_t *spawn_job(struct job *job)
{
    return spawn_named(run_job, job, job->label);
}

/* Spawn every job of the array, handles in the same order. */
EVENT_LOG_UNUSED
static void spawn_jobs(struct job jobs[], fiber_task_t *tasks[], size_t n)
{
    for (size_t i = 0; i < n; i++)
        tasks[i] = spawn_job(&jobs[i]);
}

/* Await a task and check it returned result with status. */
EVENT_LOG_UNUSED
static void await_expecting(fiber_task_t *task, int expected_rc,
                            intptr_t expected_result, int expected_status)
{
    void *result = NULL;
    int status = 1;

    CHECK_EQ(fiber_await(task, &result, &status), expected_rc);
    CHECK_PTR(result, RESULT(expected_result));
    CHECK_EQ(status, expected_status);
}

/* The most tasks GATHER_EXPECTING takes at once. */
#define GATHER_MAX 8

/* Gather the n tasks and check that each ended with its expected status;
 * file and line name the caller in a failed check. */
EVENT_LOG_UNUSED
static void gather_expecting_at(fiber_task_t *const tasks[], size_t n,
                                const int expected[], const char *file,
                                int line)
{
    int statuses[GATHER_MAX];
    char expr[32];

    if (n > GATHER_MAX) {
        check_failed(file, line, "too many tasks to gather");
        return;
    }
    check_equal(fiber_gather(tasks, n, NULL, statuses), 0,
                "fiber_gather(tasks, n, NULL, statuses)", file, line);
    for (size_t i = 0; i < n; i++) {
        snprintf(expr, sizeof(expr), "statuses[%zu]", i);
        check_equal(statuses[i], expected[i], expr, file, line);
    }
}

/* GATHER_EXPECTING(tasks, status0, status1, ...): one status per task. */
#define GATHER_EXPECTING(tasks, ...)                                          \
    gather_expecting_at((tasks),                                              \
                        sizeof((const int[]){__VA_ARGS__}) / sizeof(int),     \
                        (const int[]){__VA_ARGS__}, __FILE__, __LINE__)

/* Await a task and return its status (1 if the await itself failed). */
EVENT_LOG_UNUSED
static int await_status(fiber_task_t *task)
{
    int status = 1;

    CHECK_EQ(fiber_await(task, NULL, &status), 0);
    return status;
}

#endif
