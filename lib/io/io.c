/*
 * io.c - fiber-aware descriptor calls: wait, read, write, recv, send,
 * accept, connect, close.
 *
 * Each call tries its system call in a form that cannot block and waits
 * only when that says EAGAIN, so the thread itself never blocks.  The
 * descriptor's flags are never changed: stdio, other threads and other
 * processes may share its open file description, and a shared terminal or
 * pipe switched to O_NONBLOCK makes their plain writes fail with EAGAIN.
 * Non-blocking work is per call instead, chosen by the kind of descriptor
 * (see enum fiber__fd_kind):
 *
 *   sockets         recv/send with MSG_DONTWAIT (send with MSG_NOSIGNAL);
 *   pipes           preadv2/pwritev2 with RWF_NOWAIT;
 *   anything else   (FIFOs, terminals, eventfds, regular files...) where
 *                   the kernel has no per-call flag: poll(2) first, then
 *                   the plain call, which readiness keeps from blocking.
 *                   See write_polled for writes.
 *
 * accept and connect have no per-call flag either; see them below.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "loop.h"
#include "poller.h"

/*
 * The start of every call that can wait: the running fiber, a pending
 * cancel, and the descriptor's table entry with its kind.  Returns 0 or a
 * negative errno.
 */
static int io_begin(int fd, struct fiber_loop **loop, struct fiber__fd **e)
{
    struct fiber_task *self;
    int rc = fiber__fd_call_enter(
        "fiber I/O (read, recv, write, send, accept or connect)", fd, &self);

    if (rc < 0)
        return rc;
    *loop = self->loop;
    return fiber__fd_get(*loop, fd, e);
}

static bool would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

/* True when err says the descriptor does not take RWF_NOWAIT (FIFOs,
 * terminals; kernels before 4.14 do not know the flag at all). */
static bool nowait_unsupported(int err)
{
    return err == EOPNOTSUPP || err == ENOSYS;
}

/*
 * After a call failed with err, correct e's kind if err says it was wrong:
 * a socket hint on something else (ENOTSOCK), a pipe hint on a descriptor
 * without RWF_NOWAIT.  Returns 1 when corrected (try again), 0 when err
 * is the call's own error, or -errno.
 */
static int correct_kind(struct fiber__fd *e, int fd, int err, bool user_socket)
{
    if (e->kind == FIBER__FD_SOCKET && err == ENOTSOCK && !user_socket) {
        int rc = fiber__fd_classify(e, fd);
        return rc < 0 ? rc : 1;
    }
    if (e->kind == FIBER__FD_NOWAIT && nowait_unsupported(err)) {
        e->kind = FIBER__FD_POLL;
        return 1;
    }
    return 0;
}

/* Wait as fiber__fd_wait, then make sure e's kind is known again (a wait
 * that found another file behind fd resets it). */
