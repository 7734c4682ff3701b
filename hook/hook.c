/*
 * hook.c - libfiber-hook: the blocking libc calls, defined again so that a
 * call that would block, made in a fiber of a running loop, blocks only
 * that fiber.  See include/fiber-hook.h for the rules.
 *
 * Each hook first asks whether it runs in a fiber (fiber_self).  If not,
 * it is libc's function, reached through dlsym(RTLD_NEXT).  In a fiber it
 * looks the descriptor up in a table of what it knows of each (its kind,
 * whether the program made it non-blocking, its SO_RCVTIMEO and
 * SO_SNDTIMEO), filled on first use with fstat, F_GETFL and getsockopt
 * and dropped by close, dup2, dup3 and by every fcntl, ioctl or
 * setsockopt that may change it.  Then:
 *
 * - on a socket, the call is made once with MSG_DONTWAIT, and after
 *   EAGAIN the fiber waits for readiness (fiber_wait_fd_until) and tries
 *   again: one system call when data is there;
 * - on a pipe, FIFO, terminal or other pollable descriptor, the fiber
 *   waits until it is ready, then makes the call, writing at most
 *   PIPE_BUF bytes at a time so that a write never blocks;
 * - on a regular file, a directory or a block device, or a descriptor the
 *   program made non-blocking, the call is libc's.
 *
 * The descriptor's flags are never changed, but for one instant in
 * connect (see connect below).  libfiber itself never calls these hooks:
 * lib/core/libc_direct.h renames its calls to system calls of its own.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber-hook.h"

#define HOOK __attribute__((visibility("default")))

/* ---- libc's functions -------------------------------------------------- */

/* Resolved on first use: a hook may run before any constructor (another
 * library's constructor may read a file).  Two threads resolving at once
 * store the same pointer. */
