/*
 * test_timer_heap.c - the timer heap against a plain model.
 *
 * Deadlines are drawn from a small range so that ties are frequent: ties
 * must pop in insertion order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "timer_heap.h"

struct entry {
    struct fiber__timer timer;
    int64_t deadline;
    uint64_t order;  /* insertion order, the model's tie-break */
    bool active;
};

/* A small deterministic generator, so a failure can be replayed. */
static uint64_t rng_state = 42;
static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The model's earliest active entry: lowest deadline, then oldest. */
static struct entry *model_min(struct entry *entries, size_t n)
{
    struct entry *best = NULL;

    for (size_t i = 0; i < n; i++) {
        struct entry *e = &entries[i];
        if (!e->active)
            continue;
        if (!best || e->deadline < best->deadline ||
            (e->deadline == best->deadline && e->order < best->order))
            best = e;
    }
    return best;
}

/* The bucket of the wheel a unit at or past the edge belongs in, worked
 * out here as timer_heap.c's comment says, without the spare banks: that
 * of the first level at which unit and edge differ, in the bank in use. */
static uint32_t model_bucket(const struct fiber__timer_heap *heap, uint64_t unit)
{
    unsigned level = 0;

    for (unsigned l = 0; l < FIBER__WHEEL_LEVELS; l++) {
        unsigned shift = l * FIBER__WHEEL_BITS;
        if (shift < 64 && (unit >> shift) != (heap->edge >> shift))
            level = l;
    }
    uint32_t index = (uint32_t)((unit >> (level * FIBER__WHEEL_BITS)) &
                                (FIBER__WHEEL_SPAN - 1));
    bool banked = level >= 1 && level <= FIBER__WHEEL_BANKED;
    return (banked ? heap->bank[level] : level * FIBER__WHEEL_SPAN) + index;
}

/* The level whose spare bank bucket b is in, or 0. */
static unsigned spare_level(const struct fiber__timer_heap *heap, uint32_t b)
{
    for (unsigned l = 1; l <= FIBER__WHEEL_BANKED; l++)
        if (b - b % FIBER__WHEEL_SPAN == heap->spare[l])
            return l;
    return 0;
}

static uint64_t occupied_bit(const struct fiber__timer_heap *heap, uint32_t b)
{
    return heap->occupied[b / FIBER__WHEEL_SPAN] >> (b % FIBER__WHEEL_SPAN) & 1;
}

/* Whether spare bank l holds any timer. */
static bool spare_occupied(const struct fiber__timer_heap *heap, unsigned l)
{
    return heap->occupied[heap->spare[l] / FIBER__WHEEL_SPAN] != 0;
}

static uint64_t unit_of(int64_t deadline)
{
    return ((uint64_t)deadline ^ ((uint64_t)1 << 63)) >> FIBER__WHEEL_SHIFT;
}

static bool slot_before(const struct fiber__timer_heap *heap,
                        const struct fiber__timer_slot *p,
                        const struct fiber__timer_slot *s)
{
    const struct fiber__timer *pt = heap->owner[p->handle];
    const struct fiber__timer *t = heap->owner[s->handle];

    return p->deadline < s->deadline ||
           (p->deadline == s->deadline &&
            (pt->early > t->early ||
             (pt->early == t->early && (int32_t)(pt->seq - t->seq) < 0)));
}

/* Check the heap property, every position and owner, that the handles
 * of the heap, the wheel and the free ones past len are each used once,
 * that the children of a node share a cache line, that every timer of
 * the heap is earlier than the edge and every timer of the wheel is in
 * the bucket its unit calls for, and the wheel's lists, counts and bits. */