static int wait_then_classify(struct fiber_loop *loop, struct fiber__fd *e,
                              int fd, int events, int64_t deadline,
                              const char *what)
{
    int rc = fiber__fd_wait(loop, e, fd, events, deadline, what);

    if (rc == 0 && e->kind == FIBER__FD_UNKNOWN)
        rc = fiber__fd_classify(e, fd);
    return rc;
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

/*
 * Wait until fd is ready for events.  poll_first asks poll(2) how the
 * descriptor is now before each wait: edge-triggered epoll says nothing
 * of one ready before it was registered.  Without it (for a caller whose
 * own call just said EAGAIN) the wait starts at once: an edge after that
 * call wakes it, and registering reports a descriptor ready by then.
 */
static int wait_fd(const char *call, int fd, int events, int64_t deadline_ns,
                   bool poll_first)
{
    struct fiber_task *self;
    struct fiber__poller *p = NULL;
    struct fiber__fd *e = NULL;

    if (events <= 0 || events > FIBER__IO_BOTH)
        return -EINVAL;
    int rc = fiber__fd_call_enter(call, fd, &self);
    if (rc < 0)
        return rc;
    rc = fiber__poller_get(self->loop, &p);
    if (rc < 0)
        return rc;
    rc = fiber__fd_entry(self->loop, fd, &e);
    if (rc < 0)
        return rc;
    if (!poll_first)
        return fiber__fd_wait(self->loop, e, fd, events, deadline_ns,
                              wait_names[events]);
    for (;;) {
        rc = ready_now(fd, events);
        if (rc != 0)
            return rc;
        e->ready &= (uint8_t)~events;   /* stale: it is not ready now */
        rc = fiber__fd_wait(self->loop, e, fd, events, deadline_ns,
                            wait_names[events]);
        if (rc < 0)
            return rc;
    }
}

FIBER_API int fiber_wait_fd_until(int fd, int events, int64_t deadline_ns)
{
    return wait_fd("fiber_wait_fd_until", fd, events, deadline_ns, true);
}

FIBER_API int fiber_wait_fd_again_until(int fd, int events, int64_t deadline_ns)
{
    return wait_fd("fiber_wait_fd_again_until", fd, events, deadline_ns, false);
}

FIBER_API int fiber_wait_fd(int fd, int events)
{
    return fiber_wait_fd_until(fd, events, FIBER__FOREVER);
}

/* ---- reading ------------------------------------------------------------- */

/* One attempt to read without blocking, in the way e's kind says; as
 * read(2), -1 with errno set (EAGAIN: wait). */
static ssize_t try_read(struct fiber__fd *e, int fd, void *buf, size_t len,
                        int flags, bool use_recv)
{
    if (use_recv || e->kind == FIBER__FD_SOCKET)
        return recv(fd, buf, len, flags | MSG_DONTWAIT);
    if (e->kind == FIBER__FD_NOWAIT) {
        struct iovec iov = {.iov_base = buf, .iov_len = len};
        return preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
    }
    /* Readable per poll(2), a read returns at once: data, end of file or
     * an error.  Only another reader of the same file taking the data in
     * between (another process reading the same FIFO or terminal) could
     * make it wait. */
    int ready = ready_now(fd, FIBER__IO_IN);
    if (ready <= 0) {
        errno = ready < 0 ? -ready : EAGAIN;
        return -1;
    }
    return read(fd, buf, len);
}

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
    /* read(2) of nothing returns 0 at once; recv(2) would wait for data. */
    if (len == 0 && !use_recv)
        return fcntl(fd, F_GETFD) < 0 ? -errno : 0;

    for (;;) {
        ssize_t n = try_read(e, fd, buf, len, flags, use_recv);
        if (n >= 0)
            return n;
        int err = errno;
        if (err == EINTR)
            continue;
        rc = correct_kind(e, fd, err, use_recv);
        if (rc < 0)
            return rc;
        if (rc > 0)
            continue;
        if (!would_block(err))
            return -err;
        rc = wait_then_classify(loop, e, fd, FIBER__IO_IN, deadline, "read");
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

/*
 * How writes go to a descriptor of kind FIBER__FD_POLL, which has no
 * per-call flag.  Decided at the first write of a call and again after
 * each wait, when the number may hold another file.
 */
enum polled_how {
    POLLED_UNSET,
    POLLED_PLAIN,    /* write(2) cannot block: O_NONBLOCK, or a disk file */
    POLLED_TTY,      /* through a non-blocking description of the terminal */
    POLLED_PIECES,   /* POLLOUT, then at most PIPE_BUF bytes */
};

struct polled_write {
    enum polled_how how;
    int tty_fd;      /* POLLED_TTY: the description written through */
};

/*
 * A new open file description of the terminal fd, non-blocking, for this
 * call alone; -1 if there is none.  A terminal cannot be written without
 * blocking otherwise: POLLOUT promises room for one byte, and a blocking
 * write(2) of more, or of a newline that output processing doubles, waits
 * until the reader takes the rest.  Its flags belong to the description,
 * shared with stdio and the shell; a description of our own can be
 * non-blocking, as libuv's terminals are.  Only a terminal: opening other
 * character devices may do things of its own, and a pseudo-terminal
 * master's path opens a new pseudo-terminal (TIOCGPTN works only on a
 * master).  The description lives for one call so that it never keeps a
 * terminal open the program closed.
 */
static int reopen_terminal(int fd)
{
    char path[sizeof("/proc/self/fd/") + 3 * sizeof(int)];
    unsigned int ptn;
    int saved = errno;

    if (!isatty(fd) || ioctl(fd, TIOCGPTN, &ptn) == 0) {
        errno = saved;
        return -1;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int tty = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    errno = saved;
    return tty;
}

static void polled_reset(struct polled_write *w)
{
    if (w->tty_fd >= 0)
        close(w->tty_fd);
    w->tty_fd = -1;
    w->how = POLLED_UNSET;
}

static int polled_setup(struct fiber__fd *e, int fd, struct polled_write *w)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -errno;
    /* A socket now holds a number closed with close(2): send(2) it is. */
    if (S_ISSOCK(st.st_mode)) {
        e->kind = FIBER__FD_SOCKET;
        return 0;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -errno;
    /* A descriptor the program made non-blocking: write(2) as it is.
     * One open read-only: write(2) fails at once, as it should. */
    if ((flags & O_NONBLOCK) || (flags & O_ACCMODE) == O_RDONLY) {
        w->how = POLLED_PLAIN;
        return 0;
    }
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
        w->how = POLLED_PLAIN;   /* always ready: epoll cannot wait on it */
        return 0;
    }
    if (S_ISCHR(st.st_mode)) {
        w->tty_fd = reopen_terminal(fd);
        if (w->tty_fd >= 0) {
            w->how = POLLED_TTY;
            return 0;
        }
    }
    w->how = POLLED_PIECES;
    return 0;
}

/*
 * One write to a FIBER__FD_POLL descriptor; as write(2).  POLLED_PIECES is
 * what is left for FIFOs and devices: a FIFO's POLLOUT means a free page,
 * so PIPE_BUF bytes go in at once; another device may take them more
 * slowly, and a pseudo-terminal master whose slave reads nothing may hold
 * the thread as a blocking write would.
 */
static ssize_t write_polled(int fd, const char *buf, size_t len,
                            struct polled_write *w)
{
    switch (w->how) {
    case POLLED_TTY:
        return write(w->tty_fd, buf, len);
    case POLLED_PIECES: {
        int ready = ready_now(fd, FIBER__IO_OUT);
        if (ready <= 0) {
            errno = ready < 0 ? -ready : EAGAIN;
            return -1;
        }
        return write(fd, buf, len < PIPE_BUF ? len : PIPE_BUF);
    }
    default:
        return write(fd, buf, len);
    }
}

/* One attempt to write without blocking; as write(2).  Sockets go through
 * send(2) with MSG_NOSIGNAL, so a closed peer is an error code rather than
 * a SIGPIPE. */
static ssize_t try_write(struct fiber__fd *e, int fd, const char *buf,
                         size_t len, int flags, bool use_send,
                         struct polled_write *w)
{
    if (e->kind == FIBER__FD_POLL && w->how == POLLED_UNSET) {
        int rc = polled_setup(e, fd, w);
        if (rc < 0) {
            errno = -rc;
            return -1;
        }
    }
    if (use_send || e->kind == FIBER__FD_SOCKET)
        return send(fd, buf, len, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
    if (e->kind == FIBER__FD_NOWAIT) {
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        return pwritev2(fd, &iov, 1, -1, RWF_NOWAIT);
    }
    return write_polled(fd, buf, len, w);
}

/* Write all of buf. */
static ssize_t write_all(int fd, const void *buf, size_t len, int flags,
                         bool use_send, int64_t deadline)
{
    struct fiber_loop *loop;
    struct fiber__fd *e = NULL;
    struct polled_write w = {.how = POLLED_UNSET, .tty_fd = -1};
    const char *p = buf;
    size_t done = 0;

    if (!buf && len > 0)
        return -EINVAL;
    if (len > SSIZE_MAX)
        return -EINVAL;
    int rc = io_begin(fd, &loop, &e);
    if (rc < 0)
        return rc;

    while (done < len) {
        ssize_t n = try_write(e, fd, p + done, len - done, flags, use_send, &w);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        int err = n < 0 ? errno : EAGAIN;
        if (err == EINTR)
            continue;
        rc = correct_kind(e, fd, err, use_send);
        if (rc < 0)
            break;
        if (rc > 0)
            continue;
        if (!would_block(err)) {
            rc = -err;
            break;
        }
        rc = wait_then_classify(loop, e, fd, FIBER__IO_OUT, deadline, "write");
        if (rc < 0)
            break;
        polled_reset(&w);
    }
    polled_reset(&w);
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

/*
 * accept(2) has no per-call flag (accept4's SOCK_NONBLOCK is for the new
 * socket).  A listener the program made blocking is asked with poll(2)
 * first; another process or thread accepting from the same listener can
 * take the connection in between, and then accept4 waits, holding the
 * thread, for the next one.  Listeners made non-blocking (fiber_tcp_listen
 * makes them so) have no such race.
 */
/*
 * Accept up to max connections into fds, the first one's address into
 * addr: the first may be waited for until deadline_ns, the others are only
 * taken if already queued.  The listener's flags are asked once per
 * batch, not once per connection.  Returns how many, or -errno when none.
 */
static int accept_batch(int fd, struct sockaddr *addr, socklen_t *addrlen,
                        int *fds, int max, int64_t deadline_ns)
{
    struct fiber_loop *loop;
    struct fiber__fd *e = NULL;
    int rc = io_begin(fd, &loop, &e);
    if (rc < 0)
        return rc;

    socklen_t room = addrlen ? *addrlen : 0;
    int n = 0;
    for (;;) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
            return -errno;
        while (n < max) {
            rc = (flags & O_NONBLOCK) ? FIBER__IO_IN
                                      : ready_now(fd, FIBER__IO_IN);
            if (rc <= 0)
                break;
            if (addrlen && n == 0)
                *addrlen = room;
            int conn = accept4(fd, n == 0 ? addr : NULL,
                               n == 0 ? addrlen : NULL,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (conn < 0) {
                /* A connection reset before it was accepted is not this
                 * listener's failure: take the next one. */
                if (errno == EINTR || errno == ECONNABORTED)
                    continue;
                rc = would_block(errno) ? 0 : -errno;
                break;
            }
            rc = fiber__fd_adopt(loop, conn, true);
            if (rc < 0) {
                close(conn);
                break;
            }
            fds[n++] = conn;
        }
        /* An error after some connections recurs on the next call. */
        if (n > 0)
            return n;
        if (rc < 0)
            return rc;
        rc = fiber__fd_wait(loop, e, fd, FIBER__IO_IN, deadline_ns, "accept");
        if (rc < 0)
            return rc;
    }
}

FIBER_API int fiber_accept_until(int fd, struct sockaddr *addr,
                                 socklen_t *addrlen, int64_t deadline_ns)
{
    int conn = -1;

    if (addr && !addrlen)
        return -EINVAL;
    int rc = accept_batch(fd, addr, addrlen, &conn, 1, deadline_ns);
    return rc < 0 ? rc : conn;
}

FIBER_API int fiber_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
    return fiber_accept_until(fd, addr, addrlen, FIBER__FOREVER);
}

FIBER_API int fiber_tcp_accept_until(int listener, int *fds, int max,
                                     int64_t deadline_ns)
{
    if (!fds || max <= 0)
        return -EINVAL;
    int n = accept_batch(listener, NULL, NULL, fds, max, deadline_ns);
    /* TCP_NODELAY on each; a listener of another family (a Unix socket)
     * has no such option, and that is no failure. */
    for (int i = 0; i < n; i++)
        (void)fiber_tcp_nodelay(fds[i], true);
    return n;
}

FIBER_API int fiber_tcp_accept(int listener, int *fds, int max)
{
    return fiber_tcp_accept_until(listener, fds, max, FIBER__FOREVER);
}

/*
 * Start connecting without waiting.  connect(2) has no per-call flag, so
 * a blocking socket is made non-blocking for the one connect(2) call and
 * put back before anything else runs on this thread: the flag is never
 * seen across a wait.  The handshake goes on in the kernel either way.
 * Returns 0 (connected), 1 (in progress) or -errno.
 */
static int start_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0)
        return -errno;
    bool blocking = !(flags & O_NONBLOCK);
    if (blocking && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    int rc = connect(fd, addr, addrlen);
    int err = errno;
    if (blocking)
        fcntl(fd, F_SETFL, flags);
    if (rc == 0)
        return 0;
    /* Interrupted, a non-blocking connect goes on in the background. */
    if (err == EINPROGRESS || err == EINTR || err == EALREADY)
        return 1;
    return -err;
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

    rc = start_connect(fd, addr, addrlen);
    if (rc <= 0)
        return rc;
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
