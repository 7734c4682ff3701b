/*
 * timer_heap_bench.c - the library's timers (a wheel, and a 4-ary heap for
 * the timers of the next unit) against plain array heaps written here for
 * comparison, on one workload: N random inserts, half of them cancelled
 * (removed by handle), the rest popped in order.
 *
 * The comparison heaps keep {deadline, seq, id} slots and a position array
 * indexed by id, the simplest layout that supports removal by handle: a
 * binary heap, a 4-ary one, and a 4-ary one that fetches the next level
 * while it compares one, as the library's heap does.  Each figure is the
 * median of several runs; the ratio is the library's time over the fastest
 * comparison heap.
 *
 * Usage: timer_heap_bench [N]   (default 4,000,000)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timer_heap.h"

#include "bench_util.h"

#define RUNS 5

struct slot {
    int64_t deadline;
    uint64_t seq;
    uint32_t id;
};

struct plain_heap {
    struct slot *slots;
    uint32_t *pos;   /* slot index of each id */
    size_t len;
    unsigned arity;
    int prefetch;    /* fetch the grandchildren while comparing children */
};

static int before(const struct slot *a, const struct slot *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->seq < b->seq);
}

static void put(struct plain_heap *h, size_t i, struct slot s)
{
    h->slots[i] = s;
    h->pos[s.id] = (uint32_t)i;
}

static void plain_up(struct plain_heap *h, size_t i, struct slot s)
{
    while (i > 0) {
        size_t p = (i - 1) / h->arity;
        if (!before(&s, &h->slots[p]))
            break;
        put(h, i, h->slots[p]);
        i = p;
    }
    put(h, i, s);
}

static void plain_down(struct plain_heap *h, size_t i, struct slot s)
{
    for (;;) {
        size_t c = i * h->arity + 1;
        if (c >= h->len)
            break;
        size_t end = c + h->arity < h->len ? c + h->arity : h->len, best = c;
        size_t grand = c * h->arity + 1;
        if (h->prefetch && grand < h->len)
            for (size_t k = 0; k < h->arity; k++)
                __builtin_prefetch(&h->slots[grand + k * h->arity]);
        for (size_t k = c + 1; k < end; k++)
            if (before(&h->slots[k], &h->slots[best]))
                best = k;
        if (!before(&h->slots[best], &s))
            break;
        put(h, i, h->slots[best]);
        i = best;
    }
    put(h, i, s);
}

static void plain_remove(struct plain_heap *h, uint32_t id)
{
    size_t i = h->pos[id];
    struct slot last = h->slots[--h->len];
    if (i == h->len)
        return;
    if (i > 0 && before(&last, &h->slots[(i - 1) / h->arity]))
        plain_up(h, i, last);
    else
        plain_down(h, i, last);
}

static double run_plain(unsigned arity, int prefetch, const int64_t *deadlines,
                        const uint32_t *cancel, size_t n, uint64_t *check)
{
    struct plain_heap h = {malloc(n * sizeof(struct slot)),
                           malloc(n * sizeof(uint32_t)), 0, arity, prefetch};
    double t0 = now_s();
    for (size_t i = 0; i < n; i++)
        plain_up(&h, h.len++, (struct slot){deadlines[i], i, (uint32_t)i});
    for (size_t i = 0; i < n / 2; i++)
        plain_remove(&h, cancel[i]);
    uint64_t sum = 0;
    while (h.len > 0) {
        sum += h.slots[0].id;
        struct slot last = h.slots[--h.len];
        if (h.len > 0)
            plain_down(&h, 0, last);
    }
    double t = now_s() - t0;
    *check = sum;
    free(h.slots);
    free(h.pos);
    return t;
}

