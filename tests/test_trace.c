/*
 * test_trace.c - recording loops into a trace: the text timeline, exact
 * to the column under the virtual clock, and the Chrome trace JSON's
 * tracks, slices and arrows.  (tests/trace.sh checks with Python that
 * the files parse as JSON.)
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fiber.h"
#include "fiber_check.h"

/* " (function)", as reports name a fiber's entry function: static
 * functions have names only where libunwind reads the symbol table. */
#ifdef HAVE_LIBUNWIND
#define FN(name) " (" name ")"
#else
#define FN(name)
#endif

static size_t count_occurrences(const char *text, const char *part)
{
    size_t n = 0;

    for (const char *p = strstr(text, part); p; p = strstr(p + 1, part))
        n++;
    return n;
}

/* Write what trace holds with write, into a string the caller frees. */
static char *written(const fiber_trace_t *trace, unsigned width, bool json)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);

    assert_non_null(out);
    if (json)
        assert_int_equal(fiber_trace_write_json(trace, out), 0);
    else
        assert_int_equal(fiber_trace_write_timeline(trace, out, width), 0);
    fclose(out);
    return text;
}

/* The row of the timeline whose label starts with prefix, from its first
 * cell to its last, into row. */
static const char *row_of(const char *timeline, const char *prefix, char *row,
                          size_t size)
{
    const char *line = strstr(timeline, prefix);

    row[0] = '\0';
    if (!line)
        return row;
    const char *first = strchr(line, '|');
    const char *last = first ? strchr(first + 1, '|') : NULL;
    if (first && last)
        snprintf(row, size, "%.*s", (int)(last - first - 1), first + 1);
    return row;
}

static void *sleep_seconds(void *arg)
{
    fiber_sleep((double)(intptr_t)arg);
    return NULL;
}

/* Three sleepers of 1, 2 and 3 s, gathered. */
static void *three_sleepers(void *arg)
{
    fiber_task_t *tasks[3];
    (void)arg;

    for (intptr_t i = 0; i < 3; i++)
        CHECK_EQ(fiber_spawn(&tasks[i], sleep_seconds, (void *)(i + 1), NULL), 0);
    CHECK_EQ(fiber_gather(tasks, 3, NULL, NULL), 0);
    return NULL;
}

