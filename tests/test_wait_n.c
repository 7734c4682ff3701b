/*
 * test_wait_n.c - the course's exercises (demo/exercises) under the
 * virtual clock: wait_random, wait_n, measure_time, task_wait_random and
 * task_wait_n.
 *
 * The virtual clock makes timing exact and a hundred thousand sleeps end at
 * once; a fixed seed makes every run draw the same delays.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "fiber.h"
#include "exercises/measure_time.h"
#include "exercises/task_wait_n.h"
#include "exercises/task_wait_random.h"
#include "exercises/wait_n.h"
#include "exercises/wait_random.h"

#define SEED 20240601u

/* One nanosecond, the resolution of the loop clock. */
#define CLOCK_RESOLUTION 1e-9

static const fiber_options_t virtual_clock = {.clock = FIBER_CLOCK_VIRTUAL};

/* Run main(arg) on a virtual-clock loop and return main's status. */
static int run_virtual(fiber_fn main, void *arg)
{
    int status = 1;

    assert_int_equal(fiber_run(main, arg, &virtual_clock, NULL, &status), 0);
    return status;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* ---- one (n, max_delay) call of wait_n or task_wait_n ----------------- */

struct delays_call {
    int (*fn)(size_t n, double max_delay, double *delays);
    size_t n;
    double max_delay;
    double *delays;
    int rc;
    int64_t elapsed_ns;  /* on the loop clock */
};

static void *run_delays_call(void *arg)
{
    struct delays_call *call = arg;
    int64_t start = fiber_now_ns();

    call->rc = call->fn(call->n, call->max_delay, call->delays);
    call->elapsed_ns = fiber_now_ns() - start;
    return NULL;
}

/* Seed with seed, then run fn(n, max_delay) on a virtual loop; returns
 * the delays, which the caller frees. */
static double *delays_seeded(int (*fn)(size_t, double, double *), size_t n,
                             double max_delay, uint64_t seed,
                             struct delays_call *call)
{
    *call = (struct delays_call){
        .fn = fn,
        .n = n,
        .max_delay = max_delay,
        .delays = calloc(n ? n : 1, sizeof(double)),
        .rc = 1,
    };
    assert_non_null(call->delays);
    fiber_seed(seed);
    assert_int_equal(run_virtual(run_delays_call, call), 0);
    return call->delays;
}

static double *delays_of(int (*fn)(size_t, double, double *), size_t n,
                         double max_delay, struct delays_call *call)
{
    return delays_seeded(fn, n, max_delay, SEED, call);
}

/* The n uniform draws the exercises make from the generator seeded with
 * seed, in ascending order. */
static double *sorted_draws(size_t n, double max_delay, uint64_t seed)
{
    double *draws = malloc((n ? n : 1) * sizeof(*draws));

    assert_non_null(draws);
    fiber_seed(seed);
    for (size_t i = 0; i < n; i++)
        draws[i] = fiber_uniform(0, max_delay);
    qsort(draws, n, sizeof(*draws), compare_doubles);
    return draws;
}

/*
 * The checks shared by wait_n and task_wait_n: n delays, each in
 * [0, max_delay], in ascending order of the exact delays asked for (two
 * delays within a nanosecond share a deadline, and still wake in the
 * order of their exact values), exactly the n delays drawn, and all of it
 * in the time of the longest delay, not of their sum.  Returns how many
 * neighbours share a nanosecond deadline.
 */
static size_t check_order_seeded(int (*fn)(size_t, double, double *),
                                 size_t n, double max_delay, uint64_t seed)
{
    struct delays_call call;
    double *delays = delays_seeded(fn, n, max_delay, seed, &call);

    assert_int_equal(call.rc, 0);
    double longest = 0;
    size_t same_ns = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(delays[i] >= 0 && delays[i] <= max_delay);
        if (delays[i] > longest)
            longest = delays[i];
        if (i > 0 && delays[i] < delays[i - 1])
            fail_msg("seed %llu: delay %zu, %.17g, woke before %.17g",
                     (unsigned long long)seed, i, delays[i - 1], delays[i]);
        if (i > 0 && ceil(delays[i] * 1e9) == ceil(delays[i - 1] * 1e9))
            same_ns++;
    }

    /* The same values as drawn: none lost, none repeated. */
    double *draws = sorted_draws(n, max_delay, seed);
    qsort(delays, n, sizeof(*delays), compare_doubles);
    assert_memory_equal(delays, draws, n * sizeof(*delays));

    /* Concurrent: the whole took the longest delay, rounded up to the
     * clock's nanosecond, not the sum of the delays. */
    assert_true((double)call.elapsed_ns >= longest * 1e9 - 1);
    assert_true((double)call.elapsed_ns <= longest * 1e9 + 1);

    free(draws);
    free(delays);
    return same_ns;
}