#define REAL_DECL(name) static _Atomic(__typeof__(&name)) real_##name
#define REAL(name) \
    (atomic_load_explicit(&real_##name, memory_order_relaxed) \
         ? atomic_load_explicit(&real_##name, memory_order_relaxed) \
         : (__typeof__(&name))resolve((void *)&real_##name, #name))

static void *resolve(void *slot, const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);

    if (!fn) {
        /* Nothing sensible can go on: every call would fail. */
        fprintf(stderr, "libfiber-hook: libc's %s not found\n", name);
        abort();
    }
    atomic_store_explicit((_Atomic(void *) *)slot, fn, memory_order_relaxed);
    return fn;
}

REAL_DECL(read);
REAL_DECL(write);
REAL_DECL(readv);
REAL_DECL(writev);
REAL_DECL(recv);
REAL_DECL(recvfrom);
REAL_DECL(recvmsg);
REAL_DECL(send);
REAL_DECL(sendto);
REAL_DECL(sendmsg);
REAL_DECL(connect);
REAL_DECL(accept);
REAL_DECL(accept4);
REAL_DECL(poll);
REAL_DECL(ppoll);
REAL_DECL(select);
REAL_DECL(nanosleep);
REAL_DECL(clock_nanosleep);
REAL_DECL(usleep);
REAL_DECL(sleep);
REAL_DECL(getaddrinfo);
REAL_DECL(close);
REAL_DECL(dup);
REAL_DECL(dup2);
REAL_DECL(dup3);
REAL_DECL(fcntl);
REAL_DECL(ioctl);
REAL_DECL(setsockopt);
REAL_DECL(socket);
REAL_DECL(socketpair);
REAL_DECL(pipe);
REAL_DECL(pipe2);

/* ---- what is known of each descriptor ---------------------------------- */

enum fd_kind {
    KIND_PLAIN = 0,   /* regular file, directory, block device: libc's call */
    KIND_SOCKET = 1,  /* MSG_DONTWAIT, then wait */
    KIND_POLL = 2,    /* wait until ready, then the call */
};

#define ST_KNOWN 1u
#define ST_NONBLOCK 2u          /* the program made it non-blocking */
#define ST_KIND_SHIFT 2

struct fd_info {
    _Atomic uint32_t state;     /* 0: not known */
    _Atomic int64_t rcvtimeo;   /* SO_RCVTIMEO in ns, 0: none */
    _Atomic int64_t sndtimeo;
};

/* A snapshot of an entry, taken by the hook that uses it. */
struct fd_view {
    enum fd_kind kind;
    bool nonblock;
    int64_t rcvtimeo, sndtimeo;
};

/* Descriptors below TABLE_CHUNK * TABLE_CHUNKS are remembered; those
 * above are looked at afresh on every call. */
#define TABLE_CHUNK 1024
#define TABLE_CHUNKS 1024

static _Atomic(struct fd_info *) table[TABLE_CHUNKS];

static struct fd_info *info_slot(int fd, bool create)
{
    size_t c = (size_t)fd / TABLE_CHUNK;

    if (fd < 0 || c >= TABLE_CHUNKS)
        return NULL;
    struct fd_info *chunk = atomic_load_explicit(&table[c], memory_order_acquire);
    if (!chunk && create) {
        struct fd_info *fresh = calloc(TABLE_CHUNK, sizeof(*fresh));
        if (!fresh)
            return NULL;
        if (atomic_compare_exchange_strong_explicit(&table[c], &chunk, fresh,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire))
            chunk = fresh;
        else
            free(fresh);   /* another thread installed one first */
    }
    return chunk ? &chunk[(size_t)fd % TABLE_CHUNK] : NULL;
}

/* The first chunk, for descriptors below TABLE_CHUNK, is there before
 * main: a hook called in a signal handler (a self-pipe's write) then
 * finds its entry without calling malloc. */
__attribute__((constructor)) static void table_init(void)
{
    info_slot(0, true);
}

/* Forget what is known of fd: it was closed, replaced or changed. */
static void info_drop(int fd)
{
    struct fd_info *e = info_slot(fd, false);

    if (e)
        atomic_store_explicit(&e->state, 0, memory_order_release);
}

static int64_t timeo_ns(int fd, int name)
{
    struct timeval tv = { 0 };
    socklen_t len = sizeof(tv);

    if (getsockopt(fd, SOL_SOCKET, name, &tv, &len) < 0)
        return 0;
    return (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
}

/* Fill v with what fd is.  Returns 0, or -1 when fd is not open. */
static int info_get(int fd, struct fd_view *v)
{
    struct fd_info *e = info_slot(fd, true);

    if (e) {
        uint32_t s = atomic_load_explicit(&e->state, memory_order_acquire);
        if (s & ST_KNOWN) {
            v->kind = (enum fd_kind)(s >> ST_KIND_SHIFT);
            v->nonblock = s & ST_NONBLOCK;
            v->rcvtimeo = atomic_load_explicit(&e->rcvtimeo, memory_order_relaxed);
            v->sndtimeo = atomic_load_explicit(&e->sndtimeo, memory_order_relaxed);
            return 0;
        }
    }

    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    int flags = REAL(fcntl)(fd, F_GETFL);
    if (flags < 0)
        return -1;
    if (S_ISSOCK(st.st_mode))
        v->kind = KIND_SOCKET;
    else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode))
        v->kind = KIND_PLAIN;
    else
        v->kind = KIND_POLL;   /* pipe, FIFO, terminal, eventfd, ... */
    v->nonblock = flags & O_NONBLOCK;
    v->rcvtimeo = v->kind == KIND_SOCKET ? timeo_ns(fd, SO_RCVTIMEO) : 0;
    v->sndtimeo = v->kind == KIND_SOCKET ? timeo_ns(fd, SO_SNDTIMEO) : 0;
    if (e) {
        atomic_store_explicit(&e->rcvtimeo, v->rcvtimeo, memory_order_relaxed);
        atomic_store_explicit(&e->sndtimeo, v->sndtimeo, memory_order_relaxed);
        atomic_store_explicit(&e->state,
                              ST_KNOWN | (v->nonblock ? ST_NONBLOCK : 0) |
                                  ((uint32_t)v->kind << ST_KIND_SHIFT),
                              memory_order_release);
    }
    return 0;
}

/*
 * How a call on fd made in a fiber is made, with v filled in: the fiber's
 * way (WAY_FIBER); libc's call (WAY_LIBC) for a descriptor that is not
 * open (libc then reports EBADF) or one the program made non-blocking;
 * libc's call, timed in debug mode, for a plain file (WAY_PLAIN).
 */
enum way { WAY_FIBER, WAY_LIBC, WAY_PLAIN };

static enum way fd_way(int fd, struct fd_view *v)
{
    if (info_get(fd, v) < 0)
        return WAY_LIBC;
    if (v->kind == KIND_PLAIN)
        return WAY_PLAIN;
    return v->nonblock ? WAY_LIBC : WAY_FIBER;
}

/* ---- waiting ------------------------------------------------------------ */

#define NO_DEADLINE INT64_MAX

/* now + ns for a socket timeout, or no deadline for 0. */
static int64_t deadline_after(int64_t ns)
{
    if (ns <= 0)
        return NO_DEADLINE;
    int64_t now = fiber_now_ns();
    return ns > NO_DEADLINE - 1 - now ? NO_DEADLINE - 1 : now + ns;
}

/*
 * What a wait's result rc means for the call: 0 to try again, else the
 * errno the call fails with: EAGAIN when the socket timeout (deadline)
 * passed, as the kernel says, ETIMEDOUT for a timeout scope of the fiber,
 * ECANCELED when it is cancelled, EBADF when another fiber closed fd.
 * -1: the descriptor cannot be waited for (epoll refuses it), so the
 * caller makes libc's blocking call.
 */
static int wait_result(int rc, int64_t deadline)
{
    if (rc >= 0)
        return 0;
    if (rc == -ETIMEDOUT && deadline != NO_DEADLINE && fiber_now_ns() >= deadline)
        return EAGAIN;
    if (rc == -EPERM)
        return -1;
    return -rc;
}

/* Wait until fd is ready for events, or deadline (a socket timeout);
 * returns as wait_result. */
static int wait_ready(int fd, int events, int64_t deadline)
{
    int rc = fiber_wait_fd_until(fd, events, deadline);

    return wait_result(rc, deadline);
}

/* wait_ready after the call itself failed with EAGAIN on a socket: no
 * readiness check first. */
static int wait_again(int fd, int events, int64_t deadline)
{
    int rc = fiber_wait_fd_again_until(fd, events, deadline);

    return wait_result(rc, deadline);
}

static ssize_t fail(int err)
{
    errno = err;
    return -1;
}

/* Set while debug mode writes a report: what it calls (libunwind reads
 * files to name functions) must not be reported in turn. */
static _Thread_local bool reporting;

/* A call of libc that may block the thread, made in a fiber: timed in
 * debug mode, so that it is reported when it blocked for long. */
#define BLOCKING_CALL(what, expr)                                        \
    ({                                                                   \
        int64_t slow_ = reporting ? 0 : fiber_debug_slow_ns(), t0_ = 0;  \
        if (slow_)                                                       \
            t0_ = mono_ns();                                             \
        __typeof__(expr) r_ = (expr);                                    \
        if (slow_) {                                                     \
            int e_ = errno;                                              \
            reporting = true;                                            \
            fiber_debug_blocked(what, mono_ns() - t0_);                  \
            reporting = false;                                           \
            errno = e_;                                                  \
        }                                                                \
        r_;                                                              \
    })

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- reading -------------------------------------------------------------- */

static size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t total = 0;

    for (int i = 0; i < cnt; i++)
        total += iov[i].iov_len;
    return total;
}

/* The ways of reading, so that one loop serves them all. */
enum read_op { OP_READ, OP_READV, OP_RECVFROM, OP_RECVMSG };

struct read_args {
    enum read_op op;
    void *buf;
    size_t len;
    const struct iovec *iov;
    int iovcnt;
    int flags;
    struct sockaddr *addr;
    socklen_t *addrlen;
    struct msghdr *msg;
};

/* One attempt that never blocks on a socket. */
static ssize_t sock_read_once(int fd, const struct read_args *a)
{
    int flags = a->flags | MSG_DONTWAIT;

    switch (a->op) {
    case OP_READ:
        return REAL(recvfrom)(fd, a->buf, a->len, flags, NULL, NULL);
    case OP_RECVFROM:
        return REAL(recvfrom)(fd, a->buf, a->len, flags, a->addr, a->addrlen);
    case OP_READV: {
        struct msghdr m = { .msg_iov = (struct iovec *)a->iov,
                            .msg_iovlen = (size_t)a->iovcnt };
        return REAL(recvmsg)(fd, &m, flags);
    }
    case OP_RECVMSG:
        return REAL(recvmsg)(fd, a->msg, flags);
    }
    return fail(EINVAL);
}

/* libc's call, as the program made it. */
static ssize_t read_libc(int fd, const struct read_args *a)
{
    switch (a->op) {
    case OP_READ:
        return REAL(read)(fd, a->buf, a->len);
    case OP_READV:
        return REAL(readv)(fd, a->iov, a->iovcnt);
    case OP_RECVFROM:
        return REAL(recvfrom)(fd, a->buf, a->len, a->flags, a->addr, a->addrlen);
    case OP_RECVMSG:
        return REAL(recvmsg)(fd, a->msg, a->flags);
    }
    return fail(EINVAL);
}

static const char *const read_names[] = {
    [OP_READ] = "read", [OP_READV] = "readv",
    [OP_RECVFROM] = "recvfrom", [OP_RECVMSG] = "recvmsg",
};

static ssize_t hooked_read(int fd, const struct read_args *a)
{
    struct fd_view v;
    enum way way = fd_way(fd, &v);

    if (way == WAY_PLAIN)
        return BLOCKING_CALL(read_names[a->op], read_libc(fd, a));
    if (way == WAY_LIBC || (a->flags & MSG_DONTWAIT))
        return read_libc(fd, a);
    /* read(2) of nothing returns 0 at once, where recv would wait. */
    if ((a->op == OP_READ && a->len == 0) ||
        (a->op == OP_READV && (!a->iov || a->iovcnt < 0 || a->iovcnt > IOV_MAX ||
                               iov_total(a->iov, a->iovcnt) == 0)))
        return read_libc(fd, a);   /* or libc's EFAULT, EINVAL */

    int64_t deadline = NO_DEADLINE;
    bool timed = false;
    for (;;) {
        ssize_t n;
        if (v.kind == KIND_SOCKET) {
            n = sock_read_once(fd, a);
            if (n >= 0)
                return n;
            if (errno == ENOTSOCK) {
                /* The number now names another file: look again. */
                info_drop(fd);
                return hooked_read(fd, a);
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
        }
        if (!timed) {
            deadline = deadline_after(v.rcvtimeo);
            timed = true;
        }
        int err = v.kind == KIND_SOCKET ? wait_again(fd, FIBER_READABLE, deadline)
                                        : wait_ready(fd, FIBER_READABLE, deadline);
        if (err < 0)
            return BLOCKING_CALL(read_names[a->op], read_libc(fd, a));
        if (err > 0)
            return fail(err);
        if (v.kind == KIND_POLL)
            return read_libc(fd, a);   /* ready: it does not block */
    }
}

HOOK ssize_t read(int fd, void *buf, size_t len)
{
    if (!fiber_self())
        return REAL(read)(fd, buf, len);
    struct read_args a = { .op = OP_READ, .buf = buf, .len = len };
    return hooked_read(fd, &a);
}

HOOK ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    if (!fiber_self())
        return REAL(readv)(fd, iov, iovcnt);
    struct read_args a = { .op = OP_READV, .iov = iov, .iovcnt = iovcnt };
    return hooked_read(fd, &a);
}

HOOK ssize_t recvfrom(int fd, void *restrict buf, size_t len, int flags,
                      struct sockaddr *restrict addr, socklen_t *restrict addrlen)
{
    if (!fiber_self())
        return REAL(recvfrom)(fd, buf, len, flags, addr, addrlen);
    if (flags & MSG_WAITALL) {
        /* Wait for all of it, a piece at a time, as the kernel would. */
        size_t got = 0;
        while (got < len) {
            struct read_args a = { .op = OP_RECVFROM, .buf = (char *)buf + got,
                                   .len = len - got,
                                   .flags = flags & ~MSG_WAITALL,
                                   .addr = addr, .addrlen = addrlen };
            ssize_t n = hooked_read(fd, &a);
            if (n <= 0)
                return got > 0 ? (ssize_t)got : n;
            got += (size_t)n;
        }
        return (ssize_t)got;
    }
    struct read_args a = { .op = OP_RECVFROM, .buf = buf, .len = len,
                           .flags = flags, .addr = addr, .addrlen = addrlen };
    return hooked_read(fd, &a);
}

HOOK ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    if (!fiber_self())
        return REAL(recv)(fd, buf, len, flags);
    return recvfrom(fd, buf, len, flags, NULL, NULL);
}

HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (!fiber_self())
        return REAL(recvmsg)(fd, msg, flags);
    struct read_args a = { .op = OP_RECVMSG, .msg = msg, .flags = flags };
    return hooked_read(fd, &a);
}

/* ---- writing ------------------------------------------------------------ */

/*
 * Every write is a gather of iovecs here.  A blocking write on a stream
 * socket or a pipe writes everything unless interrupted, so the hook goes
 * on after a partial write; interrupted after some bytes (a timeout, a
 * cancel), it returns how many went, as write(2) does after a signal.
 */
enum write_op { OP_WRITE, OP_WRITEV, OP_SENDTO, OP_SENDMSG };

static const char *const write_names[] = {
    [OP_WRITE] = "write", [OP_WRITEV] = "writev",
    [OP_SENDTO] = "sendto", [OP_SENDMSG] = "sendmsg",
};

/* Drop n written bytes from the front of iov[0..*cnt). */
static struct iovec *iov_advance(struct iovec *iov, int *cnt, size_t n)
{
    while (*cnt > 0 && n >= iov->iov_len) {
        n -= iov->iov_len;
        iov++;
        (*cnt)--;
    }
    if (*cnt > 0) {
        iov->iov_base = (char *)iov->iov_base + n;
        iov->iov_len -= n;
    }
    return iov;
}

