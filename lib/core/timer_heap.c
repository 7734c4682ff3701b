/*
 * timer_heap.c - a 4-ary min-heap keyed by (deadline, -early, seq), for
 * the timers due before the edge, and a hierarchical wheel for the rest.
 * See timer_heap.h.
 *
 * Four children per node halve the depth of a binary heap.  Slots are 16
 * bytes and slots[1] starts a cache line, so the four children of node i,
 * slots[4i + 1] to slots[4i + 4], are one line: a level costs one miss, not
 * two or three.
 *
 * The wheel.  A deadline's unit number is its 64 bits, the sign flipped so
 * that they order as unsigned, shifted right by FIBER__WHEEL_SHIFT.  A
 * timer whose unit u is at or past the edge e goes into level L, the
 * six-bit field in which u and e first differ from the top (0 if they
 * differ in the lowest field only, or not at all), at the bucket that
 * field of u names.  So every timer of level L is later than every timer
 * of a lower level, and within a level the buckets are in order: the
 * earliest timer of the wheel is in the lowest bucket, by level then
 * index, that is not empty.  The edge only moves forward, to the start of
 * that bucket (whose timers then go a level down, or more) or, once a
 * bucket of level 0 has gone into the heap, past its unit; when that
 * carries into the next window of a level, the bucket of that level the
 * edge is now in holds timers that belong lower, and goes down at once.
 *
 * Levels 1 and 2 have a spare bank of buckets each.  The spare of level
 * l holds the timers of the next window of level l + 1 (the bucket of
 * level l + 1 after the edge's), by their field of level l, as the bank
 * in use will once the edge is there: a timer inserted for that window
 * goes straight in, and as the edge passes each unit a few chunks of that
 * window's bucket of level l + 1 (timers inserted earlier still) go down
 * into it.  When the edge enters the window the banks trade places.  A
 * bucket of level 2 holds 67 ms of timers, 67,000 of them at a million
 * sleepers a second, and one of level 3 4.3 s of them: moved at once,
 * they held up every wake-up for about a millisecond every 67 ms, and for
 * ten every 4.3 s.
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
#define NO_CHUNK UINT32_MAX

void fiber__timer_heap_init(struct fiber__timer_heap *heap)
{
    *heap = (struct fiber__timer_heap){.chunk_free = NO_CHUNK};
    for (unsigned l = 1; l <= FIBER__WHEEL_BANKED; l++) {
        heap->bank[l] = l * FIBER__WHEEL_SPAN;
        heap->spare[l] = FIBER__WHEEL_BUCKETS + (l - 1) * FIBER__WHEEL_SPAN;
    }
    for (size_t b = 0; b < FIBER__WHEEL_BUCKETS_ALL; b++)
        heap->head[b] = NO_CHUNK;
}

void fiber__timer_heap_destroy(struct fiber__timer_heap *heap)
{
    free(heap->block);
    fiber__timer_heap_init(heap);
}

#define LINE 64
#define HUGE_PAGE ((size_t)2 << 20)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
_Static_assert(sizeof(struct fiber__timer_slot) * ARITY == LINE,
               "the children of a node fill one cache line");
_Static_assert(sizeof(struct fiber__timer) == 16,
               "a timer takes no more room in a task than a slot");
/* A slot, an owner, a position, and a slot of a chunk with its share of
 * a link. */
#define PER_TIMER (2 * sizeof(struct fiber__timer_slot) + \
                   sizeof(struct fiber__timer *) + 2 * sizeof(uint32_t))
#define CHUNK_BYTES (FIBER__WHEEL_CHUNK * sizeof(struct fiber__timer_slot))
/* Timers at most: a position in the wheel must stay below FIBER__IN_WHEEL. */
#define MAX_TIMERS ((size_t)1 << 30)

/* Chunks for cap timers: every chunk of a bucket is full but its first,
 * so at most one chunk per bucket is not. */
