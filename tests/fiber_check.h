/*
 * fiber_check.h - checks that are safe to make inside fibers.
 *
 * A cmocka assertion failing inside a fiber would longjmp off the fiber's
 * stack and leave the loop half run, breaking every later test.  So fibers
 * only count and print failed checks with these, and the test fails once
 * fiber_run has returned (assert_int_equal(failed_checks, 0)).
 */
#ifndef FIBER_CHECK_H
#define FIBER_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FIBER_CHECK_UNUSED __attribute__((unused))

static int failed_checks;

FIBER_CHECK_UNUSED
static void check_failed(const char *file, int line, const char *what)
{
    failed_checks++;
    print_error("%s:%d: check failed: %s\n", file, line, what);
}

FIBER_CHECK_UNUSED
static void check_equal(intmax_t actual, intmax_t expected, const char *expr,
                        const char *file, int line)
{
    char what[256];

    if (actual == expected)
        return;
    snprintf(what, sizeof(what), "%s is %jd, expected %jd", expr, actual,
             expected);
    check_failed(file, line, what);
}

FIBER_CHECK_UNUSED
static void check_contains(const char *text, const char *part,
                           const char *file, int line)
{
    char what[256];

    if (strstr(text, part))
        return;
    snprintf(what, sizeof(what), "\"%s\" does not contain \"%s\"", text, part);
    check_failed(file, line, what);
}

#define CHECK_EQ(actual, expected)                                            \
    check_equal((intmax_t)(actual), (intmax_t)(expected), #actual, __FILE__,  \
                __LINE__)
#define CHECK_PTR(actual, expected)                                           \
    CHECK_EQ((intptr_t)(actual), (intptr_t)(expected))
#define CHECK(cond) CHECK_EQ(!!(cond), 1)
#define CHECK_CONTAINS(text, part)                                            \
    check_contains((text), (part), __FILE__, __LINE__)

#endif
