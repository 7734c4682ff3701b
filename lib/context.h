/*
 * context.h - the machine context of a fiber: the only interface to the
 * code that knows ucontext.  Everything else treats a context as opaque
 * storage that is made once and switched to.
 */
#ifndef FIBER_CONTEXT_H
#define FIBER_CONTEXT_H

#include <stddef.h>

/* Opaque storage for a saved context; big enough for a ucontext_t. */
struct fiber__context {
    _Alignas(16) unsigned char storage[1024];
};

/*
 * Prepare ctx so that switching to it runs entry() on the given stack.
 * entry must never return: a finished fiber switches away for good.
 * Returns 0 or a negative errno.
 */
int fiber__context_make(struct fiber__context *ctx, void *stack, size_t size,
                        void (*entry)(void));

/* Save the running context in from and resume to. */
void fiber__context_switch(struct fiber__context *from,
                           struct fiber__context *to);

#endif
