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
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <fenv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "stack_use.h"
#include "stderr_capture.h"

/* lib/debug/debug.h's FIBER__SPIN_ROUNDS: rounds of yields before the report. */
#define FIBER_TEST_SPIN_ROUNDS 100000l

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

/*
 * Every public call that only a fiber may make (or that needs a running
 * loop), made outside any: -EPERM, not a word normally, and one report
 * naming it in debug mode.  The arguments are valid as far as the call
 * checks them before the entry check; handles that cannot be made outside
 * a loop are stand-ins the call must not touch.
 */
static fiber_mutex_t perm_mutex;
static fiber_event_t perm_event;
static fiber_sem_t perm_sem;
static fiber_cond_t perm_cond;
static fiber_queue_t perm_queue;
static fiber_scope_t perm_scope;
static long perm_stand_in[64];
static char perm_buf[8];
static const int perm_signals[] = {SIGUSR1};
static struct sockaddr_in perm_addr = {.sin_family = AF_INET};

#define STAND_IN(type) ((type *)(void *)perm_stand_in)
#define IO_REPORT "fiber I/O (read, recv, write, send, accept or connect)"

static void *perm_fn(void *arg)
{
    return arg;
}

static int perm_sleep(void) { return fiber_sleep(1); }
static int perm_sleep_ns(void) { return fiber_sleep_ns(1); }
static int perm_sleep_until(void) { return fiber_sleep_until(1); }
static int perm_yield(void) { return fiber_yield(); }
static int perm_spawn(void)
{
    fiber_task_t *t;
    return fiber_spawn(&t, perm_fn, NULL, NULL);
}
static int perm_await(void)
{
    return fiber_await(STAND_IN(fiber_task_t), NULL, NULL);
}
static int perm_await_until(void)
{
    return fiber_await_until(STAND_IN(fiber_task_t), 0, NULL, NULL);
}
static int perm_wait_for(void)
{
    return fiber_wait_for(STAND_IN(fiber_task_t), 1, NULL, NULL);
}
static int perm_gather(void) { return fiber_gather(NULL, 0, NULL, NULL); }
static int perm_cancel(void) { return fiber_cancel(STAND_IN(fiber_task_t)); }
static int perm_detach(void) { return fiber_detach(STAND_IN(fiber_task_t)); }
static int perm_cancelling(void) { return fiber_cancelling(); }
static int perm_clock_virtual(void) { return fiber_clock_virtual(); }
static int perm_scope_enter(void)
{
    return fiber_scope_enter(&perm_scope, INT64_MAX);
}
static int perm_scope_enter_after(void)
{
    return fiber_scope_enter_after(&perm_scope, 1);
}
static int perm_scope_enter_shielded(void)
{
    return fiber_scope_enter_shielded(&perm_scope, 1);
}
static int perm_scope_exit(void) { return fiber_scope_exit(&perm_scope); }
static int perm_scope_cancel(void) { return fiber_scope_cancel(&perm_scope); }
static int perm_group_create(void)
{
    fiber_group_t *g;
    return fiber_group_create(&g);
}
static int perm_group_spawn(void)
{
    return fiber_group_spawn(STAND_IN(fiber_group_t), NULL, perm_fn, NULL, NULL);
}
static int perm_group_wait(void)
{
    return fiber_group_wait(STAND_IN(fiber_group_t));
}
static int perm_group_cancel(void)
{
    return fiber_group_cancel(STAND_IN(fiber_group_t));
}
static int perm_group_destroy(void)
{
    return fiber_group_destroy(STAND_IN(fiber_group_t));
}
static int perm_waitset_create(void)
{
    fiber_waitset_t *w;
    return fiber_waitset_create(&w);
}
static int perm_waitset_add(void)
{
    return fiber_waitset_add(STAND_IN(fiber_waitset_t), STAND_IN(fiber_task_t));
}
static int perm_waitset_next(void)
{
    fiber_task_t *t;
    return fiber_waitset_next(STAND_IN(fiber_waitset_t), 1, &t);
}
static int perm_waitset_destroy(void)
{
    return fiber_waitset_destroy(STAND_IN(fiber_waitset_t));
}
static int perm_wait_any(void)
{
    fiber_task_t *tasks[1] = {STAND_IN(fiber_task_t)};
    return fiber_wait_any(tasks, 1, 1);
}
static int perm_mutex_lock(void) { return fiber_mutex_lock(&perm_mutex); }
static int perm_mutex_lock_until(void)
{
    return fiber_mutex_lock_until(&perm_mutex, 0);
}
static int perm_mutex_trylock(void) { return fiber_mutex_trylock(&perm_mutex); }
static int perm_mutex_unlock(void) { return fiber_mutex_unlock(&perm_mutex); }
static int perm_event_wait(void) { return fiber_event_wait(&perm_event); }
static int perm_event_wait_until(void)
{
    return fiber_event_wait_until(&perm_event, 0);
}
static int perm_sem_acquire(void) { return fiber_sem_acquire(&perm_sem); }
static int perm_sem_acquire_until(void)
{
    return fiber_sem_acquire_until(&perm_sem, 0);
}
static int perm_cond_wait(void)
{
    return fiber_cond_wait(&perm_cond, &perm_mutex);
}
static int perm_cond_wait_until(void)
{
    return fiber_cond_wait_until(&perm_cond, &perm_mutex, 0);
}
static int perm_queue_put(void) { return fiber_queue_put(&perm_queue, NULL); }
static int perm_queue_put_until(void)
{
    return fiber_queue_put_until(&perm_queue, NULL, 0);
}
static int perm_queue_get(void)
{
    void *item;
    return fiber_queue_get(&perm_queue, &item);
}
static int perm_queue_get_until(void)
{
    void *item;
    return fiber_queue_get_until(&perm_queue, &item, 0);
}
static int perm_queue_join(void) { return fiber_queue_join(&perm_queue); }
static int perm_queue_join_until(void)
{
    return fiber_queue_join_until(&perm_queue, 0);
}
static int perm_wait_fd(void) { return fiber_wait_fd(0, FIBER_READABLE); }
static int perm_wait_fd_until(void)
{
    return fiber_wait_fd_until(0, FIBER_READABLE, 0);
}
static int perm_read(void) { return (int)fiber_read(0, perm_buf, 1); }
static int perm_read_until(void)
{
    return (int)fiber_read_until(0, perm_buf, 1, 0);
}
static int perm_write(void) { return (int)fiber_write(1, perm_buf, 1); }
static int perm_write_until(void)
{
    return (int)fiber_write_until(1, perm_buf, 1, 0);
}
static int perm_recv(void) { return (int)fiber_recv(0, perm_buf, 1, 0); }
static int perm_recv_until(void)
{
    return (int)fiber_recv_until(0, perm_buf, 1, 0, 0);
}
static int perm_send(void) { return (int)fiber_send(1, perm_buf, 1, 0); }
static int perm_send_until(void)
{
    return (int)fiber_send_until(1, perm_buf, 1, 0, 0);
}
static int perm_accept(void) { return fiber_accept(0, NULL, NULL); }
static int perm_accept_until(void)
{
    return fiber_accept_until(0, NULL, NULL, 0);
}
static int perm_connect(void)
{
    return fiber_connect(0, (struct sockaddr *)&perm_addr, sizeof(perm_addr));
}
static int perm_connect_until(void)
{
    return fiber_connect_until(0, (struct sockaddr *)&perm_addr,
                               sizeof(perm_addr), 0);
}
static int perm_tcp_listen(void) { return fiber_tcp_listen("localhost:0", 1); }
static int perm_tcp_dial(void) { return fiber_tcp_dial("127.0.0.1:1"); }
static int perm_tcp_dial_until(void)
{
    return fiber_tcp_dial_until("127.0.0.1:1", 0);
}
static int perm_to_thread(void) { return fiber_to_thread(perm_fn, NULL, NULL); }
static int perm_process_spawn(void)
{
    static char *const argv[] = {"true", NULL};
    fiber_process_t *proc;
    return fiber_process_spawn(&proc, argv, 0, NULL);
}
static int perm_process_wait(void)
{
    return fiber_process_wait(STAND_IN(fiber_process_t), NULL);
}
static int perm_process_wait_until(void)
{
    return fiber_process_wait_until(STAND_IN(fiber_process_t), NULL, 0);
}
static int perm_signal_watch(void) { return fiber_signal_watch(perm_signals, 1); }
static int perm_signal_wait(void) { return fiber_signal_wait(perm_signals, 1); }
static int perm_signal_wait_until(void)
{
    return fiber_signal_wait_until(perm_signals, 1, 0);
}
static int perm_dump(void) { return fiber_dump(stdout); }
static int perm_backtrace(void)
{
    void *frames[4];
    return fiber_backtrace(NULL, frames, 4);
}
static int perm_stack_usage(void)
{
    size_t used, size;
    return fiber_stack_usage(NULL, &used, &size);
}
static fiber_reader_t *perm_reader;
static fiber_writer_t *perm_writer;
static int perm_reader_readline(void)
{
    char *line;
    return (int)fiber_reader_readline(perm_reader, &line);
}
static int perm_reader_readuntil(void)
{
    char *data;
    return (int)fiber_reader_readuntil(perm_reader, ";", 1, &data);
}
static int perm_reader_readexactly(void)
{
    size_t nread;
    return (int)fiber_reader_readexactly(perm_reader, perm_buf, 1, &nread);
}
static int perm_reader_read(void)
{
    return (int)fiber_reader_read(perm_reader, perm_buf, 1);
}
static int perm_writer_write(void)
{
    return (int)fiber_writer_write(perm_writer, "x", 1);
}
static int perm_writer_drain(void) { return fiber_writer_drain(perm_writer); }
static int perm_gather_fail_fast(void)
{
    fiber_task_t *tasks[] = {STAND_IN(fiber_task_t)};
    size_t failed;
    return fiber_gather_fail_fast(tasks, 1, NULL, NULL, &failed);
}
static int perm_process_communicate(void)
{
    int pipes[3] = {-1, -1, -1};
    fiber_process_output_t out;
    return fiber_process_communicate(STAND_IN(fiber_process_t), pipes, NULL, 0,
                                     &out);
}
static int perm_writev(void)
{
    struct iovec iov = {perm_buf, 1};
    return (int)fiber_writev(1, &iov, 1);
}
static int perm_writev_until(void)
{
    struct iovec iov = {perm_buf, 1};
    return (int)fiber_writev_until(1, &iov, 1, 0);
}
static int perm_tcp_accept(void)
{
    int fds[2];
    return fiber_tcp_accept(0, fds, 2);
}
static int perm_wait_fd_again_until(void)
{
    return fiber_wait_fd_again_until(0, FIBER_READABLE, 0);
}

