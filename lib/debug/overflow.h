/*
 * overflow.h - naming the fiber whose stack overflowed into its guard page.
 */
#ifndef FIBER_OVERFLOW_H
#define FIBER_OVERFLOW_H

/*
 * When a loop starts on this thread: give the thread an alternate signal
 * stack if it has none (it stays until the thread exits, for its next
 * loops), and install the SIGSEGV handler for the process if no running
 * loop has.  Returns 0 or -ENOMEM.  A no-op in builds with ASan or TSan,
 * whose own handlers report overflows.
 */
int fiber__overflow_arm(void);

/* When the loop ends: the handler goes with the last loop of the process,
 * unless someone installed another since. */
void fiber__overflow_disarm(void);

#endif
