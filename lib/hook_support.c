/*
 * hook_support.c - the two calls libfiber-hook needs from the loop beyond
 * the I/O calls: forgetting a descriptor that is being closed or replaced
 * (close, dup2, dup3), and debug mode's report of a call that blocked the
 * thread although it was made in a fiber.
 */
#include "config.h"

#include <errno.h>

#include "debug.h"
#include "dump.h"
#include "loop.h"
#include "poller.h"

FIBER_API void fiber_forget_fd(int fd)
{
    if (fd >= 0 && fiber__loop)
        fiber__fd_forget(fiber__loop, fd);
}

FIBER_API int64_t fiber_debug_slow_ns(void)
{
    struct fiber_loop *loop = fiber__loop;

    if (!loop || !loop->current || !loop->debug || !loop->debug->checks)
        return 0;
    return loop->debug->slow_ns;
}

FIBER_API int fiber_debug_blocked(const char *what, int64_t ns)
{
    struct fiber_loop *loop = fiber__loop;
    int64_t slow = fiber_debug_slow_ns();

    if (!what)
        return -EINVAL;
    if (!loop || !loop->current)
        return -EPERM;
    if (slow == 0 || ns <= slow)
        return 0;
    char label[FIBER_NAME_MAX + 200];
    fiber__label(loop->current, label, sizeof(label));
    fiber__debug_report(loop, "%s blocked its thread for %.3f s in %s, a call "
                        "that cannot wait as a fiber (more than %.3f s): other "
                        "fibers could not run meanwhile", label, (double)ns / 1e9,
                        what, (double)slow / 1e9);
    return 1;
}

FIBER_API int fiber_wait_fd_again_until(int fd, int events, int64_t deadline_ns)
{
    struct fiber_task *self = fiber__current();
    struct fiber__fd *e = NULL;

    if (events <= 0 || events > FIBER__IO_BOTH)
        return -EINVAL;
    if (!self)
        return -EPERM;
    if (fd < 0)
        return -EBADF;
    int rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    rc = fiber__fd_entry(self->loop, fd, &e);
    if (rc < 0)
        return rc;
    /* No poll(2) first, as fiber_wait_fd makes: the caller's EAGAIN says
     * the descriptor was not ready, an edge after it wakes the wait, and
     * registering with epoll reports a descriptor ready by then. */
    return fiber__fd_wait(self->loop, e, fd, events, deadline_ns,
                          events == FIBER__IO_IN ? "fd readable"
                          : events == FIBER__IO_OUT ? "fd writable"
                                                    : "fd readable or writable");
}
