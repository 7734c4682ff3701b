/*
 * poller.c - I/O readiness for the loop: one epoll instance per loop,
 * created when a fiber first waits on a descriptor, and the table of what
 * the library knows about each descriptor.
 *
 * Descriptors are registered edge-triggered, for the directions fibers
 * wait on.  Edge-triggered epoll only reports changes; that is enough
 * because every wait follows an EAGAIN or a poll(2) that said "not ready"
 * (data that comes later makes a new edge), each wait re-arms the
 * registration, which reports readiness that came in between, and an edge
 * reported while nobody waited is kept in the entry's ready bits for the
 * next waiter.
 */
#include "config.h"

#include "poller.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

/* Table entries per chunk.  Chunks never move once allocated, because
 * waiting fibers point into their entry's wait queues. */
#define FIBER__FD_CHUNK 256

/* ---- the table --------------------------------------------------------- */

static struct fiber__fd *entry_if_any(const struct fiber__poller *p, int fd)
{
    size_t chunk = (size_t)fd / FIBER__FD_CHUNK;

    if (fd < 0 || chunk >= p->nchunks || !p->chunks[chunk])
        return NULL;
    return &p->chunks[chunk][(size_t)fd % FIBER__FD_CHUNK];
}

static int entry_alloc(struct fiber__poller *p, int fd, struct fiber__fd **out)
{
    size_t chunk = (size_t)fd / FIBER__FD_CHUNK;

    if (chunk >= p->nchunks) {
        size_t n = p->nchunks ? p->nchunks : 4;
        while (n <= chunk)
            n *= 2;
        struct fiber__fd **chunks = realloc(p->chunks, n * sizeof(*chunks));
        if (!chunks)
            return -ENOMEM;
        memset(chunks + p->nchunks, 0, (n - p->nchunks) * sizeof(*chunks));
        p->chunks = chunks;
        p->nchunks = n;
    }
    if (!p->chunks[chunk]) {
        p->chunks[chunk] = calloc(FIBER__FD_CHUNK, sizeof(struct fiber__fd));
        if (!p->chunks[chunk])
            return -ENOMEM;
    }
    *out = &p->chunks[chunk][(size_t)fd % FIBER__FD_CHUNK];
    return 0;
}

static size_t wake_waiters(struct fiber_loop *loop, struct fiber__fd *e,
                           int events, int result)
{
    size_t n = 0;

    for (int q = 1; q <= FIBER__IO_BOTH; q++)
        if (q & events)
            n += fiber__waitq_wake_all(loop, &e->waiters[q], result);
    return n;
}

/* Drop everything known about the descriptor in e. */
static void entry_reset(struct fiber_loop *loop, struct fiber__poller *p,
                        struct fiber__fd *e, int fd)
{
    if (e->registered)
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
    wake_waiters(loop, e, FIBER__IO_BOTH, -EBADF);
    memset(e, 0, sizeof(*e));
}

/* ---- the poller -------------------------------------------------------- */

static void poller_stop(struct fiber_loop *loop, struct fiber__ext *ext);

int fiber__poller_get(struct fiber_loop *loop, struct fiber__poller **out)
{
    if (loop->poller) {
        *out = loop->poller;
        return 0;
    }
    struct fiber__poller *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int err = errno;
        free(p);
        return -err;
    }
    loop->poller = p;
    loop->io_wait = fiber__poller_wait;
    fiber__ext_start(loop, &p->ext, poller_stop);
    *out = p;
    return 0;
}

void fiber__poller_hold(struct fiber_loop *loop)
{
    loop->io_waiting++;
}

void fiber__poller_release(struct fiber_loop *loop)
{
    assert(loop->io_waiting > 0);
    loop->io_waiting--;
}

int fiber__fd_get(struct fiber_loop *loop, int fd, struct fiber__fd **out)
{
    struct fiber__poller *p = NULL;
    struct fiber__fd *e = NULL;
    int rc;

    if (fd < 0)
        return -EBADF;
    rc = fiber__poller_get(loop, &p);
    if (rc < 0)
        return rc;
    e = entry_if_any(p, fd);
    if (e && e->kind != FIBER__FD_UNKNOWN) {
        *out = e;
        return 0;
    }
    rc = entry_alloc(p, fd, &e);
    if (rc < 0)
        return rc;
    rc = fiber__fd_classify(e, fd);
    if (rc < 0)
        return rc;
    *out = e;
    return 0;
}

int fiber__fd_classify(struct fiber__fd *e, int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -errno;
    /* S_ISFIFO covers named FIFOs too; their first RWF_NOWAIT call fails
     * with EOPNOTSUPP and moves them to FIBER__FD_POLL. */
    if (S_ISSOCK(st.st_mode))
        e->kind = FIBER__FD_SOCKET;
    else if (S_ISFIFO(st.st_mode))
        e->kind = FIBER__FD_NOWAIT;
    else
        e->kind = FIBER__FD_POLL;
    return 0;
}

