/*
 * test_debug.c - debug mode: stale handles, tasks never retrieved, slow
 * fibers, a floating-point environment left changed, fiber-only calls made
 * outside a fiber, stacks measured afresh, and how the options and the
 * environment turn it on.
 *
 * Reports go to a memory stream given as the loop's report stream, except
 * those made outside any loop, which go to stderr and are captured there.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fenv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "stack_use.h"
#include "stderr_capture.h"

/* " (function)", as reports name a fiber's entry function: static
 * functions have names only where libunwind reads the symbol table. */
#ifdef HAVE_LIBUNWIND
#define FN(name) " (" name ")"
#else
#define FN(name)
#endif

#define RESULT(n) ((void *)(intptr_t)(n))

/* A loop in debug mode on the virtual clock, reporting into memory. */
struct debug_run {
    char *report;
    size_t size;
    FILE *stream;
    fiber_debug_options_t debug;
    fiber_options_t opts;
};

static void debug_run_open(struct debug_run *r, double slow_seconds)
{
    r->report = NULL;
    r->size = 0;
    r->stream = open_memstream(&r->report, &r->size);
    assert_non_null(r->stream);
    r->debug = (fiber_debug_options_t){
        .checks = 1, .slow_seconds = slow_seconds, .report = r->stream};
    r->opts = (fiber_options_t){.clock = FIBER_CLOCK_VIRTUAL, .debug = &r->debug};
}

/* Run fn(arg) as main; the loop and every check inside must pass.
 * Returns what was reported. */
