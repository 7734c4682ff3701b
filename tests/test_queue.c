/*
 * test_queue.c - the bounded queue as the header promises it: FIFO items,
 * puts that wait while it is full and gets while it is empty, waiters
 * served in arrival order by hand-off, deadlines, cancellation that takes
 * and loses nothing, close, task_done and join, several producers and
 * consumers, misuse errors, deadlock reports.
 *
 * Scenarios run as the main fiber of a loop on the virtual clock, so times
 * are exact; fibers log what happens and each test compares the log with
 * the exact sequence expected.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fiber.h"

#define GROUP_NAME "queue"

/* Items are small numbers carried in the pointer. */
#define ITEM(n) ((void *)(intptr_t)(n))
#define NUMBER(item) ((int)(intptr_t)(item))

#include "event_log.h"

/* ---- without waiting ----------------------------------------------------- */

static void test_queue_try_put_and_try_get_keep_fifo_order(void **state)
{
    fiber_queue_t q;
    void *item = ITEM(-1);
    (void)state;

    /* The calls that never wait work outside any loop. */
    assert_int_equal(fiber_queue_init(&q, 3), 0);
    assert_int_equal(fiber_queue_capacity(&q), 3);
    assert_int_equal(fiber_queue_try_get(&q, &item), -EAGAIN);
    assert_ptr_equal(item, ITEM(-1));
    assert_int_equal(fiber_queue_try_put(&q, ITEM(1)), 0);
    assert_int_equal(fiber_queue_try_put(&q, NULL), 0);
    assert_int_equal(fiber_queue_try_put(&q, ITEM(3)), 0);
    assert_int_equal(fiber_queue_try_put(&q, ITEM(4)), -EAGAIN);
    assert_int_equal(fiber_queue_len(&q), 3);
    assert_int_equal(fiber_queue_try_get(&q, &item), 0);
    assert_ptr_equal(item, ITEM(1));
    /* Round the ring. */
    assert_int_equal(fiber_queue_try_put(&q, ITEM(4)), 0);
    assert_int_equal(fiber_queue_try_get(&q, &item), 0);
    assert_null(item);
    assert_int_equal(fiber_queue_try_get(&q, &item), 0);
    assert_ptr_equal(item, ITEM(3));
    assert_int_equal(fiber_queue_try_get(&q, &item), 0);
    assert_ptr_equal(item, ITEM(4));
    assert_int_equal(fiber_queue_try_get(&q, &item), -EAGAIN);
    assert_int_equal(fiber_queue_len(&q), 0);
    /* Every item put counts as unfinished until task_done. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(fiber_queue_task_done(&q), 0);
    assert_int_equal(fiber_queue_task_done(&q), -EINVAL);
    assert_int_equal(fiber_queue_destroy(&q), 0);
}

/* ---- waiting while full or empty ---------------------------------------- */

struct producer {
    const char *name;
    fiber_queue_t *q;
    int first, count;
    double pause_s; /* between puts */
};

static void *put_numbers(void *arg)
{
    struct producer *p = arg;

    for (int i = 0; i < p->count; i++) {
        int n = p->first + i;
        int rc = fiber_queue_put(p->q, ITEM(n));
        log_event("%s put %d %s", p->name, n, rc_name(rc));
        if (rc < 0)
            return NULL;
        if (p->pause_s > 0) {
            rc = fiber_sleep(p->pause_s);
            if (rc < 0) {
                log_event("%s sleep %s", p->name, rc_name(rc));
                return NULL;
            }
        }
    }
    return NULL;
}

static void *full_and_empty(void *arg)
{
    fiber_queue_t q;
    struct producer p = {"P", &q, 1, 4, 0};
    void *item;
    (void)arg;

    CHECK_EQ(fiber_queue_init(&q, 2), 0);
    fiber_task_t *task = spawn_named(put_numbers, &p, "P");
    CHECK_EQ(fiber_sleep(1), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(fiber_queue_get(&q, &item), 0);
        log_event("main got %d", NUMBER(item));
        CHECK_EQ(fiber_sleep(1), 0);
    }
    CHECK_EQ(await_status(task), 0);
    log_event("get_until(+1s) %s",
              rc_name(fiber_queue_get_until(&q, &item, deadline_in(1))));
    CHECK_EQ(fiber_queue_destroy(&q), 0);
    return NULL;
}

static void test_queue_put_waits_while_full_get_while_empty(void **state)
{
    (void)state;
    run_scenario(full_and_empty, NULL);
    ASSERT_EVENTS("P put 1 ok @0ms", "P put 2 ok @0ms",
                  "main got 1 @1000ms", "P put 3 ok @1000ms",
                  "main got 2 @2000ms", "P put 4 ok @2000ms",
                  "main got 3 @3000ms", "main got 4 @4000ms",
                  "get_until(+1s) ETIMEDOUT @6000ms");
}

struct consumer {
    const char *name;
    fiber_queue_t *q;
    int64_t deadline;  /* INT64_MAX for none */
    double then_sleep_s;
};

/* Get one item, log it, then sleep if asked (to see a pending cancel). */
static void *get_one(void *arg)
{
    struct consumer *c = arg;
    void *item = ITEM(-1);

    int rc = c->deadline == INT64_MAX
                 ? fiber_queue_get(c->q, &item)
                 : fiber_queue_get_until(c->q, &item, c->deadline);
    if (rc == 0)
        log_event("%s got %d", c->name, NUMBER(item));
    else
        log_event("%s get %s", c->name, rc_name(rc));
    if (c->then_sleep_s > 0)
        log_event("%s sleep %s", c->name, rc_name(fiber_sleep(c->then_sleep_s)));
    return NULL;
}

static void *getters_in_order(void *arg)
{
    fiber_queue_t q;
    struct consumer consumers[] = {
        {"A", &q, INT64_MAX, 0}, {"B", &q, INT64_MAX, 0}, {"C", &q, INT64_MAX, 0}};
    fiber_task_t *tasks[3];
    void *item;
    (void)arg;

    CHECK_EQ(fiber_queue_init(&q, 1), 0);
    for (size_t i = 0; i < 3; i++)
        tasks[i] = spawn_named(get_one, &consumers[i], consumers[i].name);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_queue_destroy(&q), -EBUSY);
    /* Each item goes straight to a waiting getter, even past the
     * capacity, and main cannot take one back. */
    CHECK_EQ(fiber_queue_put(&q, ITEM(1)), 0);
    CHECK_EQ(fiber_queue_try_put(&q, ITEM(2)), 0);
    CHECK_EQ(fiber_queue_len(&q), 0);
    CHECK_EQ(fiber_queue_try_get(&q, &item), -EAGAIN);
    log_event("main put 1 and 2");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main puts 3");
    CHECK_EQ(fiber_queue_put(&q, ITEM(3)), 0);
    CHECK_EQ(fiber_gather(tasks, 3, NULL, NULL), 0);
    CHECK_EQ(fiber_queue_destroy(&q), 0);
    return NULL;
}