/* The call, and the name its report gives (the call's own, the one it
 * calls, or the I/O calls' common name). */
static const struct {
    const char *call, *report;
    int (*fn)(void);
} perm_calls[] = {
    {"fiber_sleep", "fiber_sleep", perm_sleep},
    {"fiber_sleep_ns", "fiber_sleep_ns", perm_sleep_ns},
    {"fiber_sleep_until", "fiber_sleep_until", perm_sleep_until},
    {"fiber_yield", "fiber_yield", perm_yield},
    {"fiber_spawn", "fiber_spawn", perm_spawn},
    {"fiber_await", "fiber_await", perm_await},
    {"fiber_await_until", "fiber_await_until", perm_await_until},
    {"fiber_wait_for", "fiber_wait_for", perm_wait_for},
    {"fiber_gather", "fiber_gather", perm_gather},
    {"fiber_cancel", "fiber_cancel", perm_cancel},
    {"fiber_detach", "fiber_detach", perm_detach},
    {"fiber_cancelling", "fiber_cancelling", perm_cancelling},
    {"fiber_clock_virtual", "fiber_clock_virtual", perm_clock_virtual},
    {"fiber_scope_enter", "fiber_scope_enter", perm_scope_enter},
    {"fiber_scope_enter_after", "fiber_scope_enter_after", perm_scope_enter_after},
    {"fiber_scope_enter_shielded", "fiber_scope_enter_shielded",
     perm_scope_enter_shielded},
    {"fiber_scope_exit", "fiber_scope_exit", perm_scope_exit},
    {"fiber_scope_cancel", "fiber_scope_cancel", perm_scope_cancel},
    {"fiber_group_create", "fiber_group_create", perm_group_create},
    {"fiber_group_spawn", "fiber_group_spawn", perm_group_spawn},
    {"fiber_group_wait", "fiber_group_wait", perm_group_wait},
    {"fiber_group_cancel", "fiber_group_cancel", perm_group_cancel},
    {"fiber_group_destroy", "fiber_group_destroy", perm_group_destroy},
    {"fiber_waitset_create", "fiber_waitset_create", perm_waitset_create},
    {"fiber_waitset_add", "fiber_waitset_add", perm_waitset_add},
    {"fiber_waitset_next", "fiber_waitset_next", perm_waitset_next},
    {"fiber_waitset_destroy", "fiber_waitset_destroy", perm_waitset_destroy},
    {"fiber_wait_any", "fiber_wait_any", perm_wait_any},
    {"fiber_mutex_lock", "fiber_mutex_lock", perm_mutex_lock},
    {"fiber_mutex_lock_until", "fiber_mutex_lock_until", perm_mutex_lock_until},
    {"fiber_mutex_trylock", "fiber_mutex_trylock", perm_mutex_trylock},
    {"fiber_mutex_unlock", "fiber_mutex_unlock", perm_mutex_unlock},
    {"fiber_event_wait", "fiber_event_wait", perm_event_wait},
    {"fiber_event_wait_until", "fiber_event_wait_until", perm_event_wait_until},
    {"fiber_sem_acquire", "fiber_sem_acquire", perm_sem_acquire},
    {"fiber_sem_acquire_until", "fiber_sem_acquire_until", perm_sem_acquire_until},
    {"fiber_cond_wait", "fiber_cond_wait", perm_cond_wait},
    {"fiber_cond_wait_until", "fiber_cond_wait_until", perm_cond_wait_until},
    {"fiber_queue_put", "fiber_queue_put", perm_queue_put},
    {"fiber_queue_put_until", "fiber_queue_put_until", perm_queue_put_until},
    {"fiber_queue_get", "fiber_queue_get", perm_queue_get},
    {"fiber_queue_get_until", "fiber_queue_get_until", perm_queue_get_until},
    {"fiber_queue_join", "fiber_queue_join", perm_queue_join},
    {"fiber_queue_join_until", "fiber_queue_join_until", perm_queue_join_until},
    {"fiber_wait_fd", "fiber_wait_fd_until", perm_wait_fd},
    {"fiber_wait_fd_until", "fiber_wait_fd_until", perm_wait_fd_until},
    {"fiber_read", IO_REPORT, perm_read},
    {"fiber_read_until", IO_REPORT, perm_read_until},
    {"fiber_write", IO_REPORT, perm_write},
    {"fiber_write_until", IO_REPORT, perm_write_until},
    {"fiber_recv", IO_REPORT, perm_recv},
    {"fiber_recv_until", IO_REPORT, perm_recv_until},
    {"fiber_send", IO_REPORT, perm_send},
    {"fiber_send_until", IO_REPORT, perm_send_until},
    {"fiber_accept", IO_REPORT, perm_accept},
    {"fiber_accept_until", IO_REPORT, perm_accept_until},
    {"fiber_connect", IO_REPORT, perm_connect},
    {"fiber_connect_until", IO_REPORT, perm_connect_until},
    {"fiber_tcp_listen (a host name)", "fiber_tcp_listen", perm_tcp_listen},
    {"fiber_tcp_dial", "fiber_tcp_dial_until", perm_tcp_dial},
    {"fiber_tcp_dial_until", "fiber_tcp_dial_until", perm_tcp_dial_until},
    {"fiber_to_thread", "fiber_to_thread", perm_to_thread},
    {"fiber_process_spawn", "fiber_process_spawn", perm_process_spawn},
    {"fiber_process_wait", "fiber_process_wait_until", perm_process_wait},
    {"fiber_process_wait_until", "fiber_process_wait_until",
     perm_process_wait_until},
    {"fiber_signal_watch", "fiber_signal_watch", perm_signal_watch},
    {"fiber_signal_wait", "fiber_signal_wait_until", perm_signal_wait},
    {"fiber_signal_wait_until", "fiber_signal_wait_until", perm_signal_wait_until},
    {"fiber_dump", "fiber_dump", perm_dump},
    {"fiber_backtrace", "fiber_backtrace", perm_backtrace},
    {"fiber_stack_usage", "fiber_stack_usage", perm_stack_usage},
    {"fiber_reader_readline", "fiber_reader_readline_until", perm_reader_readline},
    {"fiber_reader_readuntil", "fiber_reader_readuntil_until", perm_reader_readuntil},
    {"fiber_reader_readexactly", "fiber_reader_readexactly_until",
     perm_reader_readexactly},
    {"fiber_reader_read", "fiber_reader_read_until", perm_reader_read},
    {"fiber_writer_write", "fiber_writer_write_until", perm_writer_write},
    {"fiber_writer_drain", "fiber_writer_drain_until", perm_writer_drain},
    {"fiber_gather_fail_fast", "fiber_gather_fail_fast", perm_gather_fail_fast},
    {"fiber_process_communicate", "fiber_process_communicate_until",
     perm_process_communicate},
    {"fiber_wait_fd_again_until", "fiber_wait_fd_again_until",
     perm_wait_fd_again_until},
    {"fiber_writev", "fiber_writev_until", perm_writev},
    {"fiber_writev_until", "fiber_writev_until", perm_writev_until},
    {"fiber_tcp_accept", IO_REPORT, perm_tcp_accept},
};