static void check_completion_order(int (*fn)(size_t, double, double *),
                                   size_t n, double max_delay)
{
    check_order_seeded(fn, n, max_delay, SEED);
}

/* ---- wait_random ------------------------------------------------------ */

struct wait_random_call {
    double max_delay;
    double delay;
    int rc;
    int64_t elapsed_ns;
};

static void *run_wait_random(void *arg)
{
    struct wait_random_call *call = arg;
    int64_t start = fiber_now_ns();

    call->rc = wait_random(call->max_delay, &call->delay);
    call->elapsed_ns = fiber_now_ns() - start;
    return NULL;
}

static void test_wait_random_sleeps_its_delay(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++) {
        struct wait_random_call call = {.max_delay = 10, .delay = -1};
        assert_int_equal(run_virtual(run_wait_random, &call), 0);
        assert_int_equal(call.rc, 0);
        assert_true(call.delay >= 0 && call.delay <= 10);
        /* Never shorter than the delay, and no more than a clock tick
         * longer. */
        assert_true((double)call.elapsed_ns >= call.delay * 1e9 - 1);
        assert_true((double)call.elapsed_ns <= call.delay * 1e9 + 1);
    }
}

static void test_wait_random_zero_max_delay(void **state)
{
    struct wait_random_call call = {.max_delay = 0, .delay = -1};
    (void)state;

    assert_int_equal(run_virtual(run_wait_random, &call), 0);
    assert_int_equal(call.rc, 0);
    assert_true(call.delay == 0);
    assert_int_equal(call.elapsed_ns, 0);
}

static void test_wait_random_same_seed_same_delay(void **state)
{
    struct wait_random_call first = {.max_delay = 10};
    struct wait_random_call second = {.max_delay = 10};
    struct wait_random_call other = {.max_delay = 10};
    (void)state;

    fiber_seed(SEED);
    run_virtual(run_wait_random, &first);
    fiber_seed(SEED);
    run_virtual(run_wait_random, &second);
    fiber_seed(SEED + 1);
    run_virtual(run_wait_random, &other);
    assert_true(first.delay == second.delay);
    assert_true(first.delay != other.delay);
}

/* ---- wait_n and task_wait_n ------------------------------------------- */

static void test_wait_n_100000_ascending(void **state)
{
    (void)state;
    check_completion_order(wait_n, 100000, 1);
}

/* Among 100,000 delays in one second a few pairs round to the same
 * nanosecond deadline (seed 7 gives four, 0.44733972107674447 and
 * 0.44733972193005345 among them): they must still wake in the order of
 * their exact values, for every seed. */
static void test_wait_n_exact_order_many_seeds(void **state)
{
    static const uint64_t seeds[] = {7, 1, 2, 3, 42, 20240601u};
    size_t nseeds = sizeof(seeds) / sizeof(seeds[0]);
    (void)state;

    /* Under Valgrind or a sanitizer, seed 7 alone: its ties are known. */
    if (RUNNING_ON_VALGRIND || getenv("FIBER_TEST_UNDER_TOOL"))
        nseeds = 1;
    size_t same_ns = 0;
    for (size_t i = 0; i < nseeds; i++)
        same_ns += check_order_seeded(wait_n, 100000, 1, seeds[i]);
    /* Otherwise the test would not test the ties. */
    assert_true(same_ns > 0);
}

static void test_wait_n_course_calls(void **state)
{
    (void)state;
    check_completion_order(wait_n, 5, 5);
    check_completion_order(wait_n, 10, 7);

    struct delays_call call;
    double *delays = delays_of(wait_n, 10, 0, &call);
    assert_int_equal(call.rc, 0);
    for (size_t i = 0; i < 10; i++)
        assert_true(delays[i] == 0);
    assert_int_equal(call.elapsed_ns, 0);
    free(delays);
}

static void test_task_wait_n_10000_ascending(void **state)
{
    (void)state;
    check_completion_order(task_wait_n, 10000, 1);
}

/* Both draw the delays in spawn order and wake in deadline order, so with
 * one seed they give the very same list. */
static void test_task_wait_n_matches_wait_n(void **state)
{
    struct delays_call plain, tasks;
    (void)state;

    double *a = delays_of(wait_n, 10000, 6, &plain);
    double *b = delays_of(task_wait_n, 10000, 6, &tasks);
    assert_int_equal(plain.rc, 0);
    assert_int_equal(tasks.rc, 0);
    assert_memory_equal(a, b, 10000 * sizeof(*a));
    assert_int_equal(plain.elapsed_ns, tasks.elapsed_ns);
    free(a);
    free(b);
}