static void test_queue_waiting_getters_are_served_in_order(void **state)
{
    (void)state;
    run_scenario(getters_in_order, NULL);
    ASSERT_EVENTS("main put 1 and 2 @1000ms", "A got 1 @1000ms", "B got 2 @1000ms",
                  "main puts 3 @2000ms", "C got 3 @2000ms");
}

static void *putters_in_order(void *arg)
{
    fiber_queue_t q;
    struct producer producers[] = {
        {"A", &q, 1, 1, 0}, {"B", &q, 2, 1, 0}, {"C", &q, 3, 1, 0}};
    fiber_task_t *tasks[3];
    void *item;
    (void)arg;

    CHECK_EQ(fiber_queue_init(&q, 1), 0);
    CHECK_EQ(fiber_queue_try_put(&q, ITEM(0)), 0);
    for (size_t i = 0; i < 3; i++)
        tasks[i] = spawn_named(put_numbers, &producers[i], producers[i].name);
    CHECK_EQ(fiber_sleep(1), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(fiber_queue_get(&q, &item), 0);
        log_event("main got %d", NUMBER(item));
        /* The room went to the oldest putter: none for latecomers. */
        if (i < 3)
            CHECK_EQ(fiber_queue_try_put(&q, ITEM(99)), -EAGAIN);
        CHECK_EQ(fiber_sleep(1), 0);
    }
    CHECK_EQ(fiber_gather(tasks, 3, NULL, NULL), 0);
    CHECK_EQ(fiber_queue_len(&q), 0);
    CHECK_EQ(fiber_queue_destroy(&q), 0);
    return NULL;
}

