/*
 * context.c - fiber contexts on ucontext_t.
 *
 * This is the only file that includes <ucontext.h>.  Two paths:
 *
 * - On x86-64 and AArch64 (the default there), a switch written in
 *   assembly that saves and restores only the registers the ABI makes
 *   callee-saved: on x86-64 rbx, rbp, r12-r15, rsp and rip; on AArch64
 *   x19-x30, sp and d8-d15.  It stores them in the ucontext_t's own slots,
 *   so a saved context reads as a ucontext_t to libunwind and debuggers;
 *   only the part of it the switch uses is kept (see context.h), which
 *   backtrace.c copies into a whole one before unwinding.  It makes no
 *   system call: glibc's swapcontext spends most of its time in
 *   rt_sigprocmask saving and restoring the signal mask, which fibers of
 *   one thread share anyway (the mask is per thread, not per fiber).  A
 *   new context is written directly into the same slots.
 *   The floating-point environment (the x87 control word and MXCSR, FPCR
 *   on AArch64) is shared the same way: it belongs to the thread, and the
 *   switch leaves it alone.  Reading MXCSR alone (stmxcsr) took 2.5 ns on
 *   an AMD EPYC, against 1.6 ns for the whole switch, and fibers that
 *   change the rounding mode across a blocking call are rare; fiber.h
 *   states the rule and debug mode reports a fiber that breaks it.
 * - Elsewhere, or with ./configure --with-switch=ucontext, makecontext
 *   builds each first context and glibc's swapcontext switches.
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


#if !defined(FIBER_SWITCH_UCONTEXT) && defined(__x86_64__)
#define SWITCH_X86_64 1
#else
#define SWITCH_X86_64 0
#endif
#if !defined(FIBER_SWITCH_UCONTEXT) && defined(__aarch64__)
#define SWITCH_AARCH64 1
#else
#define SWITCH_AARCH64 0
#endif
#define SWITCH_ASM (SWITCH_X86_64 || SWITCH_AARCH64)

/* Offsets into the assembly below are spliced in as text. */
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

#if !SWITCH_ASM
_Static_assert(sizeof(ucontext_t) <= sizeof(((struct fiber__context *)0)->storage),
               "struct fiber__context is too small for a ucontext_t");
#endif

#if SWITCH_X86_64
/*
 * Offsets into glibc's x86-64 ucontext_t, checked below at compile time:
 * the assembly cannot use offsetof.
 */
#define OFF_R12 72
#define OFF_R13 80
#define OFF_R14 88
#define OFF_R15 96
#define OFF_RBP 120
#define OFF_RBX 128
#define OFF_RSP 160
#define OFF_RIP 168
#define OFF_FPREGS 224
#define OFF_FRESH 249

#define GREG(r) (offsetof(ucontext_t, uc_mcontext.gregs) + (r) * sizeof(greg_t))
_Static_assert(GREG(REG_R12) == OFF_R12, "ucontext_t layout");
_Static_assert(GREG(REG_R13) == OFF_R13, "ucontext_t layout");
_Static_assert(GREG(REG_R14) == OFF_R14, "ucontext_t layout");
_Static_assert(GREG(REG_R15) == OFF_R15, "ucontext_t layout");
_Static_assert(GREG(REG_RBP) == OFF_RBP, "ucontext_t layout");
_Static_assert(GREG(REG_RBX) == OFF_RBX, "ucontext_t layout");
_Static_assert(GREG(REG_RSP) == OFF_RSP, "ucontext_t layout");
_Static_assert(GREG(REG_RIP) == OFF_RIP, "ucontext_t layout");
_Static_assert(offsetof(ucontext_t, uc_mcontext.fpregs) == OFF_FPREGS, "ucontext_t layout");
_Static_assert(offsetof(struct fiber__context, storage) == 0 &&
                   offsetof(struct fiber__context, fresh) == OFF_FRESH,
               "struct fiber__context layout");
/* Nothing past the fpregs pointer is used, so the storage may end there. */
_Static_assert(OFF_FPREGS + sizeof(fpregset_t) <= FIBER__CONTEXT_STORAGE,
               "struct fiber__context is too small for the switch");

/* The opening and closing lines of an assembly function. */
#define X86_64_FUNCTION(name)                                \
    ".text\n"                                                \
    ".p2align 4\n"                                           \
    ".globl " name "\n"                                      \
    ".hidden " name "\n"                                     \
    ".type " name ", @function\n"                            \
    name ":\n"                                               \
    "    .cfi_startproc\n"

#define X86_64_END(name)                                     \
    "    .cfi_endproc\n"                                     \
    ".size " name ", .-" name "\n"

