/*
 * report.h - human-readable reports about a loop's fibers.
 */
#ifndef FIBER_REPORT_H
#define FIBER_REPORT_H

#include <stdio.h>

struct fiber_loop;

/* Write "libfiber: deadlock: <reason>" and, for each live fiber, what it
 * waits for, its stack use and its backtrace (see dump.h). */
void fiber__report_deadlock(struct fiber_loop *loop, FILE *out,
                            const char *reason);

#endif
