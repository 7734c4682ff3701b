/*
 * sleep.c - fiber_sleep and friends, fiber_yield, and the loop clock.
 */
#include "config.h"

#include <errno.h>
#include <math.h>

#include "debug.h"
#include "loop.h"

/* The running fiber, or NULL; *loop is set when it is not NULL. */
static struct fiber_task *running(struct fiber_loop **loop)
{
    struct fiber_task *self = fiber__current();

    if (self)
        *loop = self->loop;
    return self;
}

FIBER_API int fiber_yield(void)
{
    struct fiber_loop *loop;
    struct fiber_task *self = running(&loop);

    if (!self)
        return fiber__outside_fiber("fiber_yield");
    int rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    fiber__make_ready(loop, self, 0);
    return fiber__suspend(loop);
}

FIBER_API int fiber_sleep_until(int64_t deadline_ns)
{
    struct fiber_loop *loop;
    struct fiber_task *self = running(&loop);

    if (!self)
        return fiber__outside_fiber("fiber_sleep_until");
    int rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    if (deadline_ns <= fiber__clock_now(&loop->clock)) {
        fiber__make_ready(loop, self, 0);
        return fiber__suspend(loop);
    }
    /* A sleep for ever has no timer: only a cancel ends it. */
    return fiber__block(loop, FIBER__SLEEPING, deadline_ns);
}

FIBER_API int fiber_sleep_ns(int64_t ns)
{
    if (ns < 0)
        return -EINVAL;
    if (!fiber__current())
        return fiber__outside_fiber("fiber_sleep_ns");
    if (ns == 0)
        return fiber_yield();
    return fiber_sleep_until(fiber__deadline_after(fiber_now_ns(), ns));
}

FIBER_API int fiber_sleep(double seconds)
{
    if (isnan(seconds) || seconds < 0)
        return -EINVAL;
    if (!fiber__current())
        return fiber__outside_fiber("fiber_sleep");
    if (seconds == 0)
        return fiber_yield();
    if (isinf(seconds))
        return fiber_sleep_until(FIBER__FOREVER);
    /* Round up, so that no sleep is shorter than asked.  A finite sleep
     * too long for int64_t nanoseconds saturates to the latest finite
     * deadline: it still has a timer, unlike a sleep for ever. */
    double ns = ceil(seconds * 1e9);
    if (ns >= 9.2e18)
        return fiber_sleep_ns(INT64_MAX);
    return fiber_sleep_ns((int64_t)ns);
}

FIBER_API int64_t fiber_now_ns(void)
{
    if (fiber__loop)
        return fiber__clock_now(&fiber__loop->clock);
    return fiber__monotonic_ns();
}

FIBER_API double fiber_time(void)
{
    return (double)fiber_now_ns() / 1e9;
}

FIBER_API int fiber_clock_virtual(void)
{
    if (!fiber__loop)
        return -EPERM;
    return fiber__loop->clock.is_virtual ? 1 : 0;
}
