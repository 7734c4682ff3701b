/*
 * dump.h - describing live fibers: their state, stack use and backtrace.
 */
#ifndef FIBER_DUMP_H
#define FIBER_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct fiber_loop;
struct fiber_task;

/* Write one entry per live fiber of loop, oldest first, each line
 * starting with indent.  Returns how many fibers were written. */
size_t fiber__dump_fibers(struct fiber_loop *loop, FILE *out, const char *indent);

/* "libfiber: <title> (N live fibers):" and then every live fiber.
 * Returns the number of fibers, or -EIO if out failed. */
int fiber__dump(struct fiber_loop *loop, FILE *out, const char *title);

/* Write "libfiber: deadlock: <reason>" and, for each live fiber, what it
 * waits for, its stack use and its backtrace: the hooks' deadlock report,
 * made whatever aids are on. */
void fiber__report_deadlock(struct fiber_loop *loop, FILE *out,
                            const char *reason);

/* What f is doing, for reports: "sleeping, wakes in 2.500 s". */
void fiber__describe_state(const struct fiber_loop *loop,
                           const struct fiber_task *f, char *buf, size_t size);

/* The name of f's entry function into buf, "" if unknown; returns buf. */
const char *fiber__entry_name(const struct fiber_task *f, char *buf, size_t size);

/* "fiber 3 'name' (function)", for reports. */
void fiber__label(const struct fiber_task *f, char *buf, size_t size);

/* The deepest f's stack has reached, in bytes (see fiber.h). */
size_t fiber__stack_high_water(const struct fiber_loop *loop,
                               const struct fiber_task *f);

/* Zero the resident pages of f's stack below its starting frame, so that
 * its high-water mark is its own.  Before f first runs.  Returns whether
 * it did (not for a compact fiber, under ASan or Valgrind). */
bool fiber__stack_paint(const struct fiber_loop *loop, struct fiber_task *f);

#endif
