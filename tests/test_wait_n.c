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
#include "exercises/exercises.h"

#define SEED 20240601u

/* One nanosecond, the resolution of the loop clock. */
#define CLOCK_RESOLUTION 1e-9

static const fiber_options_t virtual_clock = {.clock = FIBER_CLOCK_VIRTUAL};

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* ---- one run of an exercise as the loop's main ------------------------- */

struct exercise_run {
    void *result;
    int status;
    int64_t elapsed_ns;   /* the whole run, on the loop clock */
};

/* asyncio.run(fn(arg)) on a virtual-clock loop. */
static struct exercise_run run_virtual(fiber_fn fn, void *arg)
{
    struct exercise_run run = {.status = 1};

    assert_int_equal(fiber_run(fn, arg, &virtual_clock, &run.result,
                               &run.status), 0);
    run.elapsed_ns = fiber_elapsed_ns();
    return run;
}

/* Seed with seed, then run fn (wait_n or task_wait_n) on n and max_delay;
 * returns the delays, which the caller frees. */
static double *delays_of(fiber_fn fn, size_t n, double max_delay,
                         uint64_t seed, struct exercise_run *run)
{
    fiber_seed(seed);
    *run = run_virtual(fn, &(struct wait_n_args){n, max_delay});
    assert_int_equal(run->status, 0);
    assert_non_null(run->result);
    return run->result;
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
 * [0, max_delay], ascending exactly, even two delays within a nanosecond
 * of each other, which share a deadline; exactly the n delays drawn; and
 * all of it in the time of the longest delay, not of their sum.  Returns
 * how many neighbours shared a nanosecond.
 */
static size_t check_order_seeded(fiber_fn fn, size_t n, double max_delay,
                                 uint64_t seed)
{
    struct exercise_run run;
    double *delays = delays_of(fn, n, max_delay, seed, &run);

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
    assert_true((double)run.elapsed_ns >= longest * 1e9 - 1);
    assert_true((double)run.elapsed_ns <= longest * 1e9 + 1);

    free(draws);
    free(delays);
    return same_ns;
}

static void check_completion_order(fiber_fn fn, size_t n, double max_delay)
{
    check_order_seeded(fn, n, max_delay, SEED);
}

/* ---- wait_random ------------------------------------------------------ */

static void test_wait_random_sleeps_its_delay(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++) {
        double delay = 10;
        struct exercise_run run = run_virtual(wait_random, &delay);
        assert_int_equal(run.status, 0);
        assert_ptr_equal(run.result, &delay);
        assert_true(delay >= 0 && delay <= 10);
        /* Never shorter than the delay, and no more than a clock tick
         * longer. */
        assert_true((double)run.elapsed_ns >= delay * 1e9 - 1);
        assert_true((double)run.elapsed_ns <= delay * 1e9 + 1);
    }
}

static void test_wait_random_zero_max_delay(void **state)
{
    double delay = 0;
    (void)state;

    struct exercise_run run = run_virtual(wait_random, &delay);
    assert_int_equal(run.status, 0);
    assert_true(delay == 0);
    assert_int_equal(run.elapsed_ns, 0);
}

static void test_wait_random_same_seed_same_delay(void **state)
{
    double first = 10, second = 10, other = 10;
    (void)state;

    fiber_seed(SEED);
    run_virtual(wait_random, &first);
    fiber_seed(SEED);
    run_virtual(wait_random, &second);
    fiber_seed(SEED + 1);
    run_virtual(wait_random, &other);
    assert_true(first == second);
    assert_true(first != other);
}

/* A max_delay that is negative, NaN or infinite fails the call with
 * -EINVAL (fiber_sleep's), and leaves it as it was. */
static void test_wait_random_bad_max_delay(void **state)
{
    const double bad[] = {-1, -1e-9, NAN, INFINITY, -INFINITY};
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double delay = bad[i];
        struct exercise_run run = run_virtual(wait_random, &delay);
        assert_int_equal(run.status, -EINVAL);
        assert_null(run.result);
        assert_true(isnan(bad[i]) ? isnan(delay) : delay == bad[i]);
    }
}

/* ---- wait_n and task_wait_n ------------------------------------------- */

/* Delays that round to the same nanosecond still come back ascending: the
 * timers keep the exact times asked for to break the tie. */
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

static void test_wait_n_100000_ascending(void **state)
{
    (void)state;
    check_completion_order(wait_n, 100000, 1);
}

static void test_wait_n_course_calls(void **state)
{
    (void)state;
    check_completion_order(wait_n, 5, 5);
    check_completion_order(wait_n, 10, 7);

    struct exercise_run run;
    double *delays = delays_of(wait_n, 10, 0, SEED, &run);
    for (size_t i = 0; i < 10; i++)
        assert_true(delays[i] == 0);
    assert_int_equal(run.elapsed_ns, 0);
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
    struct exercise_run plain, tasks;
    (void)state;

    double *a = delays_of(wait_n, 10000, 6, SEED, &plain);
    double *b = delays_of(task_wait_n, 10000, 6, SEED, &tasks);
    assert_memory_equal(a, b, 10000 * sizeof(*a));
    assert_int_equal(plain.elapsed_ns, tasks.elapsed_ns);
    free(a);
    free(b);
}

