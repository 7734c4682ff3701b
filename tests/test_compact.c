/*
 * test_compact.c - compact fibers (fiber_attr.compact): fibers that share
 * one run stack and keep their frames in a buffer while another compact
 * fiber runs.
 *
 * What must hold: a compact fiber's locals, at any depth, survive every
 * switch; a program behaves exactly the same, event for event, whichever
 * of its fibers are compact; every wait works from and on compact fibers
 * (await, gather, cancel, wait_for, groups, queues, mutexes, wait_any,
 * thread jobs, a scope cancelled by another fiber); a sleeping compact fiber costs a small, bounded amount of
 * heap; dumps and backtraces still see a suspended compact fiber's frames;
 * bad attributes change nothing.
 *
 * Everything runs on the virtual clock.
 */
#define _GNU_SOURCE
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fiber.h"
#include "fiber_check.h"

static const fiber_options_t virtual_clock = {.clock = FIBER_CLOCK_VIRTUAL};

static void run_main(fiber_fn main, void *arg)
{
    failed_checks = 0;
    int status = 1;
    assert_int_equal(fiber_run(main, arg, &virtual_clock, NULL, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(failed_checks, 0);
}

/* Which of a program's fibers are compact. */
enum mode { NONE_COMPACT, ALL_COMPACT, EVERY_OTHER };

static enum mode mode;
static unsigned spawned;

/* Spawn fn(arg) as the mode says: counting spawns, every other one is
 * compact in EVERY_OTHER. */
static fiber_task_t *spawn(fiber_fn fn, void *arg)
{
    unsigned n = spawned++;
    fiber_attr_t attr = {
        .compact = mode == ALL_COMPACT || (mode == EVERY_OTHER && n % 2 == 0),
    };
    fiber_task_t *task = NULL;
    CHECK_EQ(fiber_spawn(&task, fn, arg, &attr), 0);
    return task;
}

/* ---- a trace of events, to compare runs ---------------------------------- */

static char *trace;
static size_t trace_len, trace_cap;
static int64_t trace_origin_ns;

__attribute__((format(printf, 1, 2)))
static void note(const char *fmt, ...)
{
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    n += snprintf(line + n, sizeof(line) - (size_t)n, " @%lld\n",
                  (long long)((fiber_now_ns() - trace_origin_ns) / 1000000));
    if (trace_len + (size_t)n + 1 > trace_cap) {
        trace_cap = (trace_cap + (size_t)n + 1) * 2;
        trace = realloc(trace, trace_cap);
        assert_non_null(trace);
    }
    memcpy(trace + trace_len, line, (size_t)n + 1);
    trace_len += (size_t)n;
}

static char *take_trace(void)
{
    char *t = trace ? trace : strdup("");
    trace = NULL;
    trace_len = trace_cap = 0;
    return t;
}

/* ---- locals survive switches --------------------------------------------- */

/* Fill a local array with a pattern of seed, switch, and check it: another
 * compact fiber ran on the same addresses meanwhile. */
static int recurse_and_check(unsigned seed, int depth)
{
    volatile uint32_t local[24];
    int bad = 0;

    for (unsigned i = 0; i < 24; i++)
        local[i] = seed * 2654435761u + i * 40503u + (unsigned)depth;
    if (depth > 0)
        bad += recurse_and_check(seed, depth - 1);
    else
        fiber_sleep(0.001 * (seed % 7));
    fiber_yield();
    for (unsigned i = 0; i < 24; i++)
        if (local[i] != seed * 2654435761u + i * 40503u + (unsigned)depth)
            bad++;
    return bad;
}

static void *deep_worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    /* Depths differ, so the fibers' frames overlap at different places. */
    int bad = recurse_and_check(seed, (int)(seed % 13));
    note("worker %u done bad=%d", seed, bad);
    return (void *)(intptr_t)bad;
}

static void *spawn_deep_workers(void *arg)
{
    (void)arg;
    enum { N = 200 };
    fiber_task_t *tasks[N];
    void *results[N];
    int statuses[N];

    spawned = 0;
    for (unsigned i = 0; i < N; i++)
        tasks[i] = spawn(deep_worker, (void *)(uintptr_t)(i + 1));
    CHECK_EQ(fiber_gather(tasks, N, results, statuses), 0);
    for (unsigned i = 0; i < N; i++) {
        CHECK_EQ(statuses[i], 0);
        CHECK_PTR(results[i], NULL);
    }
    return NULL;
}

static void test_locals_survive_switches_at_any_depth(void **state)
{
    (void)state;
    mode = ALL_COMPACT;
    run_main(spawn_deep_workers, NULL);
    free(take_trace());
    mode = EVERY_OTHER;
    run_main(spawn_deep_workers, NULL);
    free(take_trace());
}

/* ---- the same program, the same events ----------------------------------- */

struct shared {
    fiber_mutex_t mutex;
    fiber_queue_t queue;
    int counter;
};

static void *child(void *arg)
{
    int n = (int)(intptr_t)arg;
    note("child %d start", n);
    fiber_sleep(0.010 * (n % 4));
    note("child %d woke", n);
    fiber_yield();
    return (void *)(intptr_t)(n * n);
}

static void *sleeper_forever(void *arg)
{
    (void)arg;
    int rc = fiber_sleep(3600);
    note("sleeper %s", rc == -ECANCELED ? "cancelled" : "woke");
    return NULL;
}

static void *locker(void *arg)
{
    struct shared *s = arg;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(fiber_mutex_lock(&s->mutex), 0);
        int seen = s->counter;
        fiber_sleep(0.001);
        s->counter = seen + 1;
        note("locker %d", s->counter);
        CHECK_EQ(fiber_mutex_unlock(&s->mutex), 0);
    }
    return NULL;
}

