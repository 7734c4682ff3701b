/*
 * clock.c - real and virtual loop clocks.
 */
#include "config.h"

#include "clock.h"

#include <errno.h>
#include <math.h>
#include <time.h>

/* The longest wait spent on the CPU rather than in the kernel. */
#define SPIN_NS 5000

/* Tell the CPU that this is a wait loop: the other hyperthread runs. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

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
    clock->idle = 0;
}

int64_t fiber__clock_wait_until(struct fiber__clock *clock, int64_t deadline,
                                int64_t now)
{
    if (clock->is_virtual) {
        if (deadline > clock->virtual_now) {
            clock->idle += deadline - clock->virtual_now;
            clock->virtual_now = deadline;
        }
        return clock->virtual_now;
    }

    /* A deadline a few microseconds away is waited for on the CPU: asking
     * the kernel costs about as much time in the call, and on a busy
     * machine the thread may come back tens of microseconds late. */
    int64_t left = deadline - now;
    if (left <= 0)
        return now;
    if (left <= SPIN_NS) {
        int64_t start = now;
        while ((now = fiber__monotonic_ns()) < deadline)
            cpu_relax();
        clock->idle += now - start;
        return now;
    }
    struct timespec ts = {
        .tv_sec = deadline / 1000000000,
        .tv_nsec = deadline % 1000000000,
    };
    /* An interrupted sleep returns early; the loop re-reads the clock and
     * sleeps again if the deadline has not come. */
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    return fiber__clock_count_idle(clock, now);
}

int64_t fiber__clock_count_idle(struct fiber__clock *clock, int64_t since)
{
    int64_t now = fiber__clock_now(clock);

    if (now > since)
        clock->idle += now - since;
    return now;
}

int64_t fiber__seconds_to_deadline(double seconds, int64_t now)
{
    if (isnan(seconds) || seconds < 0)
        return -EINVAL;
    if (isinf(seconds))
        return FIBER__FOREVER;
    /* Round up, so that no wait is shorter than asked.  A finite one too
     * long for int64_t nanoseconds saturates to the latest finite
     * deadline: it still ends, unlike a wait for ever. */
    double ns = ceil(seconds * 1e9);
    return fiber__deadline_after(now, ns < 9.2e18 ? (int64_t)ns : INT64_MAX);
}
