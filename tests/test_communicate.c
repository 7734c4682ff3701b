/*
 * test_communicate.c - fiber_process_communicate: a child reading 1 MiB
 * on stdin while writing 1 MiB to stdout and 1 MiB to stderr, in every
 * order, without deadlock; exit codes and signals decoded; a child that
 * reads none of its input (no SIGPIPE); no pipes, stderr into stdout; the
 * deadline and a cancel kill and reap the child and close every pipe; and
 * arguments refused without touching anything.
 *
 * Children are real processes, so these scenarios run on the real clock,
 * with generous bounds; each call has a deadline, so that a deadlock
 * fails the test instead of hanging it.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "io_helpers.h"

#define MIB (1024 * 1024)
#define ALL_PIPES (FIBER_PIPE_STDIN | FIBER_PIPE_STDOUT | FIBER_PIPE_STDERR)

static int count_fds(void)
{
    return count_dir_entries("/proc/self/fd");
}

static int communicate(char *const argv[], int flags, const void *input,
                       size_t len, fiber_process_output_t *out, double seconds);

/* The descriptors open once the loop has its own (epoll and the like),
 * which a first child makes it open. */
static int count_fds_after_warm_up(void)
{
    char *argv[] = {"true", NULL};
    fiber_process_output_t out;

    CHECK_EQ(communicate(argv, FIBER_PIPE_STDOUT, NULL, 0, &out, 30), 0);
    fiber_process_output_free(&out);
    return count_fds();
}

static int64_t in_seconds(double s)
{
    return fiber_now_ns() + (int64_t)(s * 1e9);
}

/* Spawn argv with flags and communicate with it, with a deadline of
 * seconds.  Returns what communicate returned; checks that every pipe
 * entry was set to -1. */
static int communicate(char *const argv[], int flags, const void *input,
                       size_t len, fiber_process_output_t *out, double seconds)
{
    fiber_process_t *proc = NULL;
    int pipes[3] = {-1, -1, -1};

    int rc = fiber_process_spawn(&proc, argv, flags, pipes);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        return rc;
    rc = fiber_process_communicate_until(proc, flags ? pipes : NULL, input, len,
                                         out, in_seconds(seconds));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pipes[i], -1);
    return rc;
}

static bool all_bytes(const char *data, size_t len, char c)
{
    for (size_t i = 0; i < len; i++)
        if (data[i] != c)
            return false;
    return true;
}

/* 1 MiB that is not all one byte, so that order and loss show. */
static char *pattern(void)
{
    char *p = malloc(MIB);

    if (p)
        for (size_t i = 0; i < MIB; i++)
            p[i] = (char)('a' + i % 23);
    return p;
}

/* ---- no deadlock with large output ------------------------------------ */

/* The shell's cat copies stdin to stdout while we still write stdin; head
 * writes stderr before or after, or stdout comes first and stdin last. */
static void *scenario_large_in_and_out(void *arg)
{
    static char *const scripts[] = {
        "cat; head -c 1048576 /dev/zero >&2",
        "head -c 1048576 /dev/zero >&2; cat",
        "head -c 1048576 /dev/zero; cat >&2",
        "exec 3<&0; cat <&3 & head -c 1048576 /dev/zero >&2; wait",
    };
    char *input = pattern();
    int fds = count_fds_after_warm_up();

    (void)arg;
    CHECK(input != NULL);
    for (size_t i = 0; input && i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        char *argv[] = {"sh", "-c", scripts[i], NULL};
        fiber_process_output_t out;
        int rc = communicate(argv, ALL_PIPES, input, MIB, &out, 60);
        CHECK_EQ(rc, 0);
        CHECK_EQ(out.returncode, 0);
        CHECK_EQ(out.out_len, MIB);
        CHECK_EQ(out.err_len, MIB);
        /* The copy of stdin is where the script sent it; the zeros are
         * in the other stream. */
        bool copy_on_stdout = i != 2;
        const char *copy = copy_on_stdout ? out.out : out.err;
        const char *zeros = copy_on_stdout ? out.err : out.out;
        CHECK(copy && memcmp(copy, input, MIB) == 0);
        CHECK(zeros && all_bytes(zeros, MIB, '\0'));
        CHECK(out.out && out.out[out.out_len] == '\0');
        fiber_process_output_free(&out);
        CHECK(out.out == NULL && out.err == NULL && out.out_len == 0);
    }
    CHECK_EQ(count_fds(), fds);
    free(input);
    return NULL;
}