static const char *debug_run(struct debug_run *r, fiber_fn fn, void *arg)
{
    int status = -1;

    failed_checks = 0;
    assert_int_equal(fiber_run(fn, arg, &r->opts, NULL, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(failed_checks, 0);
    fflush(r->stream);
    return r->report ? r->report : "";
}

static void debug_run_close(struct debug_run *r)
{
    fclose(r->stream);
    free(r->report);
}

static void *return_seven(void *arg)
{
    (void)arg;
    return RESULT(7);
}

static void *nap(void *arg)
{
    (void)arg;
    fiber_sleep(1);
    return RESULT(1);
}

/* ---- stale handles ------------------------------------------------------ */

static void *use_handles_after_they_are_consumed(void *arg)
{
    fiber_task_t *awaited, *detached;
    fiber_attr_t attr = {.name = "worker"};
    void *result = NULL;
    (void)arg;

    CHECK_EQ(fiber_spawn(&awaited, return_seven, NULL, &attr), 0);
    CHECK_EQ(fiber_await(awaited, &result, NULL), 0);
    CHECK_PTR(result, RESULT(7));
    /* Awaited twice: reported, refused, and nothing else happens. */
    CHECK_EQ(fiber_await(awaited, NULL, NULL), -EINVAL);
    CHECK_EQ(fiber_wait_for(awaited, 1.0, NULL, NULL), -EINVAL);
    CHECK_EQ(fiber_gather(&awaited, 1, NULL, NULL), -EINVAL);
    CHECK_EQ(fiber_cancel(awaited), -EINVAL);
    CHECK_EQ(fiber_detach(awaited), -EINVAL);
    CHECK_EQ(fiber_result(awaited, NULL, NULL), -EINVAL);

    CHECK_EQ(fiber_spawn(&detached, return_seven, NULL, NULL), 0);
    CHECK_EQ(fiber_detach(detached), 0);
    CHECK_EQ(fiber_yield(), 0); /* it runs and is freed */
    CHECK_EQ(fiber_await(detached, NULL, NULL), -EINVAL);

    /* Handles still live are left alone. */
    fiber_task_t *live;
    CHECK_EQ(fiber_spawn(&live, return_seven, NULL, NULL), 0);
    CHECK_EQ(fiber_await(live, &result, NULL), 0);
    CHECK_PTR(result, RESULT(7));
    return NULL;
}

static void test_handles_used_after_they_are_consumed_are_reported(void **state)
{
    struct debug_run r;
    (void)state;

    debug_run_open(&r, 0);
    const char *report = debug_run(&r, use_handles_after_they_are_consumed, NULL);
    assert_non_null(strstr(report,
        "libfiber: debug: fiber 1 'main'" FN("use_handles_after_they_are_consumed") " "
        "called an await with the handle of task 2 'worker', which was already "
        "awaited"));
    assert_non_null(strstr(report, "called fiber_cancel with the handle of task 2 'worker'"));
    assert_non_null(strstr(report, "called fiber_detach with the handle of task 2"));
    assert_non_null(strstr(report, "called fiber_result with the handle of task 2"));
    assert_non_null(strstr(report, "task 3 'Task-3', which was already detached and has finished"));
    /* Six uses of the awaited handle, one of the detached one. */
    assert_int_equal(count_occurrences(report, "libfiber: debug:"), 7);
    debug_run_close(&r);
}

/* ---- tasks never retrieved ---------------------------------------------- */

static void *fail_with_eio(void *arg)
{
    (void)arg;
    return fiber_fail(-EIO);
}

static void *leave_tasks_behind(void *arg)
{
    fiber_task_t *t;
    fiber_attr_t pending = {.name = "pending"};
    fiber_attr_t failed = {.name = "failed"};
    fiber_attr_t finished = {.name = "finished"};
    (void)arg;

    CHECK_EQ(fiber_spawn(&t, nap, NULL, &pending), 0);
    CHECK_EQ(fiber_spawn(&t, fail_with_eio, NULL, &failed), 0);
    CHECK_EQ(fiber_spawn(&t, return_seven, NULL, &finished), 0);
    /* Neither of these two is worth a word. */
    CHECK_EQ(fiber_spawn(&t, nap, NULL, NULL), 0);
    CHECK_EQ(fiber_detach(t), 0);
    CHECK_EQ(fiber_spawn(&t, return_seven, NULL, NULL), 0);
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    return NULL;
}

static void test_tasks_never_retrieved_are_reported_at_the_end(void **state)
{
    struct debug_run r;
    (void)state;

    debug_run_open(&r, 0);
    const char *report = debug_run(&r, leave_tasks_behind, NULL);
    assert_non_null(strstr(report,
        "Task was destroyed but it is pending: fiber 2 'pending'" FN("nap") " still ran "
        "when main returned"));
    assert_non_null(strstr(report,
        "Task failure was never retrieved: fiber 3 'failed'" FN("fail_with_eio") " ended "
        "with status -5 (Input/output error)"));
    assert_non_null(strstr(report,
        "Task result was never retrieved: fiber 4 'finished'" FN("return_seven") " "
        "finished (status 0)"));
    assert_int_equal(count_occurrences(report, "libfiber: debug:"), 3);
    debug_run_close(&r);
}

/* ---- slow fibers -------------------------------------------------------- */

static double real_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Keep the CPU for seconds of real time, without a blocking call. */
static void spin(double seconds)
{
    double end = real_seconds() + seconds;

    while (real_seconds() < end)
        ;
}

static void *hog(void *arg)
{
    spin(*(double *)arg);
    return NULL;
}

static void *polite(void *arg)
{
    /* As long in all as the hog, but yielding often. */
    for (int i = 0; i < 10; i++) {
        spin(*(double *)arg / 10);
        CHECK_EQ(fiber_yield(), 0);
    }
    return NULL;
}

static void *run_a_hog_and_a_polite_fiber(void *arg)
{
    fiber_task_t *tasks[2];
    fiber_attr_t hog_attr = {.name = "hog"};
    fiber_attr_t polite_attr = {.name = "polite"};

    CHECK_EQ(fiber_spawn(&tasks[0], hog, arg, &hog_attr), 0);
    CHECK_EQ(fiber_spawn(&tasks[1], polite, arg, &polite_attr), 0);
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    return NULL;
}

static void test_a_fiber_holding_the_cpu_too_long_is_reported(void **state)
{
    struct debug_run r;
    double hold = 0.25;
    (void)state;

    debug_run_open(&r, 0.1);
    const char *report = debug_run(&r, run_a_hog_and_a_polite_fiber, &hold);
    assert_non_null(strstr(report, "libfiber: debug: fiber 2 'hog'" FN("hog") " held the CPU for 0.2"));
    assert_non_null(strstr(report, "(more than 0.100 s)"));
    assert_null(strstr(report, "'polite'"));
    assert_int_equal(count_occurrences(report, "held the CPU"), 1);
    debug_run_close(&r);
}

/* ---- the floating-point environment ------------------------------------ */

/* Changes the rounding mode only between blocking calls. */
static void *round_up_briefly(void *arg)
{
    (void)arg;
    CHECK_EQ(fesetround(FE_UPWARD), 0);
    CHECK(fegetround() == FE_UPWARD);
    CHECK_EQ(fesetround(FE_TONEAREST), 0);
    CHECK_EQ(fiber_yield(), 0);
    return NULL;
}

/* Leaves the rounding mode changed across a blocking call, then puts it
 * back. */
static void *round_down_across_a_yield(void *arg)
{
    (void)arg;
    CHECK_EQ(fesetround(FE_DOWNWARD), 0);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fesetround(FE_TONEAREST), 0);
    return NULL;
}

/* Runs after the careless fiber's yield: what rounding it computes with. */
static void *observe_rounding(void *arg)
{
    *(int *)arg = fegetround();
    return NULL;
}

static void *run_rounding_fibers(void *arg)
{
    fiber_task_t *careful, *careless, *observer, *again;
    fiber_attr_t careful_attr = {.name = "careful"};
    fiber_attr_t careless_attr = {.name = "careless"};
    fiber_attr_t again_attr = {.name = "again"};
    int *seen = arg;

    CHECK_EQ(fiber_spawn(&careful, round_up_briefly, NULL, &careful_attr), 0);
    CHECK_EQ(fiber_await(careful, NULL, NULL), 0);
    CHECK_EQ(fiber_spawn(&careless, round_down_across_a_yield, NULL, &careless_attr), 0);
    CHECK_EQ(fiber_spawn(&observer, observe_rounding, seen, NULL), 0);
    CHECK_EQ(fiber_await(careless, NULL, NULL), 0);
    CHECK_EQ(fiber_await(observer, NULL, NULL), 0);
    /* A second offender is not reported: once per loop. */
    CHECK_EQ(fiber_spawn(&again, round_down_across_a_yield, NULL, &again_attr), 0);
    CHECK_EQ(fiber_await(again, NULL, NULL), 0);
    CHECK(fegetround() == FE_TONEAREST);
    return NULL;
}

static void test_a_floating_point_environment_left_changed_is_reported(void **state)
{
    struct debug_run r;
    int seen = -1;
    (void)state;

    debug_run_open(&r, 0);
    const char *report = debug_run(&r, run_rounding_fibers, &seen);
    assert_non_null(strstr(report, "libfiber: debug: fiber 3 'careless'" FN("round_down_across_a_yield")
                           " switched away with the floating-point environment changed"));
    assert_int_equal(count_occurrences(report, "floating-point"), 1);
    assert_null(strstr(report, "'careful'"));
    assert_null(strstr(report, "'again'"));
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(FIBER_SWITCH_UCONTEXT)
    /* The switch leaves the environment alone, as fiber.h says. */
    assert_int_equal(seen, FE_DOWNWARD);
#else
    /* glibc's swapcontext restores each context's own environment. */
    assert_int_equal(seen, FE_TONEAREST);
#endif
    debug_run_close(&r);
}

/* ---- calls outside a fiber ---------------------------------------------- */

static void test_calls_outside_a_fiber_are_reported_in_debug_mode(void **state)
{
    struct captured_stderr c;
    char text[4096];
    fiber_task_t *t;
    fiber_mutex_t m;
    fiber_event_t e;
    fiber_sem_t sem;
    fiber_cond_t cond;
    fiber_queue_t q;
    void *item;
    (void)state;

    /* The primitives may be set up anywhere; only waiting needs a fiber. */
    assert_int_equal(fiber_mutex_init(&m), 0);
    assert_int_equal(fiber_event_init(&e), 0);
    assert_int_equal(fiber_sem_init(&sem, 0), 0);
    assert_int_equal(fiber_cond_init(&cond), 0);
    assert_int_equal(fiber_queue_init(&q, 1), 0);

    /* Not in debug mode: -EPERM, and not a word. */
    unsetenv("FIBER_DEBUG");
    capture_stderr(&c);
    assert_int_equal(fiber_sleep(1), -EPERM);
    release_stderr(&c, text, sizeof(text));
    assert_string_equal(text, "");

    setenv("FIBER_DEBUG", "1", 1);
    capture_stderr(&c);
    assert_int_equal(fiber_sleep(1), -EPERM);
    assert_int_equal(fiber_yield(), -EPERM);
    assert_int_equal(fiber_spawn(&t, return_seven, NULL, NULL), -EPERM);
    assert_int_equal(fiber_gather(NULL, 0, NULL, NULL), -EPERM);
    assert_int_equal(fiber_mutex_lock(&m), -EPERM);
    assert_int_equal(fiber_mutex_trylock(&m), -EPERM);
    assert_int_equal(fiber_mutex_unlock(&m), -EPERM);
    assert_int_equal(fiber_event_wait(&e), -EPERM);
    assert_int_equal(fiber_sem_acquire_until(&sem, 0), -EPERM);
    assert_int_equal(fiber_cond_wait(&cond, &m), -EPERM);
    assert_int_equal(fiber_queue_get(&q, &item), -EPERM);
    assert_int_equal(fiber_queue_join_until(&q, 0), -EPERM);
    release_stderr(&c, text, sizeof(text));
    unsetenv("FIBER_DEBUG");

    assert_non_null(strstr(text, "libfiber: debug: fiber_sleep called outside a fiber"));
    assert_non_null(strstr(text, "no loop runs on this thread"));
    static const char *const calls[] = {
        "fiber_yield", "fiber_spawn", "fiber_gather", "fiber_mutex_lock",
        "fiber_mutex_trylock", "fiber_mutex_unlock", "fiber_event_wait",
        "fiber_sem_acquire_until", "fiber_cond_wait", "fiber_queue_get",
        "fiber_queue_join_until",
    };
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        char line[96];
        snprintf(line, sizeof(line), "%s called outside a fiber", calls[i]);
        if (!strstr(text, line))
            fail_msg("no \"%s\" in:\n%s", line, text);
    }
    assert_int_equal(count_occurrences(text, "libfiber: debug:"), 12);
    assert_int_equal(fiber_queue_destroy(&q), 0);
}

