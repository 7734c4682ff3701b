/*
 * tap_ok.h - TAP lines for the integration test programs, which run real
 * clients against real servers and so are plain programs, not cmocka
 * suites: ok() prints one numbered result, wall() reads the real clock,
 * run_each_at_once() runs a client function in many fibers at once.
 */
#ifndef FIBER_TESTS_TAP_OK_H
#define FIBER_TESTS_TAP_OK_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fiber.h"

static int test_no, failures;

static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ok(int cond, const char *fmt, ...)
{
    va_list ap;

    printf("%s %d - ", cond ? "ok" : "not ok", ++test_no);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    if (!cond)
        failures++;
}

/* Seconds on the monotonic clock: these tests time real waits. */
static double wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In a fiber: fn((void *)i) for i from 0 to n - 1, each in a fiber of its
 * own (with attr, or NULL), all at once.  Returns how many ended with a
 * status other than 0, the wall time they took in *took; exits 1 when
 * the fibers cannot be started. */
static inline int run_each_at_once(fiber_fn fn, int n, const fiber_attr_t *attr,
                                   double *took)
{
    fiber_task_t **tasks = calloc((size_t)n, sizeof(*tasks));
    int *statuses = calloc((size_t)n, sizeof(*statuses));
    int bad = 0;
    double t0 = wall();

    if (!tasks || !statuses)
        exit(1);
    for (int i = 0; i < n; i++)
        if (fiber_spawn(&tasks[i], fn, (void *)(intptr_t)i, attr) < 0)
            exit(1);
    fiber_gather(tasks, (size_t)n, NULL, statuses);
    *took = wall() - t0;
    for (int i = 0; i < n; i++)
        bad += statuses[i] != 0;
    free(tasks);
    free(statuses);
    return bad;
}

#endif