static void test_large_input_and_outputs_do_not_deadlock(void **state)
{
    (void)state;
    run_real(scenario_large_in_and_out, NULL);
}

/* ---- exit statuses ------------------------------------------------------ */

static void *scenario_returncodes(void *arg)
{
    fiber_process_output_t out;

    (void)arg;
    char *exit3[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    CHECK_EQ(communicate(exit3, FIBER_PIPE_STDOUT | FIBER_PIPE_STDERR, NULL, 0,
                         &out, 30), 0);
    CHECK_EQ(out.returncode, 3);
    CHECK(out.out && strcmp(out.out, "out\n") == 0);
    CHECK(out.err && strcmp(out.err, "err\n") == 0);
    fiber_process_output_free(&out);

    char *killed[] = {"sh", "-c", "kill -TERM $$", NULL};
    CHECK_EQ(communicate(killed, FIBER_PIPE_STDOUT, NULL, 0, &out, 30), 0);
    CHECK_EQ(out.returncode, -SIGTERM);
    /* A pipe that saw nothing gives an empty string, not NULL. */
    CHECK(out.out && out.out_len == 0 && out.out[0] == '\0');
    CHECK(out.err == NULL);
    fiber_process_output_free(&out);
    return NULL;
}

static void test_returncode_exit_code_or_minus_signal(void **state)
{
    (void)state;
    run_real(scenario_returncodes, NULL);
    assert_int_equal(fiber_process_returncode(0), 0);
    assert_int_equal(fiber_process_returncode(3 << 8), 3);
    assert_int_equal(fiber_process_returncode(255 << 8), 255);
    assert_int_equal(fiber_process_returncode(SIGKILL), -SIGKILL);
    assert_int_equal(fiber_process_returncode(SIGSEGV | 0x80), -SIGSEGV);
    assert_int_equal(fiber_process_returncode(0x7f | (SIGSTOP << 8)), INT_MIN);
}

/* ---- input the child does not read -------------------------------------- */

static void *scenario_input_not_read(void *arg)
{
    fiber_process_output_t out;
    char *input = pattern();

    (void)arg;
    CHECK(input != NULL);
    if (!input)
        return NULL;
    /* SIGPIPE keeps its default action, which would end this test. */
    char *none[] = {"true", NULL};
    CHECK_EQ(communicate(none, FIBER_PIPE_STDIN, input, MIB, &out, 30), 0);
    CHECK_EQ(out.returncode, 0);
    CHECK(out.out == NULL && out.err == NULL);
    fiber_process_output_free(&out);

    char *some[] = {"head", "-c", "10", NULL};
    CHECK_EQ(communicate(some, FIBER_PIPE_STDIN | FIBER_PIPE_STDOUT, input, MIB,
                         &out, 30), 0);
    CHECK_EQ(out.returncode, 0);
    CHECK_EQ(out.out_len, 10);
    CHECK(out.out && memcmp(out.out, input, 10) == 0);
    fiber_process_output_free(&out);

    /* No input: stdin is closed at once, and cat ends. */
    char *cat[] = {"cat", NULL};
    CHECK_EQ(communicate(cat, FIBER_PIPE_STDIN | FIBER_PIPE_STDOUT, NULL, 0,
                         &out, 30), 0);
    CHECK_EQ(out.out_len, 0);
    fiber_process_output_free(&out);
    free(input);
    return NULL;
}

static void test_input_the_child_does_not_read(void **state)
{
    sigset_t pending;

    (void)state;
    assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    run_real(scenario_input_not_read, NULL);
    assert_int_equal(sigpending(&pending), 0);
    assert_false(sigismember(&pending, SIGPIPE));
}

static void *scenario_no_pipes_and_merged_stderr(void *arg)
{
    fiber_process_output_t out;

    (void)arg;
    char *exit5[] = {"sh", "-c", "exit 5", NULL};
    CHECK_EQ(communicate(exit5, 0, NULL, 0, &out, 30), 0);
    CHECK_EQ(out.returncode, 5);
    CHECK(out.out == NULL && out.err == NULL);

    char *both[] = {"sh", "-c", "echo a; echo b >&2; echo c", NULL};
    CHECK_EQ(communicate(both, FIBER_PIPE_STDOUT | FIBER_STDERR_TO_STDOUT, NULL, 0,
                         &out, 30), 0);
    CHECK(out.out && strcmp(out.out, "a\nb\nc\n") == 0);
    CHECK(out.err == NULL);
    fiber_process_output_free(&out);
    return NULL;
}

static void test_no_pipes_and_stderr_into_stdout(void **state)
{
    (void)state;
    run_real(scenario_no_pipes_and_merged_stderr, NULL);
}

/* ---- deadline and cancel: the child is killed and reaped ------------------ */

static void *scenario_deadline(void *arg)
{
    fiber_process_output_t out;
    int fds = count_fds_after_warm_up();

    (void)arg;
    /* Output before it hangs: kept. */
    char *argv[] = {"sh", "-c", "echo started; exec sleep 30", NULL};
    int64_t start = fiber_now_ns();
    CHECK_EQ(communicate(argv, ALL_PIPES, "x", 1, &out, 0.3), -ETIMEDOUT);
    int64_t took = fiber_now_ns() - start;
    CHECK(took >= 300 * MS && took < 10 * SEC);
    CHECK_EQ(out.returncode, -SIGKILL);
    CHECK(out.out && strcmp(out.out, "started\n") == 0);
    fiber_process_output_free(&out);

    /* Pipes closed early by the child, which lingers: the exit is waited
     * for until the deadline too. */
    char *closer[] = {"sh", "-c", "exec sleep 30 >&- 2>&- <&-", NULL};
    start = fiber_now_ns();
    CHECK_EQ(communicate(closer, ALL_PIPES, NULL, 0, &out, 0.3), -ETIMEDOUT);
    took = fiber_now_ns() - start;
    CHECK(took >= 300 * MS && took < 10 * SEC);
    CHECK_EQ(out.returncode, -SIGKILL);
    fiber_process_output_free(&out);
    CHECK_EQ(count_fds(), fds);
    return NULL;
}

static void test_deadline_kills_and_reaps(void **state)
{
    (void)state;
    run_real(scenario_deadline, NULL);
}

struct talker {
    fiber_process_output_t out;
    int rc;
    int64_t took;
};

static void *talk_to_sleeper(void *arg)
{
    struct talker *t = arg;
    char *argv[] = {"sleep", "30", NULL};
    int64_t start = fiber_now_ns();

    t->rc = communicate(argv, FIBER_PIPE_STDOUT, NULL, 0, &t->out, 60);
    t->took = fiber_now_ns() - start;
    return NULL;
}

static void *scenario_cancel(void *arg)
{
    struct talker t;
    int fds = count_fds_after_warm_up();

    (void)arg;
    fiber_task_t *task = spawn(talk_to_sleeper, &t);
    CHECK_EQ(fiber_sleep(0.2), 0);
    CHECK_EQ(fiber_cancel(task), 0);
    CHECK_EQ(await_status(task), -ECANCELED);
    CHECK_EQ(t.rc, -ECANCELED);
    CHECK(t.took < 10 * SEC);
    CHECK_EQ(t.out.returncode, -SIGKILL);
    fiber_process_output_free(&t.out);

    /* Cancelled before the call: nothing is written, the child is killed
     * and reaped all the same. */
    task = spawn(talk_to_sleeper, &t);
    CHECK_EQ(fiber_cancel(task), 0);
    CHECK_EQ(await_status(task), -ECANCELED);
    CHECK_EQ(t.rc, -ECANCELED);
    CHECK_EQ(t.out.returncode, -SIGKILL);
    fiber_process_output_free(&t.out);
    CHECK_EQ(count_fds(), fds);
    return NULL;
}

static void test_cancel_kills_and_reaps(void **state)
{
    (void)state;
    run_real(scenario_cancel, NULL);
}

/* ---- compact fibers ---------------------------------------------------------- */

/* Two compact fibers communicating with their children at once: the
 * pipe fibers run while the callers' frames are off the shared stack. */
static void *compact_communicate(void *arg)
{
    char *argv[] = {"sh", "-c", "cat; head -c 100000 /dev/zero >&2", NULL};
    fiber_process_output_t out;
    char *input = arg;

    CHECK_EQ(communicate(argv, ALL_PIPES, input, MIB, &out, 60), 0);
    CHECK_EQ(out.returncode, 0);
    CHECK(out.out_len == MIB && memcmp(out.out, input, MIB) == 0);
    CHECK(out.err_len == 100000 && all_bytes(out.err, 100000, '\0'));
    fiber_process_output_free(&out);
    return NULL;
}

/* Input on a compact fiber's own stack, which is elsewhere whenever
 * another compact fiber runs. */
static void *compact_input_on_stack(void *arg)
{
    char *argv[] = {"cat", NULL};
    fiber_process_output_t out;
    char input[4000];
    size_t seed = (size_t)(uintptr_t)arg;

    /* Each fiber's input differs from the others', which use the same
     * addresses of the shared stack. */
    for (size_t i = 0; i < sizeof(input); i++)
        input[i] = (char)('A' + (i + seed) % 26);
    CHECK_EQ(communicate(argv, FIBER_PIPE_STDIN | FIBER_PIPE_STDOUT, input,
                         sizeof(input), &out, 60), 0);
    CHECK(out.out_len == sizeof(input) && memcmp(out.out, input, sizeof(input)) == 0);
    fiber_process_output_free(&out);
    return NULL;
}

static void *scenario_compact(void *arg)
{
    const fiber_attr_t attr = {.compact = true};
    fiber_task_t *tasks[4];
    char *input = pattern();

    (void)arg;
    CHECK(input != NULL);
    int rc = fiber_spawn(&tasks[0], compact_communicate, input, &attr);
    if (rc == 0) {
        CHECK_EQ(fiber_spawn(&tasks[1], compact_communicate, input, &attr), 0);
        CHECK_EQ(fiber_spawn(&tasks[2], compact_input_on_stack, (void *)1, &attr), 0);
        CHECK_EQ(fiber_spawn(&tasks[3], compact_input_on_stack, (void *)2, &attr), 0);
        CHECK_EQ(fiber_gather(tasks, 4, NULL, NULL), 0);
    } else {
        CHECK_EQ(rc, -ENOTSUP);
    }
    free(input);
    return NULL;
}

static void test_communicate_from_compact_fibers(void **state)
{
    (void)state;
    run_real(scenario_compact, NULL);
}

/* ---- arguments -------------------------------------------------------------- */

static void *wait_for_it(void *arg)
{
    int status;

    CHECK_EQ(fiber_process_wait(arg, &status), 0);
    return NULL;
}

static void *scenario_bad_arguments(void *arg)
{
    char *argv[] = {"sleep", "30", NULL};
    fiber_process_t *proc = NULL;
    fiber_process_output_t out = {.returncode = 42};
    int pipes[3];

    (void)arg;
    CHECK_EQ(fiber_process_spawn(&proc, argv, FIBER_PIPE_STDOUT, pipes), 0);
    int bad_pipes[3] = {pipes[0], pipes[1], -2};
    CHECK_EQ(fiber_process_communicate(NULL, pipes, NULL, 0, &out), -EINVAL);
    CHECK_EQ(fiber_process_communicate(proc, pipes, NULL, 0, NULL), -EINVAL);
    CHECK_EQ(fiber_process_communicate(proc, pipes, NULL, 1, &out), -EINVAL);
    /* Input for a child without a stdin pipe. */
    CHECK_EQ(fiber_process_communicate(proc, pipes, "x", 1, &out), -EINVAL);
    CHECK_EQ(fiber_process_communicate(proc, NULL, "x", 1, &out), -EINVAL);
    CHECK_EQ(fiber_process_communicate(proc, bad_pipes, NULL, 0, &out), -EINVAL);
    /* Another fiber waits for the child. */
    fiber_task_t *waiter = spawn(wait_for_it, proc);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_process_communicate(proc, pipes, NULL, 0, &out), -EBUSY);
    /* Nothing was touched: the output, the pipe and the child. */
    CHECK_EQ(out.returncode, 42);
    CHECK(fcntl(pipes[1], F_GETFD) >= 0);
    CHECK_EQ(fiber_process_kill(proc, SIGTERM), 0);
    CHECK_EQ(await_status(waiter), 0);
    CHECK_EQ(fiber_close(pipes[1]), 0);
    return NULL;
}

static void test_bad_arguments_change_nothing(void **state)
{
    fiber_process_output_t out = {.returncode = 42};
    int dummy;

    (void)state;
    run_real(scenario_bad_arguments, NULL);
    assert_int_equal(fiber_process_communicate((fiber_process_t *)(void *)&dummy,
                                               NULL, NULL, 0, &out), -EPERM);
    assert_int_equal(out.returncode, 42);
    fiber_process_output_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_input_and_outputs_do_not_deadlock),
        cmocka_unit_test(test_returncode_exit_code_or_minus_signal),
        cmocka_unit_test(test_input_the_child_does_not_read),
        cmocka_unit_test(test_no_pipes_and_stderr_into_stdout),
        cmocka_unit_test(test_deadline_kills_and_reaps),
        cmocka_unit_test(test_cancel_kills_and_reaps),
        cmocka_unit_test(test_communicate_from_compact_fibers),
        cmocka_unit_test(test_bad_arguments_change_nothing),
    };

    return cmocka_run_group_tests_name("communicate", tests, NULL, NULL);
}
