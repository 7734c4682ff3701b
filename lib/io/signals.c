/*
 * signals.c - fiber_signal_watch and fiber_signal_wait on a signalfd.
 */
#include "config.h"

#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "loop.h"
#include "poller.h"

/* A fiber blocked until one of mask's signals arrives. */
struct signal_waiter {
    uint64_t mask;
    bool consumes;                 /* fiber_signal_wait: takes the signal */
    struct fiber_task *fiber;
    bool linked;                   /* in the list: delivery unlinks it */
    struct fiber__link link;
};

struct fiber__signals {
    struct fiber__ext ext;         /* in the loop's list of extensions */
    int fd;                        /* the signalfd, -1 until first watch */
    sigset_t watched;
    sigset_t blocked_here;         /* what watching blocked on the thread */
    uint64_t pending;              /* arrived while no fiber_signal_wait waited */
    struct fiber__list waiters;    /* newest first */
};

/* ---- delivery ---------------------------------------------------------- */

static void unlink_waiter(struct fiber__signals *s, struct signal_waiter *w)
{
    if (w->linked)
        fiber__list_remove(&s->waiters, &w->link);
    w->linked = false;
}

/* Wake every fiber waiting for signo; keep it pending if none takes it. */
static void deliver(struct fiber_loop *loop, struct fiber__signals *s, int signo)
{
    uint64_t bit = FIBER__SIGBIT(signo);
    bool taken = false;
    struct fiber__link *link, *next;

    fiber__list_foreach_safe(link, next, &s->waiters) {
        struct signal_waiter *w = fiber__container_of(link, struct signal_waiter, link);
        /* A waiter woken already (by a cancel) leaves by itself. */
        if ((w->mask & bit) && w->fiber->state == FIBER__WAITING) {
            unlink_waiter(s, w);
            taken |= w->consumes;
            fiber__wake(loop, w->fiber, signo);
        }
    }
    if (!taken)
        s->pending |= bit;
}

static void read_signals(struct fiber_loop *loop, int fd, uint32_t events,
                         void *ctx)
{
    struct fiber__signals *s = ctx;
    struct signalfd_siginfo info[8];

    (void)events;
    for (;;) {
        ssize_t n = read(fd, info, sizeof(info));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        for (size_t i = 0; i < (size_t)n / sizeof(info[0]); i++)
            deliver(loop, s, (int)info[i].ssi_signo);
    }
}

/* ---- watching ---------------------------------------------------------- */

static void signals_stop(struct fiber_loop *loop, struct fiber__ext *ext);

/* The loop's signal state, or NULL while no fiber has watched one. */
static struct fiber__signals *signals_of(const struct fiber_loop *loop)
{
    return loop->ext_slot[FIBER__EXT_SIGNALS];
}

static int signals_get(struct fiber_loop *loop, struct fiber__signals **out)
{
    struct fiber__poller *p = NULL;
    int rc = fiber__poller_get(loop, &p);

    if (rc < 0)
        return rc;
    if (!signals_of(loop)) {
        struct fiber__signals *s = calloc(1, sizeof(*s));
        if (!s)
            return -ENOMEM;
        s->fd = -1;
        sigemptyset(&s->watched);
        sigemptyset(&s->blocked_here);
        loop->ext_slot[FIBER__EXT_SIGNALS] = s;
        fiber__ext_start(loop, &s->ext, signals_stop);
    }
    *out = signals_of(loop);
    return 0;
}

int fiber__signals_watch(struct fiber_loop *loop, uint64_t mask)
{
    struct fiber__signals *s;
    int rc = signals_get(loop, &s);

    if (rc < 0)
        return rc;

    sigset_t add, old, watched = s->watched;
    sigemptyset(&add);
    for (int signo = 1; signo <= 64; signo++) {
        if ((mask & FIBER__SIGBIT(signo)) && !sigismember(&s->watched, signo)) {
            sigaddset(&add, signo);
            sigaddset(&watched, signo);
        }
    }
    if (sigisemptyset(&add))
        return 0;

    /* Block first: a signal arriving now stays pending for the signalfd
     * instead of running its default action. */
    pthread_sigmask(SIG_BLOCK, &add, &old);
    int fd = signalfd(s->fd, &watched, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        sigset_t undo;
        sigemptyset(&undo);
        for (int signo = 1; signo <= 64; signo++)
            if (sigismember(&add, signo) && !sigismember(&old, signo))
                sigaddset(&undo, signo);
        pthread_sigmask(SIG_UNBLOCK, &undo, NULL);
        return rc;
    }
    if (s->fd < 0) {
        rc = fiber__poller_add_handler(loop, fd, read_signals, s);
        if (rc < 0) {
            fiber__fd_forget(loop, fd);
            close(fd);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            return rc;
        }
        s->fd = fd;
    }
    for (int signo = 1; signo <= 64; signo++)
        if (sigismember(&add, signo) && !sigismember(&old, signo))
            sigaddset(&s->blocked_here, signo);
    s->watched = watched;
    /* Signals already pending make no new edge on the signalfd. */
    read_signals(loop, s->fd, 0, s);
    return 0;
}