static void test_every_fiber_only_call_outside_is_eperm_and_reported(void **state)
{
    struct captured_stderr c;
    char text[1024];
    (void)state;

    assert_int_equal(fiber_mutex_init(&perm_mutex), 0);
    assert_int_equal(fiber_event_init(&perm_event), 0);
    assert_int_equal(fiber_sem_init(&perm_sem, 0), 0);
    assert_int_equal(fiber_cond_init(&perm_cond), 0);
    assert_int_equal(fiber_queue_init(&perm_queue, 1), 0);
    assert_int_equal(fiber_reader_new(&perm_reader, 0, 0), 0);
    /* A writer with something to drain, so that drain must wait. */
    assert_int_equal(fiber_writer_new(&perm_writer, 1, 16), 0);

    for (size_t i = 0; i < sizeof(perm_calls) / sizeof(perm_calls[0]); i++) {
        /* Not in debug mode: -EPERM, and not a word. */
        unsetenv("FIBER_DEBUG");
        capture_stderr(&c);
        int rc = perm_calls[i].fn();
        release_stderr(&c, text, sizeof(text));
        if (rc != -EPERM)
            fail_msg("%s outside a fiber returned %d, not -EPERM",
                     perm_calls[i].call, rc);
        if (text[0])
            fail_msg("%s outside debug mode wrote:\n%s", perm_calls[i].call, text);

        /* In debug mode: -EPERM, and one report that names it. */
        setenv("FIBER_DEBUG", "1", 1);
        capture_stderr(&c);
        rc = perm_calls[i].fn();
        release_stderr(&c, text, sizeof(text));
        unsetenv("FIBER_DEBUG");
        if (rc != -EPERM)
            fail_msg("%s in debug mode returned %d, not -EPERM",
                     perm_calls[i].call, rc);
        char line[160];
        snprintf(line, sizeof(line), "libfiber: debug: %s called outside a ",
                 perm_calls[i].report);
        if (!strstr(text, line) || count_occurrences(text, "libfiber:") != 1)
            fail_msg("%s: no one report \"%s\" in:\n%s", perm_calls[i].call,
                     line, text);
    }
    assert_int_equal(fiber_queue_destroy(&perm_queue), 0);
    assert_int_equal(fiber_reader_free(perm_reader), 0);
    assert_int_equal(fiber_writer_free(perm_writer), 0);
}

