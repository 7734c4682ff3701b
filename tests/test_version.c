/*
 * test_version.c - the version macros of fiber-version.h and the version
 * the library reports.
 *
 * What must hold: FIBER_VERSION is configure.ac's version; the numbers
 * are its parts, FIBER_VERSION_NUMBER combines them and works in #if;
 * FIBER_VERSION_AT_LEAST compares; fiber_version and fiber_version_number
 * of the library linked in give what the headers say.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fiber.h"

#if !defined(FIBER_VERSION_NUMBER) || FIBER_VERSION_NUMBER < 100
#error "FIBER_VERSION_NUMBER must be usable in #if, and 0.1.0 is 100"
#endif

static void test_version_string_is_configure_version(void **state)
{
    (void)state;
    assert_string_equal(FIBER_VERSION, PACKAGE_VERSION);
}

static void test_version_parts_make_the_string(void **state)
{
    char expected[64];

    (void)state;
    snprintf(expected, sizeof expected, "%d.%d.%d", FIBER_VERSION_MAJOR,
             FIBER_VERSION_MINOR, FIBER_VERSION_PATCH);
    assert_string_equal(FIBER_VERSION, expected);
}

static void test_version_number_combines_the_parts(void **state)
{
    (void)state;
    assert_int_equal(FIBER_VERSION_NUMBER, FIBER_VERSION_MAJOR * 10000 +
                                               FIBER_VERSION_MINOR * 100 +
                                               FIBER_VERSION_PATCH);
    assert_true(FIBER_VERSION_MINOR < 100 && FIBER_VERSION_PATCH < 100);
}

static void test_version_at_least_compares(void **state)
{
    (void)state;
    assert_true(FIBER_VERSION_AT_LEAST(0, 0, 0));
    assert_true(FIBER_VERSION_AT_LEAST(FIBER_VERSION_MAJOR, FIBER_VERSION_MINOR,
                                       FIBER_VERSION_PATCH));
    assert_false(FIBER_VERSION_AT_LEAST(FIBER_VERSION_MAJOR, FIBER_VERSION_MINOR,
                                        FIBER_VERSION_PATCH + 1));
    assert_false(FIBER_VERSION_AT_LEAST(FIBER_VERSION_MAJOR, FIBER_VERSION_MINOR + 1, 0));
    assert_false(FIBER_VERSION_AT_LEAST(FIBER_VERSION_MAJOR + 1, 0, 0));
}

static void test_library_reports_the_headers_version(void **state)
{
    (void)state;
    assert_non_null(fiber_version());
    assert_string_equal(fiber_version(), FIBER_VERSION);
    assert_int_equal(fiber_version_number(), FIBER_VERSION_NUMBER);
}

static void *report_in_a_fiber(void *arg)
{
    (void)arg;
    return (void *)fiber_version();
}

static void test_library_version_is_the_same_inside_a_fiber(void **state)
{
    void *result = NULL;

    (void)state;
    assert_int_equal(fiber_run(report_in_a_fiber, NULL, NULL, &result, NULL), 0);
    assert_string_equal((const char *)result, FIBER_VERSION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_string_is_configure_version),
        cmocka_unit_test(test_version_parts_make_the_string),
        cmocka_unit_test(test_version_number_combines_the_parts),
        cmocka_unit_test(test_version_at_least_compares),
        cmocka_unit_test(test_library_reports_the_headers_version),
        cmocka_unit_test(test_library_version_is_the_same_inside_a_fiber),
    };

    return cmocka_run_group_tests_name("version", tests, NULL, NULL);
}
