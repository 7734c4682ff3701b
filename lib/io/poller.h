/*
 * poller.h - how the loop waits for I/O.  The scheduler calls the poller
 * through loop->io_wait while loop->io_waiting counts fibers waiting on
 * it; until a fiber first waits on a file descriptor the loop has no
 * poller and waits on its clock alone.
 *
 * The poller is an epoll instance, edge-triggered, with each descriptor
 * registered for the directions fibers wait on.  What the library knows
 * about each descriptor lives in a table indexed by descriptor number: the
 * fibers waiting on it, whether epoll knows it, a hint of how to try it
 * without blocking, and readiness seen while nobody waited.  Wrappers
 * always try their call first (or ask poll(2)) and wait only when it would
 * block, and every wait re-arms the registration, so an edge is never
 * missed: data arriving later makes a new edge, and an edge reported while
 * nobody waited is remembered.
 *
 * The library never changes the flags of a descriptor it did not create.
 * A number can be closed with close(2) and reused for another file behind
 * the library's back, so nothing in the table is trusted blindly: the kind
 * is a hint that a failing call corrects, and the registration is checked
 * at each wait.
 *
 * The poller is a per-loop extension (loop.h), started by the first wait
 * on a descriptor.  Other extensions (the thread pool, signals, processes)
 * keep their state in slots of their own and register descriptors with a
 * handler of their own.
 */
#ifndef FIBER_POLLER_H
#define FIBER_POLLER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "loop.h"
#include "waitq.h"

/* Directions a fiber waits for; the same bits as FIBER_READABLE and
 * FIBER_WRITABLE. */
#define FIBER__IO_IN 1
#define FIBER__IO_OUT 2
#define FIBER__IO_BOTH 3

/* Under the virtual clock, how long (real time) the loop waits for I/O
 * from outside before it lets the clock jump to the next deadline. */
#define FIBER__VIRTUAL_IO_GRACE_NS INT64_C(5000000)

/* Events taken from epoll per call; the rest wait for the next call. */
#define FIBER__POLLER_EVENTS 256

/* Called on the loop's thread when a handler-owned descriptor is ready. */
typedef void fiber__io_handler(struct fiber_loop *loop, int fd,
                               uint32_t epoll_events, void *ctx);

/*
 * How a descriptor is tried without blocking it and without touching its
 * flags.  Only a hint: each way fails cleanly on a descriptor of another
 * kind (ENOTSOCK, EOPNOTSUPP) or is safe on any, and a wait that finds
 * another file behind the number resets it.
 */
enum fiber__fd_kind {
    FIBER__FD_UNKNOWN = 0,  /* not looked at yet: fstat(2) decides */
    FIBER__FD_SOCKET,       /* recv/send with MSG_DONTWAIT */
    FIBER__FD_NOWAIT,       /* a pipe: preadv2/pwritev2 with RWF_NOWAIT */
    FIBER__FD_POLL,         /* anything else: poll(2) first (see io.c) */
};

/* What the library knows about one file descriptor. */
struct fiber__fd {
    /* Fibers waiting to read, to write, or for either; index by the
     * FIBER__IO_* bits. */
    struct fiber__waitq waiters[4];
    fiber__io_handler *handler;   /* non-NULL for a module's own fd */
    void *handler_ctx;
    bool registered;              /* epoll has an entry under this number */
    uint8_t kind;                 /* enum fiber__fd_kind */
    uint8_t ready;                /* FIBER__IO_* edges nobody waited for */
};

struct fiber__poller {
    struct fiber__ext ext;         /* in the loop's list of extensions */
    int epfd;
    struct fiber__fd **chunks;     /* the fd table, FIBER__FD_CHUNK per chunk */
    size_t nchunks;
    bool no_epoll_pwait2;          /* the kernel lacks it: millisecond waits */
    /* Kept off the stack: the scheduler also polls from fibers' stacks. */
    struct epoll_event events[FIBER__POLLER_EVENTS];
};

