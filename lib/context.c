/*
 * context.c - fiber contexts on makecontext/swapcontext.
 *
 * This is the only file that includes <ucontext.h>, so that a faster switch
 * can replace the inside of these two functions without touching anything
 * else.
 */
#include "config.h"

#include "context.h"

#include <errno.h>
#include <ucontext.h>

_Static_assert(sizeof(ucontext_t) <= sizeof(struct fiber__context),
               "struct fiber__context is too small for a ucontext_t");

static ucontext_t *as_ucontext(struct fiber__context *ctx)
{
    return (ucontext_t *)(void *)ctx->storage;
}

int fiber__context_make(struct fiber__context *ctx, void *stack, size_t size,
                        void (*entry)(void))
{
    ucontext_t *uc = as_ucontext(ctx);

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

void fiber__context_switch(struct fiber__context *from,
                           struct fiber__context *to)
{
    /* swapcontext fails only for an invalid context, which would be a bug
     * in the scheduler, not a user's mistake. */
    int rc = swapcontext(as_ucontext(from), as_ucontext(to));
    (void)rc;
}