static void test_queue_waiting_putters_are_served_in_order(void **state)
{
    (void)state;
    run_scenario(putters_in_order, NULL);
    ASSERT_EVENTS("main got 0 @1000ms", "A put 1 ok @1000ms",
                  "main got 1 @2000ms", "B put 2 ok @2000ms",
                  "main got 2 @3000ms", "C put 3 ok @3000ms",
                  "main got 3 @4000ms");
}

/* ---- several producers and consumers ------------------------------------ */

#define PRODUCERS 3
#define CONSUMERS 4
#define PER_PRODUCER 20

struct market {
    fiber_queue_t q;
    int received[PRODUCERS * PER_PRODUCER]; /* how often each item came */
    int last_seen[PRODUCERS];               /* per producer, in get order */
    int per_consumer[CONSUMERS];
    int total;
};

struct market_consumer {
    struct market *market;
    int index;
};

static void *consume_until_closed(void *arg)
{
    struct market_consumer *c = arg;
    struct market *m = c->market;
    void *item;
    int rc;

    while ((rc = fiber_queue_get(&m->q, &item)) == 0) {
        int n = NUMBER(item);
        int producer = n / PER_PRODUCER;
        CHECK(n >= 0 && n < PRODUCERS * PER_PRODUCER);
        if (n < 0 || n >= PRODUCERS * PER_PRODUCER)
            break;
        m->received[n]++;
        /* Items of one producer come out in the order it put them. */
        CHECK(n > m->last_seen[producer]);
        m->last_seen[producer] = n;
        m->per_consumer[c->index]++;
        m->total++;
        CHECK_EQ(fiber_sleep(0.25 + 0.1 * c->index), 0);
        CHECK_EQ(fiber_queue_task_done(&m->q), 0);
    }
    CHECK_EQ(rc, -EPIPE);
    return NULL;
}

static void *market_main(void *arg)
{
    struct market *m = arg;
    struct producer producers[PRODUCERS];
    struct market_consumer consumers[CONSUMERS];
    fiber_task_t *producer_tasks[PRODUCERS], *consumer_tasks[CONSUMERS];

    CHECK_EQ(fiber_queue_init(&m->q, 4), 0);
    for (int i = 0; i < PRODUCERS; i++)
        m->last_seen[i] = -1;
    for (int i = 0; i < CONSUMERS; i++) {
        consumers[i] = (struct market_consumer){m, i};
        consumer_tasks[i] = spawn_named(consume_until_closed, &consumers[i], NULL);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        producers[i] = (struct producer){"p", &m->q, i * PER_PRODUCER,
                                         PER_PRODUCER, 0.05 * (i + 1)};
        producer_tasks[i] = spawn_named(put_numbers, &producers[i], NULL);
    }
    CHECK_EQ(fiber_gather(producer_tasks, PRODUCERS, NULL, NULL), 0);
    CHECK_EQ(fiber_queue_close(&m->q), 0);
    CHECK_EQ(fiber_queue_join(&m->q), 0);
    CHECK_EQ(fiber_queue_len(&m->q), 0);
    CHECK_EQ(fiber_gather(consumer_tasks, CONSUMERS, NULL, NULL), 0);
    CHECK_EQ(fiber_queue_destroy(&m->q), 0);
    return NULL;
}

