/*
 * test_scheduler.c - stacks, the idle loop and the real clock.
 *
 * The virtual clock makes most tests exact; the few real-clock checks here
 * use generous bounds, because they assert properties (no early wake-up,
 * no busy waiting), not speed.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "proc_maps.h"
#include "loop.h"

static const fiber_options_t virtual_clock = {.clock = FIBER_CLOCK_VIRTUAL};
static const fiber_options_t real_clock = {.clock = FIBER_CLOCK_REAL};

/* Run fn(arg) as the main fiber and check the loop itself succeeded. */
static void run_main(fiber_fn fn, void *arg, const fiber_options_t *opts)
{
    int status = -1;

    assert_int_equal(fiber_run(fn, arg, opts, NULL, &status), 0);
    assert_int_equal(status, 0);
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- stacks ------------------------------------------------------------ */

/* Touch about depth KiB of stack, in a way the compiler cannot flatten. */
static int use_stack(int depth)
{
    volatile char frame[1024];

    frame[0] = (char)depth;
    frame[sizeof(frame) - 1] = (char)depth;
    /* The frame's address escapes, so that clang keeps it whole rather
     * than the two bytes used. */
    __asm__ volatile("" : : "r"(frame) : "memory");
    if (depth <= 1)
        return frame[0];
    return use_stack(depth - 1) + frame[sizeof(frame) - 1];
}

static void *recurse_kib(void *arg)
{
    int kib = *(int *)arg;

    return (void *)(intptr_t)use_stack(kib);
}

static void *spawn_with_big_stack(void *arg)
{
    (void)arg;
    int kib = 700;
    fiber_attr_t attr = {.stack_size = 1024 * 1024, .name = "deep"};
    fiber_task_t *t;
    void *result = NULL;
    int status = -1;

    assert_int_equal(fiber_spawn(&t, recurse_kib, &kib, &attr), 0);
    assert_string_equal(fiber_name(t), "deep");
    assert_int_equal(fiber_await(t, &result, &status), 0);
    assert_int_equal(status, 0);
    assert_true((intptr_t)result != 0);
    return NULL;
}

static void test_per_fiber_stack_size_allows_deep_recursion(void **state)
{
    (void)state;
    run_main(spawn_with_big_stack, NULL, &virtual_clock);
}

static size_t stack_size_of(fiber_task_t *t)
{
    size_t size = 0;

    assert_int_equal(fiber_stack_usage(t, NULL, &size), 0);
    return size;
}

/* Finished default-size tasks are kept for the next default spawn; one of
 * another size must still get a stack of its own size, and one asked for
 * a size that rounds to the default may take a kept one. */
static void *spawn_sizes_in_turn(void *arg)
{
    (void)arg;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    fiber_attr_t big = {.stack_size = 1024 * 1024};
    fiber_attr_t near_default = {.stack_size = FIBER_DEFAULT_STACK_SIZE - 100};
    int kib = 700;
    fiber_task_t *t;
    void *result = NULL;

    for (int round = 0; round < 3; round++) {
        assert_int_equal(fiber_spawn(&t, recurse_kib, &(int){8}, NULL), 0);
        assert_int_equal(stack_size_of(t), FIBER_DEFAULT_STACK_SIZE);
        assert_int_equal(fiber_await(t, &result, NULL), 0);

        assert_int_equal(fiber_spawn(&t, recurse_kib, &kib, &big), 0);
        assert_int_equal(stack_size_of(t), 1024 * 1024);
        assert_int_equal(fiber_await(t, &result, NULL), 0);
        assert_true((intptr_t)result != 0);

        assert_int_equal(fiber_spawn(&t, recurse_kib, &(int){8}, &near_default), 0);
        assert_int_equal(stack_size_of(t),
                         (FIBER_DEFAULT_STACK_SIZE - 100 + page - 1) / page * page);
        assert_int_equal(fiber_await(t, &result, NULL), 0);
    }
    return NULL;
}

static void test_stacks_are_reused_at_their_own_size(void **state)
{
    (void)state;
    run_main(spawn_sizes_in_turn, NULL, &virtual_clock);
}

/* Stack sizes so large that rounding them to pages, with a guard page and
 * the task, does not fit in a size_t, and a few that fit but cannot be
 * mapped: every one is refused with -ENOMEM, and none may crash. */
static size_t huge_sizes[16];

static size_t fill_huge_sizes(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t n = 0;

    huge_sizes[n++] = SIZE_MAX;
    huge_sizes[n++] = SIZE_MAX - 1;
    huge_sizes[n++] = SIZE_MAX - page;
    huge_sizes[n++] = SIZE_MAX - page + 1;
    huge_sizes[n++] = SIZE_MAX - 2 * page - 1;
    huge_sizes[n++] = SIZE_MAX - 2 * page;
    huge_sizes[n++] = SIZE_MAX - 12287;
    huge_sizes[n++] = SIZE_MAX - 10000;
    huge_sizes[n++] = SIZE_MAX - 8191;
    huge_sizes[n++] = SIZE_MAX - 8192;
    huge_sizes[n++] = SIZE_MAX - 3 * page - 1;
    huge_sizes[n++] = SIZE_MAX - 4 * page;
    huge_sizes[n++] = SIZE_MAX / 2 + 1;
    huge_sizes[n++] = SIZE_MAX / 2;
    huge_sizes[n++] = (size_t)1 << 56;
    return n;
}

static void *spawn_huge_stacks(void *arg)
{
    (void)arg;
    size_t n = fill_huge_sizes();
    fiber_task_t *t = NULL;

    for (size_t i = 0; i < n; i++) {
        fiber_attr_t attr = {.stack_size = huge_sizes[i]};
        int rc = fiber_spawn(&t, recurse_kib, &(int){1}, &attr);
        if (rc != -ENOMEM)
            fail_msg("stack_size SIZE_MAX - %zu: fiber_spawn gave %d",
                     SIZE_MAX - huge_sizes[i], rc);
        assert_null(t);
    }
    /* The loop is still usable. */
    assert_int_equal(fiber_spawn(&t, recurse_kib, &(int){4}, NULL), 0);
    assert_int_equal(fiber_await(t, NULL, NULL), 0);
    return NULL;
}

static void *never_runs(void *arg)
{
    *(bool *)arg = true;
    return NULL;
}

static void test_huge_stack_sizes_are_refused(void **state)
{
    (void)state;
    size_t n = fill_huge_sizes();

    run_main(spawn_huge_stacks, NULL, &virtual_clock);
    for (size_t i = 0; i < n; i++) {
        fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL,
                                .stack_size = huge_sizes[i]};
        bool ran = false;
        int rc = fiber_run(never_runs, &ran, &opts, NULL, NULL);
        if (rc != -ENOMEM)
            fail_msg("stack_size SIZE_MAX - %zu: fiber_run gave %d",
                     SIZE_MAX - huge_sizes[i], rc);
        assert_false(ran);
    }
}

