/*
 * compact.c - compact fibers: the shared run stack, and the copies of
 * frames on and off it.  See compact.h.
 */
#include "config.h"

#include "compact.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "context.h"
#include "sanitizers.h"

#ifdef FIBER__ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Bytes at the top of a stack that making a first context may write: a
 * return address and a word or two for the trampoline. */
#define FIRST_FRAME_MAX 128

bool fiber__compact_supported(void)
{
    return FIBER__CONTEXT_STACK_LOW;
}

static char *shared_top(const struct fiber_loop *loop)
{
    return (char *)loop->shared_stack.base + loop->shared_stack.size;
}

/*
 * The copies below move one fiber's frames over memory that the memory
 * checkers last saw holding another's.  AddressSanitizer's poisoned red
 * zones there belong to frames that are gone, so the range is made
 * addressable; Valgrind may count it as below a stack pointer, so it is
 * made addressable (and undefined, until the copy defines it).
 */
static void open_for_frames(void *p, size_t n)
{
#ifdef FIBER__ASAN
    __asan_unpoison_memory_region(p, n);
#endif
    VALGRIND_MAKE_MEM_UNDEFINED(p, n);
}

/* Reading a fiber's own frames needs only ASan's red zones lifted. */
static void open_for_reading(const void *p, size_t n)
{
#ifdef FIBER__ASAN
    __asan_unpoison_memory_region(p, n);
#else
    (void)p;
    (void)n;
#endif
}

/* Room for len bytes of frames, or for as much as the last fiber saved if
 * more: fibers spawned together tend to stop at the same depth, and
 * growing later costs a copy. */
static size_t frames_room(const struct fiber_loop *loop, size_t len)
{
    size_t cap = len > loop->compact_hint ? len : loop->compact_hint;

    return (cap + 63) & ~(size_t)63;
}

/* The frames buffer allocated with the task, just after it. */
static char *inline_frames(struct fiber_task *f)
{
    return (char *)(f + 1);
}

/* Free f's frames buffer if it is one of its own, not the one that came
 * with the task. */
static void free_outgrown_frames(struct fiber_loop *loop, struct fiber_task *f)
{
    if (f->frames != inline_frames(f)) {
        free(f->frames);
        loop->compact_slabs.outgrown--;
    }
}

/* What a fiber stopped at its first blocking call, made straight from its
 * function, has on the stack: the trampoline, the function, the call and
 * the switch take about 200 bytes on x86-64.  Fibers spawned before any
 * has run (a million sleepers spawned at once) get room for that, so that
 * their first switch away needs no second allocation. */
#define FIRST_SAVE_GUESS 256

/* The first slab is small, for a loop with a few compact fibers; each
 * next one doubles, up to a huge page, on which a million compact tasks
 * take 450 TLB entries rather than 220,000, and 450 page faults. */
#define SLAB_FIRST ((size_t)64 << 10)
#define SLAB_HUGE ((size_t)2 << 20)
#define LINE 64

#ifndef FIBER__ASAN
/* bytes, a multiple of LINE, from the loop's slabs, or NULL. */
static void *slab_take(struct fiber_loop *loop, size_t bytes)
{
    struct fiber__compact_slabs *s = &loop->compact_slabs;

    if (bytes > s->left) {
        size_t size = s->next_size ? s->next_size : SLAB_FIRST;
        while (size < bytes + LINE)
            size *= 2;
        void *slab = aligned_alloc(size >= SLAB_HUGE ? SLAB_HUGE : LINE, size);
        if (!slab)
            return NULL;
        /* Where transparent huge pages are only given on request (the
         * "madvise" setting), ask: without them every 4 KiB of tasks is a
         * page fault at spawn and a TLB miss at each wake-up. */
        if (size >= SLAB_HUGE)
            madvise(slab, size, MADV_HUGEPAGE);
        /* The first line links the slabs. */
        *(void **)slab = s->list;
        s->list = slab;
        s->at = (char *)slab + LINE;
        s->left = size - LINE;
        s->next_size = size < SLAB_HUGE ? size * 2 : size;
    }
    void *p = s->at;
    s->at += bytes;
    s->left -= bytes;
    return p;
}
#endif

struct fiber_task *fiber__compact_task_new(struct fiber_loop *loop)
{
    size_t cap = frames_room(loop, loop->compact_hint ? FIRST_FRAME_MAX
                                                      : FIRST_SAVE_GUESS);
    size_t bytes = (sizeof(struct fiber_task) + cap + LINE - 1) & ~(size_t)(LINE - 1);
#ifdef FIBER__ASAN
    /* One block each, so that AddressSanitizer sees the bounds of each. */
    struct fiber_task *f = malloc(bytes);
#else
    struct fiber_task *f = slab_take(loop, bytes);
#endif

    if (!f)
        return NULL;
    f->frames = inline_frames(f);
    f->frames_cap = bytes - sizeof(*f);
    return f;
}