static void test_n_zero(void **state)
{
    struct delays_call call;
    (void)state;

    free(delays_of(wait_n, 0, 5, &call));
    assert_int_equal(call.rc, 0);
    assert_int_equal(call.elapsed_ns, 0);
    free(delays_of(task_wait_n, 0, 5, &call));
    assert_int_equal(call.rc, 0);
    assert_int_equal(call.elapsed_ns, 0);

    /* With nothing to store, no array is needed either. */
    call = (struct delays_call){.fn = wait_n, .rc = 1};
    run_virtual(run_delays_call, &call);
    assert_int_equal(call.rc, 0);
    call = (struct delays_call){.fn = task_wait_n, .rc = 1};
    run_virtual(run_delays_call, &call);
    assert_int_equal(call.rc, 0);
}

/* ---- measure_time ----------------------------------------------------- */

struct measure_call {
    size_t n;
    double max_delay;
    double per_call;
    int rc;
};

static void *run_measure_time(void *arg)
{
    struct measure_call *call = arg;

    call->rc = measure_time(call->n, call->max_delay, &call->per_call);
    return NULL;
}

static void test_measure_time_is_longest_over_n(void **state)
{
    static const struct {
        size_t n;
        double max_delay;
    } cases[] = {{5, 9}, {1, 3}, {100, 10}, {1000, 0.5}};
    (void)state;

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = cases[c].n;
        struct delays_call plain;
        double *delays = delays_of(wait_n, n, cases[c].max_delay, &plain);
        double longest = 0;
        for (size_t i = 0; i < n; i++)
            if (delays[i] > longest)
                longest = delays[i];
        free(delays);

        struct measure_call call = {.n = n, .max_delay = cases[c].max_delay,
                                    .rc = 1};
        fiber_seed(SEED);
        assert_int_equal(run_virtual(run_measure_time, &call), 0);
        assert_int_equal(call.rc, 0);
        /* The same delays were drawn: the total is the longest of them,
         * rounded up to the nanosecond. */
        double total = call.per_call * (double)n;
        assert_true(total >= longest - CLOCK_RESOLUTION);
        assert_true(total <= longest + 2 * CLOCK_RESOLUTION);
        assert_true(call.per_call <= cases[c].max_delay / (double)n +
                                     CLOCK_RESOLUTION);
    }
}

static void test_measure_time_errors(void **state)
{
    struct measure_call call = {.n = 0, .max_delay = 1, .per_call = -1};
    (void)state;

    run_virtual(run_measure_time, &call);
    assert_int_equal(call.rc, -EINVAL);
    assert_true(call.per_call == -1);

    call = (struct measure_call){.n = 3, .max_delay = -1, .per_call = -1};
    run_virtual(run_measure_time, &call);
    assert_int_equal(call.rc, -EINVAL);
    call = (struct measure_call){.n = 3, .max_delay = NAN, .per_call = -1};
    run_virtual(run_measure_time, &call);
    assert_int_equal(call.rc, -EINVAL);
    assert_true(call.per_call == -1);
}

/* ---- task_wait_random ------------------------------------------------- */

struct task_call {
    double max_delay;
    double slot;
    int rc;
    int status;
    void *result;
    bool started_at_once;  /* the task had started inside the call */
    int64_t elapsed_ns;
};

static void *run_task_wait_random(void *arg)
{
    struct task_call *call = arg;
    fiber_task_t *task;
    char description[128];
    int64_t start = fiber_now_ns();

    call->rc = task_wait_random(call->max_delay, &call->slot, &task);
    if (call->rc < 0)
        return NULL;
    /* Starting a task does not run it: it is still waiting its turn. */
    fiber_describe(task, description, sizeof(description));
    call->started_at_once = strstr(description, "state=ready") == NULL;
    call->rc = fiber_await(task, &call->result, &call->status);
    call->elapsed_ns = fiber_now_ns() - start;
    return NULL;
}

static void test_task_wait_random(void **state)
{
    struct task_call call = {.max_delay = 5, .rc = 1};
    (void)state;

    fiber_seed(SEED);
    assert_int_equal(run_virtual(run_task_wait_random, &call), 0);
    assert_int_equal(call.rc, 0);
    assert_false(call.started_at_once);
    assert_int_equal(call.status, 0);
    assert_ptr_equal(call.result, &call.slot);
    assert_true(call.slot >= 0 && call.slot <= 5);
    assert_true((double)call.elapsed_ns >= call.slot * 1e9 - 1);
    assert_true((double)call.elapsed_ns <= call.slot * 1e9 + 1);

    /* The same delay wait_random draws from the same seed. */
    struct wait_random_call plain = {.max_delay = 5};
    fiber_seed(SEED);
    run_virtual(run_wait_random, &plain);
    assert_true(plain.delay == call.slot);
}

