/*
 * timer_heap.h - the timers of sleeping fibers: a min-heap of the near
 * ones, a wheel of the rest.
 *
 * The heap is an array-based 4-ary min-heap of 16-byte slots {deadline,
 * timer}, laid out so that the four children of a node fill one 64-byte
 * cache line.  Deadlines are compared in the slots themselves, so sifting
 * stays in the array; only equal deadlines follow the timer pointer, to its
 * early part (how far below the deadline, in 2^-64 ns, the time asked for
 * lay: a sleep of 0.4473397219 s waits for a whole nanosecond, but must
 * still end before one of 0.4473397220 s), then to its seq, a counter that
 * makes timers equal in both pop in the order they were inserted.
 *
 * The heap holds only the timers due before the edge, a boundary a little
 * ahead of the earliest deadline; the others wait in a hierarchical wheel
 * (as Linux's and Tokio's timers): levels of 64 buckets, a bucket of level
 * L spanning 64^L units of 2^14 ns.  A timer goes into the bucket of the
 * first level at which its deadline and the edge differ, in O(1); when the
 * heap runs dry, the earliest bucket is taken out and its timers go a
 * level down, or, from level 0, into the heap.  A timer so moves at most
 * once per level below the one it started at, by sequential reads of its
 * bucket, where a million timers in one heap made every pop ten levels of
 * cache misses.  Every timer in the heap is earlier than every timer in
 * the wheel, so the heap alone decides the order: strictly by deadline,
 * then early part, then insertion.
 *
 * A slot names its timer by a handle, a number below cap, and the heap
 * keeps in two arrays of its own where each handle's slot is (in the heap,
 * or in a bucket of the wheel) and which timer holds it.  Sifting moves a
 * slot per level; it writes where the slot went into the dense array of
 * positions, not into the timer, which among a million sleepers is a cache
 * miss of its own at every level.  A timer records its handle, which makes
 * removal (a cancelled sleeper, a wait that finished before its timeout)
 * O(log n) in the heap, O(1) in the wheel.  The handles not in use are kept
 * in the slots past len.
 *
 * A bucket is a list of chunks of 16 slots; every chunk but the first is
 * full.  Insertion never allocates: capacity is reserved beforehand (the
 * loop reserves one slot per live fiber at spawn), chunks for every
 * reserved timer with them, so sleeping cannot fail.
 */#ifndef FIBER_TIMER_HEAP_H
#define FIBER_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The index of a timer that is not in the heap; the heap holds fewer. */
#define FIBER__TIMER_IDLE UINT32_MAX

/* Embedded in whatever waits (a fiber).  Sixteen bytes, as before early
 * was added: seq is 32 bits, compared as a serial number (RFC 1982), so
 * two timers equal in deadline and early keep their order unless 2^31
 * insertions came between them while both waited. */
struct fiber__timer {
    uint32_t index;  /* its handle while in the heap, else FIBER__TIMER_IDLE */
    uint32_t seq;    /* insertion order, for equal deadlines and early */
    uint64_t early;  /* 2^-64 ns units the time asked for lies before it */
};

struct fiber__timer_slot {
    int64_t deadline;
    uint32_t handle;
    uint32_t bucket;  /* in the wheel, the bucket it is in */
};

/* A unit of the wheel is 2^FIBER__WHEEL_SHIFT ns, about 16 us: the heap
 * holds the timers of about one unit. */
#define FIBER__WHEEL_SHIFT 14
#define FIBER__WHEEL_BITS 6
#define FIBER__WHEEL_SPAN (1u << FIBER__WHEEL_BITS)
/* Enough levels for the 50 bits of a unit number. */
#define FIBER__WHEEL_LEVELS ((64 - FIBER__WHEEL_SHIFT + FIBER__WHEEL_BITS - 1) / \
                             FIBER__WHEEL_BITS)
#define FIBER__WHEEL_BUCKETS (FIBER__WHEEL_LEVELS * FIBER__WHEEL_SPAN)
/* Levels 1 to FIBER__WHEEL_BANKED have a spare bank of buckets each
 * (timer_heap.c: the next window). */
#define FIBER__WHEEL_BANKED 2
#define FIBER__WHEEL_BUCKETS_ALL (FIBER__WHEEL_BUCKETS + \
                                  FIBER__WHEEL_BANKED * FIBER__WHEEL_SPAN)
#define FIBER__WHEEL_CHUNK 16
/* A position with this bit set is a slot of the wheel's chunks. */
#define FIBER__IN_WHEEL 0x80000000u

struct fiber__timer_heap {
    struct fiber__timer_slot *slots;  /* slots[1] starts a cache line */
    uint32_t *pos;                    /* pos[handle]: its slot's index */
    struct fiber__timer **owner;      /* owner[handle]: its timer */
    struct fiber__timer_slot *chunk;  /* the wheel's chunks, 16 slots each */
    uint32_t *chunk_next;             /* the next chunk of a bucket, or free */
    void *block;                      /* what slots was carved from */
    size_t len;        /* timers in all */
    size_t near;       /* timers in the heap, slots[0] to slots[near - 1] */
    size_t cap;        /* below FIBER__IN_WHEEL / 2 */
    uint32_t next_seq;
    uint32_t chunks, chunks_used, chunk_free;
    /* The unit number (timer_heap.c: unit_of) from which on timers go to
     * the wheel; earlier ones go to the heap. */
    uint64_t edge;
    /* A bit per bucket not empty, a word per block of 64 buckets. */
    uint64_t occupied[FIBER__WHEEL_BUCKETS_ALL / FIBER__WHEEL_SPAN];
    /* Levels 1 to FIBER__WHEEL_BANKED have two blocks of buckets each,
     * indexed here by level (0 is not used): the bank in use, starting at
     * bucket bank[l], and the spare, at spare[l], which takes the timers
     * of the next window of level l + 1 ahead of time. */
    uint32_t bank[FIBER__WHEEL_BANKED + 1], spare[FIBER__WHEEL_BANKED + 1];
    uint32_t head[FIBER__WHEEL_BUCKETS_ALL]; /* its first chunk */
    uint8_t fill[FIBER__WHEEL_BUCKETS_ALL];  /* slots used in the first */
};