/* ---- a loop spinning on fiber_yield under the virtual clock ------------- */

struct spin {
    bool flag;
    bool sleep_between;  /* poll as one should: sleep between polls */
    long polls_left;     /* the pollers give up after this many */
};

/* Poll spin->flag, which the setter sets after a virtual second. */
static void *poll_flag(void *arg)
{
    struct spin *s = arg;

    while (!s->flag && s->polls_left > 0) {
        s->polls_left--;
        CHECK_EQ(s->sleep_between ? fiber_sleep(1e-3) : fiber_yield(), 0);
    }
    return NULL;
}

static void *set_flag(void *arg)
{
    struct spin *s = arg;

    CHECK_EQ(fiber_sleep(1), 0);
    s->flag = true;
    return NULL;
}

static void *spin_main(void *arg)
{
    fiber_task_t *t[3];
    fiber_attr_t poller = {.name = "poller"}, other = {.name = "other poller"};

    CHECK_EQ(fiber_spawn(&t[0], set_flag, arg, &(fiber_attr_t){.name = "setter"}), 0);
    CHECK_EQ(fiber_spawn(&t[1], poll_flag, arg, &poller), 0);
    CHECK_EQ(fiber_spawn(&t[2], poll_flag, arg, &other), 0);
    CHECK_EQ(fiber_gather(t, 3, NULL, NULL), 0);
    return NULL;
}