/* A task cancelled before it ends reports -ECANCELED and stores NaN. */
static void *cancel_task_wait_random(void *arg)
{
    struct task_call *call = arg;
    fiber_task_t *task;

    call->rc = task_wait_random(call->max_delay, &call->slot, &task);
    if (call->rc < 0)
        return NULL;
    fiber_sleep(0.5);
    fiber_cancel(task);
    call->rc = fiber_await(task, &call->result, &call->status);
    return NULL;
}

static void test_task_wait_random_cancelled(void **state)
{
    struct task_call call = {.max_delay = 1e6, .rc = 1};
    (void)state;

    fiber_seed(SEED);
    run_virtual(cancel_task_wait_random, &call);
    assert_int_equal(call.rc, 0);
    assert_int_equal(call.status, -ECANCELED);
    assert_null(call.result);
    assert_true(isnan(call.slot));
}

/* ---- errors ----------------------------------------------------------- */

static void test_outside_a_fiber(void **state)
{
    double delay = -1, delays[3] = {-1, -1, -1};
    fiber_task_t *task = NULL;
    (void)state;

    assert_int_equal(wait_random(1, &delay), -EPERM);
    assert_true(delay == -1);
    assert_int_equal(wait_n(3, 1, delays), -EPERM);
    assert_int_equal(task_wait_n(3, 1, delays), -EPERM);
    assert_int_equal(measure_time(3, 1, &delay), -EPERM);
    assert_int_equal(task_wait_random(1, &delay, &task), -EPERM);
    assert_null(task);
    assert_true(delay == -1);
}

static void *bad_arguments(void *arg)
{
    double delay = -1, delays[3];
    fiber_task_t *task = NULL;
    (void)arg;

    assert_int_equal(wait_random(-1, &delay), -EINVAL);
    assert_int_equal(wait_random(NAN, &delay), -EINVAL);
    assert_int_equal(wait_random(INFINITY, &delay), -EINVAL);
    assert_int_equal(wait_random(1, NULL), -EINVAL);
    assert_true(delay == -1);

    assert_int_equal(wait_n(3, -1, delays), -EINVAL);
    assert_int_equal(wait_n(3, NAN, delays), -EINVAL);
    assert_int_equal(wait_n(3, 1, NULL), -EINVAL);
    assert_int_equal(task_wait_n(3, -0.5, delays), -EINVAL);
    assert_int_equal(task_wait_n(3, INFINITY, delays), -EINVAL);
    assert_int_equal(task_wait_n(3, 1, NULL), -EINVAL);
    assert_int_equal(measure_time(3, 1, NULL), -EINVAL);

    assert_int_equal(task_wait_random(-1, &delay, &task), -EINVAL);
    assert_int_equal(task_wait_random(1, NULL, &task), -EINVAL);
    assert_int_equal(task_wait_random(1, &delay, NULL), -EINVAL);
    assert_null(task);
    assert_true(delay == -1);
    return NULL;
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(run_virtual(bad_arguments, NULL), 0);
}

/* A wait_n or task_wait_n call running in a task of its own, stopped from
 * outside after a while. */
struct stopped_call {
    struct delays_call call;
    double stop_after;   /* seconds */
    bool by_timeout;     /* fiber_wait_for rather than fiber_cancel */
    int await_rc;
    int status;
    int64_t stopped_at_ns;  /* since the start, once the task is reaped */
};

static void *stop_delays_call(void *arg)
{
    struct stopped_call *stop = arg;
    fiber_task_t *task;
    int64_t start = fiber_now_ns();

    assert_int_equal(fiber_spawn(&task, run_delays_call, &stop->call, NULL), 0);
    if (stop->by_timeout) {
        stop->await_rc = fiber_wait_for(task, stop->stop_after, NULL,
                                        &stop->status);
    } else {
        fiber_sleep(stop->stop_after);
        assert_int_equal(fiber_cancel(task), 0);
        stop->await_rc = fiber_await(task, NULL, &stop->status);
    }
    stop->stopped_at_ns = fiber_now_ns() - start;
    return NULL;
}

/* Cancelling the caller cancels every fiber it started, reaps them at once
 * and reports -ECANCELED; a timeout does the same through wait_for. */