static size_t chunks_for(size_t cap)
{
    return cap / FIBER__WHEEL_CHUNK + FIBER__WHEEL_BUCKETS_ALL;
}

int fiber__timer_heap_grow(struct fiber__timer_heap *heap, size_t n)
{
    size_t cap = heap->cap ? heap->cap : 64;
    if (n > MAX_TIMERS)
        return -ENOMEM;
    while (cap < n)
        cap *= 2;
    size_t chunks = chunks_for(cap);
    /* One line more than the slots, so that slots[0] can sit in the last
     * 16 bytes of the first line; the owners follow, then the chunks, each
     * on lines of its own, then the positions and the chunks' links. */
    size_t bytes = LINE + cap * sizeof(struct fiber__timer_slot) +
                   cap * sizeof(struct fiber__timer *) + LINE +
                   chunks * CHUNK_BYTES + cap * sizeof(uint32_t) +
                   chunks * sizeof(uint32_t);
    void *block;
    if (bytes >= HUGE_PAGE) {
        /* A pop from a million timers walks ten levels, the lower ones
         * each on a page of its own: on huge pages those are cache misses
         * without TLB misses too. */
        bytes = (bytes + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
        block = aligned_alloc(HUGE_PAGE, bytes);
        if (block) {
            madvise(block, bytes, MADV_HUGEPAGE);
            /* Fault the pages in now, while the loop grows the heap, not
             * one by one as timers first reach them: the first touch of a
             * huge page zeroes 2 MiB, which stalled the loop for
             * milliseconds in the middle of a million wake-ups. */
            madvise(block, bytes, MADV_POPULATE_WRITE);
        }
    } else {
        /* aligned_alloc wants a multiple of the alignment. */
        bytes = (bytes + LINE - 1) & ~(size_t)(LINE - 1);
        block = aligned_alloc(LINE, bytes);
    }
    if (!block)
        return -ENOMEM;
    struct fiber__timer_slot *slots =
        (struct fiber__timer_slot *)(void *)((char *)block + LINE - sizeof(*slots));
    struct fiber__timer **owner = (struct fiber__timer **)(void *)(slots + cap);
    char *after_owner = (char *)(owner + cap);
    struct fiber__timer_slot *chunk = (struct fiber__timer_slot *)(void *)
        (after_owner + (LINE - (uintptr_t)after_owner % LINE) % LINE);
    uint32_t *pos = (uint32_t *)(void *)(chunk + chunks * FIBER__WHEEL_CHUNK);
    uint32_t *chunk_next = pos + cap;
    /* Every slot, past len too: those hold the free handles. */
    if (heap->cap) {
        memcpy(slots, heap->slots, heap->cap * sizeof(*slots));
        memcpy(owner, heap->owner, heap->cap * sizeof(*owner));
        memcpy(pos, heap->pos, heap->cap * sizeof(*pos));
        memcpy(chunk, heap->chunk,
               heap->chunks_used * FIBER__WHEEL_CHUNK * sizeof(*chunk));
        memcpy(chunk_next, heap->chunk_next,
               heap->chunks_used * sizeof(*chunk_next));
    }
    for (size_t h = heap->cap; h < cap; h++)
        slots[h].handle = (uint32_t)h;
    free(heap->block);
    heap->block = block;
    heap->slots = slots;
    heap->owner = owner;
    heap->pos = pos;
    heap->chunk = chunk;
    heap->chunk_next = chunk_next;
    heap->cap = cap;
    heap->chunks = (uint32_t)chunks;
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
        if (first >= heap->near)
            break;
        size_t last = first + ARITY < heap->near ? first + ARITY : heap->near;
        /* Fetch the children of all four children while choosing among
         * them: in a large heap each level is a cache miss, and waiting
         * for one level before asking for the next made a pop from a
         * million timers cost 500 ns. */
        size_t grandchildren = first * ARITY + 1;
        if (grandchildren < heap->near)
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

/* ---- the wheel ---------------------------------------------------------- */

static uint64_t unit_of(int64_t deadline)
{
    return ((uint64_t)deadline ^ ((uint64_t)1 << 63)) >> FIBER__WHEEL_SHIFT;
}

static int64_t deadline_of(uint64_t unit)
{
    return (int64_t)((unit << FIBER__WHEEL_SHIFT) ^ ((uint64_t)1 << 63));
}

static bool banked(unsigned level)
{
    return level - 1u < FIBER__WHEEL_BANKED;
}

/* The bucket of index at level: in the bank in use, for levels that have
 * two. */
static uint32_t bucket_at(const struct fiber__timer_heap *heap, unsigned level,
                          unsigned index)
{
    return (banked(level) ? heap->bank[level] : level * FIBER__WHEEL_SPAN) + index;
}

/* The field of level in a unit: its bucket's index there. */
static unsigned field(uint64_t unit, unsigned level)
{
    return (unsigned)(unit >> (level * FIBER__WHEEL_BITS)) & (FIBER__WHEEL_SPAN - 1);
}

/* The bucket of a unit at or past the edge: that of the first level at
 * which they differ, or, for the next window of a level with a spare bank
 * below it, the spare's.  Inlined into the draining of a bucket, which
 * calls it for every timer. */
static inline __attribute__((always_inline)) uint32_t
bucket_of(const struct fiber__timer_heap *heap, uint64_t unit)
{
    uint64_t differ = unit ^ heap->edge;
    unsigned level = differ ? (63u - (unsigned)__builtin_clzll(differ)) /
                              FIBER__WHEEL_BITS : 0;
    unsigned shift = level * FIBER__WHEEL_BITS;

    if (banked(level - 1) && (unit >> shift) == (heap->edge >> shift) + 1)
        return heap->spare[level - 1] + field(unit, level - 1);
    return bucket_at(heap, level, field(unit, level));
}

static void set_occupied(struct fiber__timer_heap *heap, uint32_t b, bool on)
{
    uint64_t bit = (uint64_t)1 << (b % FIBER__WHEEL_SPAN);
    uint64_t *word = &heap->occupied[b / FIBER__WHEEL_SPAN];

    if (on)
        *word |= bit;
    else
        *word &= ~bit;
}

/* The occupied bits of level l's bank in use, and of its spare. */
static uint64_t occupied_at(const struct fiber__timer_heap *heap, unsigned l)
{
    return heap->occupied[bucket_at(heap, l, 0) / FIBER__WHEEL_SPAN];
}

static uint64_t occupied_spare(const struct fiber__timer_heap *heap, unsigned l)
{
    return heap->occupied[heap->spare[l] / FIBER__WHEEL_SPAN];
}

static uint32_t chunk_take(struct fiber__timer_heap *heap)
{
    uint32_t c = heap->chunk_free;

    if (c != NO_CHUNK) {
        heap->chunk_free = heap->chunk_next[c];
        return c;
    }
    /* Never past the end: see chunks_for. */
    assert(heap->chunks_used < heap->chunks);
    return heap->chunks_used++;
}

static void chunk_give(struct fiber__timer_heap *heap, uint32_t c)
{
    heap->chunk_next[c] = heap->chunk_free;
    heap->chunk_free = c;
}

/* Append slot to bucket b. */
static void wheel_put(struct fiber__timer_heap *heap, uint32_t b,
                      struct fiber__timer_slot slot)
{
    uint32_t c = heap->head[b];
    unsigned fill = heap->fill[b];

    if (c == NO_CHUNK || fill == FIBER__WHEEL_CHUNK) {
        uint32_t fresh = chunk_take(heap);
        heap->chunk_next[fresh] = c;
        if (c == NO_CHUNK)
            set_occupied(heap, b, true);
        heap->head[b] = c = fresh;
        fill = 0;
    }
    uint32_t at = c * FIBER__WHEEL_CHUNK + fill;
    slot.bucket = b;
    heap->chunk[at] = slot;
    heap->pos[slot.handle] = FIBER__IN_WHEEL | at;
    heap->fill[b] = (uint8_t)(fill + 1);
}

/* Take the slot at wheel position at out of its bucket: the bucket's last
 * slot fills the hole. */
static void wheel_take_out(struct fiber__timer_heap *heap, uint32_t at)
{
    uint32_t b = heap->chunk[at].bucket;
    uint32_t c = heap->head[b];
    unsigned fill = heap->fill[b] - 1u;
    uint32_t last = c * FIBER__WHEEL_CHUNK + fill;

    if (at != last) {
        heap->chunk[at] = heap->chunk[last];
        heap->pos[heap->chunk[at].handle] = FIBER__IN_WHEEL | at;
    }
    if (fill == 0) {
        heap->head[b] = heap->chunk_next[c];
        chunk_give(heap, c);
        fill = FIBER__WHEEL_CHUNK;
        if (heap->head[b] == NO_CHUNK)
            set_occupied(heap, b, false);
    }
    heap->fill[b] = (uint8_t)fill;
}

static void heap_put(struct fiber__timer_heap *heap,
                     struct fiber__timer_slot slot);

/* Copy the n slots of chunk c out into moving and give the chunk back,
 * so that it serves the puts that follow.  Each of those writes its
 * timer's position, a line of its own among a million: asked for
 * together, the misses overlap, and a bucket of 64 ms moves in a
 * fraction of the time. */
static void chunk_take_out(struct fiber__timer_heap *heap, uint32_t c,
                           unsigned n, struct fiber__timer_slot *moving)
{
    memcpy(moving, &heap->chunk[c * FIBER__WHEEL_CHUNK], n * sizeof(*moving));
    chunk_give(heap, c);
    for (unsigned k = 0; k < n; k++)
        __builtin_prefetch(&heap->pos[moving[k].handle], 1);
}

/* Empty bucket b, putting each of its timers where it belongs now that
 * the edge has moved: a lower level, or the heap. */
static void wheel_drain(struct fiber__timer_heap *heap, uint32_t b)
{
    uint32_t c = heap->head[b];
    unsigned n = heap->fill[b];

    if (c == NO_CHUNK)
        return;
    heap->head[b] = NO_CHUNK;
    set_occupied(heap, b, false);
    while (c != NO_CHUNK) {
        struct fiber__timer_slot moving[FIBER__WHEEL_CHUNK];
        uint32_t next = heap->chunk_next[c];
        if (next != NO_CHUNK)
            __builtin_prefetch(&heap->chunk[next * FIBER__WHEEL_CHUNK]);
        chunk_take_out(heap, c, n, moving);
        for (unsigned k = 0; k < n; k++) {
            uint64_t unit = unit_of(moving[k].deadline);
            if (unit < heap->edge) {
                /* Due soon: its owner will be read when it pops. */
                __builtin_prefetch(&heap->owner[moving[k].handle]);
                heap_put(heap, moving[k]);
            }
            else
                wheel_put(heap, bucket_of(heap, unit), moving[k]);
        }
        c = next;
        n = FIBER__WHEEL_CHUNK;
    }
}

/* The start, as a unit, of bucket index of level. */
static uint64_t bucket_start(uint64_t edge, unsigned level, unsigned index)
{
    unsigned shift = level * FIBER__WHEEL_BITS;
    uint64_t above = shift + FIBER__WHEEL_BITS >= 64 ? 0 :
        edge >> (shift + FIBER__WHEEL_BITS) << (shift + FIBER__WHEEL_BITS);

    return above | (uint64_t)index << shift;
}

/* The number of the window of level l + 1 a unit is in: the windows
 * whose timers spare bank l holds ahead. */
static uint64_t window_of(uint64_t unit, unsigned l)
{
    return unit >> ((l + 1) * FIBER__WHEEL_BITS);
}

/*
 * Whether timers of the next window of level l, which spare bank l - 1
 * takes ahead, may be elsewhere still: in that window's bucket of level
 * l or, when it is the first window of the next one of level l + 1, in
 * spare bank l's first bucket or that next window's bucket of level l + 1.
 */
static bool next_window_elsewhere(const struct fiber__timer_heap *heap, unsigned l)
{
    unsigned next = field(heap->edge, l) + 1;

    if (next < FIBER__WHEEL_SPAN)
        return occupied_at(heap, l) >> next & 1;
    unsigned up = field(heap->edge, l + 1) + 1;
    assert(banked(l) && up < FIBER__WHEEL_SPAN);
    return (occupied_spare(heap, l) & 1) || (occupied_at(heap, l + 1) >> up & 1);
}

/*
 * The earliest bucket that is not empty: its number and the unit it
 * starts at.  By level, then index, except for the spare banks: the
 * timers of spare l lie in the window of level l + 1 after the edge's,
 * after level l's and before level l + 1's other buckets, but no earlier
 * than that window's own bucket of level l + 1, which may still hold some.
 */
static bool wheel_first(const struct fiber__timer_heap *heap, uint32_t *bucket,
                        uint64_t *start)
{
    for (unsigned l = 0; l < FIBER__WHEEL_LEVELS; l++) {
        uint64_t bits = occupied_at(heap, l);
        if (banked(l - 1) && occupied_spare(heap, l - 1) &&
            !next_window_elsewhere(heap, l)) {
            /* In the window after the edge's at level l, which may be
             * past this level's last bucket, in the next of l + 1. */
            unsigned index = (unsigned)__builtin_ctzll(occupied_spare(heap, l - 1));
            *bucket = heap->spare[l - 1] + index;
            *start = (window_of(heap->edge, l - 1) + 1) << (l * FIBER__WHEEL_BITS) |
                     (uint64_t)index << ((l - 1) * FIBER__WHEEL_BITS);
            return true;
        }
        if (bits) {
            unsigned index = (unsigned)__builtin_ctzll(bits);
            *bucket = bucket_at(heap, l, index);
            *start = bucket_start(heap->edge, l, index);
            return true;
        }
    }
    return false;
}

int64_t fiber__timer_heap_wheel_bound(const struct fiber__timer_heap *heap)
{
    uint32_t bucket;
    uint64_t start;

    if (heap->near)
        return heap->slots[0].deadline;
    if (!wheel_first(heap, &bucket, &start))
        return INT64_MAX;
    return deadline_of(start);
}

/*
 * The edge moved from `from` into a later window of level l + 1: spare
 * bank l, which holds the timers of the window after from's, becomes the
 * bank in use.  The bank it replaces is empty, its window passed; the
 * spare is empty unless the edge moved to that very window.
 */
static void enter_window(struct fiber__timer_heap *heap, unsigned l, uint64_t from)
{
    uint32_t spare = heap->spare[l];

    assert(occupied_at(heap, l) == 0);
    assert(occupied_spare(heap, l) == 0 ||
           window_of(heap->edge, l) == window_of(from, l) + 1);
    (void)from;
    heap->spare[l] = heap->bank[l];
    heap->bank[l] = spare;
}

/* Move the edge forward to unit to. */
static void move_edge(struct fiber__timer_heap *heap, uint64_t to)
{
    uint64_t from = heap->edge;
    uint64_t changed = from ^ to;

    heap->edge = to;
    /* Nearly always within a window of level 2: no bank changes. */
    if (!window_of(changed, 1))
        return;
    for (unsigned l = 1; l <= FIBER__WHEEL_BANKED; l++)
        if (window_of(changed, l))
            enter_window(heap, l, from);
}

/* Chunks taken from the next window's bucket of level l + 1 at each unit
 * the edge passes: 64 timers, of about 16 us of a million a second. */
#define CASCADE_AHEAD_CHUNKS 4

/*
 * Move some timers of the next window of level l + 1 into spare bank l,
 * ahead of the edge reaching that window: those inserted when it was
 * further ahead, from its bucket of level l + 1 or, when it is the first
 * window of the next one of level l + 2, from spare bank l + 1's first
 * bucket.  A few at each unit spread the work over the window before;
 * what is left is moved when the edge enters the window, as before.
 */
static void cascade_ahead(struct fiber__timer_heap *heap, unsigned l)
{
    unsigned now = field(heap->edge, l + 1);
    uint32_t b;

    if (now < FIBER__WHEEL_SPAN - 1)
        b = bucket_at(heap, l + 1, now + 1);
    else if (banked(l + 1) && field(heap->edge, l + 2) < FIBER__WHEEL_SPAN - 1)
        b = heap->spare[l + 1];
    else
        return;
    for (unsigned k = 0; k < CASCADE_AHEAD_CHUNKS; k++) {
        uint32_t c = heap->head[b];
        if (c == NO_CHUNK)
            return;
        unsigned n = heap->fill[b];
        /* The first chunk holds n; the ones after it are full. */
        heap->head[b] = heap->chunk_next[c];
        heap->fill[b] = FIBER__WHEEL_CHUNK;
        if (heap->head[b] == NO_CHUNK)
            set_occupied(heap, b, false);
        struct fiber__timer_slot moving[FIBER__WHEEL_CHUNK];
        chunk_take_out(heap, c, n, moving);
        for (unsigned i = 0; i < n; i++)
            wheel_put(heap, heap->spare[l] + field(unit_of(moving[i].deadline), l),
                      moving[i]);
    }
}

/* Put the timers of bucket index of level 0, the earliest in the wheel,
 * into the heap, and move the edge past its unit. */
static void drain_unit(struct fiber__timer_heap *heap, unsigned index)
{
    move_edge(heap, bucket_start(heap->edge, 0, index) + 1);
    wheel_drain(heap, index);
    /* Into the next window of a level: its bucket there holds timers that
     * belong lower now. */
    for (unsigned l = 1; l < FIBER__WHEEL_LEVELS; l++) {
        unsigned shift = l * FIBER__WHEEL_BITS;
        if (heap->edge & (((uint64_t)1 << shift) - 1))
            break;
        wheel_drain(heap, bucket_at(heap, l, field(heap->edge, l)));
    }
    for (unsigned l = 1; l <= FIBER__WHEEL_BANKED; l++)
        cascade_ahead(heap, l);
}

void fiber__timer_heap_refill(struct fiber__timer_heap *heap)
{
    uint32_t bucket;
    uint64_t start;

    while (heap->near == 0 && wheel_first(heap, &bucket, &start)) {
        assert(start >= heap->edge);
        if (bucket < FIBER__WHEEL_SPAN) {
            drain_unit(heap, bucket);
            continue;
        }
        /* The edge jumps to the start of the bucket, which it is then in
         * at its level.  At every level the bucket the edge is in now
         * holds timers that belong lower: this one, and those of spare
         * banks that became the banks in use. */
        move_edge(heap, start);
        for (unsigned l = FIBER__WHEEL_LEVELS - 1; l >= 1; l--)
            wheel_drain(heap, bucket_at(heap, l, field(heap->edge, l)));
    }
}

/* Bring the next units of level 0 into the heap while it holds fewer than
 * want timers: their owners are asked for now, well before they pop.
 * Only level 0, so that the edge stays within a millisecond or so of the
 * earliest timer and later timers keep going to the wheel. */
static void fill_ahead(struct fiber__timer_heap *heap, size_t want)
{
    while (heap->near < want && heap->occupied[0])
        drain_unit(heap, (unsigned)__builtin_ctzll(heap->occupied[0]));
}

/* ---- insertion and removal --------------------------------------------- */

static void heap_put(struct fiber__timer_heap *heap,
                     struct fiber__timer_slot slot)
{
    sift_up(heap, heap->near++, slot);
}

void fiber__timer_heap_insert_early(struct fiber__timer_heap *heap,
                                    struct fiber__timer *timer,
                                    int64_t deadline, uint64_t early)
{
    assert(timer->index == FIBER__TIMER_IDLE);
    assert(heap->len < heap->cap);

    uint32_t handle = heap->slots[heap->len++].handle;
    timer->index = handle;
    timer->early = early;
    timer->seq = heap->next_seq++;
    heap->owner[handle] = timer;
    struct fiber__timer_slot slot = {.deadline = deadline, .handle = handle};
    uint64_t unit = unit_of(deadline);
    if (unit < heap->edge)
        heap_put(heap, slot);
    else
        wheel_put(heap, bucket_of(heap, unit), slot);
}

/* Take the slot at i out of the heap: the last slot fills the hole. */
static void take_out(struct fiber__timer_heap *heap, size_t i)
{
    struct fiber__timer_slot last = heap->slots[--heap->near];

    if (i != heap->near) {
        /* The last slot may belong above or below the hole. */
        if (i > 0 && slot_before(heap, &last, &heap->slots[(i - 1) / ARITY]))
            sift_up(heap, i, last);
        else
            sift_down(heap, i, last);
    }
}

/* The handle goes past len among the free ones: the slots there are
 * neither the heap's (near <= len) nor read as anything else. */
static void free_handle(struct fiber__timer_heap *heap, uint32_t handle)
{
    heap->slots[--heap->len].handle = handle;
}

void fiber__timer_heap_remove_active(struct fiber__timer_heap *heap,
                                     struct fiber__timer *timer)
{
    uint32_t handle = timer->index;
    uint32_t at = heap->pos[handle];

    assert(heap->owner[handle] == timer);
    timer->index = FIBER__TIMER_IDLE;
    if (at & FIBER__IN_WHEEL) {
        wheel_take_out(heap, at & ~FIBER__IN_WHEEL);
    } else {
        assert(at < heap->near && heap->slots[at].handle == handle);
        take_out(heap, at);
    }
    free_handle(heap, handle);
}

size_t fiber__timer_heap_pop_due_many(struct fiber__timer_heap *heap,
                                      int64_t now, struct fiber__timer **out,
                                      size_t max)
{
    size_t n = 0;

    while (n < max) {
        if (heap->near == 0) {
            if (!fiber__timer_heap_due(heap, now))
                break;
            fiber__timer_heap_refill(heap);
        }
        if (heap->slots[0].deadline > now)
            break;
        uint32_t handle = heap->slots[0].handle;
        out[n++] = heap->owner[handle];
        take_out(heap, 0);
        free_handle(heap, handle);
        /* The next to pop is the new root: its owner is in a line apart. */
        if (heap->near)
            __builtin_prefetch(&heap->owner[heap->slots[0].handle]);
    }
    if (n)
        fill_ahead(heap, max);
    return n;
}

struct fiber__timer *fiber__timer_heap_pop_due(struct fiber__timer_heap *heap,
                                               int64_t now)
{
    if (heap->near == 0) {
        if (!fiber__timer_heap_due(heap, now))
            return NULL;
        fiber__timer_heap_refill(heap);
    }
    if (heap->slots[0].deadline > now)
        return NULL;

    uint32_t handle = heap->slots[0].handle;
    struct fiber__timer *timer = heap->owner[handle];
    timer->index = FIBER__TIMER_IDLE;
    take_out(heap, 0);
    free_handle(heap, handle);
    /* The next timer to pop is the new root or one of its children: ask
     * for their owners now, and the next pop, a wake-up or so later, finds
     * the owner in the cache.  (Reading them to fetch the timers too
     * would wait for those misses here.) */
    size_t n = heap->near < ARITY + 1 ? heap->near : ARITY + 1;
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(&heap->owner[heap->slots[i].handle]);
    return timer;
}
