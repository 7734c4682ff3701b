/*
 * context_x86_64.c - the x86-64 switch, in assembly: the callee-saved registers
 * only, in the ucontext_t's own slots, with no system call.
 *
 * Included by context.c, which picks one switch per build (see there):
 * it defines switch_make, which writes a new context, and switch_run,
 * which saves the running context and resumes another.
 */
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

/*
 * A new context for the assembly switch needs only what that switch loads:
 * rsp with the entry point just below it.  The frame and callee-saved
 * registers start at zero, which also ends any unwinder's walk at the
 * fiber's entry.  fpregs is NULL: no floating-point state is kept (see
 * above).  No system call, no copy of a whole ucontext_t.
 */
static int switch_make(ucontext_t *uc, void *stack, size_t size,
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
    return 0;
}

/* The switch when sanitizers must be told (context.h calls the assembly
 * directly otherwise). */
static inline void switch_run(struct fiber__context *from,
                              struct fiber__context *to)
{
    fiber__switch_x86_64(from, to);
}
