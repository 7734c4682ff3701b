/*
 * timer_heap.h - the min-heap of sleeping fibers.
 *
 * An array-based 4-ary min-heap of 16-byte slots {deadline, timer}, laid
 * out so that the four children of a node fill one 64-byte cache line.
 * Deadlines are compared in the slots themselves, so sifting stays in the
 * array; only equal deadlines follow the timer pointer, to its early part
 * (how far below the deadline, in 2^-64 ns, the time asked for lay: a sleep
 * of 0.4473397219 s waits for a whole nanosecond, but must still end before
 * one of 0.4473397220 s), then to its seq, a counter that makes timers
 * equal in both pop in the order they were inserted.
 *
 * A slot names its timer by a handle, a number below cap, and the heap
 * keeps in two arrays of its own where each handle's slot is and which
 * timer holds it.  Sifting moves a slot per level; it writes where the
 * slot went into the dense array of positions, not into the timer, which
 * among a million sleepers is a cache miss of its own at every level.  A
 * timer records its handle, which makes removal (a cancelled sleeper, a
 * wait that finished before its timeout) O(log n).  The handles not in
 * use are kept in the slots past len.
 *
 * Insertion never allocates: capacity is reserved beforehand (the loop
 * reserves one slot per live fiber at spawn), so sleeping cannot fail.
 */
#ifndef FIBER_TIMER_HEAP_H
#define FIBER_TIMER_HEAP_H

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
    uint32_t unused;
};

struct fiber__timer_heap {
    struct fiber__timer_slot *slots;  /* slots[1] starts a cache line */
    uint32_t *pos;                    /* pos[handle]: its slot's index */
    struct fiber__timer **owner;      /* owner[handle]: its timer */
    void *block;                      /* what slots was carved from */
    size_t len;
    size_t cap;        /* below FIBER__TIMER_IDLE */
    uint32_t next_seq;
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

/* The earliest timer, or NULL when the heap is empty. */
static inline const struct fiber__timer_slot *
fiber__timer_heap_peek(const struct fiber__timer_heap *heap)
{
    return heap->len ? &heap->slots[0] : NULL;
}

/* Remove and return the earliest timer if its deadline is at or before
 * now, else NULL. */
struct fiber__timer *fiber__timer_heap_pop_due(struct fiber__timer_heap *heap,
                                               int64_t now);

/* The earliest timer, or NULL when the heap is empty. */
static inline struct fiber__timer *
fiber__timer_heap_first(const struct fiber__timer_heap *heap)
{
    return heap->len ? heap->owner[heap->slots[0].handle] : NULL;
}

/* The deadline of a timer that is in the heap. */
static inline int64_t fiber__timer_deadline(const struct fiber__timer_heap *heap,
                                            const struct fiber__timer *timer)
{
    return heap->slots[heap->pos[timer->index]].deadline;
}

static inline int fiber__timer_active(const struct fiber__timer *timer)
{
    return timer->index != FIBER__TIMER_IDLE;
}

#endif