/* ---- stacks measured afresh --------------------------------------------- */

static void *measure_own_stack(void *arg)
{
    size_t *used = arg;

    CHECK_EQ(fiber_stack_usage(NULL, used, NULL), 0);
    return NULL;
}

static void *reuse_a_deep_stack(void *arg)
{
    size_t *used = arg;
    fiber_task_t *t;
    int kib = 32;

    CHECK_EQ(fiber_spawn(&t, recurse_kib, &kib, NULL), 0);
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    /* The next fiber gets the stack the deep one left: debug mode zeroed
     * it, so the mark is the new fiber's own. */
    CHECK_EQ(fiber_spawn(&t, measure_own_stack, used, NULL), 0);
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    return NULL;
}

static void test_debug_mode_measures_a_reused_stack_afresh(void **state)
{
    struct debug_run r;
    size_t used = 0;
    (void)state;

    if (getenv("FIBER_TEST_UNDER_TOOL"))
        skip(); /* ASan and Valgrind measure stacks their own way. */
    debug_run_open(&r, 0);
    debug_run(&r, reuse_a_deep_stack, &used);
    assert_true(used > 0);
    assert_true(used < 8 * 1024);
    debug_run_close(&r);
}

/* ---- options and environment -------------------------------------------- */

/* ---- large stacks and scarce memory ------------------------------------ */

