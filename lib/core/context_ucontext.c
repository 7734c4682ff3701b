/*
 * context_ucontext.c - glibc's makecontext and swapcontext: the portable switch,
 * on any architecture, or with ./configure --with-switch=ucontext.
 *
 * Included by context.c, which picks one switch per build (see there):
 * it defines switch_make, which writes a new context, and switch_run,
 * which saves the running context and resumes another.
 */

_Static_assert(sizeof(ucontext_t) <= sizeof(((struct fiber__context *)0)->storage),
               "struct fiber__context is too small for a ucontext_t");

static int switch_make(ucontext_t *uc, void *stack, size_t size,
                       void (*entry)(void))
{
    if (getcontext(uc) < 0)
        return -errno;
    uc->uc_stack.ss_sp = stack;
    uc->uc_stack.ss_size = size;
    uc->uc_stack.ss_flags = 0;
    /* entry never returns, so there is no context to continue with. */
    uc->uc_link = NULL;
    makecontext(uc, entry, 0);
    return 0;
}

static inline void switch_run(struct fiber__context *from,
                              struct fiber__context *to)
{
    /* swapcontext also installs the signal mask saved with the target.
     * Hand it the thread's current mask, so that a switch never changes
     * the mask, as with the asm switch: a signal blocked by one fiber
     * (a watched signal) stays blocked whichever fiber runs. */
    pthread_sigmask(SIG_SETMASK, NULL, &as_ucontext(to)->uc_sigmask);
    /* swapcontext fails only for an invalid context, which would be a bug
     * in the scheduler, not a user's mistake. */
    int rc = swapcontext(as_ucontext(from), as_ucontext(to));
    (void)rc;
}
