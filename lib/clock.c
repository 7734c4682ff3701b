/*
 * clock.c - real and virtual loop clocks.
 */
#include "config.h"

#include "clock.h"

#include <time.h>

int64_t fiber__monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void fiber__clock_init(struct fiber__clock *clock, bool is_virtual)
{
    clock->is_virtual = is_virtual;
    clock->virtual_now = fiber__monotonic_ns();
    clock->start = clock->virtual_now;
}

void fiber__clock_wait_until(struct fiber__clock *clock, int64_t deadline)
{
    if (clock->is_virtual) {
        if (deadline > clock->virtual_now)
            clock->virtual_now = deadline;
        return;
    }

    struct timespec ts = {
        .tv_sec = deadline / 1000000000,
        .tv_nsec = deadline % 1000000000,
    };
    /* An interrupted sleep returns early; the loop re-reads the clock and
     * sleeps again if the deadline has not come. */
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}
