/*
 * process.c - child processes: spawn with pipes, wait for the exit status
 * without blocking the loop, send signals.
 *
 * posix_spawn starts the child (glibc uses a vfork-like clone, and reports
 * exec failures).  The loop learns of the exit through a pidfd, readable
 * once the child has exited, waited on like any descriptor.  Without
 * pidfds (Linux before 5.3) it watches SIGCHLD through the signalfd and
 * tries waitpid again after each one.
 */
#include "config.h"

#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop.h"
#include "poller.h"
#include "signals.h"

extern char **environ;

bool fiber__process_use_pidfd = true;

struct fiber_process {
    pid_t pid;
    int pidfd;                       /* -1 when SIGCHLD tells of exits */
    struct fiber_loop *loop;
    struct fiber_task *waiter;       /* the fiber in fiber_process_wait */
    struct fiber__link link;         /* in the loop's processes */
};

#define FIBER__PIPE_FLAGS (FIBER_PIPE_STDIN | FIBER_PIPE_STDOUT | FIBER_PIPE_STDERR)

/* ---- handles ----------------------------------------------------------- */

/* The handles of a loop not waited for yet, freed when the loop ends: a
 * per-loop extension (loop.h), started by the first spawn. */
struct processes {
    struct fiber__ext ext;
    struct fiber__list handles;      /* newest first */
};

static void processes_stop(struct fiber_loop *loop, struct fiber__ext *ext);

static int processes_get(struct fiber_loop *loop, struct processes **out)
{
    struct processes *ps = loop->ext_slot[FIBER__EXT_PROCESSES];

    if (!ps) {
        ps = calloc(1, sizeof(*ps));
        if (!ps)
            return -ENOMEM;
        loop->ext_slot[FIBER__EXT_PROCESSES] = ps;
        fiber__ext_start(loop, &ps->ext, processes_stop);
    }
    *out = ps;
    return 0;
}

static void list_link(struct processes *ps, struct fiber_process *proc)
{
    fiber__list_push_front(&ps->handles, &proc->link);
}

static void handle_free(struct fiber_process *proc)
{
    struct processes *ps = proc->loop->ext_slot[FIBER__EXT_PROCESSES];

    fiber__list_remove(&ps->handles, &proc->link);
    if (proc->pidfd >= 0) {
        fiber__fd_forget(proc->loop, proc->pidfd);
        close(proc->pidfd);
    }
    free(proc);
}

/* The end of the loop: forget the handles nobody waited for. */
static void processes_stop(struct fiber_loop *loop, struct fiber__ext *ext)
{
    struct processes *ps = (struct processes *)(void *)ext;

    struct fiber__link *link;

    while ((link = fiber__list_first(&ps->handles))) {
        struct fiber_process *proc = fiber__container_of(link, struct fiber_process, link);
        int status;
        /* A child that has exited is reaped; one still running is left
         * to run, and is reaped by whoever inherits it. */
        waitpid(proc->pid, &status, WNOHANG);
        handle_free(proc);
    }
    loop->ext_slot[FIBER__EXT_PROCESSES] = NULL;
    free(ps);
}

static int pidfd_open_or_none(pid_t pid)
{
#ifdef SYS_pidfd_open
    if (fiber__process_use_pidfd) {
        long fd = syscall(SYS_pidfd_open, pid, 0);
        if (fd >= 0) {
            fcntl((int)fd, F_SETFD, FD_CLOEXEC);
            return (int)fd;
        }
    }
#else
    (void)pid;
#endif
    return -1;
}

/* ---- spawning ---------------------------------------------------------- */

/* Move fd above the standard streams, so that dup2 onto 0, 1 or 2 in the
 * child always makes a new descriptor without close-on-exec. */
static int above_stdio(int fd)
{
    if (fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int err = errno;
    close(fd);
    errno = err;
    return moved;
}

static void close_all(int fds[3])
{
    for (int i = 0; i < 3; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

/* Make the pipes for the streams flags asks for: child[i] is the child's
 * end for its descriptor i, parent[i] ours. */
static int make_pipes(int flags, int child[3], int parent[3])
{
    for (int i = 0; i < 3; i++)
        child[i] = parent[i] = -1;
    for (int i = 0; i < 3; i++) {
        if (!(flags & (FIBER_PIPE_STDIN << i)))
            continue;
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
            return -errno;
        /* stdin: the child reads; stdout and stderr: it writes. */
        int c = i == 0 ? fds[0] : fds[1];
        parent[i] = i == 0 ? fds[1] : fds[0];
        child[i] = above_stdio(c);
        if (child[i] < 0)
            return -errno;
        if (fcntl(parent[i], F_SETFL, O_NONBLOCK) < 0)
            return -errno;
    }
    return 0;
}

static int spawn_child(struct fiber_loop *loop, char *const argv[],
                       int flags, const int child[3], pid_t *pid)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t mask;
    int rc;

    rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0)
        return -rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return -rc;
    }
    for (int i = 0; i < 3 && rc == 0; i++)
        if (child[i] >= 0)
            rc = posix_spawn_file_actions_adddup2(&actions, child[i], i);
    if (rc == 0 && (flags & FIBER_STDERR_TO_STDOUT))
        rc = posix_spawn_file_actions_adddup2(&actions, 1, 2);

    /* The child starts with the thread's signal mask, less what the loop
     * blocked to watch signals. */
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    fiber__signals_child_mask(loop, &mask);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &mask);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    if (rc == 0)
        rc = posix_spawnp(pid, argv[0], &actions, &attr, argv,
                          environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    return -rc;
}