static void test_queue_several_producers_and_consumers(void **state)
{
    struct market m;
    (void)state;

    memset(&m, 0, sizeof(m));
    run_scenario(market_main, &m);
    /* Every item arrived exactly once, and every consumer worked. */
    assert_int_equal(m.total, PRODUCERS * PER_PRODUCER);
    for (int n = 0; n < PRODUCERS * PER_PRODUCER; n++)
        assert_int_equal(m.received[n], 1);
    for (int i = 0; i < CONSUMERS; i++)
        assert_true(m.per_consumer[i] > 0);
    /* The fastest consumer did the most. */
    assert_true(m.per_consumer[0] > m.per_consumer[CONSUMERS - 1]);
}

/* ---- deadlines ----------------------------------------------------------- */

static void *queue_deadlines(void *arg)
{
    fiber_queue_t q;
    struct consumer late = {"T", &q, 0, 0};
    struct consumer patient = {"G", &q, INT64_MAX, 0};
    void *item = ITEM(-1);
    (void)arg;

    CHECK_EQ(fiber_queue_init(&q, 1), 0);
    /* Deadlines already passed: at once, yet an item present is taken. */
    CHECK_EQ(fiber_queue_get_until(&q, &item, 0), -ETIMEDOUT);
    CHECK_EQ(fiber_queue_put_until(&q, ITEM(1), 0), 0);
    CHECK_EQ(fiber_queue_put_until(&q, ITEM(2), 0), -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), 0);
    log_event("put_until(+1s) %s",
              rc_name(fiber_queue_put_until(&q, ITEM(2), deadline_in(1))));
    /* The timed-out put left nothing behind. */
    CHECK_EQ(fiber_queue_len(&q), 1);
    CHECK_EQ(fiber_queue_get_until(&q, &item, 0), 0);
    CHECK_PTR(item, ITEM(1));
    CHECK_EQ(fiber_queue_try_get(&q, &item), -EAGAIN);

    /* A getter that timed out is passed over by the next put. */
    late.deadline = deadline_in(0.5);
    fiber_task_t *tasks[2] = {spawn_named(get_one, &late, "T"),
                              spawn_named(get_one, &patient, "G")};
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main puts 3");
    CHECK_EQ(fiber_queue_put(&q, ITEM(3)), 0);
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    CHECK_EQ(fiber_queue_len(&q), 0);
    CHECK_EQ(fiber_queue_destroy(&q), 0);
    return NULL;
}

static void test_queue_deadlines(void **state)
{
    (void)state;
    run_scenario(queue_deadlines, NULL);
    ASSERT_EVENTS("put_until(+1s) ETIMEDOUT @1000ms", "T get ETIMEDOUT @1500ms",
                  "main puts 3 @2000ms", "G got 3 @2000ms");
}

/* ---- cancellation -------------------------------------------------------- */

/* Two queues of one slot: empty, where gets wait, and full, holding item 0,
 * where puts wait. */
static void init_empty_and_full(fiber_queue_t *empty, fiber_queue_t *full)
{
    CHECK_EQ(fiber_queue_init(empty, 1), 0);
    CHECK_EQ(fiber_queue_init(full, 1), 0);
    CHECK_EQ(fiber_queue_try_put(full, ITEM(0)), 0);
}

static void *queue_cancel_waiters(void *arg)
{
    fiber_queue_t empty, full;
    struct consumer consumers[] = {{"A", &empty, INT64_MAX, 0},
                                   {"B", &empty, INT64_MAX, 0}};
    struct producer putter = {"P", &full, 1, 1, 0};
    fiber_task_t *tasks[3];
    void *item;
    (void)arg;

    init_empty_and_full(&empty, &full);
    tasks[0] = spawn_named(get_one, &consumers[0], "A");
    tasks[1] = spawn_named(get_one, &consumers[1], "B");
    tasks[2] = spawn_named(put_numbers, &putter, "P");
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(tasks[0]), 0);
    CHECK_EQ(fiber_cancel(tasks[2]), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    /* A left the line: the item goes to B.  P's item never went in. */
    log_event("main puts 5");
    CHECK_EQ(fiber_queue_put(&empty, ITEM(5)), 0);
    GATHER_EXPECTING(tasks, -ECANCELED, 0, -ECANCELED);
    CHECK_EQ(fiber_queue_try_get(&full, &item), 0);
    CHECK_PTR(item, ITEM(0));
    CHECK_EQ(fiber_queue_try_get(&full, &item), -EAGAIN);
    CHECK_EQ(fiber_queue_destroy(&empty), 0);
    CHECK_EQ(fiber_queue_destroy(&full), 0);
    return NULL;
}

