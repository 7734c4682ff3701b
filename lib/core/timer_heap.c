/*
 * timer_heap.c - a 4-ary min-heap keyed by (deadline, -early, seq).
 *
 * Four children per node halve the depth of a binary heap.  Slots are 16
 * bytes and slots[1] starts a cache line, so the four children of node i,
 * slots[4i + 1] to slots[4i + 4], are one line: a level costs one miss, not
 * two or three.
 */
#include "config.h"

#include "timer_heap.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ARITY 4

void fiber__timer_heap_init(struct fiber__timer_heap *heap)
{
    *heap = (struct fiber__timer_heap){0};
}

void fiber__timer_heap_destroy(struct fiber__timer_heap *heap)
{
    free(heap->block);
    fiber__timer_heap_init(heap);
}

#define LINE 64
#define HUGE_PAGE ((size_t)2 << 20)
_Static_assert(sizeof(struct fiber__timer_slot) * ARITY == LINE,
               "the children of a node fill one cache line");
_Static_assert(sizeof(struct fiber__timer) == 16,
               "a timer takes no more room in a task than a slot");
/* A slot, an owner and a position. */
#define PER_TIMER (sizeof(struct fiber__timer_slot) + \
                   sizeof(struct fiber__timer *) + sizeof(uint32_t))

int fiber__timer_heap_grow(struct fiber__timer_heap *heap, size_t n)
{
    size_t cap = heap->cap ? heap->cap : 64;
    /* A timer's handle is 32 bits. */
    if (n >= FIBER__TIMER_IDLE)
        return -ENOMEM;
    while (cap < n) {
        if (cap > SIZE_MAX / 4 / PER_TIMER)
            return -ENOMEM;
        cap *= 2;
    }
    if (cap >= FIBER__TIMER_IDLE)
        cap = FIBER__TIMER_IDLE - 1;
    /* One line more than the slots, so that slots[0] can sit in the last
     * 16 bytes of the first line; the positions and owners follow. */
    size_t bytes = LINE + cap * PER_TIMER;
    void *block;
    if (bytes >= HUGE_PAGE) {
        /* A pop from a million timers walks ten levels, the lower ones
         * each on a page of its own: on huge pages those are cache misses
         * without TLB misses too. */
        bytes = (bytes + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
        block = aligned_alloc(HUGE_PAGE, bytes);
        if (block)
            madvise(block, bytes, MADV_HUGEPAGE);
    } else {
        block = aligned_alloc(LINE, bytes);
    }
    if (!block)
        return -ENOMEM;
    struct fiber__timer_slot *slots =
        (struct fiber__timer_slot *)(void *)((char *)block + LINE - sizeof(*slots));
    struct fiber__timer **owner = (struct fiber__timer **)(void *)(slots + cap);
    uint32_t *pos = (uint32_t *)(void *)(owner + cap);
    /* Every slot, past len too: those hold the free handles. */
    if (heap->cap) {
        memcpy(slots, heap->slots, heap->cap * sizeof(*slots));
        memcpy(owner, heap->owner, heap->cap * sizeof(*owner));
        memcpy(pos, heap->pos, heap->cap * sizeof(*pos));
    }
    for (size_t h = heap->cap; h < cap; h++)
        slots[h].handle = (uint32_t)h;
    free(heap->block);
    heap->block = block;
    heap->slots = slots;
    heap->owner = owner;
    heap->pos = pos;
    heap->cap = cap;
    return 0;
}

/* Equal deadlines are rare among many timers: only they leave the array
 * for the timers themselves.  Out of line, so that the sifting loops keep
 * their registers (inlined twice, it made them spill). */
static __attribute__((noinline, cold)) bool
tie_before(const struct fiber__timer *a, const struct fiber__timer *b)
{
    if (a->early != b->early)
        return a->early > b->early;
    return (int32_t)(a->seq - b->seq) < 0;
}

static bool slot_before(const struct fiber__timer_heap *heap,
                        const struct fiber__timer_slot *a,
                        const struct fiber__timer_slot *b)
{
    if (__builtin_expect(a->deadline != b->deadline, 1))
        return a->deadline < b->deadline;
    return tie_before(heap->owner[a->handle], heap->owner[b->handle]);
}

static void place(struct fiber__timer_heap *heap, size_t i,
                  struct fiber__timer_slot slot)
{
    heap->slots[i] = slot;
    heap->pos[slot.handle] = (uint32_t)i;
}

/* Move slot up from the hole at i until its parent is earlier. */
static void sift_up(struct fiber__timer_heap *heap, size_t i,
                    struct fiber__timer_slot slot)
{
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!slot_before(heap, &slot, &heap->slots[parent]))
            break;
        place(heap, i, heap->slots[parent]);
        i = parent;
    }
    place(heap, i, slot);
}

