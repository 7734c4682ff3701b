/*
 * net.c - what servers need beyond one call per system call: gathered
 * writes (fiber_writev) and TCP_NODELAY (fiber_tcp_nodelay).  The accept
 * that takes every connection pending on a listener at once
 * (fiber_tcp_accept) is in io.c, beside fiber_accept, with which it
 * shares its loop.
 *
 * Built on the public descriptor calls of io.c, so that how those wait is
 * their business alone: a socket is written with MSG_DONTWAIT, whatever
 * its flags, and waited on with fiber_wait_fd; anything else goes through
 * fiber_write.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "loop.h"
#include "poller.h"

/* Room for the rest of a gather after a partial write: the entries not yet
 * written are copied here, the first one trimmed.  Enough for any
 * response; a longer gather is sent in pieces of this many entries. */
#define WRITEV_CHUNK 64

/* ---- gathered writes ------------------------------------------------------ */

/* The total length of iov, or -EINVAL when the arguments are wrong. */
static ssize_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t total = 0;

    if (iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt > 0))
        return -EINVAL;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len > 0)
            return -EINVAL;
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    return (ssize_t)total;
}

/* Not a socket: each piece through fiber_write, which knows how to wait
 * on a pipe or a terminal without changing its flags. */
static ssize_t writev_each(int fd, const struct iovec *iov, int iovcnt,
                           size_t skip, int64_t deadline)
{
    size_t done = 0;

    for (int i = 0; i < iovcnt; i++) {
        const char *base = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        base += skip;
        len -= skip;
        skip = 0;
        ssize_t n = fiber_write_until(fd, base, len, deadline);
        if (n < 0)
            return done > 0 ? (ssize_t)done : n;
        done += (size_t)n;
        if ((size_t)n < len)
            break;
    }
    return (ssize_t)done;
}

/*
 * One sendmsg of the entries of iov from byte offset done on, at most
 * WRITEV_CHUNK of them once a write was partial.  Returns what sendmsg
 * returns, with errno set.
 */
static ssize_t send_from(int fd, const struct iovec *iov, int iovcnt,
                         size_t done)
{
    struct iovec rest[WRITEV_CHUNK];
    struct msghdr msg = {.msg_iov = (struct iovec *)iov,
                         .msg_iovlen = (size_t)iovcnt};
    int i = 0;

    if (done > 0) {
        /* Skip what went out, trim the entry it ended in. */
        while (i < iovcnt && done >= iov[i].iov_len)
            done -= iov[i++].iov_len;
        int n = 0;
        for (; i < iovcnt && n < WRITEV_CHUNK; i++, n++)
            rest[n] = iov[i];
        rest[0].iov_base = (char *)rest[0].iov_base + done;
        rest[0].iov_len -= done;
        msg.msg_iov = rest;
        msg.msg_iovlen = (size_t)n;
    }
    return sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

FIBER_API ssize_t fiber_writev_until(int fd, const struct iovec *iov,
                                     int iovcnt, int64_t deadline_ns)
{
    ssize_t total = iov_total(iov, iovcnt);

    if (total < 0)
        return total;
    struct fiber_task *self;
    int rc = fiber__fd_call_enter("fiber_writev_until", fd, &self);
    if (rc < 0)
        return rc;

    size_t done = 0;
    while (done < (size_t)total) {
        ssize_t n = send_from(fd, iov, iovcnt, done);
        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == ENOTSOCK) {
            n = writev_each(fd, iov, iovcnt, done, deadline_ns);
            if (n < 0 && done == 0)
                return n;
            return (ssize_t)done + (n > 0 ? n : 0);
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            rc = -errno;
            break;
        }
        /* The send just said EAGAIN: no poll(2) before waiting. */
        rc = fiber_wait_fd_again_until(fd, FIBER_WRITABLE, deadline_ns);
        if (rc < 0)
            break;
    }
    return done > 0 || total == 0 ? (ssize_t)done : rc;
}

FIBER_API ssize_t fiber_writev(int fd, const struct iovec *iov, int iovcnt)
{
    return fiber_writev_until(fd, iov, iovcnt, FIBER__FOREVER);
}

/* ---- TCP options ----------------------------------------------------------- */

FIBER_API int fiber_tcp_nodelay(int fd, bool on)
{
    int value = on;

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, sizeof(value)) < 0)
        return -errno;
    return 0;
}

