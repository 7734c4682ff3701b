/*
 * sleep.c - fiber_sleep and friends, fiber_yield, and the loop clock.
 */
#include "config.h"

#include <errno.h>
#include <math.h>

#include "loop.h"

/* The entry check of api: the running fiber, or NULL outside one; *loop
 * is set when it is not NULL. */
static struct fiber_task *running(const char *api, struct fiber_loop **loop)
{
    struct fiber_task *self = fiber__enter_fiber(api);

    if (self)
        *loop = self->loop;
    return self;
}

FIBER_API int fiber_yield(void)
{
    struct fiber_loop *loop;
    struct fiber_task *self = running("fiber_yield", &loop);

    if (!self)
        return -EPERM;
    int rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    fiber__make_ready(loop, self, 0);
    return fiber__suspend(loop);
}

/* Sleep the running fiber self until deadline; early as for
 * fiber__block_early. */
static int sleep_until(struct fiber_loop *loop, struct fiber_task *self,
                       int64_t deadline_ns, uint64_t early)
{
    int rc = fiber__enter_blocking(self);
    if (rc < 0)
        return rc;
    if (deadline_ns <= fiber__clock_now(&loop->clock)) {
        fiber__make_ready(loop, self, 0);
        return fiber__suspend(loop);
    }
    /* A sleep for ever has no timer: only a cancel ends it. */
    return fiber__block_early(loop, FIBER__SLEEPING, deadline_ns, early);
}

FIBER_API int fiber_sleep_until(int64_t deadline_ns)
{
    struct fiber_loop *loop;
    struct fiber_task *self = running("fiber_sleep_until", &loop);

    if (!self)
        return -EPERM;
    return sleep_until(loop, self, deadline_ns, 0);
}

FIBER_API int fiber_sleep_ns(int64_t ns)
{
    if (ns < 0)
        return -EINVAL;
    if (!fiber__enter_fiber("fiber_sleep_ns"))
        return -EPERM;
    if (ns == 0)
        return fiber_yield();
    return fiber_sleep_until(fiber__deadline_after(fiber_now_ns(), ns));
}

/*
 * How far below whole the exact product seconds * 1e9 lies, in units of
 * 2^-64 ns, where whole is that product rounded to a double and then up.
 * Sleeps asked for at the same instant whose deadlines round to the same
 * nanosecond then end in the order of the seconds asked for, as asyncio's
 * float deadlines do.  The product is split exactly as hi + lo (Dekker:
 * 1e9 has 21 significant bits, so each half of seconds times it is
 * exact), so that two distinct delays get distinct answers unless both
 * are below a thousandth of a nanosecond.
 */
static uint64_t early_part(double seconds, double whole)
{
    double hi = seconds * 1e9;
    double c = 134217729.0 * seconds;  /* 2^27 + 1: Veltkamp's split */
    double s_hi = c - (c - seconds), s_lo = seconds - s_hi;
    double lo = (s_hi * 1e9 - hi) + s_lo * 1e9;
    if (hi < 1) {
        /* whole is 1, and 1 - hi would round: count in integers, where
         * hi * 2^64 is exact for any delay above 2^-11 ns. */
        uint64_t x = (uint64_t)(hi * 0x1p64) + (uint64_t)(int64_t)(lo * 0x1p64);
        return -x;
    }
    /* whole - hi is exact (the two lie within a factor of two), so g is
     * the exact gap rounded once. */
    double g = (whole - hi) - lo;
    if (!(g > 0))
        return 0;       /* the product was a hair above whole: none */
    return (uint64_t)(g * 0x1p64);
}

FIBER_API int fiber_sleep(double seconds)
{
    if (isnan(seconds) || seconds < 0)
        return -EINVAL;
    struct fiber_loop *loop;
    struct fiber_task *self = running("fiber_sleep", &loop);
    if (!self)
        return -EPERM;
    if (seconds == 0)
        return fiber_yield();
    if (isinf(seconds))
        return sleep_until(loop, self, FIBER__FOREVER, 0);
    /* Round up, so that no sleep is shorter than asked.  A finite sleep
     * too long for int64_t nanoseconds saturates to the latest finite
     * deadline: it still has a timer, unlike a sleep for ever. */
    double ns = ceil(seconds * 1e9);
    if (ns >= 9.2e18)
        return fiber_sleep_ns(INT64_MAX);
    int64_t deadline = fiber__deadline_after(fiber__clock_now(&loop->clock),
                                             (int64_t)ns);
    return sleep_until(loop, self, deadline, early_part(seconds, ns));
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
    struct fiber_loop *loop = fiber__enter_loop("fiber_clock_virtual");
    if (!loop)
        return -EPERM;
    return loop->clock.is_virtual ? 1 : 0;
}
