/*
 * io.c - fiber-aware descriptor calls: wait, read, write, recv, send,
 * accept, connect, close.
 *
 * Each call tries its system call first and waits only after EAGAIN; the
 * descriptors are non-blocking, so the thread itself never blocks.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "poller.h"

/*
 * The start of every call that can wait: the running fiber, a pending
 * cancel, and the descriptor's table entry (set up non-blocking unless
 * raw).  Returns 0 or a negative errno.
 */
static int io_begin(int fd, struct fiber_loop **loop, struct fiber__fd **e)
{
    struct fiber_task *self = fiber__enter_fiber(
        "fiber I/O (read, recv, write, send, accept or connect)");

    if (!self)
        return -EPERM;
    if (fd < 0)
        return -EBADF;
    int rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    *loop = self->loop;
    return fiber__fd_get(*loop, fd, e);
}

static bool would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

/* ---- waiting for readiness ---------------------------------------------- */

/* What poll(2) says fd is ready for, among events; -errno on failure. */
static int ready_now(int fd, int events)
{
    struct pollfd pfd = {
        .fd = fd,
        .events = (short)(((events & FIBER__IO_IN) ? POLLIN : 0) |
                          ((events & FIBER__IO_OUT) ? POLLOUT : 0)),
    };
    int n;

    do
        n = poll(&pfd, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (pfd.revents & POLLNVAL)
        return -EBADF;
    int ready = 0;
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
        ready |= FIBER__IO_IN;
    if (pfd.revents & (POLLOUT | POLLHUP | POLLERR))
        ready |= FIBER__IO_OUT;
    return ready & events;
}

static const char *const wait_names[] = {
    [FIBER__IO_IN] = "fd readable",
    [FIBER__IO_OUT] = "fd writable",
    [FIBER__IO_BOTH] = "fd readable or writable",
};

FIBER_API int fiber_wait_fd_until(int fd, int events, int64_t deadline_ns)
{
    struct fiber__poller *p = NULL;
    struct fiber__fd *e = NULL;

    if (events <= 0 || events > FIBER__IO_BOTH)
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber("fiber_wait_fd_until");
    if (!self)
        return -EPERM;
    if (fd < 0)
        return -EBADF;
    int rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    rc = fiber__poller_get(self->loop, &p);
    if (rc < 0)
        return rc;

    for (;;) {
        /* Edge-triggered epoll says nothing of a descriptor ready before
         * it was registered; poll(2) says how it is now. */
        rc = ready_now(fd, events);
        if (rc != 0)
            return rc;
        rc = fiber__fd_entry(self->loop, fd, &e);
        if (rc < 0)
            return rc;
        e->ready &= (uint8_t)~events;   /* stale: it is not ready now */
        rc = fiber__fd_wait(self->loop, e, fd, events, deadline_ns,
                            wait_names[events]);
        if (rc < 0)
            return rc;
    }
}

FIBER_API int fiber_wait_fd(int fd, int events)
{
    return fiber_wait_fd_until(fd, events, FIBER__FOREVER);
}

/* ---- reading ------------------------------------------------------------- */

static ssize_t read_some(int fd, void *buf, size_t len, int flags,
                         bool use_recv, int64_t deadline)
{
    struct fiber_loop *loop;
    struct fiber__fd *e = NULL;

    if (!buf && len > 0)
        return -EINVAL;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    int rc = io_begin(fd, &loop, &e);
    if (rc < 0)
        return rc;

    for (;;) {
        ssize_t n = use_recv ? recv(fd, buf, len, flags) : read(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (!would_block(errno))
            return -errno;
        rc = fiber__fd_wait(loop, e, fd, FIBER__IO_IN, deadline, "read");
        if (rc < 0)
            return rc;
    }
}

FIBER_API ssize_t fiber_read_until(int fd, void *buf, size_t len,
                                   int64_t deadline_ns)
{
    return read_some(fd, buf, len, 0, false, deadline_ns);
}

FIBER_API ssize_t fiber_read(int fd, void *buf, size_t len)
{
    return read_some(fd, buf, len, 0, false, FIBER__FOREVER);
}

FIBER_API ssize_t fiber_recv_until(int fd, void *buf, size_t len, int flags,
                                   int64_t deadline_ns)
{
    return read_some(fd, buf, len, flags, true, deadline_ns);
}

FIBER_API ssize_t fiber_recv(int fd, void *buf, size_t len, int flags)
{
    return read_some(fd, buf, len, flags, true, FIBER__FOREVER);
}

/* ---- writing ------------------------------------------------------------- */

/* Write all of buf.  Sockets go through send(2) with MSG_NOSIGNAL, so a
 * closed peer is an error code rather than a SIGPIPE. */
static ssize_t write_all(int fd, const void *buf, size_t len, int flags,
                         bool use_send, int64_t deadline)
{
    struct fiber_loop *loop;
    struct fiber__fd *e = NULL;
    const char *p = buf;
    size_t done = 0;

    if (!buf && len > 0)
        return -EINVAL;
    if (len > SSIZE_MAX)
        return -EINVAL;
    int rc = io_begin(fd, &loop, &e);
    if (rc < 0)
        return rc;
    use_send = use_send || e->is_socket;

    while (done < len) {
        ssize_t n = use_send ? send(fd, p + done, len - done, flags | MSG_NOSIGNAL)
                             : write(fd, p + done, len - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && !would_block(errno)) {
            rc = -errno;
            break;
        }
        rc = fiber__fd_wait(loop, e, fd, FIBER__IO_OUT, deadline, "write");
        if (rc < 0)
            break;
    }
    return done > 0 ? (ssize_t)done : rc;
}

FIBER_API ssize_t fiber_write_until(int fd, const void *buf, size_t len,
                                    int64_t deadline_ns)
{
    return write_all(fd, buf, len, 0, false, deadline_ns);
}

FIBER_API ssize_t fiber_write(int fd, const void *buf, size_t len)
{
    return write_all(fd, buf, len, 0, false, FIBER__FOREVER);
}

FIBER_API ssize_t fiber_send_until(int fd, const void *buf, size_t len,
                                   int flags, int64_t deadline_ns)
{
    return write_all(fd, buf, len, flags, true, deadline_ns);
}

FIBER_API ssize_t fiber_send(int fd, const void *buf, size_t len, int flags)
{
    return write_all(fd, buf, len, flags, true, FIBER__FOREVER);
}

/* ---- connections --------------------------------------------------------- */

FIBER_API int fiber_accept_until(int fd, struct sockaddr *addr,
                                 socklen_t *addrlen, int64_t deadline_ns)
{
    struct fiber_loop *loop;
    struct fiber__fd *e = NULL;

    if (addr && !addrlen)
        return -EINVAL;
    int rc = io_begin(fd, &loop, &e);
    if (rc < 0)
        return rc;

    socklen_t room = addrlen ? *addrlen : 0;
    for (;;) {
        if (addrlen)
            *addrlen = room;
        int conn = accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn >= 0) {
            rc = fiber__fd_adopt(loop, conn, true);
            if (rc < 0) {
                close(conn);
                return rc;
            }
            return conn;
        }
        /* A connection reset before it was accepted is not this
         * listener's failure: take the next one. */
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (!would_block(errno))
            return -errno;
        rc = fiber__fd_wait(loop, e, fd, FIBER__IO_IN, deadline_ns, "accept");
        if (rc < 0)
            return rc;
    }
}

FIBER_API int fiber_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    return fiber_accept_until(fd, addr, addrlen, FIBER__FOREVER);
}