static int wait_signal(struct fiber_loop *loop, uint64_t mask, bool consumes,
                       int64_t deadline)
{
    struct fiber__signals *s = signals_of(loop);
    struct fiber_task *self = loop->current;

    if (consumes && (s->pending & mask)) {
        int signo = __builtin_ctzll(s->pending & mask) + 1;
        s->pending &= ~FIBER__SIGBIT(signo);
        return signo;
    }
    if (deadline != FIBER__FOREVER && deadline <= fiber__clock_now(&loop->clock))
        return -ETIMEDOUT;

    /* On the heap, not the stack: delivery writes to it while the fiber
     * is suspended, when a compact fiber's stack is elsewhere. */
    struct signal_waiter *w = malloc(sizeof(*w));
    if (!w)
        return -ENOMEM;
    *w = (struct signal_waiter){.mask = mask, .consumes = consumes, .fiber = self,
                                .linked = true};
    fiber__list_push_front(&s->waiters, &w->link);
    static const struct fiber__wait signal_wait = {
        .state = FIBER__WAITING,
        .what = "signal",
    };
    fiber__poller_hold(loop);
    int rc = fiber__wait(loop, &signal_wait, deadline, 0);
    fiber__poller_release(loop);
    if (rc <= 0)
        unlink_waiter(s, w);
    free(w);
    return rc;
}

int fiber__signals_observe(struct fiber_loop *loop, uint64_t mask,
                           int64_t deadline)
{
    return wait_signal(loop, mask, false, deadline);
}

void fiber__signals_child_mask(const struct fiber_loop *loop, sigset_t *mask)
{
    const struct fiber__signals *s = signals_of(loop);

    if (!s)
        return;
    for (int signo = 1; signo <= 64; signo++)
        if (sigismember(&s->blocked_here, signo))
            sigdelset(mask, signo);
}

/* The end of the loop: stop watching, unblock what watching blocked. */
static void signals_stop(struct fiber_loop *loop, struct fiber__ext *ext)
{
    struct fiber__signals *s = (struct fiber__signals *)(void *)ext;

    if (s->fd >= 0) {
        struct signalfd_siginfo info[8];
        while (read(s->fd, info, sizeof(info)) > 0)
            continue;
        fiber__fd_forget(loop, s->fd);
        close(s->fd);
    }
    pthread_sigmask(SIG_UNBLOCK, &s->blocked_here, NULL);
    free(s);
    loop->ext_slot[FIBER__EXT_SIGNALS] = NULL;
}

/* ---- the public calls -------------------------------------------------- */

/* Signals a fiber cannot wait for: those that cannot be caught, those
 * raised by faults in the running code, and glibc's own. */
static bool watchable(int signo)
{
    if (signo < 1 || signo > 64 || signo > SIGRTMAX)
        return false;
    if (signo > SIGSYS && signo < SIGRTMIN)
        return false;
    switch (signo) {
    case SIGKILL: case SIGSTOP:
    case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE: case SIGTRAP:
    case SIGSYS:
        return false;
    }
    return true;
}

static int signal_mask(const int signals[], size_t n, uint64_t *mask)
{
    if (!signals || n == 0)
        return -EINVAL;
    *mask = 0;
    for (size_t i = 0; i < n; i++) {
        if (!watchable(signals[i]))
            return -EINVAL;
        *mask |= FIBER__SIGBIT(signals[i]);
    }
    return 0;
}

FIBER_API int fiber_signal_watch(const int signals[], size_t n)
{
    struct fiber_task *self;
    uint64_t mask;
    int rc = signal_mask(signals, n, &mask);

    if (rc < 0)
        return rc;
    self = fiber__enter_fiber("fiber_signal_watch");
    if (!self)
        return -EPERM;
    return fiber__signals_watch(self->loop, mask);
}

FIBER_API int fiber_signal_wait_until(const int signals[], size_t n,
                                      int64_t deadline_ns)
{
    struct fiber_task *self;
    uint64_t mask;
    int rc = signal_mask(signals, n, &mask);

    if (rc < 0)
        return rc;
    rc = fiber__canblock("fiber_signal_wait_until", &self);
    if (rc < 0)
        return rc;
    rc = fiber__signals_watch(self->loop, mask);
    if (rc < 0)
        return rc;
    return wait_signal(self->loop, mask, true, deadline_ns);
}

FIBER_API int fiber_signal_wait(const int signals[], size_t n)
{
    return fiber_signal_wait_until(signals, n, FIBER__FOREVER);
}