int fiber__fd_entry(struct fiber_loop *loop, int fd, struct fiber__fd **out)
{
    struct fiber__poller *p = NULL;
    int rc = fiber__poller_get(loop, &p);

    if (rc < 0)
        return rc;
    return entry_alloc(p, fd, out);
}

int fiber__fd_adopt(struct fiber_loop *loop, int fd, bool is_socket)
{
    struct fiber__poller *p = NULL;
    struct fiber__fd *e = NULL;
    int rc = fiber__poller_get(loop, &p);

    if (rc < 0)
        return rc;
    e = entry_if_any(p, fd);
    if (e) {
        /* A descriptor of this number was closed behind the library's
         * back; epoll dropped it with the file, so forget it too. */
        e->registered = false;
        entry_reset(loop, p, e, fd);
    } else {
        rc = entry_alloc(p, fd, &e);
        if (rc < 0)
            return rc;
    }
    e->kind = is_socket ? FIBER__FD_SOCKET : FIBER__FD_UNKNOWN;
    return 0;
}

void fiber__fd_forget(struct fiber_loop *loop, int fd)
{
    struct fiber__poller *p = loop ? loop->poller : NULL;
    struct fiber__fd *e = p ? entry_if_any(p, fd) : NULL;

    if (e)
        entry_reset(loop, p, e, fd);
}

static int register_fd(struct fiber__poller *p, struct fiber__fd *e, int fd,
                       uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLET, .data.fd = fd};

    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        /* EEXIST: this very file is registered under this number already
         * (the number was closed and the file put back with dup2). */
        if (errno != EEXIST || epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
            return -errno;
    }
    e->registered = true;
    return 0;
}

/* The epoll events for the directions fibers wait on in e, and events. */
static uint32_t wanted_events(const struct fiber__fd *e, int events)
{
    uint32_t ev = 0;

    for (int q = 1; q <= FIBER__IO_BOTH; q++)
        if (e->waiters[q].len > 0)
            events |= q;
    if (events & FIBER__IO_IN)
        ev |= EPOLLIN | EPOLLRDHUP;
    if (events & FIBER__IO_OUT)
        ev |= EPOLLOUT;
    return ev;
}

/*
 * Make sure epoll watches the file now behind fd, for events and what
 * others wait for.  Returns 0, 1 when the number holds another file than
 * the one registered (or one epoll cannot watch, for a hint that said it
 * could): the kind is reset and the caller should try again, or -errno.
 *
 * The table is indexed by number, but epoll keys its entries by number and
 * open file: after close(2) and a new file under the same number, the old
 * entry is gone (or, if the file lives on elsewhere, still reports the old
 * file), and waiting on it would wait for ever.  EPOLL_CTL_MOD, which the
 * kernel resolves against the file now at fd, answers ENOENT exactly in
 * that case.  It costs one system call per wait, as fstat(2) would, but
 * fstat's device and inode cannot tell a terminal reopened under the same
 * number from the one registered; and MOD re-arms the edge-triggered entry,
 * which reports readiness that came since the call that would have
 * blocked.  Restricting the entry to the directions waited on keeps the
 * re-arm from reporting, say, a socket's ever-present writability to a
 * reader.
 */
static int watch_fd(struct fiber__poller *p, struct fiber__fd *e, int fd,
                    int events)
{
    uint32_t ev = wanted_events(e, events);

    if (e->registered) {
        struct epoll_event mod = {.events = ev | EPOLLET, .data.fd = fd};
        if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &mod) == 0)
            return 0;
        if (errno != ENOENT)
            return -errno;
        e->registered = false;
        e->kind = FIBER__FD_UNKNOWN;
        e->ready = 0;
        return 1;
    }
    int rc = register_fd(p, e, fd, ev);
    /* EPERM: a file epoll cannot watch (a regular file) now holds the
     * number a pipe had; looked at again it is tried without waiting. */
    if (rc == -EPERM && e->kind == FIBER__FD_NOWAIT) {
        e->kind = FIBER__FD_UNKNOWN;
        return 1;
    }
    return rc;
}

int fiber__fd_wait(struct fiber_loop *loop, struct fiber__fd *e, int fd,
                   int events, int64_t deadline, const char *what)
{
    struct fiber__poller *p = loop->poller;
    int rc;

    if (e->ready & events) {
        e->ready &= (uint8_t)~events;
        return 0;
    }
    if (deadline != FIBER__FOREVER && deadline <= fiber__clock_now(&loop->clock))
        return -ETIMEDOUT;
    rc = watch_fd(p, e, fd, events);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    fiber__poller_hold(loop);
    rc = fiber__waitq_wait(&e->waiters[events], deadline, what);
    fiber__poller_release(loop);
    return rc;
}

