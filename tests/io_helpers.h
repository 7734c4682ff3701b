/*
 * io_helpers.h - what the I/O tests share: running a scenario on a loop
 * and failing the test when a check inside a fiber failed, times relative
 * to the scenario's start, spawning named fibers, and counting what a
 * /proc directory lists.
 *
 * Include after <cmocka.h> and "fiber_check.h".
 */
#ifndef IO_HELPERS_H
#define IO_HELPERS_H

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>

#include "fiber.h"

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* The loop clock when the running scenario began. */
static int64_t scenario_origin_ns;

struct scenario {
    fiber_fn fn;
    void *arg;
};

static void *scenario_main(void *arg)
{
    struct scenario *s = arg;

    scenario_origin_ns = fiber_now_ns();
    return s->fn(s->arg);
}

/* Loop-clock nanoseconds since the scenario began. */
FIBER_CHECK_UNUSED
static int64_t elapsed_ns(void)
{
    return fiber_now_ns() - scenario_origin_ns;
}

/* Run fn(arg) as the main fiber on the given clock; fail the test if it
 * or the loop failed, or if a check inside a fiber failed. */
static void run_on(int clock, fiber_fn fn, void *arg)
{
    const fiber_options_t opts = {.clock = clock};
    struct scenario s = {fn, arg};
    int status = -1;

    failed_checks = 0;
    int rc = fiber_run(scenario_main, &s, &opts, NULL, &status);
    assert_int_equal(failed_checks, 0);
    assert_int_equal(rc, 0);
    assert_int_equal(status, 0);
}

FIBER_CHECK_UNUSED
static void run_virtual(fiber_fn fn, void *arg)
{
    run_on(FIBER_CLOCK_VIRTUAL, fn, arg);
}

FIBER_CHECK_UNUSED
static void run_real(fiber_fn fn, void *arg)
{
    run_on(FIBER_CLOCK_REAL, fn, arg);
}

/* Spawn fn(arg); a failure counts as a failed check and gives NULL. */
FIBER_CHECK_UNUSED
static fiber_task_t *spawn(fiber_fn fn, void *arg)
{
    fiber_task_t *task = NULL;

    int rc = fiber_spawn(&task, fn, arg, NULL);
    CHECK_EQ(rc, 0);
    return rc == 0 ? task : NULL;
}

/* Await task and return its status (a failed await counts as a failed
 * check). */
FIBER_CHECK_UNUSED
static int await_status(fiber_task_t *task)
{
    int status = -1;

    if (!task)
        return -1;
    CHECK_EQ(fiber_await(task, NULL, &status), 0);
    return status;
}

/* How many entries directory path lists, "." and ".." left out, or -1 if
 * it cannot be opened: under /proc, a count of the process's descriptors
 * or threads. */
FIBER_CHECK_UNUSED
static int count_dir_entries(const char *path)
{
    DIR *dir = opendir(path);
    int n = 0;

    if (!dir)
        return -1;
    for (struct dirent *d; (d = readdir(dir));)
        n += d->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* True when the tests run under Valgrind or a sanitizer. */
FIBER_CHECK_UNUSED
static int under_tool(void)
{
    return getenv("FIBER_TEST_UNDER_TOOL") != NULL;
}

#endif
