/*
 * communicate.c - proc.communicate(input): feed a child's stdin, collect
 * its stdout and stderr, wait for its exit, all at once.
 *
 * Each pipe gets a fiber of its own, so none waits behind another: a child
 * that fills its stderr while its stdin is still being written, or writes
 * stdout only after reading all of stdin, is served either way.  Reading
 * one pipe to its end before the next deadlocks as soon as the child
 * blocks writing to the other.  The fibers are gathered fail-fast: the
 * first that fails (deadline, cancel, error) stops the others.
 *
 * The call owns what it is given from start to end: whatever it returns,
 * past its argument checks, the pipes are closed and the child reaped,
 * killed first if need be, as fiber_wait_for reaps the task it gave up on.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "process.h"

/* What one pipe's fiber works with.  On the heap: the caller may be a
 * compact fiber, whose locals are elsewhere while the pipe fibers run. */
struct pipe_job {
    int fd;
    const char *input;      /* stdin: what to write */
    size_t input_len;
    char *data;             /* stdout, stderr: what was read, NUL-ended */
    size_t len, cap;
    int64_t deadline;
};

FIBER_API int fiber_process_returncode(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return -WTERMSIG(wstatus);
    return INT_MIN;
}

FIBER_API void fiber_process_output_free(fiber_process_output_t *output)
{
    if (!output)
        return;
    free(output->out);
    free(output->err);
    output->out = output->err = NULL;
    output->out_len = output->err_len = 0;
}

/* ---- stdin ---------------------------------------------------------------- */

/*
 * write(2) to a pipe whose reader may have gone, without SIGPIPE: the
 * child not reading all its input is no reason to kill the caller, nor is
 * changing the program's disposition of SIGPIPE a way to avoid it.  The
 * signal is blocked on the thread for the length of the call and, if the
 * write raised it, taken back before it is unblocked.  No switch happens
 * in between, so no other fiber runs with the mask changed.  A SIGPIPE
 * that was pending before, or that the thread blocks itself (a loop
 * watching it), is left alone.
 */
