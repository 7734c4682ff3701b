/*
 * tap_ok.h - TAP lines for the integration test programs, which run real
 * clients against real servers and so are plain programs, not cmocka
 * suites: ok() prints one numbered result, wall() reads the real clock.
 */
#ifndef FIBER_TESTS_TAP_OK_H
#define FIBER_TESTS_TAP_OK_H

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

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

#endif
