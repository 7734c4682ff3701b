/*
 * poller.h - how the loop waits for I/O.  The scheduler calls these when
 * it looks for work; until a fiber first waits on a file descriptor the
 * loop has no poller and waits on its clock alone.
 */
#ifndef FIBER_POLLER_H
#define FIBER_POLLER_H

#include <stdbool.h>
#include <stdint.h>

struct fiber_loop;

/* True while some fiber waits on I/O (or on work that completes through
 * the poller), so that the loop is not idle, nor deadlocked, without it. */
bool fiber__poller_pending(const struct fiber_loop *loop);

/*
 * Wait for I/O until the loop-clock deadline (FIBER__FOREVER: no limit; a
 * deadline already passed: just poll), making ready every fiber whose wait
 * is over.  Returns the number of fibers made ready.
 */
int fiber__poller_wait(struct fiber_loop *loop, int64_t deadline);

/* Release the poller's resources at the end of the loop. */
void fiber__poller_destroy(struct fiber_loop *loop);

#endif