static ssize_t write_without_sigpipe(int fd, const void *buf, size_t len)
{
    sigset_t pipe_only, old, pending;

    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    ssize_t n = write(fd, buf, len);
    int err = errno;
    if (n < 0 && err == EPIPE && !was_pending && !sigismember(&old, SIGPIPE)) {
        const struct timespec now = {0, 0};
        while (sigtimedwait(&pipe_only, NULL, &now) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return n;
}

/* Write all of input, then close stdin so that the child sees its end.  A
 * child that exits or closes its stdin before reading everything is not a
 * failure (asyncio ignores BrokenPipeError there too). */
static void *feed_stdin(void *arg)
{
    struct pipe_job *job = arg;
    int flags = fcntl(job->fd, F_GETFL);
    bool nonblocking = flags >= 0 && (flags & O_NONBLOCK);
    size_t done = 0;
    int rc = 0;

    while (done < job->input_len) {
        /* Waiting first makes the checks of every blocking call: a fiber
         * cancelled before it ran writes nothing. */
        rc = fiber_wait_fd_until(job->fd, FIBER_WRITABLE, job->deadline);
        if (rc < 0)
            break;
        rc = 0;
        /* A blocking pipe said writable has room for PIPE_BUF bytes. */
        size_t chunk = job->input_len - done;
        if (!nonblocking && chunk > PIPE_BUF)
            chunk = PIPE_BUF;
        ssize_t n = write_without_sigpipe(job->fd, job->input + done, chunk);
        if (n > 0)
            done += (size_t)n;
        else if (n < 0 && errno == EPIPE)
            break;
        else if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            rc = -errno;
        if (rc < 0)
            break;
    }
    fiber_close(job->fd);
    job->fd = -1;
    return rc < 0 ? fiber_fail(rc) : NULL;
}

/* ---- stdout and stderr ------------------------------------------------- */

/* Read until end of file into job->data, grown as needed. */
static void *drain_output(void *arg)
{
    struct pipe_job *job = arg;

    for (;;) {
        if (job->cap - job->len < 4096) {
            size_t cap = job->cap < 4096 ? 16384 : job->cap * 2;
            char *data = realloc(job->data, cap + 1);
            if (!data)
                return fiber_fail(-ENOMEM);
            job->data = data;
            job->cap = cap;
            job->data[job->len] = '\0';
        }
        ssize_t n = fiber_read_until(job->fd, job->data + job->len,
                                     job->cap - job->len, job->deadline);
        if (n == 0)
            return NULL;
        if (n < 0)
            return fiber_fail((int)n);
        job->len += (size_t)n;
        job->data[job->len] = '\0';
    }
}

/* ---- the call -------------------------------------------------------------- */

/* Kill the child unless it has exited, and reap it whatever the caller's
 * cancellation or scopes say: a shield lets this last wait happen.  A
 * killed child is reaped at once, as the kernel delivers SIGKILL to any
 * process not stuck in an uninterruptible wait.  Returns what
 * fiber_process_wait returns. */
static int kill_and_reap(fiber_process_t *proc, int *wstatus)
{
    fiber_scope_t shield;

    fiber_process_kill(proc, SIGKILL);
    int rc = fiber_scope_enter_shielded(&shield, INFINITY);
    if (rc < 0)
        return rc;
    rc = fiber_process_wait(proc, wstatus);
    fiber_scope_exit(&shield);
    return rc;
}

static int check_args(const fiber_process_t *proc, const int pipes[3],
                      const void *input, size_t input_len,
                      const fiber_process_output_t *output)
{
    if (!proc || !output || (!input && input_len > 0))
        return -EINVAL;
    if (!pipes)
        return input_len > 0 ? -EINVAL : 0;
    for (int i = 0; i < 3; i++)
        if (pipes[i] < -1)
            return -EINVAL;
    if (pipes[0] < 0 && input_len > 0)
        return -EINVAL;
    return 0;
}

/* Start a fiber for each pipe that needs one; stdin with nothing to write
 * is simply closed.  Returns how many were started, in tasks, or an error
 * with none left running. */
static int start_jobs(struct pipe_job jobs[3], fiber_task_t *tasks[3])
{
    static const char *const names[3] = {
        "communicate stdin", "communicate stdout", "communicate stderr",
    };
    int n = 0;

    if (jobs[0].fd >= 0 && jobs[0].input_len == 0) {
        fiber_close(jobs[0].fd);
        jobs[0].fd = -1;
    }
    for (int i = 0; i < 3; i++) {
        if (jobs[i].fd < 0)
            continue;
        const fiber_attr_t attr = {.name = names[i]};
        int rc = fiber_spawn(&tasks[n], i == 0 ? feed_stdin : drain_output,
                             &jobs[i], &attr);
        if (rc < 0) {
            /* None of them has run yet: each fails at its first call. */
            for (int j = 0; j < n; j++)
                fiber_cancel(tasks[j]);
            fiber_gather(tasks, (size_t)n, NULL, NULL);
            return rc;
        }
        n++;
    }
    return n;
}

/* Run the pipe fibers until all are done or one fails; they are all
 * finished when it returns. */
static int run_jobs(struct pipe_job jobs[3])
{
    fiber_task_t *tasks[3];
    size_t failed = SIZE_MAX;
    int n = start_jobs(jobs, tasks);

    if (n <= 0)
        return n;
    int rc = fiber_gather_fail_fast(tasks, (size_t)n, NULL, NULL, &failed);
    if (failed == SIZE_MAX) {
        /* No memory to watch them: every handle is still ours. */
        for (int i = 0; i < n; i++)
            fiber_cancel(tasks[i]);
        fiber_gather(tasks, (size_t)n, NULL, NULL);
    }
    return rc;
}

FIBER_API int fiber_process_communicate_until(fiber_process_t *proc,
                                              int pipes[3], const void *input,
                                              size_t input_len,
                                              fiber_process_output_t *output,
                                              int64_t deadline_ns)
{
    int wstatus = 0;
    int rc = check_args(proc, pipes, input, input_len, output);

    if (rc < 0)
        return rc;
    if (!fiber__enter_fiber("fiber_process_communicate_until"))
        return -EPERM;
    rc = fiber__process_check(proc);
    if (rc < 0)
        return rc;

    *output = (fiber_process_output_t){.returncode = INT_MIN};
    struct pipe_job *jobs = calloc(3, sizeof(*jobs));
    /* Another fiber writes the input out.  A compact caller's stack, where
     * the input may be, is elsewhere while that fiber runs: copy it. */
    void *copy = NULL;
    if (jobs && fiber__current()->compact && input_len > 0) {
        copy = malloc(input_len);
        if (copy) {
            input = memcpy(copy, input, input_len);
        } else {
            free(jobs);
            jobs = NULL;
        }
    }
    if (jobs) {
        for (int i = 0; i < 3; i++) {
            jobs[i].fd = pipes ? pipes[i] : -1;
            jobs[i].deadline = deadline_ns;
        }
        jobs[0].input = input;
        jobs[0].input_len = input_len;
        rc = run_jobs(jobs);
    } else {
        rc = -ENOMEM;
    }
    free(copy);
    /* The pipe fibers have finished: close what they left open. */
    for (int i = 0; pipes && i < 3; i++) {
        if (pipes[i] >= 0 && (!jobs || jobs[i].fd >= 0))
            fiber_close(pipes[i]);
        pipes[i] = -1;
    }

    bool reaped = false;
    if (rc == 0) {
        rc = fiber_process_wait_until(proc, &wstatus, deadline_ns);
        reaped = rc == 0;
    }
    if (rc < 0 && rc != -ECHILD) {
        /* The deadline, a cancel or an error came first. */
        reaped = kill_and_reap(proc, &wstatus) == 0;
    }
    if (reaped)
        output->returncode = fiber_process_returncode(wstatus);
    if (jobs) {
        output->out = jobs[1].data;
        output->out_len = jobs[1].len;
        output->err = jobs[2].data;
        output->err_len = jobs[2].len;
        free(jobs);
    }
    return rc;
}

FIBER_API int fiber_process_communicate(fiber_process_t *proc, int pipes[3],
                                        const void *input, size_t input_len,
                                        fiber_process_output_t *output)
{
    return fiber_process_communicate_until(proc, pipes, input, input_len,
                                           output, INT64_MAX);
}