static void assert_heap_valid(const struct fiber__timer_heap *heap)
{
    unsigned char *seen = calloc(heap->cap ? heap->cap : 1, 1);
    assert_non_null(seen);
    assert_true(heap->near <= heap->len && heap->len <= heap->cap);
    for (size_t i = 0; i < heap->near; i++) {
        assert_true(heap->slots[i].handle < heap->cap);
        assert_false(seen[heap->slots[i].handle]);
        seen[heap->slots[i].handle] = 1;
    }
    for (size_t i = heap->len; i < heap->cap; i++) {
        assert_true(heap->slots[i].handle < heap->cap);
        assert_false(seen[heap->slots[i].handle]);
        seen[heap->slots[i].handle] = 1;
    }
    size_t in_wheel = 0;
    /* The two banks of a level are its own block of buckets and its
     * extra one past the levels', in either role. */
    for (unsigned l = 1; l <= FIBER__WHEEL_BANKED; l++) {
        uint32_t own = l * FIBER__WHEEL_SPAN;
        uint32_t extra = FIBER__WHEEL_BUCKETS + (l - 1) * FIBER__WHEEL_SPAN;
        assert_true((heap->bank[l] == own && heap->spare[l] == extra) ||
                    (heap->bank[l] == extra && heap->spare[l] == own));
    }
    for (uint32_t b = 0; b < FIBER__WHEEL_BUCKETS_ALL; b++) {
        uint64_t bit = occupied_bit(heap, b);
        uint32_t c = heap->head[b];
        assert_int_equal(bit, c != UINT32_MAX);
        for (unsigned n = heap->fill[b]; c != UINT32_MAX;
             c = heap->chunk_next[c], n = FIBER__WHEEL_CHUNK) {
            assert_true(c < heap->chunks_used);
            assert_true(n >= 1 && n <= FIBER__WHEEL_CHUNK);
            for (unsigned k = 0; k < n; k++) {
                uint32_t at = c * FIBER__WHEEL_CHUNK + k;
                const struct fiber__timer_slot *s = &heap->chunk[at];
                assert_true(s->handle < heap->cap);
                assert_false(seen[s->handle]);
                seen[s->handle] = 1;
                assert_int_equal(s->bucket, b);
                assert_int_equal(heap->pos[s->handle], FIBER__IN_WHEEL | at);
                assert_int_equal(heap->owner[s->handle]->index, s->handle);
                uint64_t unit = unit_of(s->deadline);
                assert_true(unit >= heap->edge);
                unsigned l = spare_level(heap, b);
                if (l) {
                    /* Ahead: in the next window of level l + 1, at its
                     * field of level l. */
                    unsigned shift = (l + 1) * FIBER__WHEEL_BITS;
                    assert_int_equal(unit >> shift, (heap->edge >> shift) + 1);
                    assert_int_equal(b, heap->spare[l] +
                                     ((unit >> (l * FIBER__WHEEL_BITS)) &
                                      (FIBER__WHEEL_SPAN - 1)));
                } else {
                    assert_int_equal(model_bucket(heap, unit), b);
                }
                in_wheel++;
            }
        }
    }
    assert_int_equal(heap->near + in_wheel, heap->len);
    free(seen);
    if (heap->cap > 1)
        assert_int_equal((uintptr_t)&heap->slots[1] % 64, 0);
    for (size_t i = 0; i < heap->near; i++) {
        const struct fiber__timer_slot *s = &heap->slots[i];
        const struct fiber__timer *t = heap->owner[s->handle];
        assert_int_equal(t->index, s->handle);
        assert_int_equal(heap->pos[s->handle], i);
        assert_true(unit_of(s->deadline) < heap->edge);
        if (i > 0)
            assert_true(slot_before(heap, &heap->slots[(i - 1) / 4], s));
    }
}

static void test_random_operations_match_model(void **state)
{
    (void)state;
    enum { OPS = 100000, POOL = 4096 };
    struct fiber__timer_heap heap;
    struct entry *entries = calloc(POOL, sizeof(*entries));
    uint64_t order = 0;
    size_t active = 0;

    assert_non_null(entries);
    fiber__timer_heap_init(&heap);
    assert_int_equal(fiber__timer_heap_reserve(&heap, POOL), 0);
    for (size_t i = 0; i < POOL; i++)
        fiber__timer_init(&entries[i].timer);

    for (int op = 0; op < OPS; op++) {
        uint64_t r = next_random();
        struct entry *e = &entries[r % POOL];
        switch ((r >> 32) % 4) {
        case 0:
        case 1: /* insert, if this entry is idle */
            if (e->active)
                break;
            e->deadline = (int64_t)((r >> 40) % 64);
            e->order = order++;
            e->active = true;
            active++;
            fiber__timer_heap_insert(&heap, &e->timer, e->deadline);
            break;
        case 2: /* remove an arbitrary entry, active or idle */
            fiber__timer_heap_remove(&heap, &e->timer);
            if (e->active)
                active--;
            e->active = false;
            assert_false(fiber__timer_active(&e->timer));
            break;
        case 3: { /* pop whatever is due at a random time */
            int64_t now = (int64_t)((r >> 40) % 64);
            struct entry *want = model_min(entries, POOL);
            struct fiber__timer *got = fiber__timer_heap_pop_due(&heap, now);
            if (want && want->deadline <= now) {
                assert_ptr_equal(got, &want->timer);
                want->active = false;
                active--;
            } else {
                assert_null(got);
            }
            break;
        }
        }
        assert_int_equal(heap.len, active);
        if (op % 1000 == 0)
            assert_heap_valid(&heap);
    }
    assert_heap_valid(&heap);
    fiber__timer_heap_destroy(&heap);
    free(entries);
}