/* Move slot down from the hole at i until no child is earlier. */
static void sift_down(struct fiber__timer_heap *heap, size_t i,
                      struct fiber__timer_slot slot)
{
    for (;;) {
        size_t first = i * ARITY + 1;
        if (first >= heap->len)
            break;
        size_t last = first + ARITY < heap->len ? first + ARITY : heap->len;
        /* Fetch the children of all four children while choosing among
         * them: in a large heap each level is a cache miss, and waiting
         * for one level before asking for the next made a pop from a
         * million timers cost 500 ns. */
        size_t grandchildren = first * ARITY + 1;
        if (grandchildren < heap->len)
            for (size_t k = 0; k < ARITY; k++)
                __builtin_prefetch(&heap->slots[grandchildren + k * ARITY]);
        size_t best = first;
        for (size_t c = first + 1; c < last; c++)
            if (slot_before(heap, &heap->slots[c], &heap->slots[best]))
                best = c;
        if (!slot_before(heap, &heap->slots[best], &slot))
            break;
        place(heap, i, heap->slots[best]);
        i = best;
    }
    place(heap, i, slot);
}

void fiber__timer_heap_insert_early(struct fiber__timer_heap *heap,
                                    struct fiber__timer *timer,
                                    int64_t deadline, uint64_t early)
{
    assert(timer->index == FIBER__TIMER_IDLE);
    assert(heap->len < heap->cap);

    uint32_t handle = heap->slots[heap->len].handle;
    timer->index = handle;
    timer->early = early;
    timer->seq = heap->next_seq++;
    heap->owner[handle] = timer;
    struct fiber__timer_slot slot = {.deadline = deadline, .handle = handle};
    sift_up(heap, heap->len++, slot);
}

/* Take the slot at i out: the last slot fills the hole, and the handle
 * goes past len among the free ones. */
static void take_out(struct fiber__timer_heap *heap, size_t i)
{
    uint32_t handle = heap->slots[i].handle;
    struct fiber__timer_slot last = heap->slots[--heap->len];

    if (i != heap->len) {
        /* The last slot may belong above or below the hole. */
        if (i > 0 && slot_before(heap, &last, &heap->slots[(i - 1) / ARITY]))
            sift_up(heap, i, last);
        else
            sift_down(heap, i, last);
    }
    heap->slots[heap->len].handle = handle;
}

void fiber__timer_heap_remove_active(struct fiber__timer_heap *heap,
                                     struct fiber__timer *timer)
{
    size_t i = heap->pos[timer->index];

    assert(i < heap->len && heap->owner[heap->slots[i].handle] == timer);
    timer->index = FIBER__TIMER_IDLE;
    take_out(heap, i);
}

struct fiber__timer *fiber__timer_heap_pop_due(struct fiber__timer_heap *heap,
                                               int64_t now)
{
    if (heap->len == 0 || heap->slots[0].deadline > now)
        return NULL;

    struct fiber__timer *timer = heap->owner[heap->slots[0].handle];
    timer->index = FIBER__TIMER_IDLE;
    take_out(heap, 0);
    /* The next timer to pop is the new root or one of its children: ask
     * for their owners now, and the next pop, a wake-up or so later, finds
     * the owner in the cache.  (Reading them to fetch the timers too
     * would wait for those misses here.) */
    size_t n = heap->len < ARITY + 1 ? heap->len : ARITY + 1;
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(&heap->owner[heap->slots[i].handle]);
    return timer;
}