/* What a write on a pipe may send without blocking once it is writable:
 * at most PIPE_BUF bytes, taken from the front of iov. */
static int iov_prefix(const struct iovec *iov, int cnt, struct iovec *out,
                      int max_out, size_t limit)
{
    int n = 0;

    for (int i = 0; i < cnt && n < max_out && limit > 0; i++) {
        size_t len = iov[i].iov_len < limit ? iov[i].iov_len : limit;
        if (len == 0)
            continue;
        out[n].iov_base = iov[i].iov_base;
        out[n].iov_len = len;
        limit -= len;
        n++;
    }
    return n;
}

struct write_args {
    enum write_op op;
    const void *buf;
    size_t len;
    const struct iovec *iov;
    int iovcnt;
    int flags;
    const struct sockaddr *addr;
    socklen_t addrlen;
    const struct msghdr *msg;
};

static ssize_t write_libc(int fd, const struct write_args *a)
{
    switch (a->op) {
    case OP_WRITE:
        return REAL(write)(fd, a->buf, a->len);
    case OP_WRITEV:
        return REAL(writev)(fd, a->iov, a->iovcnt);
    case OP_SENDTO:
        return REAL(sendto)(fd, a->buf, a->len, a->flags, a->addr, a->addrlen);
    case OP_SENDMSG:
        return REAL(sendmsg)(fd, a->msg, a->flags);
    }
    return fail(EINVAL);
}

/* Small gathers are copied on the stack; larger ones are not advanced
 * in place (the caller's array is const), but copied to the heap. */
#define IOV_ON_STACK 8

static ssize_t hooked_write(int fd, const struct write_args *a)
{
    struct fd_view v;
    enum way way = fd_way(fd, &v);

    if (way == WAY_PLAIN)
        return BLOCKING_CALL(write_names[a->op], write_libc(fd, a));
    if (way == WAY_LIBC || (a->flags & MSG_DONTWAIT))
        return write_libc(fd, a);
    /* write(2) of nothing returns 0 at once; send would send an empty
     * datagram. */
    if ((a->op == OP_WRITE && a->len == 0) ||
        (a->op == OP_WRITEV && (!a->iov || a->iovcnt < 0 || a->iovcnt > IOV_MAX ||
                                iov_total(a->iov, a->iovcnt) == 0)) ||
        (a->op == OP_SENDMSG && (!a->msg || (!a->msg->msg_iov && a->msg->msg_iovlen))))
        return write_libc(fd, a);   /* or libc's EFAULT, EINVAL */

    /* The data as one gather list, and the message header it sits in. */
    struct iovec one = { (void *)a->buf, a->len };
    const struct iovec *src = &one;
    int cnt = 1;
    struct msghdr m = { 0 };
    if (a->op == OP_WRITEV) {
        src = a->iov;
        cnt = a->iovcnt;
    } else if (a->op == OP_SENDMSG) {
        m = *a->msg;
        src = m.msg_iov;
        cnt = (int)m.msg_iovlen;
    } else if (a->op == OP_SENDTO) {
        m.msg_name = (void *)a->addr;
        m.msg_namelen = a->addrlen;
    }
    if (cnt < 0 || cnt > IOV_MAX)
        return write_libc(fd, a);   /* libc reports EINVAL */

    struct iovec stack_iov[IOV_ON_STACK], *copy = stack_iov;
    if (cnt > IOV_ON_STACK) {
        copy = malloc((size_t)cnt * sizeof(*copy));
        if (!copy)
            return fail(ENOMEM);
    }
    if (cnt > 0)
        memcpy(copy, src, (size_t)cnt * sizeof(*copy));
    struct iovec *iov = copy;
    size_t total = iov_total(iov, cnt), done = 0;
    int64_t deadline = NO_DEADLINE;
    bool timed = false;
    ssize_t result;
    int flags = a->op == OP_SENDTO || a->op == OP_SENDMSG ? a->flags : 0;

    for (;;) {
        ssize_t n = -1;
        int err = EAGAIN;
        if (v.kind == KIND_SOCKET && cnt == 1 && !m.msg_control) {
            /* One buffer: sendto(2) is cheaper than sendmsg(2). */
            n = REAL(sendto)(fd, iov->iov_base, iov->iov_len, flags | MSG_DONTWAIT,
                             m.msg_name, m.msg_namelen);
            err = errno;
        } else if (v.kind == KIND_SOCKET) {
            m.msg_iov = iov;
            m.msg_iovlen = (size_t)cnt;
            n = REAL(sendmsg)(fd, &m, flags | MSG_DONTWAIT);
            err = errno;
        }
        if (n >= 0) {
            done += (size_t)n;
            iov = iov_advance(iov, &cnt, (size_t)n);
            /* Ancillary data (SCM_RIGHTS...) goes with the first bytes
             * only: never twice. */
            if (n > 0) {
                m.msg_control = NULL;
                m.msg_controllen = 0;
            }
            if (done >= total) {
                result = (ssize_t)done;
                break;
            }
        } else if (err == ENOTSOCK) {
            info_drop(fd);
            result = hooked_write(fd, a);
            break;
        } else if (err != EAGAIN && err != EWOULDBLOCK) {
            result = done > 0 ? (ssize_t)done : fail(err);
            break;
        }
        if (!timed) {
            deadline = deadline_after(v.sndtimeo);
            timed = true;
        }
        int w = v.kind == KIND_SOCKET ? wait_again(fd, FIBER_WRITABLE, deadline)
                                      : wait_ready(fd, FIBER_WRITABLE, deadline);
        if (w < 0 && done == 0) {
            result = BLOCKING_CALL(write_names[a->op], write_libc(fd, a));
            break;
        }
        if (w != 0) {
            result = done > 0 ? (ssize_t)done : fail(w < 0 ? EAGAIN : w);
            break;
        }
        if (v.kind == KIND_POLL) {
            /* Writable: PIPE_BUF bytes fit without blocking. */
            struct iovec part[IOV_ON_STACK];
            int np = iov_prefix(iov, cnt, part, IOV_ON_STACK, PIPE_BUF);
            n = np > 0 ? REAL(writev)(fd, part, np) : 0;
            if (n < 0) {
                result = done > 0 ? (ssize_t)done : -1;
                break;
            }
            done += (size_t)n;
            iov = iov_advance(iov, &cnt, (size_t)n);
            if (done >= total) {
                result = (ssize_t)done;
                break;
            }
        }
    }
    if (copy != stack_iov)
        free(copy);
    return result;
}