static void run_recorded(fiber_trace_t *trace, fiber_fn fn, void *arg)
{
    fiber_debug_options_t debug = {.trace = trace};
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &debug};
    int status = -1;

    failed_checks = 0;
    assert_int_equal(fiber_run(fn, arg, &opts, NULL, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(failed_checks, 0);
}

static void test_timeline_shows_sleepers_side_by_side(void **state)
{
    fiber_trace_t *trace;
    char row[128];
    (void)state;

    assert_int_equal(fiber_trace_new(&trace), 0);
    run_recorded(trace, three_sleepers, NULL);
    char *timeline = written(trace, 30, false);

    /* 3 s over 30 columns: one column is 0.1 s.  Each fiber runs (#) when
     * it starts and when it wakes; main awaits (.) each in turn. */
    assert_non_null(strstr(timeline,
        "timeline of loop 1 (virtual clock): 3.000 s, one column is 100 ms\n"));
    assert_string_equal(row_of(timeline, "1 'main'" FN("three_sleepers"), row, sizeof(row)),
                        "#.........#.........#........#");
    assert_string_equal(row_of(timeline, "2 'Task-2'" FN("sleep_seconds"), row, sizeof(row)),
                        "#---------#                   ");
    assert_string_equal(row_of(timeline, "3 'Task-3'" FN("sleep_seconds"), row, sizeof(row)),
                        "#-------------------#         ");
    assert_string_equal(row_of(timeline, "4 'Task-4'" FN("sleep_seconds"), row, sizeof(row)),
                        "#----------------------------#");
    assert_non_null(strstr(timeline, "# ran  ~ ready  - sleeping  . awaiting or waiting\n"));
    free(timeline);
    fiber_trace_free(trace);
}

static void test_a_trace_holds_every_loop_run_with_it(void **state)
{
    fiber_trace_t *trace;
    (void)state;

    assert_int_equal(fiber_trace_new(&trace), 0);
    run_recorded(trace, three_sleepers, NULL);
    run_recorded(trace, sleep_seconds, (void *)(intptr_t)2);
    char *timeline = written(trace, 0, false);

    assert_non_null(strstr(timeline, "timeline of loop 1 (virtual clock): 3.000 s"));
    assert_non_null(strstr(timeline, "timeline of loop 2 (virtual clock): 2.000 s"));
    assert_int_equal(count_occurrences(timeline, "|\n"), 4 + 1);
    /* The default width: 64 columns. */
    char row[128];
    assert_int_equal(strlen(row_of(strstr(timeline, "loop 2"), "1 'main'", row, sizeof(row))), 64);
    free(timeline);
    fiber_trace_free(trace);
}

static void test_json_has_a_track_per_fiber_and_arrows(void **state)
{
    fiber_trace_t *trace;
    (void)state;

    assert_int_equal(fiber_trace_new(&trace), 0);
    run_recorded(trace, three_sleepers, NULL);
    char *json = written(trace, 0, true);

    assert_true(strncmp(json, "{\"traceEvents\":[\n", 17) == 0);
    assert_non_null(strstr(json, "\n],\"displayTimeUnit\":\"ms\"}\n"));
    assert_non_null(strstr(json, "\"args\":{\"name\":\"loop 1 (virtual clock)\"}"));
    /* A named track per fiber. */
    assert_int_equal(count_occurrences(json, "\"thread_name\""), 4);
    assert_non_null(strstr(json, "\"args\":{\"name\":\"1 'main'" FN("three_sleepers") "\"}"));
    assert_non_null(strstr(json, "\"args\":{\"name\":\"4 'Task-4'" FN("sleep_seconds") "\"}"));
    /* Sleeps with their length: Task-4 slept the full 3 s. */
    assert_non_null(strstr(json, "\"name\":\"sleep\",\"cat\":\"sleep\",\"ph\":\"X\","
                                 "\"pid\":1,\"tid\":4,\"ts\":0.000,\"dur\":3000000.000}"));
    assert_non_null(strstr(json, "\"name\":\"await fiber 2\""));
    /* An arrow from each spawn and from each end to its awaiter. */
    assert_int_equal(count_occurrences(json, "\"name\":\"spawn\",\"cat\":\"flow\",\"ph\":\"s\""), 3);
    assert_int_equal(count_occurrences(json, "\"name\":\"spawn\",\"cat\":\"flow\",\"ph\":\"f\""), 3);
    assert_int_equal(count_occurrences(json, "\"name\":\"await\",\"cat\":\"flow\",\"ph\":\"s\""), 3);
    assert_int_equal(count_occurrences(json, "\"name\":\"await\",\"cat\":\"flow\",\"ph\":\"f\""), 3);
    /* Each sleeper ran when it started and when it woke; main also woke
     * at each of their ends. */
    assert_int_equal(count_occurrences(json, "\"name\":\"run\""), 3 * 2 + 4);
    free(json);
    fiber_trace_free(trace);
}

static void test_trace_argument_errors(void **state)
{
    fiber_trace_t *trace;
    (void)state;

    assert_int_equal(fiber_trace_new(NULL), -EINVAL);
    assert_int_equal(fiber_trace_new(&trace), 0);
    assert_int_equal(fiber_trace_write_timeline(trace, stdout, 7), -EINVAL);
    assert_int_equal(fiber_trace_write_timeline(NULL, stdout, 0), -EINVAL);
    assert_int_equal(fiber_trace_write_timeline(trace, NULL, 0), -EINVAL);
    assert_int_equal(fiber_trace_write_json(NULL, stdout), -EINVAL);
    assert_int_equal(fiber_trace_write_json(trace, NULL), -EINVAL);
    /* An empty trace is still a valid, empty trace. */
    char *json = written(trace, 0, true);
    assert_string_equal(json, "{\"traceEvents\":[\n\n],\"displayTimeUnit\":\"ms\"}\n");
    free(json);
    fiber_trace_free(trace);
    fiber_trace_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeline_shows_sleepers_side_by_side),
        cmocka_unit_test(test_a_trace_holds_every_loop_run_with_it),
        cmocka_unit_test(test_json_has_a_track_per_fiber_and_arrows),
        cmocka_unit_test(test_trace_argument_errors),
    };

    return cmocka_run_group_tests_name("trace", tests, NULL, NULL);
}