static void test_cancel_propagates(void **state)
{
    int (*const fns[])(size_t, double, double *) = {wait_n, task_wait_n};
    double delays[200];
    (void)state;

    for (size_t f = 0; f < 2; f++) {
        for (int by_timeout = 0; by_timeout <= 1; by_timeout++) {
            struct stopped_call stop = {
                .call = {.fn = fns[f], .n = 200, .max_delay = 100,
                         .delays = delays, .rc = 1},
                .stop_after = 1,
                .by_timeout = by_timeout,
            };
            fiber_seed(SEED);
            assert_int_equal(run_virtual(stop_delays_call, &stop), 0);
            assert_int_equal(stop.call.rc, -ECANCELED);
            assert_int_equal(stop.await_rc, by_timeout ? -ETIMEDOUT : 0);
            /* The task's own function returned normally, but its blocking
             * calls saw the cancel, so its status says cancelled. */
            assert_int_equal(stop.status, -ECANCELED);
            assert_int_equal(stop.stopped_at_ns, 1000000000);
            /* Only the delays that ended within the second were kept. */
            assert_true(stop.call.elapsed_ns == 1000000000);
        }
    }
}

/* Whether the address space can be capped for the out-of-memory test. */
static bool address_space_limit(rlim_t *saved, rlim_t headroom)
{
    struct rlimit limit;
    unsigned long pages;
    FILE *statm = fopen("/proc/self/statm", "r");

    if (!statm)
        return false;
    bool ok = fscanf(statm, "%lu", &pages) == 1;
    fclose(statm);
    if (!ok || getrlimit(RLIMIT_AS, &limit) != 0)
        return false;
    *saved = limit.rlim_cur;
    limit.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + headroom;
    return setrlimit(RLIMIT_AS, &limit) == 0;
}

static void restore_address_space(rlim_t saved)
{
    struct rlimit limit;

    assert_int_equal(getrlimit(RLIMIT_AS, &limit), 0);
    limit.rlim_cur = saved;
    assert_int_equal(setrlimit(RLIMIT_AS, &limit), 0);
}

/* Running out of memory half way through the spawns gives -ENOMEM, after
 * the fibers already started have been cancelled and reaped; the next run
 * works as usual.  Address space runs out early: each fiber reserves a
 * 64 KiB stack. */
static void test_out_of_memory(void **state)
{
    int (*const fns[])(size_t, double, double *) = {wait_n, task_wait_n};
    size_t n = 100000;
    (void)state;

    /* Valgrind keeps its own memory within the same limit, and gives up;
     * so do the sanitizers, whose shadow memory the limit leaves no room. */
    if (RUNNING_ON_VALGRIND || getenv("FIBER_TEST_UNDER_TOOL"))
        skip();
    double *delays = malloc(n * sizeof(*delays));
    assert_non_null(delays);
    for (size_t f = 0; f < 2; f++) {
        struct delays_call call = {.fn = fns[f], .n = n, .max_delay = 1,
                                   .delays = delays, .rc = 1};
        rlim_t saved = RLIM_INFINITY;
        if (!address_space_limit(&saved, (rlim_t)64 << 20)) {
            free(delays);
            skip();
            return;
        }
        int run_rc = fiber_run(run_delays_call, &call, &virtual_clock, NULL, NULL);
        restore_address_space(saved);
        assert_int_equal(run_rc, 0);
        assert_int_equal(call.rc, -ENOMEM);

        struct delays_call after;
        free(delays_of(fns[f], 100, 1, &after));
        assert_int_equal(after.rc, 0);
    }
    free(delays);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_random_sleeps_its_delay),
        cmocka_unit_test(test_wait_random_zero_max_delay),
        cmocka_unit_test(test_wait_random_same_seed_same_delay),
        cmocka_unit_test(test_wait_n_100000_ascending),
        cmocka_unit_test(test_wait_n_exact_order_many_seeds),
        cmocka_unit_test(test_wait_n_course_calls),
        cmocka_unit_test(test_task_wait_n_10000_ascending),
        cmocka_unit_test(test_task_wait_n_matches_wait_n),
        cmocka_unit_test(test_n_zero),
        cmocka_unit_test(test_measure_time_is_longest_over_n),
        cmocka_unit_test(test_measure_time_errors),
        cmocka_unit_test(test_task_wait_random),
        cmocka_unit_test(test_task_wait_random_cancelled),
        cmocka_unit_test(test_outside_a_fiber),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_cancel_propagates),
        cmocka_unit_test(test_out_of_memory),
    };

    return cmocka_run_group_tests_name("exercises", tests, NULL, NULL);
}