static void *producer(void *arg)
{
    struct shared *s = arg;
    for (intptr_t i = 1; i <= 5; i++) {
        CHECK_EQ(fiber_queue_put(&s->queue, (void *)i), 0);
        note("put %d", (int)i);
    }
    fiber_queue_close(&s->queue);
    return NULL;
}

static void *consumer(void *arg)
{
    struct shared *s = arg;
    void *item;
    int rc;
    while ((rc = fiber_queue_get(&s->queue, &item)) == 0) {
        note("got %d", (int)(intptr_t)item);
        fiber_sleep(0.002);
    }
    CHECK_EQ(rc, -EPIPE);
    return NULL;
}

static void *group_member(void *arg)
{
    int n = (int)(intptr_t)arg;
    int rc = fiber_sleep(0.005 * n);
    note("member %d %s", n, rc == 0 ? "woke" : "cancelled");
    if (n == 2)
        fiber_fail(-EIO);
    return NULL;
}

static void *many_waits(void *arg)
{
    (void)arg;
    /* The shared state is on the heap: the rule of compact fibers. */
    struct shared *s = calloc(1, sizeof(*s));
    CHECK(s != NULL);
    CHECK_EQ(fiber_mutex_init(&s->mutex), 0);
    CHECK_EQ(fiber_queue_init(&s->queue, 2), 0);
    spawned = 0;

    /* await and gather */
    fiber_task_t *a = spawn(child, (void *)1);
    void *result = NULL;
    int status = 1;
    CHECK_EQ(fiber_await(a, &result, &status), 0);
    note("awaited %d", (int)(intptr_t)result);
    fiber_task_t *kids[4];
    void *results[4];
    for (int i = 0; i < 4; i++)
        kids[i] = spawn(child, (void *)(intptr_t)(i + 2));
    CHECK_EQ(fiber_gather(kids, 4, results, NULL), 0);
    note("gathered %d %d %d %d", (int)(intptr_t)results[0], (int)(intptr_t)results[1],
         (int)(intptr_t)results[2], (int)(intptr_t)results[3]);

    /* cancel and wait_for */
    fiber_task_t *z = spawn(sleeper_forever, NULL);
    fiber_sleep(0.001);
    CHECK_EQ(fiber_cancel(z), 0);
    CHECK_EQ(fiber_await(z, NULL, &status), 0);
    note("cancel status %d", status);
    z = spawn(sleeper_forever, NULL);
    CHECK_EQ(fiber_wait_for(z, 0.020, NULL, &status), -ETIMEDOUT);
    note("wait_for timed out");

    /* mutex and queue */
    fiber_task_t *l1 = spawn(locker, s), *l2 = spawn(locker, s);
    fiber_task_t *p = spawn(producer, s), *c = spawn(consumer, s);
    fiber_task_t *four[4] = {l1, l2, p, c};
    CHECK_EQ(fiber_gather(four, 4, NULL, NULL), 0);
    CHECK_EQ(s->counter, 6);

    /* a group whose second member fails */
    fiber_group_t *g = NULL;
    CHECK_EQ(fiber_group_create(&g), 0);
    for (int i = 1; i <= 3; i++) {
        fiber_attr_t attr = {.compact = mode == ALL_COMPACT ||
                                        (mode == EVERY_OTHER && i % 2 == 0)};
        CHECK_EQ(fiber_group_spawn(g, NULL, group_member, (void *)(intptr_t)i, &attr), 0);
    }
    CHECK_EQ(fiber_group_wait(g), -EIO);
    CHECK_EQ(fiber_group_destroy(g), -EIO);
    note("group done");

    /* wait_any */
    fiber_task_t *two[2] = {spawn(child, (void *)7), spawn(child, (void *)5)};
    int first = fiber_wait_any(two, 2, 1.0);
    note("first of two: %d", first);
    CHECK_EQ(fiber_gather(two, 2, NULL, NULL), 0);

    CHECK_EQ(fiber_queue_destroy(&s->queue), 0);
    CHECK_EQ(fiber_mutex_destroy(&s->mutex), 0);
    free(s);
    return NULL;
}

