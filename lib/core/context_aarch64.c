/*
 * context_aarch64.c - the AArch64 switch, in assembly: x19-x30, sp and d8-d15,
 * in the ucontext_t's own slots, with no system call.
 *
 * Included by context.c, which picks one switch per build (see there):
 * it defines switch_make, which writes a new context, and switch_run,
 * which saves the running context and resumes another.
 */
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
static int switch_make(ucontext_t *uc, void *stack, size_t size,
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
    return 0;
}

static inline void switch_run(struct fiber__context *from,
                              struct fiber__context *to)
{
    fiber__switch_aarch64(as_ucontext(from), as_ucontext(to));
}