static double run_library(const int64_t *deadlines, const uint32_t *cancel,
                          size_t n, uint64_t *check)
{
    struct fiber__timer *timers = malloc(n * sizeof(*timers));
    struct fiber__timer_heap heap;

    fiber__timer_heap_init(&heap);
    if (!timers || fiber__timer_heap_reserve(&heap, n) < 0) {
        fprintf(stderr, "timer_heap_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        fiber__timer_init(&timers[i]);
    double t0 = now_s();
    for (size_t i = 0; i < n; i++)
        fiber__timer_heap_insert(&heap, &timers[i], deadlines[i]);
    for (size_t i = 0; i < n / 2; i++)
        fiber__timer_heap_remove(&heap, &timers[cancel[i]]);
    uint64_t sum = 0;
    struct fiber__timer *t;
    while ((t = fiber__timer_heap_pop_due(&heap, INT64_MAX)))
        sum += (uint64_t)(t - timers);
    double elapsed = now_s() - t0;
    *check = sum;
    fiber__timer_heap_destroy(&heap);
    free(timers);
    return elapsed;
}


int main(int argc, char **argv)
{
    size_t n = 4000000;

    if (argc > 1) {
        char *end;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (*end || v < 2 || v > 100000000 || argv[1][0] == '-') {
            fprintf(stderr, "timer_heap_bench: N must be an integer in [2, 1e8], got '%s'\n",
                    argv[1]);
            return 2;
        }
        n = (size_t)v;
    }

    int64_t *deadlines = malloc(n * sizeof(*deadlines));
    uint32_t *cancel = malloc(n * sizeof(*cancel));
    if (!deadlines || !cancel) {
        fprintf(stderr, "timer_heap_bench: out of memory\n");
        return 1;
    }
    /* Deadlines spread over one second in nanoseconds, like sleepers; a
     * random half of the timers is cancelled (a shuffled prefix). */
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        deadlines[i] = (int64_t)(x % 1000000000);
        cancel[i] = (uint32_t)i;
    }
    for (size_t i = n - 1; i > 0; i--) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t j = x % (i + 1);
        uint32_t tmp = cancel[i];
        cancel[i] = cancel[j];
        cancel[j] = tmp;
    }

    double lib[RUNS], four[RUNS], fetching[RUNS], two[RUNS];
    uint64_t c1 = 0, c2 = 0, c3 = 0, c4 = 0;
    for (int r = 0; r < RUNS; r++) {
        lib[r] = run_library(deadlines, cancel, n, &c1);
        four[r] = run_plain(4, 0, deadlines, cancel, n, &c2);
        fetching[r] = run_plain(4, 1, deadlines, cancel, n, &c4);
        two[r] = run_plain(2, 0, deadlines, cancel, n, &c3);
    }
    if (c1 != c2 || c2 != c3 || c3 != c4) {
        fprintf(stderr, "timer_heap_bench: the heaps disagree\n");
        return 1;
    }
    double m_lib = median(lib, RUNS), m_four = median(four, RUNS), m_two = median(two, RUNS);
    double m_fetching = median(fetching, RUNS);
    double best = m_four < m_two ? m_four : m_two;
    if (m_fetching < best)
        best = m_fetching;
    double ops = (double)n + (double)(n / 2) + (double)(n - n / 2);
    printf("timer heap: %zu inserts, %zu cancelled, %zu popped (median of %d runs)\n",
           n, n / 2, n - n / 2, RUNS);
    printf("  %-28s %8.1f ms  %6.1f ns/op\n", "libfiber timers (wheel+heap)", m_lib * 1e3, m_lib * 1e9 / ops);
    printf("  %-28s %8.1f ms  %6.1f ns/op\n", "plain 4-ary array heap", m_four * 1e3, m_four * 1e9 / ops);
    printf("  %-28s %8.1f ms  %6.1f ns/op\n", "plain 4-ary, prefetching", m_fetching * 1e3, m_fetching * 1e9 / ops);
    printf("  %-28s %8.1f ms  %6.1f ns/op\n", "plain binary array heap", m_two * 1e3, m_two * 1e9 / ops);
    printf("  %-28s %8.2f x   (target: within 1.5x)\n", "libfiber / best plain", m_lib / best);
    free(deadlines);
    free(cancel);
    return 0;
}