/* Run many_waits as main's child, so that it too is compact or not. */
static void *run_many_waits(void *arg)
{
    (void)arg;
    trace_origin_ns = fiber_now_ns();
    spawned = 0;
    fiber_task_t *t = spawn(many_waits, NULL);
    int status = 1;
    CHECK_EQ(fiber_await(t, NULL, &status), 0);
    CHECK_EQ(status, 0);
    return NULL;
}

static void test_same_events_whichever_fibers_are_compact(void **state)
{
    (void)state;
    mode = NONE_COMPACT;
    run_main(run_many_waits, NULL);
    char *plain = take_trace();
    assert_non_null(strstr(plain, "group done"));
    assert_non_null(strstr(plain, "got 5"));

    mode = ALL_COMPACT;
    run_main(run_many_waits, NULL);
    char *compact = take_trace();
    assert_string_equal(compact, plain);

    mode = EVERY_OTHER;
    run_main(run_many_waits, NULL);
    char *mixed = take_trace();
    assert_string_equal(mixed, plain);

    free(plain);
    free(compact);
    free(mixed);
}

/* ---- thread jobs from compact fibers ------------------------------------- */

static void *square_in_thread(void *arg)
{
    intptr_t n = *(intptr_t *)arg;
    return (void *)(n * n);
}

static void *thread_user(void *arg)
{
    intptr_t *n = malloc(sizeof(*n));
    CHECK(n != NULL);
    *n = (intptr_t)arg;
    void *result = NULL;
    /* Other compact fibers run on the shared stack meanwhile. */
    CHECK_EQ(fiber_to_thread(square_in_thread, n, &result), 0);
    CHECK_PTR(result, *n * *n);
    free(n);
    return NULL;
}

static void *yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        fiber_yield();
    return NULL;
}

static void *spawn_thread_users(void *arg)
{
    (void)arg;
    enum { N = 16 };
    fiber_task_t *tasks[N + 2];
    mode = ALL_COMPACT;
    spawned = 0;
    for (int i = 0; i < N; i++)
        tasks[i] = spawn(thread_user, (void *)(intptr_t)(i + 3));
    tasks[N] = spawn(yielder, NULL);
    tasks[N + 1] = spawn(yielder, NULL);
    int statuses[N + 2];
    CHECK_EQ(fiber_gather(tasks, N + 2, NULL, statuses), 0);
    for (int i = 0; i < N + 2; i++)
        CHECK_EQ(statuses[i], 0);
    return NULL;
}

