/*
 * test_process.c - child processes and signals: output read from pipes,
 * input written to them, exit statuses, kills, waits with deadlines, a
 * program that does not exist, many children at once, the SIGCHLD
 * fallback for kernels without pidfds; and signals awaited by fibers.
 *
 * Children are real processes, so these scenarios run on the real clock.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "io_helpers.h"
#include "process.h"

/* Read fd until end of file into buf (NUL-terminated, cut to size). */
static ssize_t read_all(int fd, char *buf, size_t size)
{
    size_t len = 0;
    ssize_t n;

    while ((n = fiber_read(fd, buf + len, size - 1 - len)) > 0) {
        len += (size_t)n;
        if (len == size - 1)
            break;
    }
    buf[len] = '\0';
    return n < 0 ? n : (ssize_t)len;
}

static int count_fds(void)
{
    return count_dir_entries("/proc/self/fd");
}

/* Run argv with the pipes of flags; return its wait status (-1 on error).
 * out receives its stdout, if piped. */
static int run_child(char *const argv[], int flags, const char *input,
                     char *out, size_t out_size)
{
    fiber_process_t *proc = NULL;
    int pipes[3];
    int status = -1;

    int rc = fiber_process_spawn(&proc, argv, flags, pipes);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        return -1;
    CHECK(fiber_process_pid(proc) > 0);
    if (pipes[0] >= 0) {
        size_t len = input ? strlen(input) : 0;
        CHECK_EQ(fiber_write(pipes[0], input, len), len);
        CHECK_EQ(fiber_close(pipes[0]), 0);
    }
    if (pipes[1] >= 0) {
        CHECK(read_all(pipes[1], out, out_size) >= 0);
        CHECK_EQ(fiber_close(pipes[1]), 0);
    }
    if (pipes[2] >= 0)
        CHECK_EQ(fiber_close(pipes[2]), 0);
    CHECK_EQ(fiber_process_wait(proc, &status), 0);
    return status;
}

/* ---- output, input, status ------------------------------------------------ */

static void *scenario_output_and_status(void *arg)
{
    char out[256];

    (void)arg;
    char *const echo[] = {"echo", "hello", "world", NULL};
    int status = run_child(echo, FIBER_PIPE_STDOUT, NULL, out, sizeof(out));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strcmp(out, "hello world\n") == 0);

    char *const fail[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    status = run_child(fail, FIBER_PIPE_STDOUT | FIBER_STDERR_TO_STDOUT, NULL,
                       out, sizeof(out));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    CHECK(strcmp(out, "out\nerr\n") == 0);
    return NULL;
}

static void test_output_and_exit_status(void **state)
{
    (void)state;
    run_real(scenario_output_and_status, NULL);
}

struct collector {
    int fd;
    char *buf;
    size_t size;
    ssize_t got;
};

static void *collect_output(void *arg)
{
    struct collector *c = arg;

    c->got = read_all(c->fd, c->buf, c->size);
    return NULL;
}

/* More than a pipe holds goes through cat: writing and reading must
 * interleave, so the output is read by a fiber of its own. */