static double monotonic_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct terabyte {
    double spawn_seconds;  /* in fiber_spawn, all three */
    size_t used;           /* the last fiber's own stack use */
};

/* A 1 TiB stack, spawned three times: the second and third time on the
 * first's stack, used 64 KiB deep; the third measures its own use. */
static void *spawn_terabyte_stacks(void *arg)
{
    struct terabyte *tb = arg;
    fiber_attr_t attr = {.stack_size = (size_t)1 << 40, .name = "huge"};
    fiber_task_t *t;
    int kib = 64;

    for (int i = 0; i < 3; i++) {
        double start = monotonic_seconds();
        int rc = fiber_spawn(&t, i < 2 ? recurse_kib : measure_own_stack,
                             i < 2 ? (void *)&kib : (void *)&tb->used, &attr);
        tb->spawn_seconds += monotonic_seconds() - start;
        if (rc == -ENOMEM && i == 0) {
            tb->used = 0;
            return NULL; /* No room for 1 TiB of address space here. */
        }
        CHECK_EQ(rc, 0);
        CHECK_EQ(fiber_await(t, NULL, NULL), 0);
        kib = 4;
    }
    return NULL;
}

static void test_debug_mode_spawns_a_terabyte_stack_quickly(void **state)
{
    struct debug_run r;
    struct terabyte tb = {0, 0};
    (void)state;

    if (getenv("FIBER_TEST_UNDER_TOOL"))
        skip(); /* No terabyte mappings under sanitizers and Valgrind. */
    debug_run_open(&r, 100);
    debug_run(&r, spawn_terabyte_stacks, &tb);
    debug_run_close(&r);
    /* Zeroing a reused stack asked the kernel about every page of it:
     * seconds for each spawn. */
    if (tb.spawn_seconds >= 1.0)
        fail_msg("three spawns of a 1 TiB stack took %.3f s", tb.spawn_seconds);
    /* Zeroed all the same: the 64 KiB the first fibers used are not
     * counted for the last. */
    assert_true(tb.used < 32 * 1024);
}