/* Run spin_main in debug mode on the virtual clock; returns its stderr. */
static void run_spin(struct spin *s, char *text, size_t size)
{
    struct captured_stderr c;
    fiber_debug_options_t debug = {.checks = 1};
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &debug};
    int status = -1;

    failed_checks = 0;
    capture_stderr(&c);
    int rc = fiber_run(spin_main, s, &opts, NULL, &status);
    release_stderr(&c, text, size);
    assert_int_equal(rc, 0);
    assert_int_equal(status, 0);
    assert_int_equal(failed_checks, 0);
}

static void test_yield_spinning_under_virtual_clock_is_reported(void **state)
{
    static char text[16384];
    (void)state;

    /* Yielding only, the pollers keep virtual time from ever reaching the
     * setter's second: reported once, naming both, while they spin. */
    struct spin s = {.polls_left = 3 * FIBER_TEST_SPIN_ROUNDS};
    run_spin(&s, text, sizeof(text));
    assert_false(s.flag && s.polls_left > 0);
    assert_int_equal(count_occurrences(text, "libfiber: debug:"), 1);
    assert_contains(text, "libfiber: debug: virtual time has not moved for");
    assert_contains(text, "every runnable fiber only yielded");
    assert_contains(text, "'poller'");
    assert_contains(text, "'other poller'");

    /* Sleeping between polls lets time move: not a word. */
    s = (struct spin){.sleep_between = true, .polls_left = 3 * FIBER_TEST_SPIN_ROUNDS};
    run_spin(&s, text, sizeof(text));
    assert_true(s.flag);
    assert_string_equal(text, "");
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
        cmocka_unit_test(test_every_fiber_only_call_outside_is_eperm_and_reported),
        cmocka_unit_test(test_yield_spinning_under_virtual_clock_is_reported),
        cmocka_unit_test(test_debug_mode_measures_a_reused_stack_afresh),
        cmocka_unit_test(test_debug_mode_spawns_a_terabyte_stack_quickly),
        cmocka_unit_test(test_debug_mode_recovers_from_enomem_as_normal_mode_does),
        cmocka_unit_test(test_bad_debug_options_and_environment_are_einval),
        cmocka_unit_test(test_environment_turns_debug_mode_on_and_options_off),
    };

    return cmocka_run_group_tests_name("debug", tests, NULL, NULL);
}