HOOK ssize_t write(int fd, const void *buf, size_t len)
{
    if (!fiber_self())
        return REAL(write)(fd, buf, len);
    struct write_args a = { .op = OP_WRITE, .buf = buf, .len = len };
    return hooked_write(fd, &a);
}

HOOK ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (!fiber_self())
        return REAL(writev)(fd, iov, iovcnt);
    struct write_args a = { .op = OP_WRITEV, .iov = iov, .iovcnt = iovcnt };
    return hooked_write(fd, &a);
}

HOOK ssize_t sendto(int fd, const void *buf, size_t len, int flags,
                    const struct sockaddr *addr, socklen_t addrlen)
{
    if (!fiber_self())
        return REAL(sendto)(fd, buf, len, flags, addr, addrlen);
    struct write_args a = { .op = OP_SENDTO, .buf = buf, .len = len,
                            .flags = flags, .addr = addr, .addrlen = addrlen };
    return hooked_write(fd, &a);
}

HOOK ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    if (!fiber_self())
        return REAL(send)(fd, buf, len, flags);
    return sendto(fd, buf, len, flags, NULL, 0);
}

HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (!fiber_self())
        return REAL(sendmsg)(fd, msg, flags);
    struct write_args a = { .op = OP_SENDMSG, .msg = msg, .flags = flags };
    return hooked_write(fd, &a);
}

/* ---- connections --------------------------------------------------------- */

/*
 * connect on a blocking socket cannot be asked not to block per call, so
 * the socket is made non-blocking for the connect(2) system call alone,
 * and put back as it was before anything else happens: the one instant
 * the hooks change a flag, on a socket that nothing else can use until it
 * is connected.  The fiber then waits for the connection to complete.
 * Its socket timeout (SO_SNDTIMEO) gives EINPROGRESS, as the kernel does.
 */