/* n = 0: an empty list, at once. */
static void test_n_zero(void **state)
{
    struct exercise_run run;
    (void)state;

    free(delays_of(wait_n, 0, 5, SEED, &run));
    assert_int_equal(run.elapsed_ns, 0);
    free(delays_of(task_wait_n, 0, 5, SEED, &run));
    assert_int_equal(run.elapsed_ns, 0);
}

/* A bad max_delay fails every call: the first one taken reports it. */
static void test_wait_n_bad_max_delay(void **state)
{
    fiber_fn fns[] = {wait_n, task_wait_n};
    (void)state;

    for (size_t f = 0; f < 2; f++) {
        struct exercise_run run =
            run_virtual(fns[f], &(struct wait_n_args){3, NAN});
        assert_int_equal(run.status, -EINVAL);
        assert_null(run.result);
        run = run_virtual(fns[f], &(struct wait_n_args){3, -2});
        assert_int_equal(run.status, -EINVAL);
    }
}

/* ---- measure_time ----------------------------------------------------- */

static void test_measure_time_is_longest_over_n(void **state)
{
    static const struct {
        size_t n;
        double max_delay;
    } cases[] = {{5, 9}, {1, 3}, {100, 10}, {1000, 0.5}};
    (void)state;

    loop_options = virtual_clock;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = cases[c].n;
        struct exercise_run plain;
        double *delays = delays_of(wait_n, n, cases[c].max_delay, SEED, &plain);
        double longest = 0;
        for (size_t i = 0; i < n; i++)
            if (delays[i] > longest)
                longest = delays[i];
        free(delays);

        fiber_seed(SEED);
        double per_call = measure_time(n, cases[c].max_delay);
        /* The same delays were drawn: the whole run took the longest of
         * them, rounded up to the nanosecond, exactly as wait_n's run. */
        assert_true(per_call * (double)n >= longest - CLOCK_RESOLUTION);
        assert_true(per_call * (double)n <= longest + 2 * CLOCK_RESOLUTION);
        assert_true(per_call == (double)plain.elapsed_ns / 1e9 / (double)n);
        assert_true(per_call <= cases[c].max_delay / (double)n +
                                CLOCK_RESOLUTION);
    }
    loop_options = (fiber_options_t){0};
}

static void *call_measure_time(void *arg)
{
    double *per_call = arg;

    *per_call = measure_time(3, 1);
    return NULL;
}

static void test_measure_time_errors(void **state)
{
    double per_call = 0;
    (void)state;

    loop_options = virtual_clock;
    assert_true(measure_time(0, 1) == -EINVAL);
    assert_true(measure_time(3, -1) == -EINVAL);
    assert_true(measure_time(3, NAN) == -EINVAL);
    /* asyncio.run refuses to run inside a running loop; so does fiber_run. */
    run_virtual(call_measure_time, &per_call);
    assert_true(per_call == -EBUSY);
    /* A loop that cannot start. */
    loop_options.clock = 99;
    assert_true(measure_time(3, 1) == -EINVAL);
    loop_options = (fiber_options_t){0};
}

/* ---- task_wait_random ------------------------------------------------- */

struct task_call {
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

    call->rc = task_wait_random(&call->slot, &task);
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
    struct task_call call = {.slot = 5, .rc = 1};
    (void)state;

    fiber_seed(SEED);
    assert_int_equal(run_virtual(run_task_wait_random, &call).status, 0);
    assert_int_equal(call.rc, 0);
    assert_false(call.started_at_once);
    assert_int_equal(call.status, 0);
    assert_ptr_equal(call.result, &call.slot);
    assert_true(call.slot >= 0 && call.slot <= 5);
    assert_true((double)call.elapsed_ns >= call.slot * 1e9 - 1);
    assert_true((double)call.elapsed_ns <= call.slot * 1e9 + 1);

    /* The same delay wait_random draws from the same seed. */
    double plain = 5;
    fiber_seed(SEED);
    run_virtual(wait_random, &plain);
    assert_true(plain == call.slot);
}

/* A task cancelled before it ends reports -ECANCELED and leaves max_delay
 * where it was. */
static void *cancel_task_wait_random(void *arg)
{
    struct task_call *call = arg;
    fiber_task_t *task;

    call->rc = task_wait_random(&call->slot, &task);
    if (call->rc < 0)
        return NULL;
    fiber_sleep(0.5);
    fiber_cancel(task);
    call->rc = fiber_await(task, &call->result, &call->status);
    return NULL;
}

static void test_task_wait_random_cancelled(void **state)
{
    struct task_call call = {.slot = 1e6, .rc = 1};
    (void)state;

    fiber_seed(SEED);
    run_virtual(cancel_task_wait_random, &call);
    assert_int_equal(call.rc, 0);
    assert_int_equal(call.status, -ECANCELED);
    assert_null(call.result);
    assert_true(call.slot == 1e6);
}