/*
 * How control reaches the target decides what the processor predicts, and
 * a wrong guess costs about as much as the rest of the switch:
 *
 * - fiber__switch_x86_64 returns into the target rather than jump: its
 *   resume address sits just below its saved rsp, pushed by its own call
 *   of the switch, and a matched ret keeps the processor's return-address
 *   predictions in step when fibers stop at the same call site.
 * - A context that has never run (fresh) is entered by a jump to its
 *   entry point instead: a ret there would be mispredicted, a jump whose
 *   target is always that entry point is not.  The return address its
 *   caller pushed stays on the processor's return stack, for the ret of
 *   fiber__exit_x86_64.
 * - fiber__exit_x86_64 leaves a finished fiber for good, saving nothing.
 *   It is jumped to, not called (see fiber__context_exit), so that its ret
 *   into the context that started the fiber, the usual case when a task
 *   is awaited, pops that address and is predicted.
 */
#if !FIBER__CONTEXT_DIRECT
void fiber__switch_x86_64(struct fiber__context *from, struct fiber__context *to);
#endif

/* Run the target, whose registers and rsp are loaded: return into it, or
 * jump to the entry point of one that is fresh. */
#define X86_64_ENTER_TARGET(to)                              \
    "    cmpb $0, " STR(OFF_FRESH) "(" to ")\n"              \
    "    jne 1f\n"                                           \
    "    subq $8, %rsp\n"                                    \
    "    ret\n"                                              \
    "1:  movb $0, " STR(OFF_FRESH) "(" to ")\n"              \
    "    jmp *" STR(OFF_RIP) "(" to ")\n"

__asm__(
    X86_64_FUNCTION("fiber__switch_x86_64")
    /* Load the target's registers into scratch registers first: loads
     * issued after the stores below would wait until the processor has
     * made sure they do not read what those stores write, which cost
     * 1.5 ns a switch on an AMD EPYC. */
    "    movq " STR(OFF_RBX) "(%rsi), %r8\n"
    "    movq " STR(OFF_RBP) "(%rsi), %r9\n"
    "    movq " STR(OFF_R12) "(%rsi), %r10\n"
    "    movq " STR(OFF_R13) "(%rsi), %r11\n"
    "    movq " STR(OFF_R14) "(%rsi), %rax\n"
    "    movq " STR(OFF_R15) "(%rsi), %rdx\n"
    /* Save the running context as if this call had returned (rip is the
     * return address, rsp points just above it), then take the target's
     * rsp and registers. */
    "    leaq 8(%rsp), %rcx\n"
    "    movq %rcx, " STR(OFF_RSP) "(%rdi)\n"
    "    movq (%rsp), %rcx\n"
    "    movq %rcx, " STR(OFF_RIP) "(%rdi)\n"
    "    movq " STR(OFF_RSP) "(%rsi), %rsp\n"
    "    movq %rbx, " STR(OFF_RBX) "(%rdi)\n"
    "    movq %rbp, " STR(OFF_RBP) "(%rdi)\n"
    "    movq %r12, " STR(OFF_R12) "(%rdi)\n"
    "    movq %r13, " STR(OFF_R13) "(%rdi)\n"
    "    movq %r14, " STR(OFF_R14) "(%rdi)\n"
    "    movq %r15, " STR(OFF_R15) "(%rdi)\n"
    "    movq %r8, %rbx\n"
    "    movq %r9, %rbp\n"
    "    movq %r10, %r12\n"
    "    movq %r11, %r13\n"
    "    movq %rax, %r14\n"
    "    movq %rdx, %r15\n"
    X86_64_ENTER_TARGET("%rsi")
    X86_64_END("fiber__switch_x86_64")
    X86_64_FUNCTION("fiber__exit_x86_64")
    "    movq " STR(OFF_RBX) "(%rdi), %rbx\n"
    "    movq " STR(OFF_RBP) "(%rdi), %rbp\n"
    "    movq " STR(OFF_R12) "(%rdi), %r12\n"
    "    movq " STR(OFF_R13) "(%rdi), %r13\n"
    "    movq " STR(OFF_R14) "(%rdi), %r14\n"
    "    movq " STR(OFF_R15) "(%rdi), %r15\n"
    "    movq " STR(OFF_RSP) "(%rdi), %rsp\n"
    X86_64_ENTER_TARGET("%rdi")
    X86_64_END("fiber__exit_x86_64")
    ".section .note.GNU-stack,\"\",@progbits\n"
    ".text\n");
#endif