FIBER_API int fiber_process_spawn(fiber_process_t **proc,
                                  char *const argv[], int flags,
                                  int pipes[3])
{
    struct fiber_task *self;
    struct fiber__poller *p = NULL;
    int child[3], parent[3];
    int rc;

    if (!proc || !argv || !argv[0])
        return -EINVAL;
    if (flags & ~(FIBER__PIPE_FLAGS | FIBER_STDERR_TO_STDOUT))
        return -EINVAL;
    if ((flags & FIBER_PIPE_STDERR) && (flags & FIBER_STDERR_TO_STDOUT))
        return -EINVAL;
    if ((flags & FIBER__PIPE_FLAGS) && !pipes)
        return -EINVAL;
    self = fiber__enter_fiber("fiber_process_spawn");
    if (!self)
        return -EPERM;
    rc = fiber__poller_get(self->loop, &p);
    if (rc < 0)
        return rc;
    struct processes *ps = NULL;
    rc = processes_get(self->loop, &ps);
    if (rc < 0)
        return rc;

    struct fiber_process *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->loop = self->loop;
    h->pidfd = -1;

    rc = make_pipes(flags, child, parent);
    if (rc == 0)
        rc = spawn_child(self->loop, argv, flags, child, &h->pid);
    close_all(child);
    for (int i = 0; i < 3 && rc == 0; i++)
        if (parent[i] >= 0)
            rc = fiber__fd_adopt(self->loop, parent[i], false);
    if (rc < 0) {
        if (h->pid > 0) {
            /* Only the table could not grow: the child must not linger. */
            kill(h->pid, SIGKILL);
            waitpid(h->pid, NULL, 0);
        }
        close_all(parent);
        free(h);
        return rc;
    }

    h->pidfd = pidfd_open_or_none(h->pid);
    if (h->pidfd >= 0 && fiber__fd_adopt(self->loop, h->pidfd, false) < 0) {
        close(h->pidfd);
        h->pidfd = -1;
    }
    list_link(ps, h);
    if (pipes)
        for (int i = 0; i < 3; i++)
            pipes[i] = parent[i];
    *proc = h;
    return 0;
}

/* ---- waiting ----------------------------------------------------------- */

/* Reap the child if it has exited.  Returns 1 when reaped, 0 while it
 * runs, or -errno (-ECHILD: somebody else reaped it). */
static int try_reap(struct fiber_process *proc, int *status)
{
    for (;;) {
        pid_t r = waitpid(proc->pid, status, WNOHANG);
        if (r == proc->pid)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

static int wait_exit(struct fiber_process *proc, int64_t deadline)
{
    struct fiber_loop *loop = proc->loop;

    if (proc->pidfd < 0)
        return fiber__signals_observe(loop, FIBER__SIGBIT(SIGCHLD), deadline);
    struct fiber__fd *e = NULL;
    int rc = fiber__fd_get(loop, proc->pidfd, &e);
    if (rc < 0)
        return rc;
    return fiber__fd_wait(loop, e, proc->pidfd, FIBER__IO_IN, deadline,
                          "process exit");
}

FIBER_API int fiber_process_wait_until(fiber_process_t *proc, int *wstatus,
                                       int64_t deadline_ns)
{
    struct fiber_task *self;
    int status = 0;
    int rc;

    if (!proc)
        return -EINVAL;
    self = fiber__enter_fiber("fiber_process_wait_until");
    if (!self)
        return -EPERM;
    if (proc->loop != self->loop)
        return -EINVAL;
    if (proc->waiter)
        return -EBUSY;
    rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    /* Watch SIGCHLD before the first waitpid, so that an exit right after
     * it is not lost to SIGCHLD's default action. */
    if (proc->pidfd < 0) {
        rc = fiber__signals_watch(self->loop, FIBER__SIGBIT(SIGCHLD));
        if (rc < 0)
            return rc;
    }

    proc->waiter = self;
    while ((rc = try_reap(proc, &status)) == 0) {
        rc = wait_exit(proc, deadline_ns);
        if (rc < 0)
            break;
    }
    proc->waiter = NULL;
    if (rc == 1 || rc == -ECHILD) {
        if (rc == 1 && wstatus)
            *wstatus = status;
        handle_free(proc);
        return rc == 1 ? 0 : rc;
    }
    return rc;
}

FIBER_API int fiber_process_wait(fiber_process_t *proc, int *wstatus)
{
    return fiber_process_wait_until(proc, wstatus, FIBER__FOREVER);
}

FIBER_API int fiber_process_kill(fiber_process_t *proc, int signo)
{
    if (!proc || signo < 0 || signo > 64)
        return -EINVAL;
#ifdef SYS_pidfd_send_signal
    if (proc->pidfd >= 0) {
        if (syscall(SYS_pidfd_send_signal, proc->pidfd, signo, NULL, 0) == 0)
            return 0;
        if (errno != ENOSYS)
            return -errno;
    }
#endif
    /* The child is not reaped before fiber_process_wait, so its pid cannot
     * have been given to another process. */
    if (kill(proc->pid, signo) < 0)
        return -errno;
    return 0;
}

FIBER_API int fiber_process_pid(const fiber_process_t *proc)
{
    if (!proc)
        return -EINVAL;
    return (int)proc->pid;
}

/* ---- for communicate.c --------------------------------------------------- */

int fiber__process_check(const struct fiber_process *proc)
{
    if (!proc || proc->loop != fiber__loop)
        return -EINVAL;
    if (proc->waiter)
        return -EBUSY;
    return 0;
}