static void *scenario_stdin_to_cat(void *arg)
{
    static char in[100000], out[1 << 17];
    fiber_process_t *proc;
    int pipes[3], status = -1;

    (void)arg;
    for (size_t i = 0; i < sizeof(in) - 1; i++)
        in[i] = (char)('a' + i % 26);
    char *const cat[] = {"cat", NULL};
    CHECK_EQ(fiber_process_spawn(&proc, cat, FIBER_PIPE_STDIN | FIBER_PIPE_STDOUT,
                                 pipes), 0);
    CHECK_EQ(pipes[2], -1);
    struct collector c = {pipes[1], out, sizeof(out), -1};
    fiber_task_t *reader = spawn(collect_output, &c);
    CHECK_EQ(fiber_write(pipes[0], in, sizeof(in) - 1), sizeof(in) - 1);
    CHECK_EQ(fiber_close(pipes[0]), 0);
    CHECK_EQ(await_status(reader), 0);
    CHECK_EQ(c.got, sizeof(in) - 1);
    CHECK(strcmp(out, in) == 0);
    CHECK_EQ(fiber_close(pipes[1]), 0);
    CHECK_EQ(fiber_process_wait(proc, &status), 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return NULL;
}

static void test_stdin_and_stdout_pipes(void **state)
{
    (void)state;
    run_real(scenario_stdin_to_cat, NULL);
}

static void *scenario_stderr_pipe(void *arg)
{
    fiber_process_t *proc;
    int pipes[3], status;
    char err[64];

    (void)arg;
    char *const argv[] = {"sh", "-c", "echo oops >&2", NULL};
    CHECK_EQ(fiber_process_spawn(&proc, argv, FIBER_PIPE_STDERR, pipes), 0);
    CHECK_EQ(pipes[0], -1);
    CHECK_EQ(pipes[1], -1);
    CHECK(read_all(pipes[2], err, sizeof(err)) >= 0);
    CHECK(strcmp(err, "oops\n") == 0);
    CHECK_EQ(fiber_close(pipes[2]), 0);
    CHECK_EQ(fiber_process_wait(proc, &status), 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return NULL;
}

static void test_stderr_pipe(void **state)
{
    (void)state;
    run_real(scenario_stderr_pipe, NULL);
}

/* ---- waiting, killing ------------------------------------------------------ */

static void *scenario_wait_deadline_then_kill(void *arg)
{
    fiber_process_t *proc;
    int status = -1;

    (void)arg;
    char *const argv[] = {"sleep", "30", NULL};
    CHECK_EQ(fiber_process_spawn(&proc, argv, 0, NULL), 0);
    int64_t start = fiber_now_ns();
    CHECK_EQ(fiber_process_wait_until(proc, &status, start + 100 * MS), -ETIMEDOUT);
    CHECK(fiber_now_ns() - start >= 100 * MS);
    CHECK_EQ(status, -1);
    /* The handle is still valid: check the child, kill it, reap it. */
    CHECK_EQ(fiber_process_kill(proc, 0), 0);
    CHECK_EQ(fiber_process_kill(proc, SIGTERM), 0);
    CHECK_EQ(fiber_process_wait(proc, &status), 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    CHECK(fiber_now_ns() - start < 10 * SEC);
    return NULL;
}

static void test_wait_deadline_leaves_the_child_then_kill_it(void **state)
{
    (void)state;
    run_real(scenario_wait_deadline_then_kill, NULL);
}

static void *wait_for_child(void *arg)
{
    int status = -1;
    int rc = fiber_process_wait(arg, &status);

    return (void *)(intptr_t)(rc < 0 ? rc : status);
}

static void *scenario_wait_cancelled_and_busy(void *arg)
{
    fiber_process_t *proc;
    void *result;
    int status;

    (void)arg;
    char *const argv[] = {"sleep", "30", NULL};
    CHECK_EQ(fiber_process_spawn(&proc, argv, 0, NULL), 0);
    fiber_task_t *t = spawn(wait_for_child, proc);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_process_wait(proc, &status), -EBUSY);
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(fiber_await(t, &result, NULL), 0);
    CHECK_EQ((intptr_t)result, -ECANCELED);
    CHECK_EQ(fiber_process_kill(proc, SIGKILL), 0);
    CHECK_EQ(fiber_process_wait(proc, &status), 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    return NULL;
}

static void test_wait_cancelled_and_second_waiter_busy(void **state)
{
    (void)state;
    run_real(scenario_wait_cancelled_and_busy, NULL);
}

/* Ten children sleeping 0.1 s each, waited for at once, take about 0.1 s. */
static void *scenario_many_children(void *arg)
{
    enum { N = 10 };
    fiber_process_t *proc[N];
    fiber_task_t *t[N];
    void *results[N];

    (void)arg;
    int64_t start = fiber_now_ns();
    char *const argv[] = {"sh", "-c", "sleep 0.1; exit 7", NULL};
    for (int i = 0; i < N; i++) {
        CHECK_EQ(fiber_process_spawn(&proc[i], argv, 0, NULL), 0);
        t[i] = spawn(wait_for_child, proc[i]);
    }
    CHECK_EQ(fiber_gather(t, N, results, NULL), 0);
    for (int i = 0; i < N; i++) {
        int status = (int)(intptr_t)results[i];
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
    }
    int64_t took = fiber_now_ns() - start;
    CHECK(took >= 100 * MS);
    CHECK(took < N * 100 * MS);
    return NULL;
}

static void test_many_children_at_once(void **state)
{
    (void)state;
    run_real(scenario_many_children, NULL);
}

static void test_sigchld_fallback_without_pidfd(void **state)
{
    (void)state;
    fiber__process_use_pidfd = false;
    run_real(scenario_many_children, NULL);
    run_real(scenario_output_and_status, NULL);
    fiber__process_use_pidfd = true;
    /* SIGCHLD is no longer blocked once the loop has ended. */
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    assert_false(sigismember(&mask, SIGCHLD));
}

/* ---- errors ------------------------------------------------------------------ */

/* Whether spawning argv says the program does not exist.  Valgrind runs
 * posix_spawn's vfork as a fork, which cannot report a failed exec: the
 * child exits 127 instead, as a shell's would. */
static bool not_found(char *const argv[])
{
    fiber_process_t *proc = NULL;
    int status = -1;
    int rc = fiber_process_spawn(&proc, argv, 0, NULL);

    if (rc == -ENOENT)
        return proc == NULL;
    if (rc != 0 || !under_tool() || fiber_process_wait(proc, &status) != 0)
        return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 127;
}

static void *scenario_spawn_errors(void *arg)
{
    fiber_process_t *proc = NULL;
    int pipes[3];

    (void)arg;
    char *const missing[] = {"/nonexistent/program", NULL};
    char *const not_in_path[] = {"no-such-program-anywhere", NULL};
    CHECK(not_found(missing));
    CHECK(not_found(not_in_path));
    /* Counted after the first call, which set up the loop's epoll. */
    int fds = count_fds();
    if (!under_tool()) {
        CHECK_EQ(fiber_process_spawn(&proc, missing, FIBER_PIPE_STDOUT, pipes),
                 -ENOENT);
        CHECK_EQ(fiber_process_spawn(&proc, not_in_path, 0, NULL), -ENOENT);
        CHECK_EQ(count_fds(), fds);
        CHECK_PTR(proc, NULL);
    }

    char *const ok[] = {"true", NULL};
    char *const empty[] = {NULL};
    CHECK_EQ(fiber_process_spawn(NULL, ok, 0, NULL), -EINVAL);
    CHECK_EQ(fiber_process_spawn(&proc, NULL, 0, NULL), -EINVAL);
    CHECK_EQ(fiber_process_spawn(&proc, empty, 0, NULL), -EINVAL);
    CHECK_EQ(fiber_process_spawn(&proc, ok, 64, NULL), -EINVAL);
    CHECK_EQ(fiber_process_spawn(&proc, ok, FIBER_PIPE_STDOUT, NULL), -EINVAL);
    CHECK_EQ(fiber_process_spawn(&proc, ok, FIBER_PIPE_STDERR | FIBER_STDERR_TO_STDOUT,
                                 pipes), -EINVAL);
    CHECK_EQ(fiber_process_wait(NULL, NULL), -EINVAL);
    CHECK_EQ(fiber_process_kill(NULL, SIGTERM), -EINVAL);
    CHECK_EQ(fiber_process_pid(NULL), -EINVAL);
    CHECK_PTR(proc, NULL);
    CHECK_EQ(count_fds(), fds);

    /* A handle nobody waits for is freed when the loop ends. */
    CHECK_EQ(fiber_process_spawn(&proc, ok, 0, NULL), 0);
    CHECK_EQ(fiber_process_kill(proc, 99), -EINVAL);
    return NULL;
}

static void test_spawn_errors_leave_nothing_behind(void **state)
{
    char *const ok[] = {"true", NULL};
    fiber_process_t *proc;

    (void)state;
    run_real(scenario_spawn_errors, NULL);
    assert_int_equal(fiber_process_spawn(&proc, ok, 0, NULL), -EPERM);
}

/* ---- signals ----------------------------------------------------------------- */

struct signal_waiter {
    const int *signals;
    size_t n;
    int got;
    int64_t at_ns;
};

static void *wait_signal(void *arg)
{
    struct signal_waiter *w = arg;

    w->got = fiber_signal_wait(w->signals, w->n);
    w->at_ns = elapsed_ns();
    return NULL;
}

/*
 * Two fibers wait for SIGUSR1 (one also for SIGUSR2); one raise wakes
 * both.  The virtual clock is fine here: a raised signal is pending at
 * once, like I/O within the loop.
 */
static void *scenario_signal_wakes_waiters(void *arg)
{
    static const int usr1[] = {SIGUSR1};
    static const int usr12[] = {SIGUSR2, SIGUSR1};
    struct signal_waiter a = {usr1, 1, 0, 0}, b = {usr12, 2, 0, 0};

    (void)arg;
    fiber_task_t *ta = spawn(wait_signal, &a);
    fiber_task_t *tb = spawn(wait_signal, &b);
    CHECK_EQ(fiber_sleep(2), 0);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(await_status(ta), 0);
    CHECK_EQ(await_status(tb), 0);
    CHECK_EQ(a.got, SIGUSR1);
    CHECK_EQ(b.got, SIGUSR1);
    CHECK_EQ(a.at_ns, 2 * SEC);
    CHECK_EQ(b.at_ns, 2 * SEC);
    return NULL;
}

static void test_signal_wakes_every_waiter(void **state)
{
    (void)state;
    run_virtual(scenario_signal_wakes_waiters, NULL);
}

static void *scenario_signal_pending_deadline_cancel(void *arg)
{
    static const int term[] = {SIGTERM};
    static const int usr2[] = {SIGUSR2};
    struct signal_waiter w = {usr2, 1, 0, 0};

    (void)arg;
    /* Watched first, a signal raised before the wait is kept for it. */
    CHECK_EQ(fiber_signal_watch(term, 1), 0);
    CHECK_EQ(raise(SIGTERM), 0);
    CHECK_EQ(fiber_signal_wait(term, 1), SIGTERM);
    /* Kept once: the next wait blocks. */
    CHECK_EQ(fiber_signal_wait_until(term, 1, fiber_now_ns() + SEC), -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), SEC);

    fiber_task_t *t = spawn(wait_signal, &w);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(await_status(t), -ECANCELED);
    CHECK_EQ(w.got, -ECANCELED);

    /* A watched signal raised with nobody waiting, then the loop ends: it
     * is discarded rather than killing the process. */
    CHECK_EQ(raise(SIGUSR2), 0);
    return NULL;
}

static void test_signal_kept_until_waited_deadline_and_cancel(void **state)
{
    (void)state;
    run_virtual(scenario_signal_pending_deadline_cancel, NULL);
    /* The thread's mask is back as it was. */
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    assert_false(sigismember(&mask, SIGTERM));
    assert_false(sigismember(&mask, SIGUSR2));
}

/* While SIGTERM is watched (blocked on the loop's thread), a child still
 * starts with it unblocked, so it can be terminated. */
static void *scenario_child_signal_mask(void *arg)
{
    static const int term[] = {SIGTERM};
    char out[128];

    (void)arg;
    CHECK_EQ(fiber_signal_watch(term, 1), 0);
    char *const argv[] = {"sh", "-c", "grep SigBlk /proc/self/status", NULL};
    int status = run_child(argv, FIBER_PIPE_STDOUT, NULL, out, sizeof(out));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_CONTAINS(out, "SigBlk:\t0000000000000000");
    return NULL;
}

static void test_child_does_not_inherit_watched_signals(void **state)
{
    (void)state;
    run_real(scenario_child_signal_mask, NULL);
}

static void *scenario_bad_signals(void *arg)
{
    static const int bad[][1] = {{0}, {SIGKILL}, {SIGSTOP}, {SIGSEGV}, {65}, {-1}, {32}};

    (void)arg;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(fiber_signal_watch(bad[i], 1), -EINVAL);
        CHECK_EQ(fiber_signal_wait(bad[i], 1), -EINVAL);
    }
    CHECK_EQ(fiber_signal_wait(NULL, 1), -EINVAL);
    CHECK_EQ(fiber_signal_wait(bad[0], 0), -EINVAL);
    return NULL;
}

static void test_signals_that_cannot_be_waited_for(void **state)
{
    static const int usr1[] = {SIGUSR1};

    (void)state;
    run_virtual(scenario_bad_signals, NULL);
    assert_int_equal(fiber_signal_wait(usr1, 1), -EPERM);
    assert_int_equal(fiber_signal_watch(usr1, 1), -EPERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_and_exit_status),
        cmocka_unit_test(test_stdin_and_stdout_pipes),
        cmocka_unit_test(test_stderr_pipe),
        cmocka_unit_test(test_wait_deadline_leaves_the_child_then_kill_it),
        cmocka_unit_test(test_wait_cancelled_and_second_waiter_busy),
        cmocka_unit_test(test_many_children_at_once),
        cmocka_unit_test(test_sigchld_fallback_without_pidfd),
        cmocka_unit_test(test_spawn_errors_leave_nothing_behind),
        cmocka_unit_test(test_signal_wakes_every_waiter),
        cmocka_unit_test(test_signal_kept_until_waited_deadline_and_cancel),
        cmocka_unit_test(test_child_does_not_inherit_watched_signals),
        cmocka_unit_test(test_signals_that_cannot_be_waited_for),
    };

    return cmocka_run_group_tests_name("process", tests, NULL, NULL);
}