#if SWITCH_X86_64
/*
 * A new context for the assembly switch needs only what that switch loads:
 * rsp with the entry point just below it.  The frame and callee-saved
 * registers start at zero, which also ends any unwinder's walk at the
 * fiber's entry.  fpregs is NULL: no floating-point state is kept (see
 * above).  No system call, no copy of a whole ucontext_t.
 */
static void make_for_asm(ucontext_t *uc, void *stack, size_t size,
                         void (*entry)(void))
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    greg_t *sp = (greg_t *)top;

    /* entry starts as if called: rsp = top - 8, 8 bytes off 16-byte
     * alignment, above a null return address it never uses. */
    sp[-1] = 0;
    sp[-2] = (greg_t)(uintptr_t)entry;
    greg_t *gregs = uc->uc_mcontext.gregs;
    gregs[REG_RSP] = (greg_t)(top - 8);
    gregs[REG_RIP] = (greg_t)(uintptr_t)entry;
    gregs[REG_RBX] = gregs[REG_RBP] = 0;
    gregs[REG_R12] = gregs[REG_R13] = gregs[REG_R14] = gregs[REG_R15] = 0;
    uc->uc_stack.ss_sp = stack;
    uc->uc_stack.ss_size = size;
    uc->uc_stack.ss_flags = 0;
    uc->uc_link = NULL;
    uc->uc_mcontext.fpregs = NULL;
}
#endif

#if SWITCH_AARCH64
/*
 * Offsets into glibc's AArch64 ucontext_t, checked below.  The switch saves
 * what AAPCS64 makes callee-saved: x19-x28, the frame pointer x29, the link
 * register x30, sp and the low halves of v8-v15 (d8-d15), into
 * regs[], sp, pc and the FP/SIMD record that the kernel and getcontext put
 * first in __reserved.  Only the prefix up to v15 is kept (see context.h).
 */
#define A64_OFF_X19 336
#define A64_OFF_SP 432
#define A64_OFF_PC 440
#define A64_OFF_FPSIMD 464 /* struct fpsimd_context, in __reserved */
#define A64_OFF_V8 (A64_OFF_FPSIMD + 16 + 8 * 16)
#define A64_OFF_FRESH 753

_Static_assert(offsetof(ucontext_t, uc_mcontext.regs) + 19 * 8 == A64_OFF_X19, "ucontext_t layout");
_Static_assert(offsetof(ucontext_t, uc_mcontext.sp) == A64_OFF_SP, "ucontext_t layout");
_Static_assert(offsetof(ucontext_t, uc_mcontext.pc) == A64_OFF_PC, "ucontext_t layout");
_Static_assert(offsetof(ucontext_t, uc_mcontext.__reserved) == A64_OFF_FPSIMD, "ucontext_t layout");
_Static_assert(offsetof(struct fiber__context, fresh) == A64_OFF_FRESH,
               "struct fiber__context layout");
/* The switch touches nothing past d15, so the storage may end there. */
_Static_assert(A64_OFF_V8 + 7 * 16 + 8 <= FIBER__CONTEXT_STORAGE,
               "struct fiber__context is too small for the switch");

#define V(n) STR(A64_OFF_V8 + (n) * 16)