static void test_loop_stack_size_applies_to_main_and_children(void **state)
{
    (void)state;
    int kib = 300;
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL,
                            .stack_size = 512 * 1024};

    run_main(recurse_kib, &kib, &opts);
}

static void test_overflow_hits_the_guard_page(void **state)
{
    (void)state;
    if (getenv("FIBER_TEST_UNDER_TOOL"))
        skip(); /* Sanitizers and Valgrind report the overflow themselves. */

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka's own SIGSEGV handler would carry on with the next test
         * in this child; the fault must end the child as in a program. */
        signal(SIGSEGV, SIG_DFL);
        /* 4 MiB of recursion on a 64 KiB stack must fault, not corrupt. */
        int kib = 4096;
        fiber_run(recurse_kib, &kib, &virtual_clock, NULL, NULL);
        _exit(0);
    }
    int wstatus;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFSIGNALED(wstatus));
    assert_int_equal(WTERMSIG(wstatus), SIGSEGV);
}

static void *return_arg(void *arg)
{
    return arg;
}

static void *spawn_and_await_sequentially(void *arg)
{
    size_t *chunks_after_first = arg;

    for (int i = 0; i < 10000; i++) {
        fiber_task_t *t;
        void *result = NULL;
        assert_int_equal(fiber_spawn(&t, return_arg, &result, NULL), 0);
        assert_int_equal(fiber_await(t, &result, NULL), 0);
        assert_ptr_equal(result, &result);
        if (i == 0)
            *chunks_after_first = fiber__loop->stacks.nchunks;
    }
    /* Every finished fiber's stack was reused: no chunk was added. */
    assert_int_equal(fiber__loop->stacks.nchunks, *chunks_after_first);
    return NULL;
}