/* The inline functions below are asked at every spawn and wake-up, and
 * nearly always answer without touching the heap. */
static inline void fiber__timer_init(struct fiber__timer *timer)
{
    timer->index = FIBER__TIMER_IDLE;
}

void fiber__timer_heap_init(struct fiber__timer_heap *heap);
void fiber__timer_heap_destroy(struct fiber__timer_heap *heap);

/* Move the heap to a block with room for at least n timers, n > cap.
 * Returns 0 or -ENOMEM (heap unchanged). */
int fiber__timer_heap_grow(struct fiber__timer_heap *heap, size_t n);

/* Make room for at least n timers.  Returns 0 or -ENOMEM (heap unchanged). */
static inline int fiber__timer_heap_reserve(struct fiber__timer_heap *heap,
                                            size_t n)
{
    return n <= heap->cap ? 0 : fiber__timer_heap_grow(heap, n);
}

/* Insert an idle timer; room must have been reserved.  early is how far
 * below deadline the exact time asked for lay, in units of 2^-64 ns (0 for
 * a whole nanosecond): among equal deadlines, the larger early pops first. */
void fiber__timer_heap_insert_early(struct fiber__timer_heap *heap,
                                    struct fiber__timer *timer,
                                    int64_t deadline, uint64_t early);

/* Insert an idle timer for a whole nanosecond deadline. */
static inline void fiber__timer_heap_insert(struct fiber__timer_heap *heap,
                                            struct fiber__timer *timer,
                                            int64_t deadline)
{
    fiber__timer_heap_insert_early(heap, timer, deadline, 0);
}

/* Remove a timer that is in the heap. */
void fiber__timer_heap_remove_active(struct fiber__timer_heap *heap,
                                     struct fiber__timer *timer);

/* Remove a timer if it is in the heap; an idle timer is left alone. */
static inline void fiber__timer_heap_remove(struct fiber__timer_heap *heap,
                                            struct fiber__timer *timer)
{
    if (timer->index != FIBER__TIMER_IDLE)
        fiber__timer_heap_remove_active(heap, timer);
}

/* Bring the earliest bucket of the wheel into the empty heap. */
void fiber__timer_heap_refill(struct fiber__timer_heap *heap);

/* The earliest timer, or NULL when there is none. */
static inline const struct fiber__timer_slot *
fiber__timer_heap_peek(struct fiber__timer_heap *heap)
{
    if (heap->near == 0 && heap->len)
        fiber__timer_heap_refill(heap);
    return heap->len ? &heap->slots[0] : NULL;
}

/* No timer is due before this: the earliest deadline, or when the heap
 * is empty the start of the wheel's earliest bucket. */
int64_t fiber__timer_heap_wheel_bound(const struct fiber__timer_heap *heap);

/* Whether a timer may be due at now: a test of the earliest deadline, or
 * when the heap is empty, of a bound below it that moves nothing. */
static inline bool fiber__timer_heap_due(const struct fiber__timer_heap *heap,
                                         int64_t now)
{
    if (heap->near)
        return heap->slots[0].deadline <= now;
    return heap->len && fiber__timer_heap_wheel_bound(heap) <= now;
}

/* Remove and return the earliest timer if its deadline is at or before
 * now, else NULL. */
struct fiber__timer *fiber__timer_heap_pop_due(struct fiber__timer_heap *heap,
                                               int64_t now);

/* Remove the timers due at now, earliest first, up to max of them, into
 * out; returns how many.  Their timers are not touched, so that the
 * caller may fetch them all before it touches any: it must then pass each
 * to fiber__timer_popped before doing anything else with the heap. */
size_t fiber__timer_heap_pop_due_many(struct fiber__timer_heap *heap,
                                      int64_t now, struct fiber__timer **out,
                                      size_t max);

/* Mark a timer that fiber__timer_heap_pop_due_many took out as idle. */
static inline void fiber__timer_popped(struct fiber__timer *timer)
{
    timer->index = FIBER__TIMER_IDLE;
}

/* The earliest timer, or NULL when there is none. */
static inline struct fiber__timer *
fiber__timer_heap_first(struct fiber__timer_heap *heap)
{
    const struct fiber__timer_slot *first = fiber__timer_heap_peek(heap);

    return first ? heap->owner[first->handle] : NULL;
}

/* The deadline of a timer that is in the heap or the wheel. */
static inline int64_t fiber__timer_deadline(const struct fiber__timer_heap *heap,
                                            const struct fiber__timer *timer)
{
    uint32_t at = heap->pos[timer->index];

    if (at & FIBER__IN_WHEEL)
        return heap->chunk[at & ~FIBER__IN_WHEEL].deadline;
    return heap->slots[at].deadline;
}

static inline int fiber__timer_active(const struct fiber__timer *timer)
{
    return timer->index != FIBER__TIMER_IDLE;
}

#endif