/* void fiber__switch_aarch64(ucontext_t *from, ucontext_t *to) */
void fiber__switch_aarch64(ucontext_t *from, ucontext_t *to);
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl fiber__switch_aarch64\n"
    ".hidden fiber__switch_aarch64\n"
    ".type fiber__switch_aarch64, %function\n"
    "fiber__switch_aarch64:\n"
    "    .cfi_startproc\n"
    /* Save: x19-x30 into regs[19..30]; resume at the return address. */
    "    add x9, x0, #" STR(A64_OFF_X19) "\n"
    "    stp x19, x20, [x9, #0]\n"
    "    stp x21, x22, [x9, #16]\n"
    "    stp x23, x24, [x9, #32]\n"
    "    stp x25, x26, [x9, #48]\n"
    "    stp x27, x28, [x9, #64]\n"
    "    stp x29, x30, [x9, #80]\n"
    "    mov x10, sp\n"
    "    stp x10, x30, [x0, #" STR(A64_OFF_SP) "]\n"
    "    str d8, [x0, #" V(0) "]\n"
    "    str d9, [x0, #" V(1) "]\n"
    "    str d10, [x0, #" V(2) "]\n"
    "    str d11, [x0, #" V(3) "]\n"
    "    str d12, [x0, #" V(4) "]\n"
    "    str d13, [x0, #" V(5) "]\n"
    "    str d14, [x0, #" V(6) "]\n"
    "    str d15, [x0, #" V(7) "]\n"
    /* Load the target. */
    "    add x9, x1, #" STR(A64_OFF_X19) "\n"
    "    ldp x19, x20, [x9, #0]\n"
    "    ldp x21, x22, [x9, #16]\n"
    "    ldp x23, x24, [x9, #32]\n"
    "    ldp x25, x26, [x9, #48]\n"
    "    ldp x27, x28, [x9, #64]\n"
    "    ldp x29, x30, [x9, #80]\n"
    "    ldr d8, [x1, #" V(0) "]\n"
    "    ldr d9, [x1, #" V(1) "]\n"
    "    ldr d10, [x1, #" V(2) "]\n"
    "    ldr d11, [x1, #" V(3) "]\n"
    "    ldr d12, [x1, #" V(4) "]\n"
    "    ldr d13, [x1, #" V(5) "]\n"
    "    ldr d14, [x1, #" V(6) "]\n"
    "    ldr d15, [x1, #" V(7) "]\n"
    "    ldp x10, x11, [x1, #" STR(A64_OFF_SP) "]\n"
    "    mov sp, x10\n"
    /* As on x86-64 (see above): return into the target, so that the
     * processor's return-address stack pops the entry that this call of
     * the switch pushed, but branch into a fresh one, whose entry point
     * that stack cannot predict.  Not timed: qemu cannot tell. */
    "    ldrb w12, [x1, #" STR(A64_OFF_FRESH) "]\n"
    "    cbnz w12, 1f\n"
    "    ret x11\n"
    "1:  strb wzr, [x1, #" STR(A64_OFF_FRESH) "]\n"
    "    br x11\n"
    "    .cfi_endproc\n"
    ".size fiber__switch_aarch64, .-fiber__switch_aarch64\n"
    ".section .note.GNU-stack,\"\",%progbits\n"
    ".text\n");

/*
 * A new context: sp at the top of the stack, pc at entry, every saved
 * register zero (a null frame pointer and link register end an unwinder's
 * walk), FPCR from the thread that makes it.  Nothing is written on the
 * stack.
 */
static void make_for_asm(ucontext_t *uc, void *stack, size_t size,
                         void (*entry)(void))
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    unsigned char *base = (unsigned char *)uc;

    for (int r = 19; r <= 30; r++)
        uc->uc_mcontext.regs[r] = 0;
    uc->uc_mcontext.sp = top;
    uc->uc_mcontext.pc = (uintptr_t)entry;
    uc->uc_stack.ss_sp = stack;
    uc->uc_stack.ss_size = size;
    uc->uc_stack.ss_flags = 0;
    uc->uc_link = NULL;
    /* The FP/SIMD record's header, as getcontext writes it, so that a
     * reader finds the record; only its first registers fit. */
    struct fpsimd_context *fp = (struct fpsimd_context *)(void *)(base + A64_OFF_FPSIMD);
    fp->head.magic = FPSIMD_MAGIC;
    fp->head.size = sizeof(struct fpsimd_context);
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fp->fpcr = (uint32_t)fpcr;
    for (int v = 8; v <= 15; v++)
        memset(base + A64_OFF_V8 + (v - 8) * 16, 0, 8);
}
#endif

int fiber__context_make(struct fiber__context *ctx, void *stack, size_t size,
                        void (*entry)(void))
{
    ucontext_t *uc = as_ucontext(ctx);

#if SWITCH_ASM
    make_for_asm(uc, stack, size, entry);
#else
    if (getcontext(uc) < 0)
        return -errno;
    uc->uc_stack.ss_sp = stack;
    uc->uc_stack.ss_size = size;
    uc->uc_stack.ss_flags = 0;
    /* entry never returns, so there is no context to continue with. */
    uc->uc_link = NULL;
    makecontext(uc, entry, 0);
#endif
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
#if SWITCH_X86_64
    fiber__switch_x86_64(from, to);
#elif SWITCH_AARCH64
    fiber__switch_aarch64(as_ucontext(from), as_ucontext(to));
#else
    /* swapcontext also installs the signal mask saved with the target.
     * Hand it the thread's current mask, so that a switch never changes
     * the mask, as with the asm switch: a signal blocked by one fiber
     * (a watched signal) stays blocked whichever fiber runs. */
    pthread_sigmask(SIG_SETMASK, NULL, &as_ucontext(to)->uc_sigmask);
    /* swapcontext fails only for an invalid context, which would be a bug
     * in the scheduler, not a user's mistake. */
    int rc = swapcontext(as_ucontext(from), as_ucontext(to));
    (void)rc;
#endif
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