static void test_stacks_of_finished_fibers_are_reused(void **state)
{
    (void)state;
    size_t chunks = 0;

    run_main(spawn_and_await_sequentially, &chunks, &virtual_clock);
    assert_int_equal(chunks, 1);
}

struct crowd {
    size_t fibers;
    size_t woke;
    size_t mappings;
};

static void *sleep_one_second(void *arg)
{
    struct crowd *crowd = arg;

    if (fiber_sleep(1.0) == 0)
        crowd->woke++;
    return NULL;
}

static void *spawn_crowd(void *arg)
{
    struct crowd *crowd = arg;
    fiber_task_t *t;

    for (size_t i = 0; i < crowd->fibers; i++) {
        assert_int_equal(fiber_spawn(&t, sleep_one_second, crowd, NULL), 0);
        assert_int_equal(fiber_detach(t), 0);
    }
    /* Let them all start and go to sleep, then count the mappings. */
    assert_int_equal(fiber_yield(), 0);
    crowd->mappings = count_mappings();
    assert_int_equal(fiber_sleep(2.0), 0);
    return NULL;
}

static void test_a_hundred_thousand_fibers_fit_the_map_count(void **state)
{
    (void)state;
    struct crowd crowd = {.fibers = 100000};

    run_main(spawn_crowd, &crowd, &virtual_clock);
    assert_int_equal(crowd.woke, crowd.fibers);
    /* vm.max_map_count is 65530 by default: stacks must share mappings. */
    assert_true(crowd.mappings < 20000);
}

/* ---- the real clock ----------------------------------------------------- */

struct idle_check {
    double cpu;
    double wall;
};

static void *sleep_while_idle(void *arg)
{
    struct idle_check *check = arg;
    double cpu0 = cpu_seconds(), t0 = fiber_time();

    assert_int_equal(fiber_sleep(0.3), 0);
    check->cpu = cpu_seconds() - cpu0;
    check->wall = fiber_time() - t0;
    return NULL;
}

static void test_idle_loop_does_not_spin(void **state)
{
    (void)state;
    struct idle_check check = {0};

    run_main(sleep_while_idle, &check, &real_clock);
    assert_true(check.wall >= 0.3);
    /* A busy wait would burn about 0.3 s of CPU. */
    assert_true(check.cpu < 0.1);
}

struct lateness {
    int64_t worst_early; /* most negative lateness seen; 0 if none early */
    int woken;
};

static void *sleep_random_real(void *arg)
{
    struct lateness *l = arg;
    int64_t ns = (int64_t)fiber_uniform(0, 20e6);
    int64_t deadline = fiber_now_ns() + ns;

    assert_int_equal(fiber_sleep_ns(ns), 0);
    int64_t late = fiber_now_ns() - deadline;
    if (late < l->worst_early)
        l->worst_early = late;
    l->woken++;
    return NULL;
}

static void *spawn_real_sleepers(void *arg)
{
    fiber_task_t *tasks[200];

    for (int i = 0; i < 200; i++)
        assert_int_equal(fiber_spawn(&tasks[i], sleep_random_real, arg, NULL), 0);
    assert_int_equal(fiber_gather(tasks, 200, NULL, NULL), 0);
    return NULL;
}

static void test_real_sleep_never_wakes_early(void **state)
{
    (void)state;
    struct lateness l = {0};

    run_main(spawn_real_sleepers, &l, &real_clock);
    assert_int_equal(l.woken, 200);
    assert_int_equal(l.worst_early, 0);
}

struct starve_check {
    int sleeper_woke;
    int yields;
};

static void *sleep_briefly(void *arg)
{
    struct starve_check *c = arg;

    assert_int_equal(fiber_sleep(0.01), 0);
    c->sleeper_woke = 1;
    return NULL;
}

static void *yield_until_sleeper_wakes(void *arg)
{
    struct starve_check *c = arg;
    fiber_task_t *t;
    double t0 = fiber_time();

    assert_int_equal(fiber_spawn(&t, sleep_briefly, c, NULL), 0);
    while (!c->sleeper_woke && fiber_time() - t0 < 2.0) {
        assert_int_equal(fiber_yield(), 0);
        c->yields++;
    }
    assert_int_equal(fiber_await(t, NULL, NULL), 0);
    return NULL;
}

