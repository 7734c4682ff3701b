/*
 * poller.c - I/O readiness for the loop.
 *
 * Until I/O support lands the loop has no file descriptors to wait on: the
 * poller is never pending and waiting on it is waiting on the clock.
 */
#include "config.h"

#include "poller.h"

#include "loop.h"

bool fiber__poller_pending(const struct fiber_loop *loop)
{
    (void)loop;
    return false;
}

int fiber__poller_wait(struct fiber_loop *loop, int64_t deadline)
{
    if (deadline != FIBER__FOREVER)
        fiber__clock_wait_until(&loop->clock, deadline);
    return 0;
}

void fiber__poller_destroy(struct fiber_loop *loop)
{
    (void)loop;
}