/* A deadline from one of several scales around now: the same unit of the
 * wheel, a few units, a level or more away, far off, and the extremes of
 * the clock, so that timers start at every level and the edge crosses the
 * windows of every level. */
static int64_t spread_deadline(int64_t now, uint64_t r)
{
    static const unsigned bits[] = {6, 14, 17, 21, 28, 36, 47, 62};
    int64_t d;

    switch (r % 16) {
    case 0:
        return INT64_MAX - (int64_t)(r >> 40) % 3;
    case 1:
        return INT64_MIN + (int64_t)(r >> 40) % 3;
    case 2:
        return now - (int64_t)((r >> 20) % 100000);  /* already due */
    default:
        d = (int64_t)((r >> 8) & ((UINT64_C(1) << bits[(r >> 4) % 8]) - 1));
        return now > INT64_MAX - d ? INT64_MAX : now + d;
    }
}

/* Timers spread over every level of the wheel, popped as a clock moves
 * on in steps of every size, removed at random, and asked for the
 * earliest: all as the model says, and the structure valid throughout. */
static void test_wheel_levels_match_model(void **state)
{
    (void)state;
    enum { OPS = 200000, POOL = 2048 };
    struct fiber__timer_heap heap;
    struct entry *entries = calloc(POOL, sizeof(*entries));
    uint64_t order = 0;
    int64_t now = INT64_C(1) << 40;

    assert_non_null(entries);
    fiber__timer_heap_init(&heap);
    for (size_t i = 0; i < POOL; i++)
        fiber__timer_init(&entries[i].timer);
    for (int op = 0; op < OPS; op++) {
        uint64_t r = next_random();
        struct entry *e = &entries[r % POOL];
        switch ((r >> 11) % 6) {
        case 0:
        case 1:
        case 2:
            if (e->active)
                break;
            /* Room grows as timers come, as at spawns. */
            assert_int_equal(fiber__timer_heap_reserve(&heap, heap.len + 1), 0);
            e->deadline = spread_deadline(now, next_random());
            e->order = order++;
            e->active = true;
            fiber__timer_heap_insert(&heap, &e->timer, e->deadline);
            break;
        case 3:
            fiber__timer_heap_remove(&heap, &e->timer);
            e->active = false;
            break;
        case 4: {
            struct entry *want = model_min(entries, POOL);
            if (want && want->deadline <= now)
                assert_true(fiber__timer_heap_due(&heap, now));
            if (!want && (r >> 20) % 8 == 0) {
                /* Now and then, a jump far ahead, when nothing waits. */
                now += (int64_t)(r >> 24);
                break;
            }
            if ((r >> 20) % 4 == 0) {
                const struct fiber__timer_slot *first = fiber__timer_heap_peek(&heap);
                if (want) {
                    assert_non_null(first);
                    assert_int_equal(first->deadline, want->deadline);
                    assert_ptr_equal(fiber__timer_heap_first(&heap), &want->timer);
                } else {
                    assert_null(first);
                }
            }
            now += (int64_t)((r >> 24) & ((UINT64_C(1) << ((r >> 5) % 24)) - 1));
            break;
        }
        case 5: {
            /* Pop everything due now, in order: one at a time, or in
             * batches of up to 1 to 8, which also bring the next units
             * into the heap ahead of time. */
            struct entry *want;
            size_t max = (r >> 20) % 9;
            if (max == 0) {
                while ((want = model_min(entries, POOL)) && want->deadline <= now) {
                    assert_ptr_equal(fiber__timer_heap_pop_due(&heap, now), &want->timer);
                    want->active = false;
                }
                assert_null(fiber__timer_heap_pop_due(&heap, now));
                break;
            }
            struct fiber__timer *got[8];
            size_t n;
            do {
                n = fiber__timer_heap_pop_due_many(&heap, now, got, max);
                for (size_t i = 0; i < n; i++)
                    fiber__timer_popped(got[i]);
                for (size_t i = 0; i < n; i++) {
                    want = model_min(entries, POOL);
                    assert_non_null(want);
                    assert_true(want->deadline <= now);
                    assert_ptr_equal(got[i], &want->timer);
                    assert_false(fiber__timer_active(got[i]));
                    want->active = false;
                }
            } while (n == max);
            want = model_min(entries, POOL);
            assert_true(!want || want->deadline > now);
            break;
        }
        }
        assert_false(e->active != (fiber__timer_active(&e->timer) != 0));
        if (op % 500 == 0)
            assert_heap_valid(&heap);
    }
    assert_heap_valid(&heap);
    /* The rest, to the end of time. */
    struct entry *want;
    while ((want = model_min(entries, POOL))) {
        assert_ptr_equal(fiber__timer_heap_pop_due(&heap, INT64_MAX), &want->timer);
        want->active = false;
    }
    assert_null(fiber__timer_heap_pop_due(&heap, INT64_MAX));
    assert_int_equal(heap.len, 0);
    assert_heap_valid(&heap);
    fiber__timer_heap_destroy(&heap);
    free(entries);
}