FIBER_API int fiber_connect_until(int fd, const struct sockaddr *addr,
                                  socklen_t addrlen, int64_t deadline_ns)
{
    struct fiber_loop *loop;
    struct fiber__fd *e = NULL;

    if (!addr)
        return -EINVAL;
    int rc = io_begin(fd, &loop, &e);
    if (rc < 0)
        return rc;

    if (connect(fd, addr, addrlen) == 0)
        return 0;
    /* Interrupted, a non-blocking connect goes on in the background. */
    if (errno != EINPROGRESS && errno != EINTR && errno != EALREADY)
        return -errno;
    for (;;) {
        rc = fiber__fd_wait(loop, e, fd, FIBER__IO_OUT, deadline_ns, "connect");
        if (rc < 0)
            return rc;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            return -errno;
        if (err != 0)
            return -err;
        /* Writable may be a stale edge: connected only if there is a peer. */
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0)
            return 0;
        if (errno != ENOTCONN)
            return -errno;
    }
}

FIBER_API int fiber_connect(int fd, const struct sockaddr *addr,
                            socklen_t addrlen)
{
    return fiber_connect_until(fd, addr, addrlen, FIBER__FOREVER);
}

FIBER_API int fiber_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    if (fiber__loop)
        fiber__fd_forget(fiber__loop, fd);
    /* On Linux the descriptor is gone even when close reports EINTR. */
    if (close(fd) < 0 && errno != EINTR)
        return -errno;
    return 0;
}
