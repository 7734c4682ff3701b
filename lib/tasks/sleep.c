/*
 * sleep.c - fiber_sleep and friends, fiber_yield, and the loop clock.
 */
#include "config.h"

#include <errno.h>
#include <math.h>

#include "loop.h"

/* Let every other ready fiber run once; self has passed the entry check. */
static int yield(struct fiber_task *self)
{
    fiber__make_ready(self->loop, self, 0);
    return fiber__suspend(self->loop);
}

FIBER_API int fiber_yield(void)
{
    struct fiber_task *self;
    int rc = fiber__canblock("fiber_yield", &self);

    return rc < 0 ? rc : yield(self);
}

/* Sleep the running fiber self, which has passed the entry check, until
 * a deadline read off the clock as later than now; early as for
 * fiber__wait.  A sleep for ever has no timer: only a cancel ends it. */
static int sleep_for(struct fiber_task *self, int64_t deadline_ns,
                     uint64_t early)
{
    static const struct fiber__wait sleep_wait = {.state = FIBER__SLEEPING};
    return fiber__wait(self->loop, &sleep_wait, deadline_ns, early);
}

/* The same for a deadline that may have passed: then it yields. */
static int sleep_until(struct fiber_task *self, int64_t deadline_ns,
                       uint64_t early)
{
    if (deadline_ns <= fiber__clock_now(&self->loop->clock))
        return yield(self);
    return sleep_for(self, deadline_ns, early);
}

FIBER_API int fiber_sleep_until(int64_t deadline_ns)
{
    struct fiber_task *self;
    int rc = fiber__canblock("fiber_sleep_until", &self);

    return rc < 0 ? rc : sleep_until(self, deadline_ns, 0);
}

FIBER_API int fiber_sleep_ns(int64_t ns)
{
    if (ns < 0)
        return -EINVAL;
    struct fiber_task *self;
    int rc = fiber__canblock("fiber_sleep_ns", &self);
    if (rc < 0)
        return rc;
    if (ns == 0)
        return yield(self);
    /* A delay of at least 1 ns puts the deadline after now: reading the
     * clock again to compare would cost as much as the rest of the call. */
    int64_t now = fiber__clock_now(&self->loop->clock);
    return sleep_for(self, fiber__deadline_after(now, ns), 0);
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
    int64_t deadline = fiber__seconds_to_deadline(seconds, fiber_now_ns());
    if (deadline < 0)
        return (int)deadline;
    struct fiber_task *self;
    int rc = fiber__canblock("fiber_sleep", &self);
    if (rc < 0)
        return rc;
    if (seconds == 0)
        return yield(self);
    /* A sleep for ever, or one saturated at the latest deadline, has
     * nothing to order by below a nanosecond. */
    double ns = ceil(seconds * 1e9);
    uint64_t early = isinf(seconds) || ns >= 9.2e18 ? 0 : early_part(seconds, ns);
    return sleep_for(self, deadline, early);
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
