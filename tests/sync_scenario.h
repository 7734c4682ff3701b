/*
 * sync_scenario.h - what the coordination tests (test_sync.c,
 * test_queue.c) share: scenarios run as the main fiber of a loop on the
 * virtual clock, an event log stamped with virtual times that each test
 * compares with the exact sequence expected, spawning named fibers, and
 * capturing stderr for deadlock reports.
 *
 * Include after <cmocka.h>, "fiber.h" and "fiber_check.h".
 */
#ifndef SYNC_SCENARIO_H
#define SYNC_SCENARIO_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

#define SCENARIO_UNUSED __attribute__((unused))

/* ---- the event log ------------------------------------------------------ */

#define LOG_CAPACITY 96
#define LOG_ENTRY_SIZE 64

static struct {
    char entry[LOG_CAPACITY][LOG_ENTRY_SIZE];
    size_t len;
    int64_t origin_ns; /* the loop clock when the scenario began */
} events;

/* Virtual nanoseconds since the scenario began. */
SCENARIO_UNUSED
static int64_t elapsed_ns(void)
{
    return fiber_now_ns() - events.origin_ns;
}

/* The loop-clock deadline seconds from now (which may be negative). */
SCENARIO_UNUSED
static int64_t deadline_in(double seconds)
{
    return fiber_now_ns() + (int64_t)(seconds * (double)SEC);
}

/* "ok", the name of a return code the tests expect, or the number.  A few
 * buffers rotate so that one log line may name several codes. */
SCENARIO_UNUSED
static const char *rc_name(int rc)
{
    static char other[4][16];
    static unsigned next_other;

    switch (rc) {
    case 0: return "ok";
    case -ECANCELED: return "ECANCELED";
    case -ETIMEDOUT: return "ETIMEDOUT";
    case -EPIPE: return "EPIPE";
    case -EAGAIN: return "EAGAIN";
    case -EBUSY: return "EBUSY";
    case -EPERM: return "EPERM";
    case -EINVAL: return "EINVAL";
    }
    char *buf = other[next_other++ % 4];
    snprintf(buf, sizeof(other[0]), "%d", rc);
    return buf;
}

/* Append "<text> @<elapsed>" to the log: in ms when exact, else in ns. */
static void log_event(const char *format, ...)
    __attribute__((format(printf, 1, 2))) SCENARIO_UNUSED;

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

SCENARIO_UNUSED
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

/* Run fn(arg) as the main fiber on the virtual clock; returns what
 * fiber_run returned.  Checks failed inside fibers are counted. */
SCENARIO_UNUSED
static int run_virtual_unchecked(fiber_fn fn, void *arg, void **result,
                                 int *status)
{
    const fiber_options_t virtual_clock = {.clock = FIBER_CLOCK_VIRTUAL};
    struct scenario s = {fn, arg};

    events.len = 0;
    failed_checks = 0;
    return fiber_run(scenario_main, &s, &virtual_clock, result, status);
}

/* Run a scenario that must end normally, with main's status 0, and fail
 * the test if a check inside a fiber failed. */
SCENARIO_UNUSED
static void run_scenario(fiber_fn fn, void *arg)
{
    int status = -1;
    int rc = run_virtual_unchecked(fn, arg, NULL, &status);

    if (failed_checks > 0)
        fail_msg("%d check(s) failed inside fibers", failed_checks);
    assert_int_equal(rc, 0);
    assert_int_equal(status, 0);
}

/* ---- fibers -------------------------------------------------------------- */

SCENARIO_UNUSED
static fiber_task_t *spawn_named(fiber_fn fn, void *arg, const char *name)
{
    fiber_task_t *task = NULL;
    fiber_attr_t attr = {.name = name};

    CHECK_EQ(fiber_spawn(&task, fn, arg, &attr), 0);
    return task;
}

/* Await a task and return its status (1 if the await itself failed). */
SCENARIO_UNUSED
static int await_status(fiber_task_t *task)
{
    int status = 1;

    CHECK_EQ(fiber_await(task, NULL, &status), 0);
    return status;
}

/* ---- capturing stderr --------------------------------------------------- */

struct captured_stderr {
    FILE *file;
    int saved_fd;
};

SCENARIO_UNUSED
static void capture_stderr(struct captured_stderr *c)
{
    fflush(stderr);
    c->file = tmpfile();
    assert_non_null(c->file);
    c->saved_fd = dup(STDERR_FILENO);
    assert_true(c->saved_fd >= 0);
    assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

/* Restore stderr and read what was written to it into text. */
SCENARIO_UNUSED
static void release_stderr(struct captured_stderr *c, char *text, size_t size)
{
    fflush(stderr);
    dup2(c->saved_fd, STDERR_FILENO);
    close(c->saved_fd);
    rewind(c->file);
    size_t n = fread(text, 1, size - 1, c->file);
    text[n] = '\0';
    fclose(c->file);
}

#define assert_contains(text, part)                                           \
    do {                                                                      \
        if (!strstr((text), (part)))                                          \
            fail_msg("\"%s\" does not contain \"%s\"", (text), (part));       \
    } while (0)

/* Fail unless one line of report names fiber (as "'name'") and says
 * what it waits on, whatever else the line holds. */
SCENARIO_UNUSED
static void assert_reported_waiting(const char *report, const char *fiber,
                                    const char *what)
{
    char name[64], wait[80];

    snprintf(name, sizeof(name), "'%s'", fiber);
    snprintf(wait, sizeof(wait), "waiting on %s", what);
    for (const char *line = report; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *n = strstr(line, name), *w = strstr(line, wait);
        if (n && w && (size_t)(n - line) < len && (size_t)(w - line) < len)
            return;
        line += len + (end ? 1 : 0);
    }
    fail_msg("no line of the report says fiber %s is %s:\n%s", name, wait,
             report);
}

#endif
