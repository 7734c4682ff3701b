/*
 * clock.h - the loop clock: CLOCK_MONOTONIC, or virtual time that jumps to
 * the next deadline whenever no fiber is ready.  Times are int64_t
 * nanoseconds.
 */
#ifndef FIBER_CLOCK_H
#define FIBER_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* A deadline that never comes. */
#define FIBER__FOREVER INT64_MAX

struct fiber__clock {
    bool is_virtual;
    int64_t virtual_now;
    int64_t start;   /* the time the clock was started at */
    int64_t idle;    /* time spent waiting with no fiber ready */
};

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t fiber__monotonic_ns(void);

/* Start a clock; virtual time starts at the current monotonic time, so
 * that times look alike under both clocks. */
void fiber__clock_init(struct fiber__clock *clock, bool is_virtual);

static inline int64_t fiber__clock_now(const struct fiber__clock *clock)
{
    return clock->is_virtual ? clock->virtual_now : fiber__monotonic_ns();
}

/* Let time pass until deadline, from now, the clock's time read just
 * before: sleep the thread under the real clock (returning early if a
 * signal arrives), jump under the virtual one.  The time passed counts as
 * idle.  Returns the clock's time at the end, read as it ended. */
int64_t fiber__clock_wait_until(struct fiber__clock *clock, int64_t deadline,
                                int64_t now);

/* Count the time from since (a time of this clock) to now as idle: for
 * waits made elsewhere, in the kernel's poller.  Returns now. */
int64_t fiber__clock_count_idle(struct fiber__clock *clock, int64_t since);

/* The latest deadline that still comes: about 292 years of uptime. */
#define FIBER__LATEST (FIBER__FOREVER - 1)

/* now + ns, saturated at FIBER__LATEST: a finite wait always ends. */
static inline int64_t fiber__deadline_after(int64_t now, int64_t ns)
{
    return ns > FIBER__LATEST - now ? FIBER__LATEST : now + ns;
}

/*
 * A timeout of seconds from now (a time on a loop clock, never negative)
 * as a deadline, the one conversion every call taking seconds makes:
 * +infinity is FIBER__FOREVER, anything else is rounded up to whole
 * nanoseconds and saturated at FIBER__LATEST.  Returns the deadline, or
 * -EINVAL for a negative or NaN number.
 */
int64_t fiber__seconds_to_deadline(double seconds, int64_t now);

#endif