/*
 * The loop's io_wait (state.h), put in place when the poller starts.
 * Wait for I/O until the loop-clock deadline (FIBER__FOREVER: no limit; a
 * deadline already passed: just poll), making ready every fiber whose wait
 * is over.  Returns the number of fibers made ready.
 *
 * Under the virtual clock the loop waits for I/O for at most
 * FIBER__VIRTUAL_IO_GRACE_NS of real time; if nothing came that woke a
 * fiber, the clock jumps to the deadline.  I/O between fibers of the loop
 * is ready at once, so it never lets time pass; only I/O from outside the
 * loop can lose a race with a virtual deadline.
 */
int fiber__poller_wait(struct fiber_loop *loop, int64_t deadline);

/*
 * The opening of every call that waits on a descriptor: made in a fiber
 * (else -EPERM, reported in debug mode under call's name), on a
 * descriptor number (else -EBADF), with no cancel or expired scope
 * pending.  Sets *self to the running fiber; returns 0 or a negative errno.
 */
static inline int fiber__fd_call_enter(const char *call, int fd,
                                       struct fiber_task **self)
{
    *self = fiber__enter_fiber(call);
    if (!*self)
        return -EPERM;
    if (fd < 0)
        return -EBADF;
    return fiber__enter_blocking(*self);
}

/* The loop's poller, created on first use.  Returns 0 or a negative errno
 * (-ENOMEM, or epoll_create1's error). */
int fiber__poller_get(struct fiber_loop *loop, struct fiber__poller **out);

/*
 * The table entry of fd with its kind known (looked up with fstat(2) the
 * first time).  The descriptor itself is left as it is.  Returns 0,
 * -EBADF for a descriptor that is not open, -ENOMEM.
 */
int fiber__fd_get(struct fiber_loop *loop, int fd, struct fiber__fd **out);

/* The table entry of fd as it is, kind not looked up: for waits that do
 * no I/O of their own.  Returns 0 or -ENOMEM. */
int fiber__fd_entry(struct fiber_loop *loop, int fd, struct fiber__fd **out);

/* Look up the kind of fd for its entry e again, with fstat(2): after a
 * call said the hint was wrong.  Returns 0 or -errno (-EBADF). */
int fiber__fd_classify(struct fiber__fd *e, int fd);

/*
 * Note that fd was just created by the library: any state left from an
 * earlier descriptor of the same number (closed without fiber_close) is
 * dropped, its waiters woken with -EBADF.  Returns 0 or -ENOMEM.
 */
int fiber__fd_adopt(struct fiber_loop *loop, int fd, bool is_socket);

/*
 * Block the running fiber until fd, whose entry is e, may be ready for
 * events (FIBER__IO_*), until deadline (FIBER__FOREVER for none), or until
 * it is cancelled or the descriptor is closed through the library.  Returns
 * at once with 0 when an edge for events came while nobody waited, and
 * when the number turns out to hold another file than the one epoll knows
 * (its kind is then reset to FIBER__FD_UNKNOWN: the caller looks it up
 * again before it tries).  what names the wait in deadlock reports.
 * Returns 0 (try again), -ETIMEDOUT (also when the deadline has already
 * passed), -ECANCELED, -EBADF when the descriptor was closed, or
 * epoll_ctl's error.
 */
int fiber__fd_wait(struct fiber_loop *loop, struct fiber__fd *e, int fd,
                   int events, int64_t deadline, const char *what);

/* Forget fd before it is closed: take it out of epoll and wake its waiters
 * with -EBADF.  Does nothing for a descriptor the library never saw. */
void fiber__fd_forget(struct fiber_loop *loop, int fd);

/* Register a module's own descriptor: handler runs on each edge.  Returns
 * 0 or a negative errno. */
int fiber__poller_add_handler(struct fiber_loop *loop, int fd,
                              fiber__io_handler *handler, void *ctx);

/* Count the running fiber as waiting on something the poller delivers
 * while it blocks (hold before blocking, release after), in
 * loop->io_waiting. */
void fiber__poller_hold(struct fiber_loop *loop);
void fiber__poller_release(struct fiber_loop *loop);

#endif
