/*
 * poller.c - I/O readiness for the loop: one epoll instance per loop,
 * created when a fiber first waits on a descriptor, and the table of what
 * the library knows about each descriptor.
 *
 * Descriptors are registered once, edge-triggered, for both directions, so
 * a fiber that waits again costs no epoll_ctl.  Edge-triggered epoll only
 * reports changes; that is enough because every wait follows an EAGAIN
 * (data that comes later makes a new edge) and an edge reported while
 * nobody waited is kept in the entry's ready bits for the next waiter.
 */
#include "config.h"

#include "poller.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "process.h"
#include "signals.h"
#include "thread_pool.h"

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
    *out = p;
    return 0;
}

void fiber__poller_hold(struct fiber_loop *loop)
{
    loop->poller->nwaiting++;
}

void fiber__poller_release(struct fiber_loop *loop)
{
    assert(loop->poller->nwaiting > 0);
    loop->poller->nwaiting--;
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
    if (e && e->known) {
        *out = e;
        return 0;
    }

    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    rc = entry_alloc(p, fd, &e);
    if (rc < 0)
        return rc;
    if (!(flags & O_NONBLOCK)) {
        if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
            return -errno;
        e->made_nonblocking = true;
    }
    e->is_socket = S_ISSOCK(st.st_mode);
    e->known = true;
    *out = e;
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
    e->is_socket = is_socket;
    e->known = true;
    return 0;
}

void fiber__fd_forget(struct fiber_loop *loop, int fd)
{
    struct fiber__poller *p = loop ? loop->poller : NULL;
    struct fiber__fd *e = p ? entry_if_any(p, fd) : NULL;

    if (e && (e->known || e->registered))
        entry_reset(loop, p, e, fd);
}

static int register_fd(struct fiber__poller *p, struct fiber__fd *e, int fd)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.fd = fd,
    };

    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        /* EEXIST: an earlier descriptor of this number, still open
         * elsewhere (a dup), left its registration behind.  Take it over. */
        if (errno != EEXIST || epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
            return -errno;
    }
    e->registered = true;
    return 0;
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
    if (!e->registered) {
        rc = register_fd(p, e, fd);
        if (rc < 0)
            return rc;
    }
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
    rc = register_fd(p, e, fd);
    if (rc < 0)
        return rc;
    e->known = true;
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
            fiber__clock_wait_until(&loop->clock, deadline);
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
    if (n < 0)
        return 0;   /* EINTR: the scheduler looks again. */
    size_t woken = dispatch(loop, p, p->events, n);
    /* Edges that woke nobody (data for a fiber busy elsewhere) must not
     * hold virtual time back for ever. */
    if (jump && loop->nready == ready_before)
        fiber__clock_wait_until(&loop->clock, deadline);
    return (int)woken;
}

/* Put back the blocking mode of descriptors the library made
 * non-blocking and that are still open, such as a terminal on stdin. */
static void restore_blocking(struct fiber__fd *e, int fd)
{
    if (!e->made_nonblocking)
        return;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

void fiber__poller_destroy(struct fiber_loop *loop)
{
    struct fiber__poller *p = loop->poller;

    if (!p)
        return;
    fiber__thread_pool_destroy(loop);
    fiber__signals_destroy(loop);
    fiber__processes_destroy(loop);
    for (size_t c = 0; c < p->nchunks; c++) {
        if (!p->chunks[c])
            continue;
        for (size_t i = 0; i < FIBER__FD_CHUNK; i++)
            restore_blocking(&p->chunks[c][i], (int)(c * FIBER__FD_CHUNK + i));
        free(p->chunks[c]);
    }
    free(p->chunks);
    close(p->epfd);
    free(p);
    loop->poller = NULL;
}
