/*
 * backtrace.h - unwinding fiber stacks and naming code addresses.
 *
 * With libunwind on x86-64, a suspended fiber is unwound from the context
 * it saved when it switched away (a saved ucontext_t is an unw_context_t
 * there), the fiber running on this stack from the current context.
 * Without it, fibers have no backtraces and addresses are named through
 * the dynamic symbol table alone.
 */
#ifndef FIBER_BACKTRACE_H
#define FIBER_BACKTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fiber_loop;
struct fiber_task;

/* True when fibers can be unwound. */
bool fiber__backtrace_available(void);

/*
 * Store at most max return addresses of f's stack in pcs, innermost first:
 * from the function that called into libfiber (libfiber's own frames
 * above it are left out) down to, not including, the fiber trampoline.
 * A fiber that never ran gives its entry function.  f must be live; when
 * it is loop->current, the caller runs on its stack.  Returns the number
 * stored or -ENOSYS without libunwind.
 */
int fiber__backtrace(const struct fiber_loop *loop, const struct fiber_task *f,
                     uintptr_t *pcs, size_t max);

/*
 * Name the code at pc: the function's name into name (NUL-terminated) and
 * pc's offset in it into *offset.  Returns false when no name is known.
 */
bool fiber__symbol_name(uintptr_t pc, char *name, size_t size, uintptr_t *offset);

/* The file name (without directories) of the object holding pc, or NULL. */
const char *fiber__object_name(uintptr_t pc);

/* "function+0xoffset (object)" into buf, like snprintf; when no name is
 * known, "0x<pc>" and *found = false. */
int fiber__format_frame(uintptr_t pc, char *buf, size_t size, bool *found);

#endif