static void test_thread_jobs_from_compact_fibers(void **state)
{
    (void)state;
    /* CI's AArch64 run is emulated by qemu-user, which cannot start
     * threads on every host. */
    if (getenv("FIBER_TEST_NO_THREADS"))
        skip();
    run_main(spawn_thread_users, NULL);
}

/* ---- memory -------------------------------------------------------------- */

/* Enough that the slabs compact tasks are carved from, up to 2 MiB each,
 * and the timer heap's room, reserved in powers of two, are counted in
 * full and still add only a few dozen bytes a sleeper. */
enum { SLEEPERS = 100000 };

/* The memory the process has resident, in bytes: compact tasks come from
 * slabs mapped on their own, and the timer heap too, which glibc's
 * figures for its heap leave out. */
static size_t resident_bytes(void)
{
    char line[128];
    size_t kib = 0;
    FILE *f = fopen("/proc/self/status", "r");

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %zu kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib * 1024;
}

static void *short_sleeper(void *arg)
{
    (void)arg;
    fiber_sleep(1.0);
    return NULL;
}

static size_t heap_per_sleeper;

static void *measure_sleepers(void *arg)
{
    (void)arg;
    fiber_task_t **tasks = malloc(SLEEPERS * sizeof(*tasks));
    CHECK(tasks != NULL);
    fiber_attr_t attr = {.compact = true};
    size_t before = resident_bytes();
    for (int i = 0; i < SLEEPERS; i++)
        CHECK_EQ(fiber_spawn(&tasks[i], short_sleeper, NULL, &attr), 0);
    /* Every one runs until its sleep, and its frames are saved as the
     * next one takes the stack. */
    fiber_sleep(0.5);
    size_t after = resident_bytes();
    heap_per_sleeper = (after - before) / SLEEPERS;
    CHECK_EQ(fiber_gather(tasks, SLEEPERS, NULL, NULL), 0);
    free(tasks);
    return NULL;
}

static void test_a_sleeping_compact_fiber_costs_little_heap(void **state)
{
    (void)state;
    /* ASan's and Valgrind's allocators do not keep glibc's figures. */
    size_t probe = mallinfo2().uordblks;
    void *volatile block = malloc(4096);
    bool counted = block && mallinfo2().uordblks >= probe + 4096;
    free(block);
    if (!counted)
        skip();
    run_main(measure_sleepers, NULL);
    print_message("heap per sleeping compact fiber: %zu bytes\n", heap_per_sleeper);
    /* The task and its saved frames, with the timer heap's share.  A
     * fiber with its own stack costs at least a 4 KiB page.  A task holds
     * the registers the switch saves: on AArch64 (d8-d15 and FPCR in
     * their ucontext_t record) 472 bytes more than on x86-64, and with the
     * glibc switch a whole ucontext_t, and frames one 64-byte step of the
     * frames buffer deeper (swapcontext's own, below the wait's). */
    assert_true(heap_per_sleeper > 0);
#if defined(FIBER_SWITCH_UCONTEXT) && defined(__x86_64__)
    assert_true(heap_per_sleeper <= 1024 + 832);
#elif defined(FIBER_SWITCH_UCONTEXT)
    assert_true(heap_per_sleeper <= 1024 + 4608);
#elif defined(__aarch64__)
    assert_true(heap_per_sleeper <= 1024 + 472);
#else
    assert_true(heap_per_sleeper <= 1024);
#endif
}

/* ---- dumps, backtraces, stack usage -------------------------------------- */

static void *compact_napper(void *arg)
{
    (void)arg;
    fiber_sleep(10);
    return NULL;
}

static void *look_from_compact(void *arg)
{
    fiber_task_t *napper = arg;
    void *frames[16];
    /* The napper's frames are off the shared stack while this runs. */
    CHECK_EQ(fiber_backtrace(napper, frames, 16), -EAGAIN);
    return NULL;
}

