/*
 * context.h - the machine context of a fiber: the only interface to the
 * code that knows ucontext.  Everything else treats a context as opaque
 * storage that is made once and switched to.
 */
#ifndef FIBER_CONTEXT_H
#define FIBER_CONTEXT_H

/* The layout below depends on the configured switch: every user of this
 * header must see the same one. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>

#include "sanitizers.h"

/*
 * The assembly switch on x86-64 keeps only the leading part of a
 * ucontext_t, up to and including uc_mcontext.fpregs (232 bytes), which is
 * NULL: no floating-point state is kept (see context.c).  That makes every
 * task 792 bytes smaller than with a whole ucontext_t, which matters to
 * compact fibers (see compact.h), whose task
 * is most of what they cost.  On AArch64 the switch's registers end 736
 * bytes in.  The glibc switch needs the whole ucontext_t.
 */
#if defined(__x86_64__) && !defined(FIBER_SWITCH_UCONTEXT)
#define FIBER__CONTEXT_STORAGE 232
#elif defined(__aarch64__) && !defined(FIBER_SWITCH_UCONTEXT)
/* Up to d15 in the FP/SIMD record that starts __reserved. */
#define FIBER__CONTEXT_STORAGE 736
#elif defined(__aarch64__)
#define FIBER__CONTEXT_STORAGE 4608
#else
#define FIBER__CONTEXT_STORAGE 1024
#endif

struct fiber__context {
    /* A ucontext_t, or its leading part, kept opaque so that only
     * context.c sees <ucontext.h>. */
    _Alignas(16) unsigned char storage[FIBER__CONTEXT_STORAGE];
    /* The stack this context runs on; NULL for a thread's own stack, whose
     * bounds only the thread knows. */
    void *stack;
    size_t stack_size;
    /* Set before the last switch away from a finished fiber: its stack is
     * released, so sanitizers must forget it. */
    bool finished;
    /* Made and not yet switched to: the x86-64 switch enters it by a jump
     * to its entry point (see context.c). */
    bool fresh;
    void *asan_fake_stack;
    void *tsan_fiber;  /* ThreadSanitizer's handle for this context */
};

/*
 * Prepare ctx so that switching to it runs entry() on the given stack.
 * entry must never return: a finished fiber switches away for good, after
 * setting ctx->finished.  Returns 0 or a negative errno.
 */
int fiber__context_make(struct fiber__context *ctx, void *stack, size_t size,
                        void (*entry)(void));

/* With the x86-64 switch and no sanitizer to tell, a switch is a direct
 * call of the assembly (see context.c). */
#if defined(__x86_64__) && !defined(FIBER_SWITCH_UCONTEXT) && \
    !defined(FIBER__ASAN) && !defined(FIBER__TSAN)
#define FIBER__CONTEXT_DIRECT 1
#else
#define FIBER__CONTEXT_DIRECT 0
#endif

/* Save the running context in from and resume to, which must be another
 * context. */
#if FIBER__CONTEXT_DIRECT
void fiber__switch_x86_64(struct fiber__context *from, struct fiber__context *to);

static inline void fiber__context_switch(struct fiber__context *from,
                                         struct fiber__context *to)
{
    fiber__switch_x86_64(from, to);
}
#else
void fiber__context_switch(struct fiber__context *from,
                           struct fiber__context *to);
#endif

/*
 * Leave the finished context from for good and run to; nothing of from is
 * saved.  With the x86-64 switch this jumps to the switch rather than
 * call it, so that its return into to is the one the processor predicts
 * when to started from, as when a task is awaited (see context.c).
 */
#if FIBER__CONTEXT_DIRECT
__attribute__((noreturn)) static inline void
fiber__context_exit(struct fiber__context *from, struct fiber__context *to)
{
    (void)from;
    __asm__ volatile("jmp fiber__exit_x86_64" : : "D"(to) : "memory");
    __builtin_unreachable();
}
#else
__attribute__((noreturn)) void fiber__context_exit(struct fiber__context *from,
                                                   struct fiber__context *to);
#endif

/*
 * The thread's floating-point control state as one number, with the
 * status flags left out: on x86-64 the x87 control word and MXCSR's control
 * bits, on AArch64 FPCR, elsewhere the rounding mode.  Fibers of a thread
 * share it (see fiber.h); debug mode compares it across switches.
 */
unsigned long long fiber__context_fp_control(void);

/* Called first thing by a fiber's entry function on its new stack, so that
 * sanitizers learn the switch has completed. */
void fiber__context_started(struct fiber__context *self);

/* The instruction and stack pointers a suspended context resumes with, for
 * stack dumps; NULL where the machine's layout is not known. */
void *fiber__context_pc(const struct fiber__context *ctx);
void *fiber__context_sp(const struct fiber__context *ctx);

/* The lowest stack address a suspended context still needs when resumed:
 * its frames are [low, top of its stack).  Only where
 * FIBER__CONTEXT_STACK_LOW is 1; elsewhere NULL, and no compact fibers. */
#if defined(__x86_64__) || defined(__aarch64__)
#define FIBER__CONTEXT_STACK_LOW 1
#else
#define FIBER__CONTEXT_STACK_LOW 0
#endif
void *fiber__context_stack_low(const struct fiber__context *ctx);

#endif