HOOK int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct fd_view v;

    if (!fiber_self() || fd_way(fd, &v) != WAY_FIBER || v.kind != KIND_SOCKET)
        return REAL(connect)(fd, addr, len);
    int flags = REAL(fcntl)(fd, F_GETFL);
    if (flags < 0 || REAL(fcntl)(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return BLOCKING_CALL("connect", REAL(connect)(fd, addr, len));
    int rc = REAL(connect)(fd, addr, len);
    int err = errno;
    REAL(fcntl)(fd, F_SETFL, flags);
    if (rc == 0)
        return 0;
    if (err == EAGAIN) {
        /* A Unix socket whose listener's backlog is full: blocking
         * connect waits for room, which no readiness announces. */
        return BLOCKING_CALL("connect", REAL(connect)(fd, addr, len));
    }
    if (err != EINPROGRESS)
        return (int)fail(err);

    int64_t deadline = deadline_after(v.sndtimeo);
    for (;;) {
        int w = wait_ready(fd, FIBER_WRITABLE, deadline);
        if (w == EAGAIN)
            return (int)fail(EINPROGRESS);
        if (w < 0)
            w = EINPROGRESS;   /* cannot wait: it goes on in the background */
        if (w > 0)
            return (int)fail(w);
        int soerr = 0;
        socklen_t slen = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
            return -1;
        if (soerr != 0)
            return (int)fail(soerr);
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
            return 0;
        if (errno != ENOTCONN)
            return -1;
    }
}

HOOK int accept4(int fd, struct sockaddr *restrict addr,
                 socklen_t *restrict addrlen, int flags)
{
    struct fd_view v;

    if (!fiber_self() || fd_way(fd, &v) != WAY_FIBER || v.kind != KIND_SOCKET) {
        int conn = REAL(accept4)(fd, addr, addrlen, flags);
        if (conn >= 0) {
            info_drop(conn);
            fiber_forget_fd(conn);
        }
        return conn;
    }
    int64_t deadline = deadline_after(v.rcvtimeo);
    for (;;) {
        /* Readiness first: accept(2) has no MSG_DONTWAIT.  A connection
         * taken by another process between the two blocks the thread
         * until the next one comes. */
        int w = wait_ready(fd, FIBER_READABLE, deadline);
        if (w > 0)
            return (int)fail(w);
        int conn = BLOCKING_CALL("accept", REAL(accept4)(fd, addr, addrlen, flags));
        if (conn >= 0) {
            info_drop(conn);
            fiber_forget_fd(conn);
        }
        return conn;
    }
}

HOOK int accept(int fd, struct sockaddr *restrict addr, socklen_t *restrict addrlen)
{
    if (!fiber_self())
        return REAL(accept)(fd, addr, addrlen);
    return accept4(fd, addr, addrlen, 0);
}

/* ---- poll, select ----------------------------------------------------------- */

static int poll_to_epoll(short events)
{
    int ev = 0;

    if (events & (POLLIN | POLLRDNORM | POLLRDBAND))
        ev |= EPOLLIN;
    if (events & POLLPRI)
        ev |= EPOLLPRI;
    if (events & (POLLOUT | POLLWRNORM | POLLWRBAND))
        ev |= EPOLLOUT;
    if (events & POLLRDHUP)
        ev |= EPOLLRDHUP;
    return ev;
}

/* An epoll instance of its own holding every descriptor of fds (level
 * triggered), for a poll of several: the fiber waits on it alone.
 * Returns it, or -1 with errno set. */
static int epoll_of(const struct pollfd *fds, nfds_t n)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);

    if (epfd < 0)
        return -1;
    for (nfds_t i = 0; i < n; i++) {
        if (fds[i].fd < 0)
            continue;
        struct epoll_event ev = { .data.fd = fds[i].fd };
        bool seen = false;
        /* A descriptor listed twice is registered once, for both. */
        for (nfds_t j = 0; j < n; j++) {
            if (fds[j].fd != fds[i].fd)
                continue;
            if (j < i) {
                seen = true;
                break;
            }
            ev.events |= (uint32_t)poll_to_epoll(fds[j].events);
        }
        if (seen)
            continue;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i].fd, &ev) < 0) {
            int err = errno;
            REAL(close)(epfd);
            errno = err;
            return -1;
        }
    }
    return epfd;
}

/*
 * poll for a fiber: poll(2) without waiting, then, while nothing is ready,
 * wait for readiness until deadline (NO_DEADLINE: none) and look again.
 * Returns poll's result, 0 at the deadline, -1 with errno set.
 */
static int fiber_poll(struct pollfd *fds, nfds_t n, int64_t deadline)
{
    int rc = REAL(poll)(fds, n, 0);

    if (rc != 0 || (deadline != NO_DEADLINE && deadline <= fiber_now_ns()))
        return rc;
    if (n == 0 || (n == 1 && fds[0].fd < 0)) {
        rc = deadline == NO_DEADLINE ? fiber_sleep(INFINITY) : fiber_sleep_until(deadline);
        return rc < 0 ? (int)fail(-rc) : 0;
    }

    /* One descriptor, waiting for input or output: the loop's own wait.
     * Several, or other events: an epoll instance of their own. */
    int wait_fd = -1, events = 0;
    if (n == 1) {
        if (fds[0].events & (POLLIN | POLLRDNORM | POLLPRI))
            events |= FIBER_READABLE;
        if (fds[0].events & (POLLOUT | POLLWRNORM))
            events |= FIBER_WRITABLE;
        if (events && !(fds[0].events & ~(POLLIN | POLLRDNORM | POLLPRI | POLLOUT | POLLWRNORM)))
            wait_fd = fds[0].fd;
    }
    bool own = false;
    if (wait_fd < 0) {
        wait_fd = epoll_of(fds, n);
        if (wait_fd < 0)
            return BLOCKING_CALL("poll", REAL(poll)(fds, n,
                deadline == NO_DEADLINE ? -1 : (int)((deadline - fiber_now_ns()) / 1000000)));
        own = true;
        events = FIBER_READABLE;
    }

    for (;;) {
        /* poll(2) has just said nothing is ready: no need to ask again
         * before waiting (an old edge may wake the wait: poll then says
         * so, and the fiber waits again). */
        int w = fiber_wait_fd_again_until(wait_fd, events, deadline);
        if (w == -ETIMEDOUT && deadline != NO_DEADLINE && fiber_now_ns() >= deadline) {
            rc = REAL(poll)(fds, n, 0);
            break;
        }
        if (w < 0 && w != -EBADF) {
            rc = (int)fail(-w);
            break;
        }
        /* Ready, or closed meanwhile (poll reports POLLNVAL). */
        rc = REAL(poll)(fds, n, 0);
        if (rc != 0)
            break;
    }
    if (own) {
        int err = errno;
        fiber_close(wait_fd);
        errno = err;
    }
    return rc;
}

HOOK int poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    if (!fiber_self() || timeout_ms == 0)
        return REAL(poll)(fds, n, timeout_ms);
    int64_t deadline = timeout_ms < 0 ? NO_DEADLINE
                                      : fiber_now_ns() + (int64_t)timeout_ms * 1000000;
    return fiber_poll(fds, n, deadline);
}