static void test_yield_loop_does_not_starve_sleepers(void **state)
{
    (void)state;
    struct starve_check c = {0};

    run_main(yield_until_sleeper_wakes, &c, &real_clock);
    assert_int_equal(c.sleeper_woke, 1);
    assert_true(c.yields > 0);
}

/* A round of busy fibers lasts far longer than a short sleep: the
 * sleeper's deadline is looked at within the round, and it runs next. */
#define BUSY_FIBERS 400
#define BUSY_SPIN_NS 50000

struct busy_round {
    int turns;            /* busy fibers that have had their turn */
    int turns_at_wake;    /* how many had when the sleeper woke */
    int64_t start;        /* the sleepers' deadlines count from it */
    bool slow;            /* a sleeper began after its deadline */
    int order[64];        /* sleepers in the order they woke */
    int woken;
};

static void *busy_turn(void *arg)
{
    struct busy_round *b = arg;
    int64_t t0 = fiber_now_ns();

    /* Real time on the loop's clock: a busy machine only makes the round
     * longer. */
    while (fiber_now_ns() - t0 < BUSY_SPIN_NS)
        ;
    b->turns++;
    return NULL;
}

static void *sleep_one_ms(void *arg)
{
    struct busy_round *b = arg;

    assert_int_equal(fiber_sleep(0.001), 0);
    b->turns_at_wake = b->turns;
    return NULL;
}

static void *spawn_busy_round(void *arg)
{
    struct busy_round *b = arg;
    fiber_task_t *t[BUSY_FIBERS + 1];

    assert_int_equal(fiber_spawn(&t[0], sleep_one_ms, b, NULL), 0);
    for (int i = 1; i <= BUSY_FIBERS; i++)
        assert_int_equal(fiber_spawn(&t[i], busy_turn, b, NULL), 0);
    assert_int_equal(fiber_gather(t, BUSY_FIBERS + 1, NULL, NULL), 0);
    return NULL;
}

static void test_deadline_passed_within_a_round_wakes_at_once(void **state)
{
    (void)state;
    struct busy_round b = {0};

    run_main(spawn_busy_round, &b, &real_clock);
    assert_int_equal(b.turns, BUSY_FIBERS);
    /* 1 ms is 20 turns of 50 us, and timers are looked at every 16
     * dispatches; between rounds only, it woke after all 400. */
    assert_true(b.turns_at_wake < BUSY_FIBERS / 4);
}

struct ordered_sleeper {
    struct busy_round *b;
    int index;
    int64_t deadline;
};

static void *sleep_until_deadline(void *arg)
{
    struct ordered_sleeper *o = arg;

    o->deadline += o->b->start;
    if (fiber_now_ns() >= o->deadline)
        o->b->slow = true;
    assert_int_equal(fiber_sleep_until(o->deadline), 0);
    assert_true(fiber_now_ns() >= o->deadline);
    o->b->order[o->b->woken++] = o->index;
    return NULL;
}

static void *spawn_sleepers_among_busy(void *arg)
{
    struct busy_round *b = arg;
    enum { SLEEPERS = 64 };
    struct ordered_sleeper o[SLEEPERS];
    fiber_task_t *t[SLEEPERS + BUSY_FIBERS];

    /* Deadlines 10 ms after the first round begins, within the 20 ms of
     * the busy turns, 30 us apart (a turn is 50 us), in pairs equal to
     * the nanosecond, spawned in shuffled order: they fire in many
     * batches, within rounds and between them, and must still wake in
     * (deadline, spawn) order. */
    for (int k = 0; k < SLEEPERS; k++) {
        int i = (k * 37) % SLEEPERS;
        o[k] = (struct ordered_sleeper){b, k, 10000000 + (i / 2) * 30000};
    }
    for (int k = 0; k < SLEEPERS; k++)
        assert_int_equal(fiber_spawn(&t[k], sleep_until_deadline, &o[k], NULL), 0);
    for (int i = 0; i < BUSY_FIBERS; i++)
        assert_int_equal(fiber_spawn(&t[SLEEPERS + i], busy_turn, b, NULL), 0);
    /* Spawning takes time of its own: the sleepers, which run first,
     * count from here. */
    b->start = fiber_now_ns();
    assert_int_equal(fiber_gather(t, SLEEPERS + BUSY_FIBERS, NULL, NULL), 0);
    assert_int_equal(b->woken, SLEEPERS);
    /* Under a slow checker a sleeper may find its deadline gone: it yields
     * instead, and the order says nothing. */
    if (b->slow)
        return NULL;
    for (int w = 1; w < SLEEPERS; w++) {
        const struct ordered_sleeper *p = &o[b->order[w - 1]];
        const struct ordered_sleeper *q = &o[b->order[w]];
        assert_true(p->deadline < q->deadline ||
                    (p->deadline == q->deadline && p->index < q->index));
    }
    return NULL;
}