void fiber__compact_tasks_free(struct fiber_loop *loop)
{
    struct fiber__compact_slabs *s = &loop->compact_slabs;
    struct fiber_task *f;

#ifndef FIBER__ASAN
    /* Among a million tasks, the walk is a cache miss each: skip it when
     * no frames buffer of their own is left to free. */
    if (s->outgrown == 0)
        loop->compact_free = NULL;
#endif
    while ((f = loop->compact_free)) {
        loop->compact_free = f->next_free;
        free_outgrown_frames(loop, f);
#ifdef FIBER__ASAN
        free(f);
#endif
    }
    void *slab;
    while ((slab = s->list)) {
        s->list = *(void **)slab;
        free(slab);
    }
    *s = (struct fiber__compact_slabs){0};
}

static int reserve(struct fiber_loop *loop, struct fiber_task *f, size_t len)
{
    if (len <= f->frames_cap)
        return 0;
    size_t cap = frames_room(loop, len);
    /* The old contents are dead: free and allocate rather than realloc. */
    void *frames = malloc(cap);
    if (!frames)
        return -ENOMEM;
    free_outgrown_frames(loop, f);
    f->frames = frames;
    f->frames_cap = cap;
    loop->compact_slabs.outgrown++;
    return 0;
}

int fiber__compact_make(struct fiber_loop *loop, struct fiber_task *f,
                        void (*entry)(void))
{
    int rc;

    if (!loop->shared_stack.base) {
        rc = fiber__stack_alloc(&loop->stacks, loop->stack_size, &loop->shared_stack);
        if (rc < 0)
            return rc;
    }
    rc = reserve(loop, f, FIRST_FRAME_MAX);
    if (rc < 0)
        return rc;
    f->stack = loop->shared_stack;

    /* The first frame is written at the top of the shared stack, where
     * the owner's outermost frames are (maybe the caller's own): keep
     * those bytes aside, take the new frame into f's buffer, put them
     * back.  Valgrind is told nothing of the two raw copies. */
    char *top = shared_top(loop);
    char *keep_at = top - FIRST_FRAME_MAX;
    unsigned char keep[FIRST_FRAME_MAX];
    bool owned = loop->shared_owner != NULL;
    if (owned) {
        open_for_reading(keep_at, FIRST_FRAME_MAX);
        VALGRIND_DISABLE_ERROR_REPORTING;
        memcpy(keep, keep_at, FIRST_FRAME_MAX);
        VALGRIND_ENABLE_ERROR_REPORTING;
    }
    rc = fiber__context_make(&f->ctx, f->stack.base, f->stack.size, entry);
    if (rc == 0) {
        char *low = fiber__context_stack_low(&f->ctx);
        f->frames_len = (size_t)(top - low);
        if (f->frames_len <= FIRST_FRAME_MAX) {
            open_for_reading(low, f->frames_len);
            memcpy(f->frames, low, f->frames_len);
        } else {
            rc = -EINVAL; /* not reached: see FIRST_FRAME_MAX */
        }
    }
    if (owned) {
        VALGRIND_DISABLE_ERROR_REPORTING;
        memcpy(keep_at, keep, FIRST_FRAME_MAX);
        VALGRIND_ENABLE_ERROR_REPORTING;
    }
    return rc;
}

static void out_of_memory(const struct fiber_task *f)
{
    char msg[160];
    int n = snprintf(msg, sizeof(msg),
                     "libfiber: no memory to save the frames of compact fiber "
                     "%" PRIu64 " '%s'; stopping\n",
                     f->id, fiber__task_name(f));
    if (n > 0) {
        /* Nothing is left to do if even this write fails. */
        ssize_t written = write(STDERR_FILENO, msg, (size_t)n);
        (void)written;
    }
    abort();
}

/* Copy the owner's frames off the shared stack into its buffer. */
static void save_frames(struct fiber_loop *loop, struct fiber_task *owner)
{
    size_t len = fiber__compact_frames_size(owner);
    char *low = shared_top(loop) - len;

    if (reserve(loop, owner, len) < 0)
        out_of_memory(owner);
    open_for_reading(low, len);
    memcpy(owner->frames, low, len);
    owner->frames_len = len;
    loop->compact_hint = len;
}

void fiber__compact_load(struct fiber_loop *loop, struct fiber_task *f)
{
    struct fiber_task *owner = loop->shared_owner;

    if (owner == f)
        return;
    if (owner)
        save_frames(loop, owner);
    char *low = shared_top(loop) - f->frames_len;
    open_for_frames(low, f->frames_len);
    memcpy(low, f->frames, f->frames_len);
    loop->shared_owner = f;
}

size_t fiber__compact_frames_size(const struct fiber_task *f)
{
    const char *low = fiber__context_stack_low(&f->ctx);

    return (size_t)((const char *)f->stack.base + f->stack.size - low);
}