static void test_queue_cancelled_waiters_take_nothing(void **state)
{
    (void)state;
    run_scenario(queue_cancel_waiters, NULL);
    ASSERT_EVENTS("A get ECANCELED @1000ms", "P put 1 ECANCELED @1000ms",
                  "main puts 5 @2000ms", "B got 5 @2000ms");
}

static void *queue_handed_then_cancelled(void *arg)
{
    fiber_queue_t empty, full;
    struct consumer getter = {"G", &empty, INT64_MAX, 1};
    struct producer putter = {"P", &full, 1, 1, 1};
    void *item;
    (void)arg;

    init_empty_and_full(&empty, &full);
    fiber_task_t *g = spawn_named(get_one, &getter, "G");
    fiber_task_t *p = spawn_named(put_numbers, &putter, "P");
    CHECK_EQ(fiber_sleep(1), 0);
    /* Each is handed what it waited for, then cancelled before it runs:
     * the hand-off stands. */
    log_event("main puts 7 and gets, then cancels both");
    CHECK_EQ(fiber_queue_put(&empty, ITEM(7)), 0);
    CHECK_EQ(fiber_queue_get(&full, &item), 0);
    CHECK_PTR(item, ITEM(0));
    CHECK_EQ(fiber_cancel(g), 0);
    CHECK_EQ(fiber_cancel(p), 0);
    /* P's item is in the queue already. */
    CHECK_EQ(fiber_queue_len(&full), 1);
    CHECK_EQ(await_status(g), -ECANCELED);
    CHECK_EQ(await_status(p), -ECANCELED);
    CHECK_EQ(fiber_queue_try_get(&full, &item), 0);
    CHECK_PTR(item, ITEM(1));
    CHECK_EQ(fiber_queue_destroy(&empty), 0);
    CHECK_EQ(fiber_queue_destroy(&full), 0);
    return NULL;
}

static void test_queue_item_handed_over_then_cancelled_is_not_lost(void **state)
{
    (void)state;
    run_scenario(queue_handed_then_cancelled, NULL);
    ASSERT_EVENTS("main puts 7 and gets, then cancels both @1000ms",
                  "G got 7 @1000ms", "G sleep ECANCELED @1000ms",
                  "P put 1 ok @1000ms", "P sleep ECANCELED @1000ms");
}

/* ---- close --------------------------------------------------------------- */

static void *queue_close(void *arg)
{
    fiber_queue_t empty, full;
    struct consumer consumers[] = {{"G1", &empty, INT64_MAX, 0},
                                   {"G2", &empty, INT64_MAX, 0}};
    struct producer producers[] = {{"P1", &full, 1, 1, 0}, {"P2", &full, 2, 1, 0}};
    fiber_task_t *tasks[4];
    void *item;
    (void)arg;

    init_empty_and_full(&empty, &full);
    tasks[0] = spawn_named(get_one, &consumers[0], "G1");
    tasks[1] = spawn_named(get_one, &consumers[1], "G2");
    tasks[2] = spawn_named(put_numbers, &producers[0], "P1");
    tasks[3] = spawn_named(put_numbers, &producers[1], "P2");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("main closes both");
    CHECK_EQ(fiber_queue_closed(&full), 0);
    CHECK_EQ(fiber_queue_close(&full), 0);
    CHECK_EQ(fiber_queue_close(&empty), 0);
    CHECK_EQ(fiber_queue_closed(&full), 1);
    /* Nobody waits any more. */
    CHECK_EQ(fiber_queue_destroy(&empty), 0);
    CHECK_EQ(fiber_gather(tasks, 4, NULL, NULL), 0);

    /* No more puts; what was queued can still be got, then the end. */
    CHECK_EQ(fiber_queue_put(&full, ITEM(3)), -EPIPE);
    CHECK_EQ(fiber_queue_put_until(&full, ITEM(3), 0), -EPIPE);
    CHECK_EQ(fiber_queue_try_put(&full, ITEM(3)), -EPIPE);
    CHECK_EQ(fiber_queue_get(&full, &item), 0);
    CHECK_PTR(item, ITEM(0));
    CHECK_EQ(fiber_queue_get(&full, &item), -EPIPE);
    CHECK_EQ(fiber_queue_get_until(&full, &item, deadline_in(1)), -EPIPE);
    CHECK_EQ(fiber_queue_try_get(&full, &item), -EPIPE);
    CHECK_EQ(fiber_queue_close(&full), 0);
    CHECK_EQ(elapsed_ns(), SEC);
    CHECK_EQ(fiber_queue_destroy(&full), 0);
    return NULL;
}