static bool frames_name(void *const frames[], int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        char buf[256];
        if (fiber_symbolize(frames[i], buf, sizeof(buf)) >= 0 && strstr(buf, name))
            return true;
    }
    return false;
}

static void *inspect_compact(void *arg)
{
    (void)arg;
    fiber_attr_t attr = {.compact = true};
    fiber_task_t *nappers[3], *looker;
    for (int i = 0; i < 3; i++)
        CHECK_EQ(fiber_spawn(&nappers[i], compact_napper, NULL, &attr), 0);
    fiber_sleep(0.001);
    CHECK_EQ(fiber_spawn(&looker, look_from_compact, nappers[0], &attr), 0);
    CHECK_EQ(fiber_await(looker, NULL, NULL), 0);

    /* From a fiber with its own stack, each napper's frames are brought
     * back for the unwinder, whichever is on the shared stack. */
    for (int i = 0; i < 3; i++) {
        void *frames[16];
        int n = fiber_backtrace(nappers[i], frames, 16);
        if (n == -ENOSYS)
            break; /* built without libunwind */
        /* Frame 0 is the call into libfiber; finding it takes the
         * napper's frames, as saved, back on the stack. */
        CHECK(n >= 1);
        CHECK(frames_name(frames, n, "compact_napper"));
    }

    size_t used = 0, size = 0;
    CHECK_EQ(fiber_stack_usage(nappers[1], &used, &size), 0);
    CHECK_EQ(size, FIBER_DEFAULT_STACK_SIZE);
    CHECK(used > 16 && used < 4096);

    char *text = NULL;
    size_t text_size = 0;
    FILE *out = open_memstream(&text, &text_size);
    CHECK(out != NULL);
    CHECK_EQ(fiber_dump(out), 4); /* main and three nappers */
    fclose(out);
    CHECK_CONTAINS(text, "(compact_napper)");
    CHECK_CONTAINS(text, "sleeping, wakes in");
    free(text);

    for (int i = 0; i < 3; i++) {
        CHECK_EQ(fiber_cancel(nappers[i]), 0);
        CHECK_EQ(fiber_await(nappers[i], NULL, NULL), 0);
    }
    return NULL;
}

static void test_dumps_and_backtraces_see_compact_fibers(void **state)
{
    (void)state;
    failed_checks = 0;
    /* Called from main's child, which has a stack of its own. */
    run_main(inspect_compact, NULL);
}

/* ---- cancelling a compact fiber's scope ---------------------------------- */

struct scoped {
    fiber_scope_t *scope; /* on the heap: other fibers cancel it */
    int rc;               /* what the sleep inside it returned */
    bool entered;
};

static void *sleep_in_scope(void *arg)
{
    struct scoped *sc = arg;
    /* An enclosing scope in this fiber's own frames, which the cancel
     * must read to see that no shield is in the way. */
    fiber_scope_t outer;
    CHECK_EQ(fiber_scope_enter_after(&outer, 100), 0);
    CHECK_EQ(fiber_scope_enter_after(sc->scope, 50), 0);
    sc->entered = true;
    sc->rc = fiber_sleep(10);
    fiber_scope_exit(sc->scope);
    CHECK_EQ(fiber_scope_exit(&outer), 0);
    return NULL;
}

static void *cancel_scope_from(void *arg)
{
    struct scoped *sc = arg;
    return (void *)(intptr_t)fiber_scope_cancel(sc->scope);
}

