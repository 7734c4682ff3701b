/*
 * fiber_workloads.c - libfiber's side of the peer comparison suite.
 *
 * Every program of the suite (this one and the peers under tests/bench/peers)
 * takes the same arguments and prints the same "key=value" lines, so that
 * tests/bench/run_suite.py can set the figures side by side:
 *
 *   fiber_workloads switch COUNT REPS    two fibers ping-pong with
 *                                        fiber_yield, COUNT switches a
 *                                        repetition:      switch_ns=
 *   fiber_workloads spawn COUNT REPS     spawn a task that returns at once
 *                                        and await it, COUNT times a
 *                                        repetition:      spawn_ns=
 *   fiber_workloads sleepers N MAX_S     N fibers sleep uniform [0, MAX_S]
 *                                        seconds, all at once: wall_s=
 *                                        spawn_ns= cpu_us= late_med_us=
 *                                        late_p90_us= late_p99_us=
 *                                        late_max_us= early= rss_kib=
 *                                        teardown_ms= busy_us=
 *
 * switch and spawn run one untimed warm-up, then REPS timed repetitions, and
 * print the median.  The sleepers' delays come from the same sequence in
 * every program of the suite (see sleep_delay_ns), so each sleeps exactly the
 * same delays.  Errors go to stderr with exit status 1.
 *
 * With FIBER_WORKLOADS_VIRTUAL=1, sleepers run on the virtual clock: no
 * fiber waits, time jumps to each deadline, and cpu_us is the work of a
 * sleep and its wake-up alone, without the loop's waiting (lateness is 0).
 * On the real clock, busy_us gives the same figure from one run: the time
 * from the last spawn to the end of the gather less the loop's idle time
 * (fiber_idle_ns), per sleeper.  cpu_us is larger where the loop waits on
 * the CPU for deadlines a few microseconds away, as it does at a million
 * deadlines a second.
 *
 * With FIBER_WORKLOADS_COMPACT=1 in the environment, every fiber but main
 * is a compact fiber (fiber_attr.compact).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "fiber.h"

#include "bench_util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define PROG "fiber_workloads"

/* The attributes of every spawn: compact fibers or not. */
static fiber_attr_t spawn_attr;

/* The most repetitions accepted; the median needs them all in memory. */
#define MAX_REPS 101