static void test_queue_close_wakes_every_waiter(void **state)
{
    (void)state;
    run_scenario(queue_close, NULL);
    ASSERT_EVENTS("main closes both @1000ms", "P1 put 1 EPIPE @1000ms",
                  "P2 put 2 EPIPE @1000ms", "G1 get EPIPE @1000ms",
                  "G2 get EPIPE @1000ms");
}

/* ---- task_done and join -------------------------------------------------- */

static void *work_through(void *arg)
{
    fiber_queue_t *q = arg;
    void *item;

    while (fiber_queue_get(q, &item) == 0) {
        CHECK_EQ(fiber_sleep(1), 0);
        log_event("done %d", NUMBER(item));
        CHECK_EQ(fiber_queue_task_done(q), 0);
    }
    return NULL;
}

static void *join_when_done(void *arg)
{
    fiber_queue_t *q = arg;

    log_event("J join %s", rc_name(fiber_queue_join(q)));
    return NULL;
}

static void *queue_join(void *arg)
{
    fiber_queue_t q;
    (void)arg;

    CHECK_EQ(fiber_queue_init(&q, 4), 0);
    /* Nothing put, nothing unfinished: at once. */
    CHECK_EQ(fiber_queue_join(&q), 0);
    for (int i = 1; i <= 3; i++)
        CHECK_EQ(fiber_queue_put(&q, ITEM(i)), 0);
    fiber_task_t *joiner = spawn_named(join_when_done, &q, "J");
    fiber_task_t *worker = spawn_named(work_through, &q, "W");
    log_event("main join_until(+1.5s) %s",
              rc_name(fiber_queue_join_until(&q, deadline_in(1.5))));
    CHECK_EQ(await_status(joiner), 0);
    CHECK_EQ(fiber_queue_close(&q), 0);
    CHECK_EQ(await_status(worker), 0);
    CHECK_EQ(fiber_queue_task_done(&q), -EINVAL);
    CHECK_EQ(fiber_queue_destroy(&q), 0);
    return NULL;
}

static void test_queue_join_waits_until_every_item_is_done(void **state)
{
    (void)state;
    run_scenario(queue_join, NULL);
    ASSERT_EVENTS("done 1 @1000ms", "main join_until(+1.5s) ETIMEDOUT @1500ms",
                  "done 2 @2000ms", "done 3 @3000ms", "J join ok @3000ms");
}

/* ---- misuse -------------------------------------------------------------- */

static void *get_while_cancelled(void *arg)
{
    fiber_queue_t *q = arg;
    void *item = ITEM(-1);

    /* Level-triggered: refused though an item waits; try_get still works. */
    CHECK_EQ(fiber_queue_get(q, &item), -ECANCELED);
    CHECK_EQ(fiber_queue_put(q, ITEM(2)), -ECANCELED);
    CHECK_EQ(fiber_queue_join(q), -ECANCELED);
    CHECK_PTR(item, ITEM(-1));
    CHECK_EQ(fiber_queue_try_get(q, &item), 0);
    CHECK_PTR(item, ITEM(1));
    return NULL;
}

