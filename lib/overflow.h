/*
 * overflow.h - naming the fiber whose stack overflowed into its guard page.
 */
#ifndef FIBER_OVERFLOW_H
#define FIBER_OVERFLOW_H

/*
 * While a loop runs on this thread: give the thread an alternate signal
 * stack if it has none, and install the SIGSEGV handler for the process
 * if no running loop has.  Returns 0 or -ENOMEM.  A no-op in builds with
 * ASan or TSan, whose own handlers report overflows.
 */
int fiber__overflow_arm(void);

/* Undo fiber__overflow_arm on this thread; the handler goes when the last
 * loop of the process ends, unless someone installed another since. */
void fiber__overflow_disarm(void);

#endif