static void test_wakes_within_rounds_keep_deadline_order(void **state)
{
    (void)state;
    struct busy_round b = {0};

    run_main(spawn_sleepers_among_busy, &b, &real_clock);
}

/* ---- the virtual clock --------------------------------------------------- */

static void *sleep_an_hour(void *arg)
{
    int64_t *elapsed = arg;
    int64_t t0 = fiber_now_ns();

    assert_int_equal(fiber_sleep(3600.0), 0);
    *elapsed = fiber_now_ns() - t0;
    return NULL;
}

static void test_virtual_clock_jumps_over_sleeps(void **state)
{
    (void)state;
    int64_t elapsed = 0;
    struct timespec w0, w1;

    clock_gettime(CLOCK_MONOTONIC, &w0);
    run_main(sleep_an_hour, &elapsed, &virtual_clock);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    assert_int_equal(elapsed, (int64_t)3600 * 1000000000);
    assert_true(w1.tv_sec - w0.tv_sec < 5);
}

static void test_clock_env_variable_selects_virtual(void **state)
{
    (void)state;
    int64_t elapsed = 0;

    setenv("FIBER_CLOCK", "virtual", 1);
    run_main(sleep_an_hour, &elapsed, NULL);
    unsetenv("FIBER_CLOCK");
    assert_int_equal(elapsed, (int64_t)3600 * 1000000000);
}

/* ---- fiber_elapsed_ns: the length of a run ------------------------------ */

/* Left behind by main: on being cancelled, it cleans up for 0.25 s. */
static void *clean_up_slowly(void *arg)
{
    fiber_scope_t shield;
    (void)arg;

    assert_int_equal(fiber_sleep(INFINITY), -ECANCELED);
    assert_int_equal(fiber_scope_enter_shielded(&shield, 1), 0);
    assert_int_equal(fiber_sleep(0.25), 0);
    fiber_scope_exit(&shield);
    return NULL;
}

/* Records fiber_elapsed_ns and fiber_idle_ns at its start and after its
 * sleep, in seen[0] to seen[3]. */
static void *sleep_and_leave_a_task(void *arg)
{
    int64_t *seen = arg;
    fiber_task_t *task;

    seen[0] = fiber_elapsed_ns();
    seen[1] = fiber_idle_ns();
    assert_int_equal(fiber_spawn(&task, clean_up_slowly, NULL, NULL), 0);
    assert_int_equal(fiber_sleep(1.5), 0);
    seen[2] = fiber_elapsed_ns();
    seen[3] = fiber_idle_ns();
    return NULL;
}

/* Under the virtual clock, the length of a run is exact, inside it and
 * after it, and counts the cleanup after main returned. */
static void test_elapsed_times_the_whole_run(void **state)
{
    int64_t seen[4] = {-1, -1, -1, -1};
    fiber_options_t bad = {.clock = 99};
    (void)state;

    run_main(sleep_and_leave_a_task, seen, &virtual_clock);
    assert_int_equal(seen[0], 0);
    assert_int_equal(seen[2], 1500000000);
    assert_int_equal(fiber_elapsed_ns(), 1750000000);
    /* Reading it changes nothing; a run refused before it started lasted
     * no time at all. */
    assert_int_equal(fiber_elapsed_ns(), 1750000000);
    assert_int_equal(fiber_run(sleep_and_leave_a_task, seen, &bad, NULL, NULL),
                     -EINVAL);
    assert_int_equal(fiber_elapsed_ns(), 0);
}