/* ---- errors ----------------------------------------------------------- */

/* Called outside a fiber, the fiber functions fail at their first blocking
 * call and return NULL; task_wait_random returns fiber_spawn's -EPERM. */
static void test_outside_a_fiber(void **state)
{
    double delay = 1;
    fiber_task_t *task = NULL;
    (void)state;

    assert_null(wait_random(&delay));
    assert_true(delay == 1);
    assert_null(wait_n(&(struct wait_n_args){3, 1}));
    assert_null(task_wait_n(&(struct wait_n_args){3, 1}));
    assert_int_equal(task_wait_random(&delay, &task), -EPERM);
    assert_null(task);
}

/* A wait_n or task_wait_n running in a task of its own, stopped from
 * outside after a while. */
struct stopped_call {
    fiber_fn fn;
    bool by_timeout;     /* fiber_wait_for rather than fiber_cancel */
    int await_rc;
    int status;
    void *result;
    int64_t stopped_at_ns;  /* since the start, once the task is reaped */
};

static void *stop_after_a_second(void *arg)
{
    struct stopped_call *stop = arg;
    struct wait_n_args args = {200, 100};
    fiber_task_t *task;
    int64_t start = fiber_now_ns();

    assert_int_equal(fiber_spawn(&task, stop->fn, &args, NULL), 0);
    if (stop->by_timeout) {
        stop->await_rc = fiber_wait_for(task, 1, &stop->result, &stop->status);
    } else {
        fiber_sleep(1);
        assert_int_equal(fiber_cancel(task), 0);
        stop->await_rc = fiber_await(task, &stop->result, &stop->status);
    }
    stop->stopped_at_ns = fiber_now_ns() - start;
    return NULL;
}

/* Cancelling the caller cancels every fiber it started, reaps them at once
 * and reports -ECANCELED; a timeout does the same through wait_for. */
static void test_cancel_propagates(void **state)
{
    fiber_fn fns[] = {wait_n, task_wait_n};
    (void)state;

    for (size_t f = 0; f < 2; f++) {
        for (int by_timeout = 0; by_timeout <= 1; by_timeout++) {
            struct stopped_call stop = {.fn = fns[f], .by_timeout = by_timeout};
            fiber_seed(SEED);
            struct exercise_run run = run_virtual(stop_after_a_second, &stop);
            assert_int_equal(run.status, 0);
            assert_int_equal(stop.await_rc, by_timeout ? -ETIMEDOUT : 0);
            assert_int_equal(stop.status, -ECANCELED);
            assert_null(stop.result);
            assert_int_equal(stop.stopped_at_ns, 1000000000);
            /* Nothing was left running: the loop ended then too. */
            assert_int_equal(run.elapsed_ns, 1000000000);
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
    fiber_fn fns[] = {wait_n, task_wait_n};
    (void)state;

    /* Valgrind keeps its own memory within the same limit, and gives up;
     * so do the sanitizers, whose shadow memory the limit leaves no room. */
    if (RUNNING_ON_VALGRIND || getenv("FIBER_TEST_UNDER_TOOL"))
        skip();
    for (size_t f = 0; f < 2; f++) {
        rlim_t saved = RLIM_INFINITY;
        void *result = &saved;
        int status = 0;
        if (!address_space_limit(&saved, (rlim_t)64 << 20)) {
            skip();
            return;
        }
        int run_rc = fiber_run(fns[f], &(struct wait_n_args){100000, 1},
                               &virtual_clock, &result, &status);
        restore_address_space(saved);
        assert_int_equal(run_rc, 0);
        assert_int_equal(status, -ENOMEM);
        assert_null(result);

        struct exercise_run after;
        free(delays_of(fns[f], 100, 1, SEED, &after));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_random_sleeps_its_delay),
        cmocka_unit_test(test_wait_random_zero_max_delay),
        cmocka_unit_test(test_wait_random_same_seed_same_delay),
        cmocka_unit_test(test_wait_random_bad_max_delay),
        cmocka_unit_test(test_wait_n_100000_ascending),
        cmocka_unit_test(test_wait_n_exact_order_many_seeds),
        cmocka_unit_test(test_wait_n_course_calls),
        cmocka_unit_test(test_task_wait_n_10000_ascending),
        cmocka_unit_test(test_task_wait_n_matches_wait_n),
        cmocka_unit_test(test_n_zero),
        cmocka_unit_test(test_wait_n_bad_max_delay),
        cmocka_unit_test(test_measure_time_is_longest_over_n),
        cmocka_unit_test(test_measure_time_errors),
        cmocka_unit_test(test_task_wait_random),
        cmocka_unit_test(test_task_wait_random_cancelled),
        cmocka_unit_test(test_outside_a_fiber),
        cmocka_unit_test(test_cancel_propagates),
        cmocka_unit_test(test_out_of_memory),
    };

    return cmocka_run_group_tests_name("exercises", tests, NULL, NULL);
}
