/*
 * stack.c - mmap'd fiber stacks with guard pages, reused through free lists.
 *
 * Stacks are carved out of chunks of several stacks each, so that a loop
 * with a hundred thousand fibers needs a few thousand mappings, not a
 * hundred thousand.  Every stack has a guard page below it (stacks grow
 * down).  The guard is made with MADV_GUARD_INSTALL where the kernel has it
 * (Linux 6.13 and later): it marks the page in the page tables without
 * splitting the mapping, so guards cost no entries of vm.max_map_count
 * (65530 by default).  Elsewhere mprotect(PROT_NONE) makes it, which splits
 * the mapping; when the kernel refuses that for lack of map entries the
 * stack is used without a guard rather than failing the spawn.
 *
 * Mappings use MAP_NORESERVE: a fiber pays resident memory only for the
 * stack pages it touches.
 */
#include "config.h"

#include "stack.h"
#include "sanitizers.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef PIDFD_SELF
#define PIDFD_SELF (-10000) /* the calling process, for pidfd system calls */
#endif

/* How guard pages are made; found out on the first chunk. */
enum guard_method { GUARD_UNKNOWN, GUARD_MADVISE, GUARD_MPROTECT };

/* A chunk aims at this many bytes, and holds between 1 and 64 stacks. */
#define CHUNK_TARGET_BYTES ((size_t)4 << 20)
#define CHUNK_MAX_STACKS 64

struct fiber__stack_class {
    size_t size;   /* usable bytes of each stack of this class */
    void **free;   /* bases of free stacks */
    size_t nfree;
    size_t made;   /* stacks of this class ever made */
    size_t cap;    /* room in free: at least made, so release never fails */
};

struct fiber__stack_chunk {
    void *addr;
    size_t len;
    /* Under Valgrind, the id of each stack registered with it, so that it
     * recognises switches between stacks; NULL otherwise. */
    unsigned *valgrind_ids;
    size_t count;
};

void fiber__stack_pool_init(struct fiber__stack_pool *pool)
{
    long page = sysconf(_SC_PAGESIZE);

    *pool = (struct fiber__stack_pool){0};
    pool->page_size = page > 0 ? (size_t)page : 4096;
}

void fiber__stack_pool_destroy(struct fiber__stack_pool *pool)
{
    for (size_t i = 0; i < pool->nchunks; i++) {
        struct fiber__stack_chunk *chunk = &pool->chunks[i];
        if (chunk->valgrind_ids) {
            for (size_t j = 0; j < chunk->count; j++)
                VALGRIND_STACK_DEREGISTER(chunk->valgrind_ids[j]);
            free(chunk->valgrind_ids);
        }
        fiber__asan_forget(chunk->addr, chunk->len);
        munmap(chunk->addr, chunk->len);
    }
    for (size_t i = 0; i < pool->nclasses; i++)
        free(pool->classes[i].free);
    free(pool->chunks);
    free(pool->classes);
    fiber__stack_pool_init(pool);
}

/* The class for size, created if new.  There are only as many classes as
 * distinct stack sizes in use, usually one or two. */
static struct fiber__stack_class *find_class(struct fiber__stack_pool *pool,
                                             size_t size)
{
    for (size_t i = 0; i < pool->nclasses; i++)
        if (pool->classes[i].size == size)
            return &pool->classes[i];

    struct fiber__stack_class *classes =
        realloc(pool->classes, (pool->nclasses + 1) * sizeof(*classes));
    if (!classes)
        return NULL;
    pool->classes = classes;
    classes[pool->nclasses] = (struct fiber__stack_class){.size = size};
    return &classes[pool->nclasses++];
}

/* Make the page at addr a guard page.  Returns true if it is one. */
static bool install_guard(struct fiber__stack_pool *pool, void *addr)
{
    size_t page = pool->page_size;

    if (pool->guard_method != GUARD_MPROTECT) {
        if (madvise(addr, page, MADV_GUARD_INSTALL) == 0) {
            pool->guard_method = GUARD_MADVISE;
            return true;
        }
        if (pool->guard_method == GUARD_UNKNOWN && errno == EINVAL)
            pool->guard_method = GUARD_MPROTECT;
        else
            return false;
    }
    return mprotect(addr, page, PROT_NONE) == 0;
}

/*
 * Install the guard pages of a whole chunk with one process_madvise call
 * (Linux 6.13+ accepts MADV_GUARD_INSTALL there), instead of one madvise
 * per stack.  Returns false if that cannot be done; the caller then
 * installs them one by one.
 */