static void *queue_misuse(void *arg)
{
    fiber_queue_t *q = arg;
    struct consumer waiter = {"G", q, INT64_MAX, 0};

    CHECK_EQ(fiber_queue_get(q, NULL), -EINVAL);
    CHECK_EQ(fiber_queue_get_until(q, NULL, 0), -EINVAL);
    CHECK_EQ(fiber_queue_try_get(q, NULL), -EINVAL);
    CHECK_EQ(fiber_queue_try_put(q, ITEM(1)), 0);
    fiber_task_t *k = spawn_named(get_while_cancelled, q, "K");
    CHECK_EQ(fiber_cancel(k), 0);
    CHECK_EQ(await_status(k), -ECANCELED);

    fiber_task_t *g = spawn_named(get_one, &waiter, "G");
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_queue_destroy(q), -EBUSY);
    CHECK_EQ(fiber_queue_put(q, ITEM(4)), 0);
    CHECK_EQ(await_status(g), 0);
    return NULL;
}

static void test_queue_misuse_is_refused_and_changes_nothing(void **state)
{
    fiber_queue_t q, zeroed;
    void *item = ITEM(-1);
    (void)state;

    memset(&zeroed, 0, sizeof(zeroed));
    assert_int_equal(fiber_queue_init(NULL, 1), -EINVAL);
    assert_int_equal(fiber_queue_init(&q, 0), -EINVAL);
    assert_int_equal(fiber_queue_try_put(&zeroed, ITEM(1)), -EINVAL);
    assert_int_equal(fiber_queue_try_get(&zeroed, &item), -EINVAL);
    assert_int_equal(fiber_queue_put(&zeroed, ITEM(1)), -EINVAL);
    assert_int_equal(fiber_queue_close(&zeroed), -EINVAL);
    assert_int_equal(fiber_queue_closed(&zeroed), -EINVAL);
    assert_int_equal(fiber_queue_task_done(&zeroed), -EINVAL);
    assert_int_equal(fiber_queue_join(NULL), -EINVAL);
    assert_int_equal(fiber_queue_destroy(&zeroed), -EINVAL);
    assert_int_equal(fiber_queue_len(NULL), 0);
    assert_int_equal(fiber_queue_capacity(&zeroed), 0);

    assert_int_equal(fiber_queue_init(&q, 2), 0);
    assert_int_equal(fiber_queue_try_put(&q, ITEM(9)), 0);
    /* A failed init changes nothing, not even a queue in use. */
    assert_int_equal(fiber_queue_init(&q, SIZE_MAX), -ENOMEM);
    assert_int_equal(fiber_queue_init(&q, 0), -EINVAL);
    assert_int_equal(fiber_queue_capacity(&q), 2);
    assert_int_equal(fiber_queue_len(&q), 1);
    /* Waiting calls need a fiber; the others work anywhere. */
    assert_int_equal(fiber_queue_put(&q, ITEM(1)), -EPERM);
    assert_int_equal(fiber_queue_put_until(&q, ITEM(1), 0), -EPERM);
    assert_int_equal(fiber_queue_get(&q, &item), -EPERM);
    assert_int_equal(fiber_queue_get_until(&q, &item, 0), -EPERM);
    assert_int_equal(fiber_queue_join(&q), -EPERM);
    assert_int_equal(fiber_queue_join_until(&q, 0), -EPERM);
    assert_ptr_equal(item, ITEM(-1));
    assert_int_equal(fiber_queue_try_get(&q, &item), 0);
    assert_ptr_equal(item, ITEM(9));

    run_scenario(queue_misuse, &q);
    assert_int_equal(fiber_queue_len(&q), 0);
    assert_int_equal(fiber_queue_destroy(&q), 0);
    assert_int_equal(fiber_queue_destroy(&q), -EINVAL);
    assert_int_equal(fiber_queue_try_put(&q, ITEM(1)), -EINVAL);
}