static void *sleep_a_twentieth(void *arg)
{
    (void)arg;
    assert_int_equal(fiber_sleep(0.05), 0);
    return NULL;
}

/* Under the real clock, the run's real length: at least the sleep. */
static void test_elapsed_on_the_real_clock(void **state)
{
    (void)state;

    run_main(sleep_a_twentieth, NULL, &real_clock);
    assert_true(fiber_elapsed_ns() >= 50000000);
    assert_true(fiber_elapsed_ns() < 2000000000);
}

/* ---- fiber_idle_ns: the part of a run with nothing to do ---------------- */

/* Under the virtual clock, time passes only in jumps over idle waits:
 * every elapsed nanosecond is idle, inside the run and after it. */
static void test_idle_under_the_virtual_clock(void **state)
{
    int64_t seen[4] = {-1, -1, -1, -1};
    fiber_options_t bad = {.clock = 99};
    (void)state;

    run_main(sleep_and_leave_a_task, seen, &virtual_clock);
    assert_int_equal(seen[1], 0);
    assert_int_equal(seen[3], 1500000000);
    assert_int_equal(fiber_idle_ns(), 1750000000);
    assert_int_equal(fiber_idle_ns(), fiber_elapsed_ns());
    assert_int_equal(fiber_run(sleep_and_leave_a_task, seen, &bad, NULL, NULL),
                     -EINVAL);
    assert_int_equal(fiber_idle_ns(), 0);
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct idle_marks {
    int64_t idle[5];
    int64_t elapsed[5];
};

static void mark(struct idle_marks *m, int i)
{
    m->idle[i] = fiber_idle_ns();
    m->elapsed[i] = fiber_elapsed_ns();
}

/* Busy for 30 ms, asleep for 30 ms, waiting 30 ms on a pipe that stays
 * empty, then on one that is ready. */
static void *busy_then_idle(void *arg)
{
    struct idle_marks *m = arg;
    int fds[2];

    assert_int_equal(pipe(fds), 0);
    mark(m, 0);
    int64_t until = monotonic_ns() + 30000000;
    while (monotonic_ns() < until)
        ;
    mark(m, 1);
    assert_int_equal(fiber_sleep(0.03), 0);
    mark(m, 2);
    assert_int_equal(fiber_wait_fd_until(fds[0], FIBER_READABLE,
                                         fiber_now_ns() + 30000000),
                     -ETIMEDOUT);
    mark(m, 3);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(fiber_wait_fd_until(fds[0], FIBER_READABLE,
                                         fiber_now_ns() + 1000000000),
                     FIBER_READABLE);
    mark(m, 4);
    close(fds[0]);
    close(fds[1]);
    return NULL;
}

/* Under the real clock, working is not idle; sleeping and waiting for I/O
 * are, in the kernel's poller too; a descriptor already ready costs no
 * wait.  Bounds are generous: only the kinds of time are checked. */
static void test_idle_on_the_real_clock(void **state)
{
    struct idle_marks m;
    (void)state;

    run_main(busy_then_idle, &m, &real_clock);
    assert_int_equal(m.idle[1], m.idle[0]);
    assert_true(m.elapsed[1] - m.elapsed[0] >= 30000000);
    assert_true(m.idle[2] - m.idle[1] >= 25000000);
    assert_true(m.idle[3] - m.idle[2] >= 25000000);
    assert_true(m.idle[4] - m.idle[3] < 25000000);
    for (int i = 0; i < 5; i++)
        assert_true(m.idle[i] <= m.elapsed[i]);
    assert_true(fiber_idle_ns() >= m.idle[4]);
    assert_true(fiber_idle_ns() <= fiber_elapsed_ns());
}

/* ---- reaping finished tasks lets passed deadlines in ------------------- */

enum { GATHER_REAPED = 10000 };

struct reap_run {
    bool call_returned;
    int woke_during_call;   /* -1 until the sleeper wakes */
};

static void *return_index(void *arg)
{
    return arg;
}

static void *sleep_a_microsecond(void *arg)
{
    struct reap_run *r = arg;

    assert_int_equal(fiber_sleep_ns(1000), 0);
    r->woke_during_call = !r->call_returned;
    return NULL;
}

/* Let the tasks spawned so far run and finish, then start a sleeper of a
 * microsecond and let its deadline pass: the reaping call that follows
 * never has to wait. */
static fiber_task_t *sleeper_due(struct reap_run *r)
{
    fiber_task_t *sleeper;

    assert_int_equal(fiber_yield(), 0);
    assert_int_equal(fiber_spawn(&sleeper, sleep_a_microsecond, r, NULL), 0);
    assert_int_equal(fiber_yield(), 0);
    int64_t until = monotonic_ns() + 20000;
    while (monotonic_ns() < until)
        ;
    return sleeper;
}

static void *gather_finished_tasks(void *arg)
{
    struct reap_run *r = arg;
    fiber_task_t **tasks = calloc(GATHER_REAPED, sizeof(*tasks));
    void **results = calloc(GATHER_REAPED, sizeof(*results));

    assert_non_null(tasks);
    assert_non_null(results);
    for (uintptr_t i = 0; i < GATHER_REAPED; i++)
        assert_int_equal(fiber_spawn(&tasks[i], return_index, (void *)i, NULL), 0);
    fiber_task_t *sleeper = sleeper_due(r);
    for (int i = 0; i < GATHER_REAPED; i++)
        assert_true(fiber_done(tasks[i]));
    assert_int_equal(fiber_gather(tasks, GATHER_REAPED, results, NULL), 0);
    r->call_returned = true;
    for (uintptr_t i = 0; i < GATHER_REAPED; i++)
        assert_ptr_equal(results[i], (void *)i);
    assert_int_equal(fiber_await(sleeper, NULL, NULL), 0);
    free(tasks);
    free(results);
    return NULL;
}

/* The same for a group: destroying it frees its finished children in
 * one stretch of work. */
static void *destroy_group_of_finished_tasks(void *arg)
{
    struct reap_run *r = arg;
    fiber_group_t *group;

    assert_int_equal(fiber_group_create(&group), 0);
    for (uintptr_t i = 0; i < GATHER_REAPED; i++)
        assert_int_equal(fiber_group_spawn(group, NULL, return_index, (void *)i, NULL), 0);
    fiber_task_t *sleeper = sleeper_due(r);
    assert_int_equal(fiber_group_destroy(group), 0);
    r->call_returned = true;
    assert_int_equal(fiber_await(sleeper, NULL, NULL), 0);
    return NULL;
}

/* Reaping thousands of finished tasks never blocks, yet a fiber whose
 * deadline has passed runs before the call has reaped them all. */
static void test_reaping_finished_tasks_lets_due_sleepers_run(void **state)
{
    fiber_fn scenarios[] = {gather_finished_tasks, destroy_group_of_finished_tasks};
    (void)state;

    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        struct reap_run r = {.woke_during_call = -1};
        run_main(scenarios[i], &r, &real_clock);
        assert_int_equal(r.woke_during_call, 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_fiber_stack_size_allows_deep_recursion),
        cmocka_unit_test(test_loop_stack_size_applies_to_main_and_children),
        cmocka_unit_test(test_stacks_are_reused_at_their_own_size),
        cmocka_unit_test(test_huge_stack_sizes_are_refused),
        cmocka_unit_test(test_overflow_hits_the_guard_page),
        cmocka_unit_test(test_stacks_of_finished_fibers_are_reused),
        cmocka_unit_test(test_a_hundred_thousand_fibers_fit_the_map_count),
        cmocka_unit_test(test_idle_loop_does_not_spin),
        cmocka_unit_test(test_real_sleep_never_wakes_early),
        cmocka_unit_test(test_yield_loop_does_not_starve_sleepers),
        cmocka_unit_test(test_deadline_passed_within_a_round_wakes_at_once),
        cmocka_unit_test(test_wakes_within_rounds_keep_deadline_order),
        cmocka_unit_test(test_virtual_clock_jumps_over_sleeps),
        cmocka_unit_test(test_clock_env_variable_selects_virtual),
        cmocka_unit_test(test_elapsed_times_the_whole_run),
        cmocka_unit_test(test_elapsed_on_the_real_clock),
        cmocka_unit_test(test_idle_under_the_virtual_clock),
        cmocka_unit_test(test_idle_on_the_real_clock),
        cmocka_unit_test(test_reaping_finished_tasks_lets_due_sleepers_run),
    };
    return cmocka_run_group_tests_name("scheduler", tests, NULL, NULL);
}