static void *scope_cancels(void *arg)
{
    (void)arg;
    fiber_attr_t compact = {.compact = true};
    struct scoped *sc = calloc(2, sizeof(*sc));
    fiber_scope_t *scopes = calloc(2, sizeof(*scopes));
    CHECK(sc && scopes);
    fiber_task_t *owners[2], *canceller;
    for (int i = 0; i < 2; i++) {
        sc[i].scope = &scopes[i];
        sc[i].rc = 1;
        CHECK_EQ(fiber_spawn(&owners[i], sleep_in_scope, &sc[i], &compact), 0);
    }
    fiber_sleep(0.001);
    CHECK(sc[0].entered && sc[1].entered);

    /* From a compact fiber: the suspended owner's frames are off the
     * stack the canceller runs on, so it is refused, changing nothing. */
    void *rc = NULL;
    CHECK_EQ(fiber_spawn(&canceller, cancel_scope_from, &sc[0], &compact), 0);
    CHECK_EQ(fiber_await(canceller, &rc, NULL), 0);
    CHECK_EQ((intptr_t)rc, -EBUSY);
    CHECK_EQ(fiber_scope_expired(sc[0].scope), 0);

    /* From fibers with stacks of their own (this one, and a child). */
    CHECK_EQ(fiber_scope_cancel(sc[0].scope), 0);
    CHECK_EQ(fiber_spawn(&canceller, cancel_scope_from, &sc[1], NULL), 0);
    CHECK_EQ(fiber_await(canceller, &rc, NULL), 0);
    CHECK_EQ((intptr_t)rc, 0);
    CHECK_EQ(fiber_gather(owners, 2, NULL, NULL), 0);
    CHECK_EQ(sc[0].rc, -ECANCELED);
    CHECK_EQ(sc[1].rc, -ECANCELED);
    free(scopes);
    free(sc);
    return NULL;
}

static void test_a_compact_fibers_scope_cancelled_from_elsewhere(void **state)
{
    (void)state;
    run_main(scope_cancels, NULL);
}

/* ---- bad attributes ------------------------------------------------------ */

static void *noop(void *arg)
{
    return arg;
}

static void *bad_attributes(void *arg)
{
    (void)arg;
    fiber_task_t *task = (fiber_task_t *)&task;
    fiber_attr_t attr = {.compact = true, .stack_size = 256 * 1024};
    CHECK_EQ(fiber_spawn(&task, noop, NULL, &attr), -EINVAL);
    CHECK_PTR(task, &task);
    attr.stack_size = 0;
    CHECK_EQ(fiber_spawn(&task, noop, (void *)5, &attr), 0);
    void *result = NULL;
    CHECK_EQ(fiber_await(task, &result, NULL), 0);
    CHECK_PTR(result, 5);
    return NULL;
}

static void test_compact_with_a_stack_size_is_refused(void **state)
{
    (void)state;
    run_main(bad_attributes, NULL);
}

/* ---- main compact-free loops keep no stack mapped ------------------------ */

static void *spawn_one_compact(void *arg)
{
    (void)arg;
    fiber_attr_t attr = {.compact = true};
    fiber_task_t *t;
    CHECK_EQ(fiber_spawn(&t, deep_worker, (void *)3, &attr), 0);
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    return NULL;
}

static void test_repeated_runs_free_everything(void **state)
{
    (void)state;
    /* Warm up: glibc's per-thread cache keeps some freed blocks counted as
     * in use.  From then on, the heap may move by a block or two, but a
     * leak of anything per run (a task is 800 bytes) would show 200 times
     * over.  Valgrind's leak check in CI looks closer. */
    for (int i = 0; i < 20; i++)
        run_main(spawn_one_compact, NULL);
    free(take_trace());
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < 200; i++)
        run_main(spawn_one_compact, NULL);
    free(take_trace());
    size_t after = mallinfo2().uordblks;
    assert_true(after < before + 16384);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locals_survive_switches_at_any_depth),
        cmocka_unit_test(test_same_events_whichever_fibers_are_compact),
        cmocka_unit_test(test_thread_jobs_from_compact_fibers),
        cmocka_unit_test(test_a_sleeping_compact_fiber_costs_little_heap),
        cmocka_unit_test(test_dumps_and_backtraces_see_compact_fibers),
        cmocka_unit_test(test_a_compact_fibers_scope_cancelled_from_elsewhere),
        cmocka_unit_test(test_compact_with_a_stack_size_is_refused),
        cmocka_unit_test(test_repeated_runs_free_everything),
    };
    return cmocka_run_group_tests_name("compact", tests, NULL, NULL);
}