/* User plus system CPU time of the process so far, in ns. */
static int64_t cpu_ns(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/*
 * The delay of sleeper i, in ns: uniform in [0, max_ns], from the
 * multiplicative (golden ratio) sequence that every program of the suite
 * computes the same way, so that all of them sleep identical delays.
 */
static int64_t sleep_delay_ns(uint64_t i, int64_t max_ns)
{
    uint64_t x = (i + 1) * UINT64_C(0x9E3779B97F4A7C15);
    double u = (double)(x >> 11) / 9007199254740992.0; /* 2^53 */

    return (int64_t)(u * (double)max_ns);
}

static void fail(const char *what, int rc)
{
    fprintf(stderr, PROG ": %s: %s\n", what, strerror(-rc));
    exit(1);
}

/* ---- switch ------------------------------------------------------------ */

struct switch_run {
    long yields;  /* by each of the two fibers */
    int reps;
    double ns[MAX_REPS];
    int rc;
};

static void *yielder(void *arg)
{
    const struct switch_run *s = arg;

    for (long i = 0; i < s->yields; i++) {
        int rc = fiber_yield();
        if (rc < 0)
            return (void *)(intptr_t)rc;
    }
    return NULL;
}

static void *switch_main(void *arg)
{
    struct switch_run *s = arg;

    /* Repetition -1 warms caches and the stack pool. */
    for (int r = -1; r < s->reps && s->rc == 0; r++) {
        fiber_task_t *a, *b;
        void *ra = NULL, *rb = NULL;

        if ((s->rc = fiber_spawn(&a, yielder, s, &spawn_attr)) < 0)
            break;
        if ((s->rc = fiber_spawn(&b, yielder, s, &spawn_attr)) < 0) {
            fiber_await(a, NULL, NULL);
            break;
        }
        /* While main waits, the two fibers are all the loop has to run. */
        int64_t t0 = mono_ns();
        int rc1 = fiber_await(a, &ra, NULL);
        int rc2 = fiber_await(b, &rb, NULL);
        int64_t t = mono_ns() - t0;
        s->rc = rc1 < 0 ? rc1 : rc2 < 0 ? rc2 : (int)(intptr_t)(ra ? ra : rb);
        if (r >= 0)
            s->ns[r] = (double)t / (double)(2 * s->yields);
    }
    return NULL;
}

static void run_switch(long count, int reps)
{
    static struct switch_run s;
    s = (struct switch_run){.yields = count / 2 > 0 ? count / 2 : 1,
                            .reps = reps};
    const char *virtual_clock = getenv("FIBER_WORKLOADS_VIRTUAL");
    const fiber_options_t opts = {
        .clock = virtual_clock && strcmp(virtual_clock, "1") == 0
                     ? FIBER_CLOCK_VIRTUAL : FIBER_CLOCK_REAL,
    };

    int rc = fiber_run(switch_main, &s, &opts, NULL, NULL);
    if (rc == 0)
        rc = s.rc;
    if (rc < 0)
        fail("switch", rc);
    printf("switch_ns=%.3f\n", median(s.ns, reps));
}

/* ---- spawn ------------------------------------------------------------- */

struct spawn_run {
    long count;
    int reps;
    double ns[MAX_REPS];
    uint64_t sum;
    int rc;
};

static void *return_arg(void *arg)
{
    return arg;
}

static void *spawn_main(void *arg)
{
    struct spawn_run *s = arg;

    for (int r = -1; r < s->reps && s->rc == 0; r++) {
        int64_t t0 = mono_ns();
        for (long i = 0; i < s->count; i++) {
            fiber_task_t *t;
            void *res = NULL;
            int rc = fiber_spawn(&t, return_arg, (void *)(uintptr_t)(i + 1),
                                 &spawn_attr);
            if (rc == 0)
                rc = fiber_await(t, &res, NULL);
            if (rc < 0) {
                s->rc = rc;
                return NULL;
            }
            s->sum += (uintptr_t)res;
        }
        int64_t t = mono_ns() - t0;
        if (r >= 0)
            s->ns[r] = (double)t / (double)s->count;
    }
    return NULL;
}

static void run_spawn(long count, int reps)
{
    static struct spawn_run s;
    s = (struct spawn_run){.count = count, .reps = reps};
    const char *virtual_clock = getenv("FIBER_WORKLOADS_VIRTUAL");
    const fiber_options_t opts = {
        .clock = virtual_clock && strcmp(virtual_clock, "1") == 0
                     ? FIBER_CLOCK_VIRTUAL : FIBER_CLOCK_REAL,
    };

    int rc = fiber_run(spawn_main, &s, &opts, NULL, NULL);
    if (rc == 0)
        rc = s.rc;
    if (rc < 0)
        fail("spawn", rc);
    /* Each task returned i + 1: a lost result would show in the sum. */
    uint64_t n = (uint64_t)count;
    if (s.sum != (uint64_t)(reps + 1) * (n * (n + 1) / 2))
        fail("spawn: wrong results", -EPROTO);
    printf("spawn_ns=%.3f\n", median(s.ns, reps));
}

/* ---- sleepers ---------------------------------------------------------- */

struct sleepers_run {
    size_t n;
    int64_t *delay;  /* in: the delay; out: the lateness, both in ns */
    fiber_task_t **tasks;
    int64_t start;            /* when the first spawn began */
    int64_t spawn_ns;
    int64_t cpu_after_spawn;
    int64_t idle_after_spawn; /* the loop's idle time then */
    int64_t cpu_done;         /* once every fiber has been awaited */
    int64_t idle_done;
    int64_t done;
    int rc;
};

static void *sleeper(void *arg)
{
    int64_t *slot = arg;
    /* The loop's clock, which the sleep's deadline is counted from. */
    int64_t start = fiber_now_ns();
    int rc = fiber_sleep_ns(*slot);

    *slot = fiber_now_ns() - (start + *slot);
    return (void *)(intptr_t)rc;
}

static void *sleepers_main(void *arg)
{
    struct sleepers_run *s = arg;
    size_t spawned = 0;
    int rc = 0;

    s->start = mono_ns();
    while (spawned < s->n) {
        rc = fiber_spawn(&s->tasks[spawned], sleeper, &s->delay[spawned],
                         &spawn_attr);
        if (rc < 0)
            break;
        spawned++;
    }
    s->spawn_ns = mono_ns() - s->start;
    s->cpu_after_spawn = cpu_ns();
    s->idle_after_spawn = fiber_idle_ns();
    /* Even after a failed spawn, the fibers already started are awaited. */
    int grc = fiber_gather(s->tasks, spawned, NULL, NULL);
    /* The peers stop their clocks here too: the loop's teardown (handing
     * a million stacks back to the kernel) is reported on its own. */
    s->cpu_done = cpu_ns();
    s->idle_done = fiber_idle_ns();
    s->done = mono_ns();
    s->rc = rc < 0 ? rc : grc;
    return NULL;
}

static void run_sleepers(size_t n, double max_s)
{
    struct sleepers_run s = {.n = n};
    const char *virtual_clock = getenv("FIBER_WORKLOADS_VIRTUAL");
    const fiber_options_t opts = {
        .clock = virtual_clock && strcmp(virtual_clock, "1") == 0
                     ? FIBER_CLOCK_VIRTUAL : FIBER_CLOCK_REAL,
    };

    s.delay = malloc(n * sizeof(*s.delay));
    s.tasks = malloc(n * sizeof(*s.tasks));
    if (!s.delay || !s.tasks)
        fail("sleepers", -ENOMEM);
    touch_pages(s.tasks, n * sizeof(*s.tasks));
    for (size_t i = 0; i < n; i++)
        s.delay[i] = sleep_delay_ns(i, (int64_t)(max_s * 1e9));

    long base_kib = vm_hwm_kib();
    int rc = fiber_run(sleepers_main, &s, &opts, NULL, NULL);
    int64_t teardown = mono_ns() - s.done;
    int64_t wall = s.done - s.start;
    int64_t cpu = s.cpu_done - s.cpu_after_spawn;
    /* The loop's time at work after the spawns.  Under the virtual clock
     * its idle time is simulated: every real nanosecond was work. */
    int64_t busy = s.done - (s.start + s.spawn_ns);
    if (opts.clock == FIBER_CLOCK_REAL)
        busy -= s.idle_done - s.idle_after_spawn;
    long peak_kib = vm_hwm_kib();
    if (rc == 0)
        rc = s.rc;
    if (rc < 0)
        fail("sleepers", rc);

    size_t early = 0;
    for (size_t i = 0; i < n; i++)
        early += s.delay[i] < 0;
    qsort(s.delay, n, sizeof(*s.delay), cmp_i64);

    printf("wall_s=%.6f\n", (double)wall / 1e9);
    printf("spawn_ns=%.3f\n", (double)s.spawn_ns / (double)n);
    printf("cpu_us=%.4f\n", (double)cpu / 1e3 / (double)n);
    printf("late_med_us=%.3f\n", (double)s.delay[n / 2] / 1e3);
    /* Percentiles by nearest rank, the ceil(p n)-th smallest: the same
     * index in every program of the suite. */
    printf("late_p90_us=%.3f\n", (double)s.delay[(n * 9 + 9) / 10 - 1] / 1e3);
    printf("late_p99_us=%.3f\n", (double)s.delay[(n * 99 + 99) / 100 - 1] / 1e3);
    printf("late_max_us=%.3f\n", (double)s.delay[n - 1] / 1e3);
    printf("early=%zu\n", early);
    printf("rss_kib=%.4f\n", (double)(peak_kib - base_kib) / (double)n);
    printf("teardown_ms=%.3f\n", (double)teardown / 1e6);
    printf("busy_us=%.4f\n", (double)busy / 1e3 / (double)n);
    free(s.delay);
    free(s.tasks);
}

/* ---- main -------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: " PROG " switch COUNT REPS | spawn COUNT REPS | "
                    "sleepers N MAX_SECONDS\n");
    exit(2);
}

/* A positive count from argv, or a usage error. */
static long count_arg(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);

    if (errno || *end || end == s || v < 1 || v > max)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *compact = getenv("FIBER_WORKLOADS_COMPACT");
    spawn_attr.compact = compact && strcmp(compact, "1") == 0;
    if (strcmp(argv[1], "switch") == 0) {
        run_switch(count_arg(argv[2], 1000000000L),
                   (int)count_arg(argv[3], MAX_REPS));
    } else if (strcmp(argv[1], "spawn") == 0) {
        run_spawn(count_arg(argv[2], 1000000000L),
                  (int)count_arg(argv[3], MAX_REPS));
    } else if (strcmp(argv[1], "sleepers") == 0) {
        char *end;
        double max_s = strtod(argv[3], &end);
        if (*end || end == argv[3] || !(max_s >= 0 && max_s <= 3600))
            usage();
        run_sleepers((size_t)count_arg(argv[2], 100000000L), max_s);
    } else {
        usage();
    }
    return 0;
}
