/*
 * event_log.h - an event log with virtual times, for the tests of
 * structured concurrency (test_scope, test_group, test_waitset).
 *
 * Each scenario runs as the main fiber of a loop on the virtual clock.
 * Fibers append "<text> @<elapsed>" lines with log_event, and the test
 * compares the whole log with the exact sequence expected (ASSERT_EVENTS).
 * Checks inside fibers use fiber_check.h; run_scenario fails the test
 * once fiber_run has returned if any failed.
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

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* A task result that carries a small number. */
#define RESULT(n) ((void *)(intptr_t)(n))

#define EVENT_LOG_UNUSED __attribute__((unused))

#define LOG_CAPACITY 64
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

/* Run fn(arg) as the main fiber on the virtual clock, then fail the test
 * if a check inside a fiber failed.  Returns what fiber_run returned. */
EVENT_LOG_UNUSED
static int run_virtual(fiber_fn fn, void *arg, void **result, int *status)
{
    const fiber_options_t virtual_clock = {.clock = FIBER_CLOCK_VIRTUAL};
    struct scenario s = {fn, arg};

    events.len = 0;
    failed_checks = 0;
    int rc = fiber_run(scenario_main, &s, &virtual_clock, result, status);
    if (failed_checks > 0)
        fail_msg("%d check(s) failed inside fibers", failed_checks);
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
};

EVENT_LOG_UNUSED
static void *run_job(void *arg)
{
    struct job *job = arg;

    log_event("%s start", job->label);
    if (!job->no_block) {
        job->sleep_rc = fiber_sleep(job->sleep_s);
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

#endif