static bool install_guards_batched(struct fiber__stack_pool *pool, char *addr,
                                   size_t slot, size_t count)
{
    struct iovec iov[CHUNK_MAX_STACKS];
    size_t page = pool->page_size;

    /* Valgrind does not know process_madvise; plain madvise it passes on. */
    if (pool->guard_method == GUARD_MPROTECT || pool->no_batch_guards ||
        RUNNING_ON_VALGRIND)
        return false;
    for (size_t i = 0; i < count; i++)
        iov[i] = (struct iovec){addr + i * slot, page};
    long done = syscall(SYS_process_madvise, PIDFD_SELF, iov, count,
                        MADV_GUARD_INSTALL, 0);
    if (done == (long)(count * page)) {
        pool->guard_method = GUARD_MADVISE;
        return true;
    }
    /* An older kernel, or a sandbox that forbids the call: do not ask
     * again.  Guards already installed are simply installed again. */
    pool->no_batch_guards = true;
    return false;
}

/* Map a new chunk of stacks of class c and put them all on its free list. */
static int grow_class(struct fiber__stack_pool *pool,
                      struct fiber__stack_class *c)
{
    /* A size that leaves no room for its guard page in a size_t would
     * wrap the slot to 0 (and divide by it); no such mapping exists. */
    if (c->size > SIZE_MAX - pool->page_size)
        return -ENOMEM;
    size_t slot = c->size + pool->page_size;
    size_t count = CHUNK_TARGET_BYTES / slot;

    if (count < 1)
        count = 1;
    if (count > CHUNK_MAX_STACKS)
        count = CHUNK_MAX_STACKS;
    if (slot > SIZE_MAX / count)
        return -ENOMEM;

    /* Reserve bookkeeping first so that nothing can fail after the map. */
    if (pool->nchunks == pool->chunks_cap) {
        size_t cap = pool->chunks_cap ? pool->chunks_cap * 2 : 16;
        struct fiber__stack_chunk *chunks =
            realloc(pool->chunks, cap * sizeof(*chunks));
        if (!chunks)
            return -ENOMEM;
        pool->chunks = chunks;
        pool->chunks_cap = cap;
    }
    if (c->cap < c->made + count) {
        size_t cap = c->made + count > 2 * c->cap ? c->made + count : 2 * c->cap;
        void **free_list = realloc(c->free, cap * sizeof(*free_list));
        if (!free_list)
            return -ENOMEM;
        c->free = free_list;
        c->cap = cap;
    }

    unsigned *valgrind_ids = NULL;
    if (RUNNING_ON_VALGRIND) {
        valgrind_ids = calloc(count, sizeof(*valgrind_ids));
        if (!valgrind_ids)
            return -ENOMEM;
    }

    size_t len = slot * count;
    char *addr = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (addr == MAP_FAILED) {
        free(valgrind_ids);
        return -ENOMEM;
    }
    pool->chunks[pool->nchunks++] =
        (struct fiber__stack_chunk){addr, len, valgrind_ids, count};
    c->made += count;

    bool guarded = install_guards_batched(pool, addr, slot, count);

    /* Push in reverse so that stacks are handed out in address order. */
    for (size_t i = count; i-- > 0;) {
        char *guard = addr + i * slot;
        if (!guarded && !install_guard(pool, guard))
            pool->unguarded++;
        if (valgrind_ids)
            valgrind_ids[i] = VALGRIND_STACK_REGISTER(guard + pool->page_size,
                                                      guard + slot);
        c->free[c->nfree++] = guard + pool->page_size;
    }
    return 0;
}

int fiber__stack_alloc(struct fiber__stack_pool *pool, size_t size,
                       struct fiber__stack *out)
{
    size_t rounded = fiber__stack_round(pool, size);
    if (rounded == 0)
        return -ENOMEM;

    struct fiber__stack_class *c = find_class(pool, rounded);
    if (!c)
        return -ENOMEM;
    if (c->nfree == 0) {
        int rc = grow_class(pool, c);
        if (rc < 0)
            return rc;
    }
    out->base = c->free[--c->nfree];
    out->size = rounded;
    return 0;
}

void fiber__stack_release(struct fiber__stack_pool *pool,
                          struct fiber__stack *stack)
{
    struct fiber__stack_class *c = NULL;

    for (size_t i = 0; i < pool->nclasses; i++) {
        if (pool->classes[i].size == stack->size) {
            c = &pool->classes[i];
            break;
        }
    }
    /* The class exists and has room: both were set up when the stack was
     * made, and free lists never hold more stacks than were made. */
    fiber__asan_forget(stack->base, stack->size);
    c->free[c->nfree++] = stack->base;
    stack->base = NULL;
}
