/*
 * stack.h - fiber stacks: mmap'd in chunks, each with a guard page below it,
 * and kept in per-size free lists so that finished fibers' stacks are reused.
 */
#ifndef FIBER_STACK_H
#define FIBER_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fiber__stack {
    void *base;   /* lowest usable address; the guard page lies just below */
    size_t size;  /* usable bytes */
};

struct fiber__stack_class;
struct fiber__stack_chunk;

struct fiber__stack_pool {
    size_t page_size;
    struct fiber__stack_class *classes;  /* one per distinct stack size */
    size_t nclasses;
    struct fiber__stack_chunk *chunks;   /* every mapping, for the final unmap */
    size_t nchunks, chunks_cap;
    int guard_method;                    /* how guard pages are made; see stack.c */
    bool no_batch_guards;                /* process_madvise is unavailable */
    size_t unguarded;                    /* stacks left without a guard page */
};

void fiber__stack_pool_init(struct fiber__stack_pool *pool);

/* Unmap every chunk.  No stack of the pool may be in use any more. */
void fiber__stack_pool_destroy(struct fiber__stack_pool *pool);

/* Round a requested size up to whole pages; 0 if it would overflow.
 * Inline: every spawn asks.  Pages are a power of two: a mask, not a
 * division, which would be the dearest instruction of a spawn. */
static inline size_t fiber__stack_round(const struct fiber__stack_pool *pool,
                                        size_t size)
{
    size_t page = pool->page_size;

    if (size > SIZE_MAX - page)
        return 0;
    return (size + page - 1) & ~(page - 1);
}

/* Take a stack of at least size bytes.  Returns 0 or -ENOMEM. */
int fiber__stack_alloc(struct fiber__stack_pool *pool, size_t size,
                       struct fiber__stack *out);

/* Give a stack back for reuse.  Never fails: room was reserved at alloc. */
void fiber__stack_release(struct fiber__stack_pool *pool,
                          struct fiber__stack *stack);

#endif