/* ---- a queue across loops ------------------------------------------------ */

static void *drain(void *arg)
{
    fiber_queue_t *q = arg;
    void *item;
    int sum = 0;

    while (fiber_queue_get(q, &item) == 0)
        sum += NUMBER(item);
    CHECK_EQ(sum, 1 + 2 + 3);
    /* Left for the next loop. */
    CHECK_EQ(fiber_queue_try_put(q, ITEM(10)), -EPIPE);
    return NULL;
}

static void test_queue_filled_before_the_loop_is_drained_inside(void **state)
{
    fiber_queue_t q;
    void *item;
    (void)state;

    assert_int_equal(fiber_queue_init(&q, 3), 0);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(fiber_queue_try_put(&q, ITEM(i)), 0);
    assert_int_equal(fiber_queue_close(&q), 0);
    run_scenario(drain, &q);
    assert_int_equal(fiber_queue_try_get(&q, &item), -EPIPE);
    assert_int_equal(fiber_queue_destroy(&q), 0);
}

/* ---- deadlocks ----------------------------------------------------------- */

static void *put_into_full(void *arg)
{
    fiber_queue_t *q = arg;

    return fiber_queue_put(q, ITEM(2)) == -ECANCELED ? NULL : fiber_fail(-EIO);
}

static void *get_and_await_putter(void *arg)
{
    fiber_queue_t *q = arg;
    fiber_queue_t empty;
    void *item;

    CHECK_EQ(fiber_queue_init(&empty, 1), 0);
    CHECK_EQ(fiber_queue_try_put(q, ITEM(1)), 0);
    fiber_task_t *task = spawn_named(put_into_full, q, "putter");
    CHECK_EQ(fiber_yield(), 0);
    /* Nobody will ever put: main and the putter are stuck for good. */
    CHECK_EQ(fiber_queue_get(&empty, &item), -ECANCELED);
    int status = 1;
    CHECK_EQ(fiber_await(task, NULL, &status), -ECANCELED);
    CHECK_EQ(status, -ECANCELED);
    CHECK_EQ(fiber_queue_destroy(&empty), 0);
    return NULL;
}

static void test_deadlock_report_names_queue_waits(void **state)
{
    fiber_queue_t q;
    char report[16384];
    int status = 1;
    (void)state;

    assert_int_equal(fiber_queue_init(&q, 1), 0);
    int rc = run_virtual_capturing_stderr(get_and_await_putter, &q, &status, report,
                                          sizeof(report));
    assert_int_equal(rc, -EDEADLK);
    assert_int_equal(status, -ECANCELED);
    assert_contains(report, "deadlock");
    assert_reported_waiting(report, "main", "queue get");
    assert_reported_waiting(report, "putter", "queue put");
    assert_int_equal(fiber_queue_len(&q), 1);
    assert_int_equal(fiber_queue_destroy(&q), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_try_put_and_try_get_keep_fifo_order),
        cmocka_unit_test(test_queue_put_waits_while_full_get_while_empty),
        cmocka_unit_test(test_queue_waiting_getters_are_served_in_order),
        cmocka_unit_test(test_queue_waiting_putters_are_served_in_order),
        cmocka_unit_test(test_queue_several_producers_and_consumers),
        cmocka_unit_test(test_queue_deadlines),
        cmocka_unit_test(test_queue_cancelled_waiters_take_nothing),
        cmocka_unit_test(test_queue_item_handed_over_then_cancelled_is_not_lost),
        cmocka_unit_test(test_queue_close_wakes_every_waiter),
        cmocka_unit_test(test_queue_join_waits_until_every_item_is_done),
        cmocka_unit_test(test_queue_misuse_is_refused_and_changes_nothing),
        cmocka_unit_test(test_queue_filled_before_the_loop_is_drained_inside),
        cmocka_unit_test(test_deadlock_report_names_queue_waits),
    };

    return cmocka_run_group_tests_name(GROUP_NAME, tests, NULL, NULL);
}
