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
