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

/* Check the heap property, every position and owner, that the handles
 * of all slots, the free ones past len too, are each used once, and that
 * the children of a node share a cache line. */
static void assert_heap_valid(const struct fiber__timer_heap *heap)
{
    unsigned char *seen = calloc(heap->cap ? heap->cap : 1, 1);
    assert_non_null(seen);
    for (size_t i = 0; i < heap->cap; i++) {
        assert_true(heap->slots[i].handle < heap->cap);
        assert_false(seen[heap->slots[i].handle]);
        seen[heap->slots[i].handle] = 1;
    }
    free(seen);
    if (heap->cap > 1)
        assert_int_equal((uintptr_t)&heap->slots[1] % 64, 0);
    for (size_t i = 0; i < heap->len; i++) {
        const struct fiber__timer_slot *s = &heap->slots[i];
        const struct fiber__timer *t = heap->owner[s->handle];
        assert_int_equal(t->index, s->handle);
        assert_int_equal(heap->pos[s->handle], i);
        if (i > 0) {
            const struct fiber__timer_slot *p = &heap->slots[(i - 1) / 4];
            const struct fiber__timer *pt = heap->owner[p->handle];
            assert_true(p->deadline < s->deadline ||
                        (p->deadline == s->deadline &&
                         (pt->early > t->early ||
                          (pt->early == t->early &&
                           (int32_t)(pt->seq - t->seq) < 0))));
        }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_operations_match_model),
        cmocka_unit_test(test_pop_order_is_deadline_then_insertion),
        cmocka_unit_test(test_pop_due_respects_now),
        cmocka_unit_test(test_equal_deadlines_pop_by_early_part),
        cmocka_unit_test(test_insertion_order_survives_the_counter_wrapping),
        cmocka_unit_test(test_remove_idle_timer_is_harmless),
        cmocka_unit_test(test_reserve_refuses_absurd_sizes),
    };
    return cmocka_run_group_tests_name("timer_heap", tests, NULL, NULL);
}
