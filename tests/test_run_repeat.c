/*
 * test_run_repeat.c - fiber_run again and again in one process.
 *
 * Each run spawns children, leaves some unawaited, detaches others and
 * leaves sleepers behind for the loop to cancel.  A leak grows with the
 * number of runs, so the heap in use must not grow at all from the
 * thousandth run to the two-thousandth, and the number of mappings must
 * stay put.  CI also runs this under Valgrind.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <stdio.h>

#include "fiber.h"
#include "proc_maps.h"

static void *sleeper(void *arg)
{
    (void)arg;
    /* Cancelled by the loop when main returns. */
    return fiber_sleep(1000.0) == -ECANCELED ? NULL : (void *)1;
}

static void *quick(void *arg)
{
    fiber_yield();
    return arg;
}

static void *busy_main(void *arg)
{
    fiber_task_t *t;
    int *runs = arg;

    for (int i = 0; i < 5; i++) {
        assert_int_equal(fiber_spawn(&t, sleeper, NULL, NULL), 0);
        assert_int_equal(fiber_spawn(&t, quick, NULL, NULL), 0);
        assert_int_equal(fiber_detach(t), 0);
        assert_int_equal(fiber_spawn(&t, quick, runs, NULL), 0);
        void *result = NULL;
        assert_int_equal(fiber_await(t, &result, NULL), 0);
        assert_ptr_equal(result, runs);
    }
    /* Never awaited: freed when the loop ends. */
    assert_int_equal(fiber_spawn(&t, quick, NULL, NULL), 0);
    (*runs)++;
    return runs;
}

static void run_once(int *runs)
{
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL};
    void *result = NULL;
    int status = -1;

    assert_int_equal(fiber_run(busy_main, runs, &opts, &result, &status), 0);
    assert_int_equal(status, 0);
    assert_ptr_equal(result, runs);
}

static void test_thousand_runs_leak_nothing(void **state)
{
    (void)state;
    int runs = 0;

    /* Warm up stdio and malloc's arenas; the first fopen allocates for
     * good, so mappings are counted after it. */
    for (int i = 0; i < 10; i++)
        run_once(&runs);
    size_t maps_before = count_mappings();

    /* glibc keeps up to seven freed chunks of each size in a cache that
     * mallinfo2 counts as in use, and may still be filling it for a few
     * runs after the warm-up: that growth is bounded, a leak's is not. */
    for (int i = 0; i < 1000; i++)
        run_once(&runs);
    size_t heap_before = mallinfo2().uordblks;
    for (int i = 0; i < 1000; i++)
        run_once(&runs);

    assert_int_equal(runs, 2010);
    assert_int_equal(mallinfo2().uordblks, heap_before);
    /* A leaked chunk per run would add a thousand mappings; allow the few
     * that Valgrind or the C library may add on their own. */
    assert_true(count_mappings() <= maps_before + 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thousand_runs_leak_nothing),
    };
    return cmocka_run_group_tests_name("run_repeat", tests, NULL, NULL);
}