static int compare_entries(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    if (x->deadline != y->deadline)
        return x->deadline < y->deadline ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void test_pop_order_is_deadline_then_insertion(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct fiber__timer_heap heap;
    struct entry *entries = calloc(N, sizeof(*entries));
    struct entry *sorted = calloc(N, sizeof(*sorted));

    assert_non_null(entries);
    assert_non_null(sorted);
    fiber__timer_heap_init(&heap);
    for (size_t i = 0; i < N; i++) {
        /* Room grows as the loop grows it, one timer more at each spawn:
         * the heap moves to a larger block eleven times. */
        assert_int_equal(fiber__timer_heap_reserve(&heap, i + 1), 0);
        fiber__timer_init(&entries[i].timer);
        entries[i].deadline = (int64_t)(next_random() % 1000);
        entries[i].order = i;
        fiber__timer_heap_insert(&heap, &entries[i].timer, entries[i].deadline);
    }
    assert_heap_valid(&heap);
    memcpy(sorted, entries, N * sizeof(*sorted));
    qsort(sorted, N, sizeof(*sorted), compare_entries);

    for (size_t i = 0; i < N; i++) {
        struct fiber__timer *t = fiber__timer_heap_pop_due(&heap, INT64_MAX);
        assert_non_null(t);
        struct entry *e = (struct entry *)t;
        assert_int_equal(e->order, sorted[i].order);
    }
    assert_null(fiber__timer_heap_pop_due(&heap, INT64_MAX));
    assert_int_equal(heap.len, 0);
    fiber__timer_heap_destroy(&heap);
    free(sorted);
    free(entries);
}

static void test_pop_due_respects_now(void **state)
{
    (void)state;
    struct fiber__timer_heap heap;
    struct entry a = {0}, b = {0};

    fiber__timer_heap_init(&heap);
    fiber__timer_init(&a.timer);
    fiber__timer_init(&b.timer);
    assert_int_equal(fiber__timer_heap_reserve(&heap, 2), 0);
    fiber__timer_heap_insert(&heap, &a.timer, 20);
    fiber__timer_heap_insert(&heap, &b.timer, 10);
    assert_int_equal(fiber__timer_heap_peek(&heap)->deadline, 10);
    assert_null(fiber__timer_heap_pop_due(&heap, 9));
    assert_ptr_equal(fiber__timer_heap_pop_due(&heap, 10), &b.timer);
    assert_null(fiber__timer_heap_pop_due(&heap, 19));
    assert_ptr_equal(fiber__timer_heap_pop_due(&heap, 25), &a.timer);
    assert_null(fiber__timer_heap_peek(&heap));
    fiber__timer_heap_destroy(&heap);
}

/* Equal deadlines pop by how far below the deadline the time asked for
 * lay, the furthest first, and only then in insertion order. */
static void test_equal_deadlines_pop_by_early_part(void **state)
{
    (void)state;
    static const uint64_t early[] = {0, 5, UINT64_MAX, 5, 1u << 20, 0, 7};
    static const size_t order[] = {2, 4, 6, 1, 3, 0, 5};
    enum { N = sizeof(early) / sizeof(early[0]) };
    struct fiber__timer_heap heap;
    struct entry e[N];

    fiber__timer_heap_init(&heap);
    assert_int_equal(fiber__timer_heap_reserve(&heap, N + 1), 0);
    for (size_t i = 0; i < N; i++) {
        fiber__timer_init(&e[i].timer);
        fiber__timer_heap_insert_early(&heap, &e[i].timer, 100, early[i]);
        assert_heap_valid(&heap);
    }
    /* An earlier deadline still comes first, whatever its early part. */
    struct entry first;
    fiber__timer_init(&first.timer);
    fiber__timer_heap_insert_early(&heap, &first.timer, 99, 0);
    assert_ptr_equal(fiber__timer_heap_pop_due(&heap, 100), &first.timer);
    for (size_t i = 0; i < N; i++) {
        assert_ptr_equal(fiber__timer_heap_pop_due(&heap, 100),
                         &e[order[i]].timer);
        assert_heap_valid(&heap);
    }
    fiber__timer_heap_destroy(&heap);
}

/* The insertion counter is 32 bits: equal timers inserted across its wrap
 * still pop in insertion order. */
static void test_insertion_order_survives_the_counter_wrapping(void **state)
{
    (void)state;
    enum { N = 6 };
    struct fiber__timer_heap heap;
    struct entry e[N];

    fiber__timer_heap_init(&heap);
    assert_int_equal(fiber__timer_heap_reserve(&heap, N), 0);
    heap.next_seq = UINT32_MAX - 2;
    for (size_t i = 0; i < N; i++) {
        fiber__timer_init(&e[i].timer);
        fiber__timer_heap_insert(&heap, &e[i].timer, 7);
        assert_heap_valid(&heap);
    }
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(fiber__timer_heap_pop_due(&heap, 7), &e[i].timer);
    fiber__timer_heap_destroy(&heap);
}

static void test_remove_idle_timer_is_harmless(void **state)
{
    (void)state;
    struct fiber__timer_heap heap;
    struct entry a = {0};

    fiber__timer_heap_init(&heap);
    fiber__timer_init(&a.timer);
    fiber__timer_heap_remove(&heap, &a.timer);
    assert_int_equal(heap.len, 0);
    assert_int_equal(fiber__timer_heap_reserve(&heap, 1), 0);
    fiber__timer_heap_insert(&heap, &a.timer, 5);
    fiber__timer_heap_remove(&heap, &a.timer);
    fiber__timer_heap_remove(&heap, &a.timer);
    assert_int_equal(heap.len, 0);
    fiber__timer_heap_destroy(&heap);
}

static void test_reserve_refuses_absurd_sizes(void **state)
{
    (void)state;
    struct fiber__timer_heap heap;

    fiber__timer_heap_init(&heap);
    assert_int_equal(fiber__timer_heap_reserve(&heap, SIZE_MAX), -ENOMEM);
    assert_int_equal(heap.cap, 0);
    fiber__timer_heap_destroy(&heap);
}

/* The deadline at which a unit of the wheel starts. */
static int64_t deadline_of(uint64_t unit)
{
    return (int64_t)((unit << FIBER__WHEEL_SHIFT) ^ ((uint64_t)1 << 63));
}

/* Pop every timer due at now, each no earlier than the one before (*last)
 * nor later than now; deadline[i] is that of timers[i].  Returns how many. */
static size_t pop_due_in_order(struct fiber__timer_heap *heap, int64_t now,
                               const struct fiber__timer *timers,
                               const int64_t *deadline, int64_t *last)
{
    struct fiber__timer *t;
    size_t n = 0;

    while ((t = fiber__timer_heap_pop_due(heap, now))) {
        int64_t d = deadline[t - timers];
        assert_true(d >= *last && d <= now);
        *last = d;
        n++;
    }
    return n;
}

/*
 * A window of level 2 holds 4096 units of about 16 us; a bucket of level
 * 2 holds the timers of one.  While the edge passes the units of one
 * window, the next window's timers go down into level 1's spare bank a
 * few chunks at a time: by the time the edge reaches that window, none
 * is left in its bucket of level 2 to move all at once.  Then every timer
 * still pops in deadline order.
 */
static void test_next_window_moves_down_ahead(void **state)
{
    (void)state;
    enum { UNITS = 1 << (2 * FIBER__WHEEL_BITS), LATER = 20000 };
    const unsigned shift2 = 2 * FIBER__WHEEL_BITS;
    /* A window with room for the next one in the same window of level 3. */
    const uint64_t window = (UINT64_C(1) << 26) + 5;
    const uint64_t first_unit = window << shift2;
    struct fiber__timer_heap heap;
    struct fiber__timer *timers = calloc(UNITS + LATER, sizeof(*timers));
    int64_t *deadline = calloc(UNITS + LATER, sizeof(*deadline));

    assert_non_null(timers);
    assert_non_null(deadline);
    fiber__timer_heap_init(&heap);
    assert_int_equal(fiber__timer_heap_reserve(&heap, UNITS + LATER), 0);
    /* One timer a unit in this window, so that the edge passes each. */
    for (size_t i = 0; i < UNITS; i++)
        deadline[i] = deadline_of(first_unit + i) + 1;
    /* And many in the next window. */
    for (size_t i = UNITS; i < UNITS + LATER; i++)
        deadline[i] = deadline_of(first_unit + UNITS + next_random() % UNITS) +
                      (int64_t)(next_random() % 16384);
    for (size_t i = 0; i < UNITS + LATER; i++) {
        fiber__timer_init(&timers[i]);
        fiber__timer_heap_insert(&heap, &timers[i], deadline[i]);
    }

    int64_t last = INT64_MIN;
    size_t popped = 0;
    for (size_t u = 0; u < 2 * UNITS; u++) {
        int64_t now = deadline_of(first_unit + u + 1) - 1;
        popped += pop_due_in_order(&heap, now, timers, deadline, &last);
        if (u == UNITS - 2) {
            /* The edge is in the last unit of this window: the next
             * window's bucket of level 2 is empty, its timers all in the
             * spare bank. */
            uint32_t b = heap.bank[2] + (uint32_t)((window + 1) % FIBER__WHEEL_SPAN);
            assert_int_equal(heap.edge >> shift2, window);
            assert_int_equal(heap.head[b], UINT32_MAX);
            assert_true(spare_occupied(&heap, 1));
            assert_heap_valid(&heap);
        }
    }
    assert_int_equal(popped, UNITS + LATER);
    assert_int_equal(heap.len, 0);
    assert_heap_valid(&heap);
    fiber__timer_heap_destroy(&heap);
    free(timers);
    free(deadline);
}

/*
 * The same a level up: a window of level 3 holds 64 windows of level 2,
 * 4.3 s.  Timers for the next window of level 3 inserted while the edge
 * is two windows before it wait in their bucket of level 3; while the
 * edge passes the units of the last window of level 2 before it, they go
 * down into level 2's spare bank a few chunks at a time, and timers
 * inserted once the edge is in the window before go there straight away.
 * Those of the first window of level 2 in it go on into level 1's spare.
 * When the edge enters the window nothing is left to move all at once:
 * at a million sleepers a second, the bucket of level 3 held up to a
 * million timers, and moving them stalled the loop for 10 ms.
 */
static void test_next_level3_window_moves_down_ahead(void **state)
{
    (void)state;
    enum { UNITS2 = 1 << (2 * FIBER__WHEEL_BITS), LATER = 20000, LATE = 500 };
    const unsigned shift3 = 3 * FIBER__WHEEL_BITS;
    const uint64_t units3 = UINT64_C(1) << shift3;
    /* A window of level 3 with room for the next in the same one of
     * level 4. */
    const uint64_t window = (UINT64_C(1) << 20) + 5;
    const uint64_t last2 = (window << shift3) + units3 - UNITS2;
    enum { N = 1 + UNITS2 + LATER + LATE };
    struct fiber__timer_heap heap;
    struct fiber__timer *timers = calloc(N, sizeof(*timers));
    int64_t *deadline = calloc(N, sizeof(*deadline));
    size_t inserted = 0;

    assert_non_null(timers);
    assert_non_null(deadline);
    fiber__timer_heap_init(&heap);
    assert_int_equal(fiber__timer_heap_reserve(&heap, N), 0);
    for (size_t i = 0; i < N; i++)
        fiber__timer_init(&timers[i]);

    /* First the edge goes to the window of level 3 before. */
    deadline[0] = deadline_of((window - 1) << shift3);
    fiber__timer_heap_insert(&heap, &timers[inserted++], deadline[0]);
    assert_ptr_equal(fiber__timer_heap_pop_due(&heap, deadline[0]), &timers[0]);
    assert_int_equal(heap.edge >> shift3, window - 1);
    /* Many in the window after next, and one a unit over the last window
     * of level 2 of the next. */
    for (size_t i = 0; i < LATER; i++, inserted++) {
        deadline[inserted] = deadline_of(((window + 1) << shift3) +
                                         next_random() % units3) +
                             (int64_t)(next_random() % 16384);
        fiber__timer_heap_insert(&heap, &timers[inserted], deadline[inserted]);
    }
    for (size_t i = 0; i < UNITS2; i++, inserted++) {
        deadline[inserted] = deadline_of(last2 + i) + 1;
        fiber__timer_heap_insert(&heap, &timers[inserted], deadline[inserted]);
    }
    assert_heap_valid(&heap);

    int64_t last = INT64_MIN;
    size_t popped = 1;
    for (uint64_t u = 0; u < UNITS2 + units3; u++) {
        int64_t now = deadline_of(last2 + u + 1) - 1;
        popped += pop_due_in_order(&heap, now, timers, deadline, &last);
        if (u == 100) {
            /* In the window before: straight into the spare bank. */
            assert_int_equal(heap.edge >> shift3, window);
            for (size_t i = 0; i < LATE; i++, inserted++) {
                deadline[inserted] = deadline_of(((window + 1) << shift3) +
                                                 next_random() % UNITS2);
                fiber__timer_heap_insert(&heap, &timers[inserted],
                                         deadline[inserted]);
                uint32_t at = heap.pos[timers[inserted].index] & ~FIBER__IN_WHEEL;
                uint32_t b = heap.chunk[at].bucket;
                assert_int_equal(b - b % FIBER__WHEEL_SPAN, heap.spare[2]);
            }
            assert_heap_valid(&heap);
        }
        if (u == UNITS2 - 2) {
            /* The edge is in the last unit of the window: the next one's
             * bucket of level 3 is empty, its timers in the spare bank. */
            uint32_t b = 3 * FIBER__WHEEL_SPAN +
                         (uint32_t)((window + 1) % FIBER__WHEEL_SPAN);
            assert_int_equal(heap.edge >> shift3, window);
            assert_int_equal(heap.head[b], UINT32_MAX);
            assert_true(spare_occupied(&heap, 2));
            /* And those of its first window of level 2 went on down into
             * level 1's spare bank, as for any next window of level 2. */
            assert_int_equal(heap.head[heap.spare[2]], UINT32_MAX);
            assert_true(spare_occupied(&heap, 1));
            assert_heap_valid(&heap);
        }
    }
    assert_int_equal(inserted, N);
    assert_int_equal(popped, N);
    assert_int_equal(heap.len, 0);
    assert_heap_valid(&heap);
    fiber__timer_heap_destroy(&heap);
    free(timers);
    free(deadline);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_operations_match_model),
        cmocka_unit_test(test_pop_order_is_deadline_then_insertion),
        cmocka_unit_test(test_wheel_levels_match_model),
        cmocka_unit_test(test_next_window_moves_down_ahead),
        cmocka_unit_test(test_next_level3_window_moves_down_ahead),
        cmocka_unit_test(test_pop_due_respects_now),
        cmocka_unit_test(test_equal_deadlines_pop_by_early_part),
        cmocka_unit_test(test_insertion_order_survives_the_counter_wrapping),
        cmocka_unit_test(test_remove_idle_timer_is_harmless),
        cmocka_unit_test(test_reserve_refuses_absurd_sizes),
    };
    return cmocka_run_group_tests_name("timer_heap", tests, NULL, NULL);
}
