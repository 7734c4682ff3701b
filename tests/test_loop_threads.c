/*
 * test_loop_threads.c - one loop per thread: two threads each run a loop
 * of 10,000 fibers at the same time, each loop with its own clock, timers,
 * descriptors and thread pool, and neither disturbs the other.
 *
 * The fibers' checks are counted per thread (fiber_check.h's counter is
 * not shared between threads) and asserted on the main thread.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fiber.h"

#define THREADS 2
#define FIBERS 10000
#define FIBERS_UNDER_TOOL 500

/* What one thread's loop saw. */
struct loop_report {
    int index;
    size_t fibers;
    pthread_barrier_t *start;
    int run_rc, main_status;
    int errors;               /* calls that did not return what they should */
    long bytes_read, byte_sum, expected_sum;
    int64_t virtual_elapsed;
    pthread_t loop_thread;
    bool same_thread_after_switches;
};

struct fiber_arg {
    struct loop_report *report;
    int fd;
    int i;
};

#define EXPECT(report, cond)                                                 \
    do {                                                                     \
        if (!(cond)) {                                                       \
            (report)->errors++;                                              \
            fprintf(stderr, "thread %d: %s:%d: %s\n", (report)->index,       \
                    __FILE__, __LINE__, #cond);                              \
        }                                                                    \
    } while (0)

/* Each fiber sleeps a little virtual time, yields, and writes one byte. */
static void *worker(void *arg)
{
    struct fiber_arg *a = arg;
    unsigned char c = (unsigned char)(a->i % 251);

    EXPECT(a->report, fiber_sleep_ns((a->i % 10) * INT64_C(1000000)) == 0);
    EXPECT(a->report, fiber_yield() == 0);
    EXPECT(a->report, pthread_equal(pthread_self(), a->report->loop_thread));
    EXPECT(a->report, fiber_write(a->fd, &c, 1) == 1);
    return NULL;
}

static void *reader(void *arg)
{
    struct fiber_arg *a = arg;
    unsigned char buf[512];

    while (a->report->bytes_read < (long)a->report->fibers) {
        ssize_t n = fiber_read(a->fd, buf, sizeof(buf));
        EXPECT(a->report, n > 0);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            a->report->byte_sum += buf[i];
        a->report->bytes_read += n;
    }
    return NULL;
}

static void *add_one(void *arg)
{
    return (void *)((intptr_t)arg + 1);
}

static void *loop_main(void *arg)
{
    struct loop_report *r = arg;
    int sv[2];
    int64_t start = fiber_now_ns();

    r->loop_thread = pthread_self();
    /* Both loops are running from here on. */
    pthread_barrier_wait(r->start);
    EXPECT(r, fiber_clock_virtual() == 1);
    EXPECT(r, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                         sv) == 0);

    struct fiber_arg *args = calloc(r->fibers + 1, sizeof(*args));
    fiber_task_t **tasks = calloc(r->fibers + 1, sizeof(*tasks));
    EXPECT(r, args && tasks);
    if (!args || !tasks) {
        free(args);
        free(tasks);
        return fiber_fail(-ENOMEM);
    }
    args[r->fibers] = (struct fiber_arg){r, sv[1], -1};
    EXPECT(r, fiber_spawn(&tasks[r->fibers], reader, &args[r->fibers], NULL) == 0);
    for (size_t i = 0; i < r->fibers; i++) {
        args[i] = (struct fiber_arg){r, sv[0], (int)i};
        r->expected_sum += (long)(i % 251);
        EXPECT(r, fiber_spawn(&tasks[i], worker, &args[i], NULL) == 0);
    }
    void *one = NULL;
    EXPECT(r, fiber_to_thread(add_one, (void *)(intptr_t)r->index, &one) == 0);
    EXPECT(r, (intptr_t)one == r->index + 1);
    EXPECT(r, fiber_gather(tasks, r->fibers + 1, NULL, NULL) == 0);
    r->virtual_elapsed = fiber_now_ns() - start;
    EXPECT(r, fiber_close(sv[0]) == 0);
    EXPECT(r, fiber_close(sv[1]) == 0);
    free(args);
    free(tasks);
    return NULL;
}

static void *thread_main(void *arg)
{
    struct loop_report *r = arg;
    const fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL};

    r->run_rc = fiber_run(loop_main, r, &opts, NULL, &r->main_status);
    return NULL;
}

static void test_two_threads_each_run_a_loop_of_ten_thousand_fibers(void **state)
{
    pthread_t threads[THREADS];
    struct loop_report reports[THREADS];
    pthread_barrier_t start;
    size_t fibers = getenv("FIBER_TEST_UNDER_TOOL") ? FIBERS_UNDER_TOOL : FIBERS;

    (void)state;
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        reports[i] = (struct loop_report){.index = i, .fibers = fibers,
                                          .start = &start, .run_rc = -1};
        assert_int_equal(pthread_create(&threads[i], NULL, thread_main, &reports[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);

    for (int i = 0; i < THREADS; i++) {
        struct loop_report *r = &reports[i];
        assert_int_equal(r->run_rc, 0);
        assert_int_equal(r->main_status, 0);
        assert_int_equal(r->errors, 0);
        assert_int_equal(r->bytes_read, (long)fibers);
        assert_int_equal(r->byte_sum, r->expected_sum);
        /* The longest sleep was 9 ms of this loop's own virtual time. */
        assert_int_equal(r->virtual_elapsed, 9 * 1000 * 1000);
    }
}

/* A loop already running on this thread refuses a second one; another
 * thread may run its own meanwhile. */
static void *nested_run(void *arg)
{
    int *rc = arg;

    *rc = fiber_run(add_one, NULL, NULL, NULL, NULL);
    return NULL;
}

static void *other_thread_run(void *arg)
{
    int *rc = arg;
    void *result = NULL;

    *rc = fiber_run(add_one, (void *)41, NULL, &result, NULL);
    if (*rc == 0 && (intptr_t)result != 42)
        *rc = -1;
    return NULL;
}

static void *start_other_loop(void *arg)
{
    int *rcs = arg;
    pthread_t thread;

    nested_run(&rcs[0]);
    if (pthread_create(&thread, NULL, other_thread_run, &rcs[1]) == 0)
        pthread_join(thread, NULL);   /* blocks this loop briefly: a test */
    return NULL;
}

static void test_one_loop_per_thread(void **state)
{
    int rcs[2] = {1, 1};

    (void)state;
    assert_int_equal(fiber_run(start_other_loop, rcs, NULL, NULL, NULL), 0);
    assert_int_equal(rcs[0], -EBUSY);
    assert_int_equal(rcs[1], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_threads_each_run_a_loop_of_ten_thousand_fibers),
        cmocka_unit_test(test_one_loop_per_thread),
    };

    return cmocka_run_group_tests_name("loop_threads", tests, NULL, NULL);
}