static void *wait_for_event(void *arg)
{
    CHECK_EQ(fiber_event_wait(arg), 0);
    return NULL;
}

/* Spawn fibers that wait on an event until spawning fails; count them. */
static size_t spawn_until_enomem(fiber_task_t **tasks, size_t max,
                                 fiber_event_t *e)
{
    size_t n = 0;

    while (n < max) {
        int rc = fiber_spawn(&tasks[n], wait_for_event, e, NULL);
        if (rc == -ENOMEM)
            break;
        CHECK_EQ(rc, 0);
        if (rc < 0)
            break;
        n++;
    }
    return n;
}

#define SCARCE_MAX 100000

struct scarce {
    fiber_task_t *tasks[SCARCE_MAX];
    size_t first, second;
};

static void *recover_from_enomem(void *arg)
{
    struct scarce *sc = arg;
    fiber_event_t e;

    for (int round = 0; round < 2; round++) {
        CHECK_EQ(fiber_event_init(&e), 0);
        size_t n = spawn_until_enomem(sc->tasks, SCARCE_MAX, &e);
        *(round == 0 ? &sc->first : &sc->second) = n;
        CHECK_EQ(fiber_event_set(&e), 0);
        CHECK_EQ(fiber_gather(sc->tasks, n, NULL, NULL), 0);
        CHECK_EQ(fiber_event_destroy(&e), 0);
    }
    return NULL;
}

/* In a child limited to a little more address space than it has, spawn
 * until -ENOMEM, let every fiber finish, and spawn until -ENOMEM again:
 * the second time as many fibers fit as the first. */
static int recover_in_a_child(int checks)
{
    static struct scarce sc;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        long pages = 0;
        FILE *statm = fopen("/proc/self/statm", "r");
        if (!statm || fscanf(statm, "%ld", &pages) != 1)
            _exit(2);
        fclose(statm);
        struct rlimit limit;
        limit.rlim_cur = limit.rlim_max =
            (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)64 << 20);
        if (setrlimit(RLIMIT_AS, &limit) < 0)
            _exit(3);
        fiber_debug_options_t debug = {.checks = checks, .slow_seconds = 1000};
        fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &debug};
        failed_checks = 0;
        int rc = fiber_run(recover_from_enomem, &sc, &opts, NULL, NULL);
        fprintf(stderr, "# %s mode: %zu fibers, then %zu\n",
                checks == 1 ? "debug" : "normal", sc.first, sc.second);
        _exit(rc == 0 && failed_checks == 0 && sc.first > 10 &&
              sc.second >= sc.first ? 0 : 1);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_debug_mode_recovers_from_enomem_as_normal_mode_does(void **state)
{
    (void)state;
    if (getenv("FIBER_TEST_UNDER_TOOL"))
        skip(); /* Sanitizers need address space beyond any small limit. */
    assert_int_equal(recover_in_a_child(-1), 0);
    assert_int_equal(recover_in_a_child(1), 0);
}