static int64_t timespec_ns(const struct timespec *ts)
{
    /* Centuries: as good as for ever, and no overflow when added. */
    if (ts->tv_sec > INT64_MAX / 4000000000)
        return INT64_MAX / 4;
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

HOOK int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
               const sigset_t *mask)
{
    if (!fiber_self() || (timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0))
        return REAL(ppoll)(fds, n, timeout, mask);
    if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 ||
                    timeout->tv_nsec >= 1000000000))
        return (int)fail(EINVAL);
    /* The signal mask is not applied in a fiber: the thread's mask is
     * every fiber's (see fiber-hook.h). */
    int64_t deadline = timeout ? fiber_now_ns() + timespec_ns(timeout) : NO_DEADLINE;
    return fiber_poll(fds, n, deadline);
}

/* select, for a fiber: wait as poll on the descriptors of the sets, then
 * let select(2) itself fill them in without waiting. */
HOOK int select(int nfds, fd_set *restrict r, fd_set *restrict w,
                fd_set *restrict e, struct timeval *restrict timeout)
{
    if (!fiber_self() || nfds < 0 || nfds > FD_SETSIZE ||
        (timeout && timeout->tv_sec == 0 && timeout->tv_usec == 0))
        return REAL(select)(nfds, r, w, e, timeout);
    if (timeout && (timeout->tv_sec < 0 || timeout->tv_usec < 0 ||
                    timeout->tv_usec >= 1000000))
        return (int)fail(EINVAL);

    int64_t start = fiber_now_ns();
    int64_t deadline = timeout ? start + (int64_t)timeout->tv_sec * 1000000000 +
                                     (int64_t)timeout->tv_usec * 1000
                               : NO_DEADLINE;
    fd_set r0, w0, e0;
    FD_ZERO(&r0);
    FD_ZERO(&w0);
    FD_ZERO(&e0);
    if (r) r0 = *r;
    if (w) w0 = *w;
    if (e) e0 = *e;

    nfds_t count = 0;
    for (int fd = 0; fd < nfds; fd++)
        if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e)))
            count++;
    struct pollfd small[16], *fds = small;
    if (count > 16) {
        fds = malloc(count * sizeof(*fds));
        if (!fds)
            return (int)fail(ENOMEM);
    }
    nfds_t k = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = 0;
        if (r && FD_ISSET(fd, r)) ev |= POLLIN;
        if (w && FD_ISSET(fd, w)) ev |= POLLOUT;
        if (e && FD_ISSET(fd, e)) ev |= POLLPRI;
        if (ev)
            fds[k++] = (struct pollfd){ .fd = fd, .events = ev };
    }

    int rc;
    for (;;) {
        struct timeval zero = { 0, 0 };
        if (r) *r = r0;
        if (w) *w = w0;
        if (e) *e = e0;
        rc = REAL(select)(nfds, r, w, e, &zero);
        if (rc != 0)
            break;
        rc = fiber_poll(fds, k, deadline);
        if (rc <= 0) {
            if (rc == 0) {
                if (r) FD_ZERO(r);
                if (w) FD_ZERO(w);
                if (e) FD_ZERO(e);
            }
            break;
        }
    }
    if (fds != small)
        free(fds);
    if (timeout) {
        /* Linux's select reports the time left. */
        int64_t left = deadline == NO_DEADLINE ? 0 : deadline - fiber_now_ns();
        if (left < 0)
            left = 0;
        timeout->tv_sec = left / 1000000000;
        timeout->tv_usec = (left % 1000000000) / 1000;
    }
    return rc;
}

/* ---- sleeping ----------------------------------------------------------- */

/* Sleep the fiber for ns.  Returns 0 or the errno: ECANCELED, ETIMEDOUT
 * (a timeout scope); *left (if not NULL) receives the time not slept. */
static int fiber_nap(int64_t ns, int64_t *left)
{
    int64_t end = fiber_now_ns() + ns;
    int rc = fiber_sleep_ns(ns);

    if (left) {
        int64_t l = rc < 0 ? end - fiber_now_ns() : 0;
        *left = l > 0 ? l : 0;
    }
    return rc < 0 ? -rc : 0;
}

static bool timespec_bad(const struct timespec *ts)
{
    return ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000;
}

HOOK int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (!fiber_self() || !req)
        return REAL(nanosleep)(req, rem);
    if (timespec_bad(req))
        return (int)fail(EINVAL);
    int64_t left = 0;
    int err = fiber_nap(timespec_ns(req), &left);
    if (err == 0)
        return 0;
    if (rem) {
        rem->tv_sec = left / 1000000000;
        rem->tv_nsec = left % 1000000000;
    }
    return (int)fail(err);
}

HOOK int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                         struct timespec *rem)
{
    if (!fiber_self() || !req ||
        (clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME && clock != CLOCK_BOOTTIME))
        return REAL(clock_nanosleep)(clock, flags, req, rem);
    if (timespec_bad(req))
        return EINVAL;
    int64_t ns = timespec_ns(req);
    if (flags & TIMER_ABSTIME) {
        struct timespec now;
        clock_gettime(clock, &now);
        ns -= timespec_ns(&now);
        if (ns < 0)
            ns = 0;
        rem = NULL;   /* not written for an absolute time */
    }
    int64_t left = 0;
    int err = fiber_nap(ns, &left);
    if (err && rem) {
        rem->tv_sec = left / 1000000000;
        rem->tv_nsec = left % 1000000000;
    }
    return err;
}

HOOK int usleep(useconds_t usec)
{
    if (!fiber_self())
        return REAL(usleep)(usec);
    int err = fiber_nap((int64_t)usec * 1000, NULL);
    return err ? (int)fail(err) : 0;
}

