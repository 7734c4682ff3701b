/*
 * context.c - fiber contexts on ucontext_t.
 *
 * This file and the switch it includes are the only ones that include
 * <ucontext.h>.  One file per switch, chosen at build time:
 *
 * - context_x86_64.c and context_aarch64.c (the default there): a switch
 *   written in assembly that saves and restores only the registers the ABI
 *   makes callee-saved: on x86-64 rbx, rbp, r12-r15, rsp and rip; on
 *   AArch64 x19-x30, sp and d8-d15.  It stores them in the ucontext_t's own
 *   slots, so a saved context reads as a ucontext_t to libunwind and
 *   debuggers; only the part of it the switch uses is kept (see context.h),
 *   which backtrace.c copies into a whole one before unwinding.  It makes
 *   no system call: glibc's swapcontext spends most of its time in
 *   rt_sigprocmask saving and restoring the signal mask, which fibers of
 *   one thread share anyway (the mask is per thread, not per fiber).  A
 *   new context is written directly into the same slots.
 *   The floating-point environment (the x87 control word and MXCSR, FPCR
 *   on AArch64) is shared the same way: it belongs to the thread, and the
 *   switch leaves it alone.  Reading MXCSR alone (stmxcsr) took 2.5 ns on
 *   an AMD EPYC, against 1.6 ns for the whole switch, and fibers that
 *   change the rounding mode across a blocking call are rare; fiber.h
 *   states the rule and debug mode reports a fiber that breaks it.
 * - context_ucontext.c elsewhere, or with ./configure --with-switch=ucontext:
 *   makecontext builds each first context and glibc's swapcontext switches.
 *
 * Each defines switch_make and switch_run; what is common to all (the
 * sanitizers' bookkeeping, reading a saved context of the architecture)
 * stays here.
 *
 * Under AddressSanitizer each switch is announced with
 * __sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber so that
 * ASan knows which stack is in use.  Under ThreadSanitizer each context is
 * a TSan fiber, created with it and destroyed after its last switch away.
 */
#include "config.h"

#include "context.h"
#include "sanitizers.h"

#include <errno.h>
#include <fenv.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

/* Offsets into the assembly switches are spliced in as text. */
#define STR_(x) #x
#define STR(x) STR_(x)

#ifdef FIBER__TSAN
#include <sanitizer/tsan_interface.h>

/* A finished context's TSan fiber, destroyed by the context that runs
 * next: a fiber may not destroy the TSan fiber it runs on. */
static _Thread_local void *tsan_dead_fiber;
#endif

#ifdef FIBER__ASAN
#include <sanitizer/common_interface_defs.h>

/* The context being switched away from, so that the side that resumes can
 * tell ASan's record of the thread's own stack bounds to it: they are only
 * learnt when leaving that stack. */
static _Thread_local struct fiber__context *switching_from;
#endif

static ucontext_t *as_ucontext(struct fiber__context *ctx)
{
    return (ucontext_t *)(void *)ctx->storage;
}

/* A suspended context, to read; its fields past the storage are never
 * touched. */
static inline const ucontext_t *saved(const struct fiber__context *ctx)
{
    return (const ucontext_t *)(const void *)ctx->storage;
}

/*
 * One file per switch, as redis picks its poller: the assembly switch of
 * the architecture, unless ./configure --with-switch=ucontext asked for
 * glibc's, which is also the one for any other architecture.
 */
#if defined(FIBER_SWITCH_UCONTEXT) || \
    !(defined(__x86_64__) || defined(__aarch64__))
#include "context_ucontext.c"
#elif defined(__x86_64__)
#include "context_x86_64.c"
#else
#include "context_aarch64.c"
#endif

int fiber__context_make(struct fiber__context *ctx, void *stack, size_t size,
                        void (*entry)(void))
{
    int rc = switch_make(as_ucontext(ctx), stack, size, entry);

    if (rc < 0)
        return rc;
    ctx->stack = stack;
    ctx->stack_size = size;
    ctx->finished = false;
    ctx->fresh = true;
    ctx->asan_fake_stack = NULL;
#ifdef FIBER__TSAN
    ctx->tsan_fiber = __tsan_create_fiber(0);
#else
    ctx->tsan_fiber = NULL;
#endif
    return 0;
}

#if !FIBER__CONTEXT_DIRECT
void fiber__context_switch(struct fiber__context *from,
                           struct fiber__context *to)
{
#ifdef FIBER__ASAN
    switching_from = from;
    __sanitizer_start_switch_fiber(from->finished ? NULL : &from->asan_fake_stack,
                                   to->stack, to->stack_size);
#endif
#ifdef FIBER__TSAN
    /* The thread's own context becomes a TSan fiber when first left. */
    if (!from->tsan_fiber)
        from->tsan_fiber = __tsan_get_current_fiber();
    if (from->finished) {
        tsan_dead_fiber = from->tsan_fiber;
        from->tsan_fiber = NULL;
    }
    /* Flags 0: the switch orders memory, as it does on one thread. */
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    switch_run(from, to);
#if defined(FIBER__ASAN) || defined(FIBER__TSAN)
    fiber__context_started(from);
#endif
}

void fiber__context_exit(struct fiber__context *from, struct fiber__context *to)
{
    fiber__context_switch(from, to);
    abort(); /* A finished context is never resumed. */
}
#endif

void fiber__context_started(struct fiber__context *self)
{
#ifdef FIBER__ASAN
    const void *old_bottom;
    size_t old_size;

    __sanitizer_finish_switch_fiber(self->asan_fake_stack, &old_bottom, &old_size);
    if (switching_from && !switching_from->stack) {
        switching_from->stack = (void *)old_bottom;
        switching_from->stack_size = old_size;
    }
#else
    (void)self;
#endif
#ifdef FIBER__TSAN
    if (tsan_dead_fiber) {
        __tsan_destroy_fiber(tsan_dead_fiber);
        tsan_dead_fiber = NULL;
    }
#endif
}

unsigned long long fiber__context_fp_control(void)
{
#if defined(__x86_64__)
    unsigned short cw;
    unsigned int mxcsr;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    /* MXCSR's low six bits are exception flags that arithmetic sets. */
    return (unsigned long long)cw << 32 | (mxcsr & ~0x3fu);
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
#else
    return (unsigned long long)fegetround();
#endif
}

void *fiber__context_pc(const struct fiber__context *ctx)
{
#if defined(__x86_64__)
    return (void *)saved(ctx)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (void *)(uintptr_t)saved(ctx)->uc_mcontext.pc;
#else
    (void)ctx;
    return NULL;
#endif
}

void *fiber__context_sp(const struct fiber__context *ctx)
{
#if defined(__x86_64__)
    return (void *)saved(ctx)->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (void *)(uintptr_t)saved(ctx)->uc_mcontext.sp;
#else
    (void)ctx;
    return NULL;
#endif
}

void *fiber__context_stack_low(const struct fiber__context *ctx)
{
#if defined(__x86_64__)
    /* Both switches resume through the word just below the saved rsp: the
     * assembly one returns through it, setcontext pushes rip there. */
    return (char *)fiber__context_sp(ctx) - 8;
#elif defined(__aarch64__)
    /* No red zone, and both switches keep pc and lr in the context: the
     * frames start at sp. */
    return fiber__context_sp(ctx);
#else
    (void)ctx;
    return NULL;
#endif
}