static void test_bad_debug_options_and_environment_are_einval(void **state)
{
    fiber_debug_options_t debug = {0};
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &debug};
    struct captured_stderr c;
    char text[2048];
    (void)state;

    debug.checks = 2;
    assert_int_equal(fiber_run(return_seven, NULL, &opts, NULL, NULL), -EINVAL);
    debug = (fiber_debug_options_t){.slow_seconds = -1};
    assert_int_equal(fiber_run(return_seven, NULL, &opts, NULL, NULL), -EINVAL);
    debug = (fiber_debug_options_t){.overflow_check = 3};
    assert_int_equal(fiber_run(return_seven, NULL, &opts, NULL, NULL), -EINVAL);

    capture_stderr(&c);
    setenv("FIBER_DEBUG", "yes", 1);
    int debug_rc = fiber_run(return_seven, NULL, NULL, NULL, NULL);
    unsetenv("FIBER_DEBUG");
    setenv("FIBER_DEBUG_SLOW", "soon", 1);
    int slow_rc = fiber_run(return_seven, NULL, NULL, NULL, NULL);
    unsetenv("FIBER_DEBUG_SLOW");
    setenv("FIBER_OVERFLOW_CHECK", "maybe", 1);
    int overflow_rc = fiber_run(return_seven, NULL, NULL, NULL, NULL);
    unsetenv("FIBER_OVERFLOW_CHECK");
    release_stderr(&c, text, sizeof(text));

    assert_int_equal(debug_rc, -EINVAL);
    assert_int_equal(slow_rc, -EINVAL);
    assert_int_equal(overflow_rc, -EINVAL);
    assert_non_null(strstr(text, "libfiber: FIBER_DEBUG=yes is not 0 or 1"));
    assert_non_null(strstr(text, "FIBER_DEBUG_SLOW=soon"));
    assert_non_null(strstr(text, "FIBER_OVERFLOW_CHECK=maybe"));
}

static void *leave_one_behind(void *arg)
{
    fiber_task_t *t;
    (void)arg;

    CHECK_EQ(fiber_spawn(&t, return_seven, NULL, NULL), 0);
    return NULL;
}

static void test_environment_turns_debug_mode_on_and_options_off(void **state)
{
    struct captured_stderr c;
    char text[2048];
    fiber_debug_options_t off = {.checks = -1};
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &off};
    (void)state;

    setenv("FIBER_DEBUG", "1", 1);
    capture_stderr(&c);
    assert_int_equal(fiber_run(leave_one_behind, NULL, NULL, NULL, NULL), 0);
    /* The program's own choice wins over the environment. */
    assert_int_equal(fiber_run(leave_one_behind, NULL, &opts, NULL, NULL), 0);
    release_stderr(&c, text, sizeof(text));
    unsetenv("FIBER_DEBUG");

    /* main returned before the task ever ran. */
    assert_non_null(strstr(text, "Task was destroyed but it is pending: fiber 2 'Task-2'" FN("return_seven")));
    assert_int_equal(count_occurrences(text, "libfiber: debug:"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handles_used_after_they_are_consumed_are_reported),
        cmocka_unit_test(test_tasks_never_retrieved_are_reported_at_the_end),
        cmocka_unit_test(test_a_fiber_holding_the_cpu_too_long_is_reported),
        cmocka_unit_test(test_a_floating_point_environment_left_changed_is_reported),
        cmocka_unit_test(test_calls_outside_a_fiber_are_reported_in_debug_mode),
        cmocka_unit_test(test_debug_mode_measures_a_reused_stack_afresh),
        cmocka_unit_test(test_debug_mode_spawns_a_terabyte_stack_quickly),
        cmocka_unit_test(test_debug_mode_recovers_from_enomem_as_normal_mode_does),
        cmocka_unit_test(test_bad_debug_options_and_environment_are_einval),
        cmocka_unit_test(test_environment_turns_debug_mode_on_and_options_off),
    };

    return cmocka_run_group_tests_name("debug", tests, NULL, NULL);
}