HOOK unsigned int sleep(unsigned int seconds)
{
    if (!fiber_self())
        return REAL(sleep)(seconds);
    int64_t left = 0;
    int err = fiber_nap((int64_t)seconds * 1000000000, &left);
    if (!err)
        return 0;
    errno = err;
    /* The whole seconds not slept, as glibc's sleep after a signal. */
    return (unsigned int)(left / 1000000000);
}

/* ---- name resolution ------------------------------------------------------ */

/* A getaddrinfo call on the loop's thread pool.  Everything it reads is
 * copied into the job: a compact fiber's locals move while it waits. */
struct gai_job {
    char *node, *service;
    struct addrinfo hints;
    bool has_hints;
    struct addrinfo *res;
    int rc, err;
    char strings[];
};

static void *gai_in_thread(void *arg)
{
    struct gai_job *j = arg;

    j->rc = REAL(getaddrinfo)(j->node, j->service, j->has_hints ? &j->hints : NULL,
                              &j->res);
    j->err = errno;
    return NULL;
}

HOOK int getaddrinfo(const char *restrict node, const char *restrict service,
                     const struct addrinfo *restrict hints,
                     struct addrinfo **restrict res)
{
    if (!fiber_self())
        return REAL(getaddrinfo)(node, service, hints, res);
    size_t nlen = node ? strlen(node) + 1 : 0, slen = service ? strlen(service) + 1 : 0;
    struct gai_job *j = calloc(1, sizeof(*j) + nlen + slen);
    if (!j)
        return EAI_MEMORY;
    if (node)
        j->node = memcpy(j->strings, node, nlen);
    if (service)
        j->service = memcpy(j->strings + nlen, service, slen);
    if (hints) {
        j->hints = *hints;
        j->hints.ai_addr = NULL;
        j->hints.ai_canonname = NULL;
        j->hints.ai_next = NULL;
        j->has_hints = true;
    }
    j->rc = EAI_SYSTEM;
    j->err = ECANCELED;

    int rc = fiber_to_thread(gai_in_thread, j, NULL);
    if (rc < 0 && rc != -ECANCELED && rc != -ETIMEDOUT) {
        /* No worker thread: resolve here, blocking the thread. */
        free(j);
        return BLOCKING_CALL("getaddrinfo", REAL(getaddrinfo)(node, service, hints, res));
    }
    int out = j->rc;
    if (rc < 0) {
        /* Cancelled or timed out: any answer that came is dropped. */
        if (j->rc == 0 && j->res)
            freeaddrinfo(j->res);
        errno = -rc;
        out = EAI_SYSTEM;
    } else if (out == 0) {
        *res = j->res;
    } else if (out == EAI_SYSTEM) {
        errno = j->err;
    }
    free(j);
    return out;
}

/* ---- descriptors coming and going ---------------------------------------- */

/* A new descriptor: whatever was known of an earlier one of the same
 * number (closed on another thread, or behind the hooks' back) is
 * dropped, here and in this thread's loop. */
static void fresh_fd(int fd)
{
    if (fd >= 0) {
        info_drop(fd);
        fiber_forget_fd(fd);
    }
}

HOOK int socket(int domain, int type, int protocol)
{
    int fd = REAL(socket)(domain, type, protocol);

    fresh_fd(fd);
    return fd;
}

HOOK int socketpair(int domain, int type, int protocol, int sv[2])
{
    int rc = REAL(socketpair)(domain, type, protocol, sv);

    if (rc == 0) {
        fresh_fd(sv[0]);
        fresh_fd(sv[1]);
    }
    return rc;
}

HOOK int pipe(int fds[2])
{
    int rc = REAL(pipe)(fds);

    if (rc == 0) {
        fresh_fd(fds[0]);
        fresh_fd(fds[1]);
    }
    return rc;
}

HOOK int pipe2(int fds[2], int flags)
{
    int rc = REAL(pipe2)(fds, flags);

    if (rc == 0) {
        fresh_fd(fds[0]);
        fresh_fd(fds[1]);
    }
    return rc;
}

HOOK int close(int fd)
{
    info_drop(fd);
    fiber_forget_fd(fd);
    return REAL(close)(fd);
}

HOOK int dup(int fd)
{
    int fd2 = REAL(dup)(fd);

    fresh_fd(fd2);
    return fd2;
}

HOOK int dup2(int fd, int fd2)
{
    if (fd != fd2) {
        info_drop(fd2);
        fiber_forget_fd(fd2);
    }
    return REAL(dup2)(fd, fd2);
}

HOOK int dup3(int fd, int fd2, int flags)
{
    if (fd != fd2) {
        info_drop(fd2);
        fiber_forget_fd(fd2);
    }
    return REAL(dup3)(fd, fd2, flags);
}

HOOK int fcntl(int fd, int cmd, ...)
{
    va_list ap;

    va_start(ap, cmd);
    /* Every command takes at most one argument, an int or a pointer,
     * passed in the same register. */
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int rc = REAL(fcntl)(fd, cmd, arg);
    if (rc >= 0 && cmd == F_SETFL)
        info_drop(fd);   /* O_NONBLOCK may have changed */
    if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
        fresh_fd(rc);
    return rc;
}

/* glibc declares ioctl's request unsigned long. */
HOOK int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;

    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int rc = REAL(ioctl)(fd, request, arg);
    if (rc >= 0 && request == FIONBIO)
        info_drop(fd);
    return rc;
}

HOOK int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    int rc = REAL(setsockopt)(fd, level, name, value, len);

    if (rc == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO))
        info_drop(fd);
    return rc;
}

/* ---- the library's own call ----------------------------------------------- */

HOOK int fiber_hook_installed(void)
{
    /* The read that the program's calls reach is this one. */
    return dlsym(RTLD_DEFAULT, "read") == (void *)&read;
}