int fiber__poller_add_handler(struct fiber_loop *loop, int fd,
                              fiber__io_handler *handler, void *ctx)
{
    struct fiber__poller *p = NULL;
    struct fiber__fd *e = NULL;
    int rc = fiber__poller_get(loop, &p);

    if (rc < 0)
        return rc;
    rc = entry_alloc(p, fd, &e);
    if (rc < 0)
        return rc;
    rc = register_fd(p, e, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    if (rc < 0)
        return rc;
    e->handler = handler;
    e->handler_ctx = ctx;
    return 0;
}

/* ---- waiting ----------------------------------------------------------- */

/*
 * epoll_wait with a timeout in nanoseconds (negative: none).  epoll_pwait2
 * keeps the loop's wake-ups as precise as its sleeps; without it (kernels
 * before 5.11) the timeout is rounded up to whole milliseconds.
 */
static int epoll_wait_ns(struct fiber__poller *p, int64_t timeout_ns)
{
#ifdef SYS_epoll_pwait2
    if (!p->no_epoll_pwait2) {
        struct timespec ts = {
            .tv_sec = timeout_ns / 1000000000,
            .tv_nsec = timeout_ns % 1000000000,
        };
        long n = syscall(SYS_epoll_pwait2, p->epfd, p->events, FIBER__POLLER_EVENTS,
                         timeout_ns < 0 ? NULL : &ts, NULL, (size_t)8);
        if (n >= 0 || errno != ENOSYS)
            return (int)n;
        p->no_epoll_pwait2 = true;
    }
#endif
    int ms = -1;
    if (timeout_ns >= 0) {
        int64_t rounded = (timeout_ns + 999999) / 1000000;
        ms = rounded > INT_MAX ? INT_MAX : (int)rounded;
    }
    return epoll_wait(p->epfd, p->events, FIBER__POLLER_EVENTS, ms);
}

static int epoll_to_io(uint32_t ev)
{
    int io = 0;

    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        io |= FIBER__IO_IN;
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        io |= FIBER__IO_OUT;
    return io;
}

static size_t dispatch(struct fiber_loop *loop, struct fiber__poller *p,
                       const struct epoll_event *events, int n)
{
    size_t woken = 0;

    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        struct fiber__fd *e = entry_if_any(p, fd);
        if (!e)
            continue;
        if (e->handler) {
            e->handler(loop, fd, events[i].events, e->handler_ctx);
            continue;
        }
        int io = epoll_to_io(events[i].events);
        for (int dir = FIBER__IO_IN; dir <= FIBER__IO_OUT; dir++) {
            if (!(io & dir))
                continue;
            size_t w = wake_waiters(loop, e, dir, 0);
            /* Keep the edge for whoever waits next. */
            if (w == 0)
                e->ready |= (uint8_t)dir;
            woken += w;
        }
    }
    return woken;
}

int fiber__poller_wait(struct fiber_loop *loop, int64_t deadline)
{
    struct fiber__poller *p = loop->poller;

    if (!p) {
        if (deadline != FIBER__FOREVER && deadline != INT64_MIN)
            fiber__clock_wait_until(&loop->clock, deadline,
                                    fiber__clock_now(&loop->clock));
        return 0;
    }

    int64_t now = fiber__clock_now(&loop->clock);
    int64_t timeout_ns;
    bool jump = false;

    if (deadline <= now)
        timeout_ns = 0;
    else if (deadline == FIBER__FOREVER)
        timeout_ns = -1;
    else if (loop->clock.is_virtual) {
        timeout_ns = FIBER__VIRTUAL_IO_GRACE_NS;
        jump = true;
    } else {
        timeout_ns = deadline - now;
    }

    size_t ready_before = loop->nready;
    int n = epoll_wait_ns(p, timeout_ns);
    if (timeout_ns != 0)
        fiber__clock_count_idle(&loop->clock, now);
    if (n < 0)
        return 0;   /* EINTR: the scheduler looks again. */
    size_t woken = dispatch(loop, p, p->events, n);
    /* Edges that woke nobody (data for a fiber busy elsewhere) must not
     * hold virtual time back for ever. */
    if (jump && loop->nready == ready_before)
        fiber__clock_wait_until(&loop->clock, deadline,
                                fiber__clock_now(&loop->clock));
    return (int)woken;
}

/* The end of the loop: the extensions started after the poller, which
 * may have used it, are stopped already. */
static void poller_stop(struct fiber_loop *loop, struct fiber__ext *ext)
{
    struct fiber__poller *p = (struct fiber__poller *)(void *)ext;

    for (size_t c = 0; c < p->nchunks; c++) {
        free(p->chunks[c]);
    }
    free(p->chunks);
    close(p->epfd);
    free(p);
    loop->poller = NULL;
    loop->io_wait = NULL;
}
