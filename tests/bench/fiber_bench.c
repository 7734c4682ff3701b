/*
 * fiber_bench.c - micro-benchmarks of libfiber.
 *
 *   1. The cost of a fiber switch (two fibers ping-ponging with fiber_yield),
 *      next to a bare glibc swapcontext ping-pong and the rt_sigprocmask
 *      system call that swapcontext makes each time.
 *   2. The cost of spawning and awaiting a task that returns at once, one at
 *      a time and in batches.
 *   3. Many fibers sleeping a random time on the real clock: wall time,
 *      wake-up lateness, early wake-ups and resident memory per fiber.
 *
 * Only the public API (fiber.h) and libc are used.  Timings use
 * CLOCK_MONOTONIC; each timed benchmark runs once untimed to warm caches and
 * free lists, then reports the median of its repetitions.  `--help` lists
 * the options; `--quick` is a smoke run for `make check`.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif

#include "fiber.h"

#include "bench_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define PROG "fiber_bench"

/* Timed repetitions per benchmark; the median is reported. */
#define REPS 7

/* A fixed seed, so that every run sleeps the same delays. */
#define SLEEP_SEED UINT64_C(20240601)

/* The most sleepers accepted: ten million fibers already need some 50 GiB
 * of resident memory. */
#define MAX_SLEEPERS 10000000UL

/* Sizes of one run.  --quick shrinks every count so that a smoke run ends
 * in a few milliseconds; the numbers it prints are then only indicative. */
struct config {
    bool quick;
    long switches;      /* fiber switches per repetition */
    long swaps;         /* swapcontext calls per repetition */
    long sigmasks;      /* rt_sigprocmask calls per repetition */
    long spawns;        /* spawn+await pairs per repetition */
    long batch;         /* tasks spawned before awaiting, per repetition */
    size_t sleepers;    /* fibers of benchmark 3 */
    double max_delay;   /* sleepers sleep uniformly in [0, max_delay] s */
    const char *csv_path;
};

static const struct config default_config = {
    .switches = 1000000,
    .swaps = 1000000,
    .sigmasks = 500000,
    .spawns = 100000,
    .batch = 10000,
    .sleepers = 100000,
    .max_delay = 1.0,
};

static const struct config quick_config = {
    .quick = true,
    .switches = 2000,
    .swaps = 2000,
    .sigmasks = 1000,
    .spawns = 1000,
    .batch = 100,
    .sleepers = 200,
    .max_delay = 0.02,
};

static FILE *csv;

/* ---- small helpers ----------------------------------------------------- */

/* Peak resident set size of the process so far, in KiB. */
static long max_rss_kib(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return ru.ru_maxrss;
}

/* Median, minimum and maximum of REPS timings (the array gets sorted). */
struct spread {
    double median, min, max;
};

static struct spread spread_of(double v[REPS])
{
    qsort(v, REPS, sizeof(v[0]), cmp_double);
    return (struct spread){v[REPS / 2], v[0], v[REPS - 1]};
}

/* The nearest-rank percentile p (0 < p <= 1) of a sorted array. */
static int64_t percentile(const int64_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);

    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static void die(const char *what, int rc)
{
    fprintf(stderr, PROG ": %s: %s\n", what, strerror(-rc));
    exit(1);
}

/* ---- output ------------------------------------------------------------ */

/* A CSV field: quoted if it holds a comma, a quote, a space or a line
 * break. */
static void csv_field(const char *s)
{
    if (strpbrk(s, ",\" \r\n") == NULL) {
        fputs(s, csv);
        return;
    }
    fputc('"', csv);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', csv);
        fputc(*s, csv);
    }
    fputc('"', csv);
}

static void csv_text_row(const char *bench, const char *metric,
                         const char *value, const char *unit)
{
    if (!csv)
        return;
    csv_field(bench);
    fputc(',', csv);
    csv_field(metric);
    fputc(',', csv);
    csv_field(value);
    fputc(',', csv);
    csv_field(unit);
    fputc('\n', csv);
}

static void section(const char *title)
{
    printf("\n%s\n", title);
}

/*
 * One result: printed as a table row (label, value with prec decimals,
 * unit, then a note built from fmt) and, with --csv, written as the row
 * bench,metric,value,unit.
 */
__attribute__((format(printf, 7, 8)))
static void row(const char *bench, const char *metric, const char *label,
                double value, int prec, const char *unit, const char *fmt, ...)
{
    char note[200] = "";

    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(note, sizeof(note), fmt, ap);
        va_end(ap);
    }
    printf("  %-40s %12.*f %-5s %s\n", label, prec, value, unit, note);

    if (csv) {
        char v[64];
        snprintf(v, sizeof(v), "%.*f", prec > 0 ? prec + 2 : 0, value);
        csv_text_row(bench, metric, v, unit);
    }
}

/* ---- the machine ------------------------------------------------------- */

/* The CPU model from /proc/cpuinfo ("model name" on x86, other keys on
 * other architectures), or "unknown". */
static void cpu_model(char *out, size_t size)
{
    static const char *const keys[] = {"model name", "Hardware", "cpu model",
                                       "Processor", "cpu"};
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");

    snprintf(out, size, "unknown");
    if (!f)
        return;
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        rewind(f);
        while (fgets(line, sizeof(line), f)) {
            size_t klen = strlen(keys[k]);
            char *colon = strchr(line, ':');
            if (!colon || strncmp(line, keys[k], klen) != 0)
                continue;
            /* The key is followed only by blanks up to the colon. */
            if (strspn(line + klen, " \t") != (size_t)(colon - line) - klen)
                continue;
            char *v = colon + 1 + strspn(colon + 1, " \t");
            v[strcspn(v, "\n")] = '\0';
            if (*v) {
                snprintf(out, size, "%s", v);
                fclose(f);
                return;
            }
        }
    }
    fclose(f);
}

/* The first line of a small text file, or "unknown". */
static void read_line(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "r");

    snprintf(out, size, "unknown");
    if (!f)
        return;
    if (fgets(out, (int)size, f))
        out[strcspn(out, "\n")] = '\0';
    else
        snprintf(out, size, "unknown");
    fclose(f);
}

/* CPUs this process may run on, as nproc(1) counts them. */
static long usable_cpus(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        return CPU_COUNT(&set);
    return sysconf(_SC_NPROCESSORS_ONLN);
}

static void print_header(const struct config *cfg)
{
    char model[256], clocksource[64], kernel[300], value[32];
    struct utsname u;
    long cpus = usable_cpus();
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);

    cpu_model(model, sizeof(model));
    read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource",
              clocksource, sizeof(clocksource));
    if (uname(&u) == 0)
        snprintf(kernel, sizeof(kernel), "%s %s %s", u.sysname, u.release,
                 u.machine);
    else
        snprintf(kernel, sizeof(kernel), "unknown");

    printf("libfiber %s benchmark%s\n", FIBER_VERSION,
           cfg->quick ? " (--quick smoke run: counts too small to be precise)"
                      : "");
    printf("  machine     : %ld CPUs (nproc), %s\n", cpus, model);
    printf("  kernel      : %s\n", kernel);
#if defined(__clang__) || !defined(__GNUC__)
    const char *cc = "";
#else
    const char *cc = "gcc ";
#endif
#ifdef __OPTIMIZE__
    const char *opt = "optimised";
#else
    const char *opt = "NOT optimised: timings are meaningless";
#endif
#ifdef __VERSION__
    printf("  compiler    : %s%s, %s\n", cc, __VERSION__, opt);
#else
    printf("  compiler    : %sunknown, %s\n", cc, opt);
#endif
    printf("  clock       : CLOCK_MONOTONIC (clocksource %s), timer slack %d ns\n",
           clocksource, slack);
    printf("  method      : each timing is the median of %d repetitions after "
           "one untimed warm-up;\n"
           "                benchmark 3 runs first, so that no other "
           "benchmark raises its RSS baseline\n", REPS);

    snprintf(value, sizeof(value), "%ld", cpus);
    csv_text_row("machine", "nproc", value, "cpus");
    csv_text_row("machine", "cpu_model", model, "text");
    csv_text_row("machine", "kernel", kernel, "text");
    csv_text_row("machine", "clocksource", clocksource, "text");
    snprintf(value, sizeof(value), "%d", slack);
    csv_text_row("machine", "timer_slack", value, "ns");
}

/* ---- 1. switching ------------------------------------------------------ */

/* Two fibers take turns: each fiber_yield hands the CPU to the other. */
struct pingpong {
    long yields;  /* yields made by each of the two fibers */
    int rc;       /* the first error, if any */
};

static void *pingpong_fiber(void *arg)
{
    struct pingpong *p = arg;

    for (long i = 0; i < p->yields; i++) {
        int rc = fiber_yield();
        if (rc < 0) {
            p->rc = rc;
            break;
        }
    }
    return NULL;
}

struct switch_bench {
    long switches;
    double ns[REPS];  /* ns per switch of each repetition */
    int rc;
};

static void *switch_main(void *arg)
{
    struct switch_bench *b = arg;
    struct pingpong p = {.yields = b->switches / 2};

    /* Repetition -1 is the warm-up. */
    for (int r = -1; r < REPS && b->rc == 0; r++) {
        fiber_task_t *t1, *t2;
        int rc = fiber_spawn(&t1, pingpong_fiber, &p, NULL);
        if (rc == 0) {
            rc = fiber_spawn(&t2, pingpong_fiber, &p, NULL);
            if (rc < 0)
                fiber_await(t1, NULL, NULL);
        }
        if (rc < 0) {
            b->rc = rc;
            break;
        }
        /* The pair starts running when main blocks here. */
        int64_t t0 = mono_ns();
        int rc1 = fiber_await(t1, NULL, NULL);
        int rc2 = fiber_await(t2, NULL, NULL);
        int64_t t = mono_ns() - t0;
        b->rc = rc1 < 0 ? rc1 : rc2 < 0 ? rc2 : p.rc;
        if (r >= 0)
            b->ns[r] = (double)t / (double)(2 * p.yields);
    }
    return NULL;
}

/* A bare ucontext ping-pong: the floor of what a swapcontext-based
 * library can reach. */
static ucontext_t uc_main, uc_peer;
static volatile unsigned long uc_peer_turns;

static void uc_peer_entry(void)
{
    for (;;) {
        uc_peer_turns++;
        swapcontext(&uc_peer, &uc_main);
    }
}

static void bench_swapcontext(long swaps, double ns[REPS])
{
    const size_t stack_size = 64 * 1024;
    void *stack = malloc(stack_size);
    long round_trips = swaps / 2;

    if (!stack)
        die("swapcontext benchmark", -ENOMEM);
    if (getcontext(&uc_peer) < 0)
        die("getcontext", -errno);
    uc_peer.uc_stack.ss_sp = stack;
    uc_peer.uc_stack.ss_size = stack_size;
    uc_peer.uc_link = NULL;
    makecontext(&uc_peer, uc_peer_entry, 0);

    unsigned long before = uc_peer_turns;
    for (int r = -1; r < REPS; r++) {
        int64_t t0 = mono_ns();
        for (long i = 0; i < round_trips; i++)
            swapcontext(&uc_main, &uc_peer);
        int64_t t = mono_ns() - t0;
        if (r >= 0)
            ns[r] = (double)t / (double)(2 * round_trips);
    }
    /* The peer must have run once per round trip, or nothing was measured. */
    if (uc_peer_turns - before != (unsigned long)(REPS + 1) * (unsigned long)round_trips)
        die("swapcontext benchmark", -EPROTO);
    /* The peer stays suspended for ever; nobody resumes it. */
    free(stack);
}

/* rt_sigprocmask on its own, as swapcontext issues it: set the mask and
 * save the old one. */
static void bench_sigprocmask(long calls, double ns[REPS])
{
    sigset_t cur, old;

    sigprocmask(SIG_SETMASK, NULL, &cur);
    for (int r = -1; r < REPS; r++) {
        int64_t t0 = mono_ns();
        for (long i = 0; i < calls; i++)
            if (sigprocmask(SIG_SETMASK, &cur, &old) < 0)
                die("sigprocmask", -errno);
        int64_t t = mono_ns() - t0;
        if (r >= 0)
            ns[r] = (double)t / (double)calls;
    }
}

static void run_switch(const struct config *cfg)
{
    const fiber_options_t opts = {.clock = FIBER_CLOCK_REAL};
    struct switch_bench b = {.switches = cfg->switches};
    double swap_ns[REPS], mask_ns[REPS];

    int rc = fiber_run(switch_main, &b, &opts, NULL, NULL);
    if (rc == 0)
        rc = b.rc;
    if (rc < 0)
        die("switch benchmark", rc);
    bench_swapcontext(cfg->swaps, swap_ns);
    bench_sigprocmask(cfg->sigmasks, mask_ns);

    struct spread fs = spread_of(b.ns);
    struct spread ss = spread_of(swap_ns);
    struct spread ms = spread_of(mask_ns);

    section("1. Fiber switch: two fibers ping-pong with fiber_yield");
    row("switch", "fiber_yield_ns", "fiber switch (fiber_yield)", fs.median, 1,
        "ns", "%ld switches/rep, min %.1f max %.1f", 2 * (cfg->switches / 2),
        fs.min, fs.max);
    row("switch", "swapcontext_ns", "glibc swapcontext (bare ping-pong)",
        ss.median, 1, "ns", "%ld calls/rep, min %.1f max %.1f",
        2 * (cfg->swaps / 2), ss.min, ss.max);
    row("switch", "sigprocmask_ns", "rt_sigprocmask syscall alone", ms.median,
        1, "ns", "%ld calls/rep, min %.1f max %.1f", cfg->sigmasks, ms.min,
        ms.max);
    row("switch", "ratio_fiber_to_swapcontext", "fiber switch / swapcontext",
        fs.median / ss.median, 2, "x", "%s", "one fiber_yield vs one bare swapcontext");
    row("switch", "sigprocmask_share_of_swapcontext",
        "rt_sigprocmask share of swapcontext", 100.0 * ms.median / ss.median, 0,
        "%", "%s", "the system call swapcontext makes every time");
    fflush(stdout);
}

/* ---- 2. spawn + await -------------------------------------------------- */

static void *return_arg(void *arg)
{
    return arg;
}

struct spawn_bench {
    long spawns, batch;
    fiber_task_t **tasks;
    void **results;
    double one[REPS];          /* ns per spawn+await, one task at a time */
    double batch_await[REPS];  /* ns per task, spawn batch then await each */
    double batch_gather[REPS]; /* ns per task, spawn batch then gather */
    double cold_batch;         /* ns per task of the first batch */
    uintptr_t sum;             /* of the results, checked afterwards */
    int rc;
};

/* Spawn b->batch tasks into b->tasks.  Returns 0 or a negative errno. */
static int spawn_batch(struct spawn_bench *b)
{
    for (long i = 0; i < b->batch; i++) {
        int rc = fiber_spawn(&b->tasks[i], return_arg, (void *)(uintptr_t)(i + 1),
                             NULL);
        if (rc < 0) {
            /* Reap what was spawned, so that the loop ends cleanly. */
            while (i-- > 0)
                fiber_await(b->tasks[i], NULL, NULL);
            return rc;
        }
    }
    return 0;
}

static void *spawn_main(void *arg)
{
    struct spawn_bench *b = arg;
    int rc = 0;

    /* One at a time: spawn, then await at once. */
    for (int r = -1; r < REPS && rc == 0; r++) {
        int64_t t0 = mono_ns();
        for (long i = 0; i < b->spawns && rc == 0; i++) {
            fiber_task_t *t;
            void *res = NULL;
            int st = 0;
            rc = fiber_spawn(&t, return_arg, (void *)(uintptr_t)(i + 1), NULL);
            if (rc == 0)
                rc = fiber_await(t, &res, &st);
            if (rc == 0)
                rc = st;
            b->sum += (uintptr_t)res;
        }
        int64_t t = mono_ns() - t0;
        if (r >= 0)
            b->one[r] = (double)t / (double)b->spawns;
    }

    /* A batch, then await each.  The first batch maps fresh stacks. */
    for (int r = -1; r < REPS && rc == 0; r++) {
        int64_t t0 = mono_ns();
        rc = spawn_batch(b);
        for (long i = 0; i < b->batch && rc == 0; i++) {
            void *res = NULL;
            int st = 0;
            rc = fiber_await(b->tasks[i], &res, &st);
            if (rc == 0)
                rc = st;
            b->sum += (uintptr_t)res;
        }
        int64_t t = mono_ns() - t0;
        if (r >= 0)
            b->batch_await[r] = (double)t / (double)b->batch;
        else
            b->cold_batch = (double)t / (double)b->batch;
    }

    /* A batch, then one fiber_gather. */
    for (int r = -1; r < REPS && rc == 0; r++) {
        int64_t t0 = mono_ns();
        rc = spawn_batch(b);
        if (rc == 0)
            rc = fiber_gather(b->tasks, (size_t)b->batch, b->results, NULL);
        int64_t t = mono_ns() - t0;
        for (long i = 0; i < b->batch && rc == 0; i++)
            b->sum += (uintptr_t)b->results[i];
        if (r >= 0)
            b->batch_gather[r] = (double)t / (double)b->batch;
    }
    b->rc = rc;
    return NULL;
}

static void run_spawn(const struct config *cfg)
{
    const fiber_options_t opts = {.clock = FIBER_CLOCK_REAL};
    struct spawn_bench b = {.spawns = cfg->spawns, .batch = cfg->batch};

    b.tasks = calloc((size_t)b.batch, sizeof(*b.tasks));
    b.results = calloc((size_t)b.batch, sizeof(*b.results));
    if (!b.tasks || !b.results)
        die("spawn benchmark", -ENOMEM);

    int rc = fiber_run(spawn_main, &b, &opts, NULL, NULL);
    if (rc == 0)
        rc = b.rc;
    if (rc < 0)
        die("spawn benchmark", rc);

    /* Every task returned its argument i + 1: check that none was lost. */
    uintptr_t n1 = (uintptr_t)cfg->spawns, n2 = (uintptr_t)cfg->batch;
    uintptr_t want = (uintptr_t)(REPS + 1) *
                     (n1 * (n1 + 1) / 2 + 2 * (n2 * (n2 + 1) / 2));
    if (b.sum != want)
        die("spawn benchmark: wrong results", -EPROTO);

    struct spread one = spread_of(b.one);
    struct spread ba = spread_of(b.batch_await);
    struct spread bg = spread_of(b.batch_gather);

    section("2. Spawn + await of a task that returns at once");
    row("spawn", "spawn_await_one_ns", "spawn 1, await it (loop)", one.median, 1,
        "ns", "%ld tasks/rep, min %.1f max %.1f", cfg->spawns, one.min, one.max);
    row("spawn", "spawn_batch_await_ns", "spawn batch, await each", ba.median, 1,
        "ns", "per task, batch %ld, min %.1f max %.1f", cfg->batch, ba.min,
        ba.max);
    row("spawn", "spawn_batch_gather_ns", "spawn batch, fiber_gather", bg.median,
        1, "ns", "per task, batch %ld, min %.1f max %.1f", cfg->batch, bg.min,
        bg.max);
    row("spawn", "spawn_batch_cold_ns", "first batch (fresh stacks)",
        b.cold_batch, 1, "ns", "per task, batch %ld, one run: mmap, guard pages, "
        "page faults", cfg->batch);
    fflush(stdout);

    free(b.tasks);
    free(b.results);
}

/* ---- 3. many sleepers -------------------------------------------------- */

struct sleeper {
    int64_t delay_ns;     /* drawn before the run */
    int64_t start_ns;     /* when the fiber first ran */
    int64_t deadline_ns;  /* start_ns + delay_ns */
    int64_t woke_ns;      /* read right after fiber_sleep_until returned */
    int rc;
};

struct sleep_bench {
    size_t n;
    struct sleeper *s;
    fiber_task_t **tasks;
    int64_t spawn_ns;  /* time main took to spawn all n */
    int rc;
};

static void *sleeper_fiber(void *arg)
{
    struct sleeper *s = arg;

    s->start_ns = fiber_now_ns();
    s->deadline_ns = s->start_ns + s->delay_ns;
    s->rc = fiber_sleep_until(s->deadline_ns);
    s->woke_ns = fiber_now_ns();
    return NULL;
}

static void *sleep_main(void *arg)
{
    struct sleep_bench *b = arg;
    size_t spawned = 0;
    int rc = 0;

    int64_t t0 = mono_ns();
    while (spawned < b->n && rc == 0) {
        rc = fiber_spawn(&b->tasks[spawned], sleeper_fiber, &b->s[spawned], NULL);
        if (rc == 0)
            spawned++;
    }
    b->spawn_ns = mono_ns() - t0;
    /* The sleepers start when main blocks here, all in one round. */
    int grc = fiber_gather(b->tasks, spawned, NULL, NULL);
    b->rc = rc < 0 ? rc : grc;
    return NULL;
}

/* Results of benchmark 3, printed after the others have run. */
struct sleep_result {
    size_t n;
    double max_delay;
    double wall_s, spawn_ms, startup_ms;
    double burst_ms;    /* first start to the last wake-up of in_startup */
    int64_t late_median, late_p99, late_max;
    size_t early;
    size_t in_startup;  /* deadlines that fell before the last fiber started */
    int64_t steady_median, steady_p99, steady_max;
    size_t steady_n;    /* deadlines after burst_ms */
    long base_kib, peak_kib;   /* ru_maxrss */
    long base_hwm, peak_hwm;   /* VmHWM */
};

static void run_sleepers(const struct config *cfg, struct sleep_result *res)
{
    const fiber_options_t opts = {.clock = FIBER_CLOCK_REAL};
    struct sleep_bench b = {.n = cfg->sleepers};
    size_t n = b.n;

    b.s = malloc(n * sizeof(*b.s));
    b.tasks = malloc(n * sizeof(*b.tasks));
    int64_t *late = malloc(n * sizeof(*late));
    int64_t *steady = malloc(n * sizeof(*steady));
    if (!b.s || !b.tasks || !late || !steady)
        die("sleeper benchmark", -ENOMEM);
    touch_pages(b.tasks, n * sizeof(*b.tasks));
    touch_pages(late, n * sizeof(*late));
    touch_pages(steady, n * sizeof(*steady));

    fiber_seed(SLEEP_SEED);
    for (size_t i = 0; i < n; i++) {
        double d = fiber_uniform(0.0, cfg->max_delay);
        b.s[i] = (struct sleeper){.delay_ns = (int64_t)llround(d * 1e9)};
    }

    /* ru_maxrss is a high-water mark: take the baseline now, with every
     * array of the benchmark already resident. */
    long base_kib = max_rss_kib(), base_hwm = vm_hwm_kib();
    int64_t t0 = mono_ns();
    int rc = fiber_run(sleep_main, &b, &opts, NULL, NULL);
    int64_t wall = mono_ns() - t0;
    long peak_kib = max_rss_kib(), peak_hwm = vm_hwm_kib();
    if (rc == 0)
        rc = b.rc;
    if (rc < 0)
        die("sleeper benchmark", rc);

    int64_t first_start = INT64_MAX, last_start = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (b.s[i].rc < 0)
            die("fiber_sleep_until", b.s[i].rc);
        if (b.s[i].start_ns < first_start)
            first_start = b.s[i].start_ns;
        if (b.s[i].start_ns > last_start)
            last_start = b.s[i].start_ns;
    }

    /* Timers are only looked at between rounds, and every sleeper starts
     * in one round: a deadline that comes before the last fiber has started
     * waits for that round, then for the burst of wake-ups it causes.  The
     * fibers due after that burst show the timer path alone ("steady"). */
    size_t early = 0, in_startup = 0, ns = 0;
    int64_t burst_end = last_start;
    for (size_t i = 0; i < n; i++) {
        if (b.s[i].deadline_ns < last_start) {
            in_startup++;
            if (b.s[i].woke_ns > burst_end)
                burst_end = b.s[i].woke_ns;
        }
    }
    for (size_t i = 0; i < n; i++) {
        late[i] = b.s[i].woke_ns - b.s[i].deadline_ns;
        if (late[i] < 0)
            early++;
        if (b.s[i].deadline_ns >= burst_end)
            steady[ns++] = late[i];
    }
    qsort(late, n, sizeof(*late), cmp_i64);
    qsort(steady, ns, sizeof(*steady), cmp_i64);

    *res = (struct sleep_result){
        .n = n,
        .max_delay = cfg->max_delay,
        .wall_s = (double)wall / 1e9,
        .spawn_ms = (double)b.spawn_ns / 1e6,
        .startup_ms = (double)(last_start - first_start) / 1e6,
        .burst_ms = (double)(burst_end - first_start) / 1e6,
        .late_median = percentile(late, n, 0.5),
        .late_p99 = percentile(late, n, 0.99),
        .late_max = late[n - 1],
        .early = early,
        .in_startup = in_startup,
        .steady_n = ns,
        .steady_median = ns ? percentile(steady, ns, 0.5) : 0,
        .steady_p99 = ns ? percentile(steady, ns, 0.99) : 0,
        .steady_max = ns ? steady[ns - 1] : 0,
        .base_kib = base_kib,
        .peak_kib = peak_kib,
        .base_hwm = base_hwm,
        .peak_hwm = peak_hwm,
    };

    free(b.s);
    free(b.tasks);
    free(late);
    free(steady);
}

static void print_sleepers(const struct sleep_result *r)
{
    char title[160];
    double per_fiber = (double)(r->peak_kib - r->base_kib) / (double)r->n;

    snprintf(title, sizeof(title),
             "3. %zu fibers sleep uniform [0, %g] s on the real clock "
             "(fiber_sleep_until)", r->n, r->max_delay);
    section(title);
    row("sleepers", "wall_time_s", "total wall time (fiber_run)", r->wall_s, 3,
        "s", "incl. spawning %zu fibers in %.1f ms", r->n, r->spawn_ms);
    row("sleepers", "startup_round_ms", "start-up round", r->startup_ms, 1, "ms",
        "first to last fiber's first run");
    row("sleepers", "lateness_median_us", "wake-up lateness median",
        (double)r->late_median / 1e3, 1, "us", "actual wake - deadline");
    row("sleepers", "lateness_p99_us", "wake-up lateness p99",
        (double)r->late_p99 / 1e3, 1, "us", "%s", "");
    row("sleepers", "lateness_max_us", "wake-up lateness max",
        (double)r->late_max / 1e3, 1, "us", "%zu deadlines fell inside the "
        "start-up round", r->in_startup);
    row("sleepers", "lateness_steady_median_us", "  after start-up: median",
        (double)r->steady_median / 1e3, 1, "us", "%zu fibers due after the "
        "start-up burst (%.1f ms)", r->steady_n, r->burst_ms);
    row("sleepers", "lateness_steady_p99_us", "  after start-up: p99",
        (double)r->steady_p99 / 1e3, 1, "us", "%s", "");
    row("sleepers", "lateness_steady_max_us", "  after start-up: max",
        (double)r->steady_max / 1e3, 1, "us", "%s", "");
    row("sleepers", "early_wakeups", "early wake-ups", (double)r->early, 0,
        "count", "%s", r->early ? "FAIL: must be 0" : "(must be 0)");
    row("sleepers", "rss_per_fiber_kib", "peak RSS per fiber", per_fiber, 2,
        "KiB", "ru_maxrss: (peak %ld - baseline %ld KiB) / %zu%s", r->peak_kib,
        r->base_kib, r->n, r->peak_kib > r->base_kib ? "" :
        "; masked by an older peak");
    if (r->base_hwm >= 0 && r->peak_hwm >= 0)
        row("sleepers", "hwm_per_fiber_kib", "  cross-check: VmHWM per fiber",
            (double)(r->peak_hwm - r->base_hwm) / (double)r->n, 2, "KiB",
            "/proc/self/status: (%ld - %ld KiB) / %zu", r->peak_hwm,
            r->base_hwm, r->n);
    fflush(stdout);
}

/* ---- main -------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " [--quick] [--sleepers N] [--csv FILE] [--help]\n"
            "\n"
            "Micro-benchmarks of libfiber: fiber switch vs swapcontext,\n"
            "spawn+await, and N fibers sleeping a random delay on the real clock.\n"
            "\n"
            "  --quick       tiny counts and delays for a smoke run (well under 1 s)\n"
            "  --sleepers N  fibers in the sleep benchmark (default 100000;\n"
            "                1 to %lu)\n"
            "  --csv FILE    also write rows benchmark,metric,value,unit to FILE\n"
            "  --help        print this help and exit\n"
            "\n"
            "Exit status: 0; 1 if a benchmark failed or a fiber woke early;\n"
            "2 for bad arguments.\n",
            MAX_SLEEPERS);
}

static void bad_usage(const char *msg, const char *arg)
{
    fprintf(stderr, PROG ": %s '%s' (try --help)\n", msg, arg);
    exit(2);
}

/* The value of an option given as "--opt VALUE" or "--opt=VALUE", or NULL
 * if argv[*i] is not that option. */
static const char *option_value(int argc, char **argv, int *i, const char *opt)
{
    size_t len = strlen(opt);
    const char *a = argv[*i];

    if (strncmp(a, opt, len) != 0)
        return NULL;
    if (a[len] == '=')
        return a + len + 1;
    if (a[len] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        bad_usage("missing value after", opt);
    return argv[++*i];
}

static struct config parse_args(int argc, char **argv)
{
    const char *sleepers = NULL, *csv_path = NULL;
    bool quick = false;

    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if ((v = option_value(argc, argv, &i, "--sleepers"))) {
            sleepers = v;
        } else if ((v = option_value(argc, argv, &i, "--csv"))) {
            if (*v == '\0')
                bad_usage("empty file name for", "--csv");
            csv_path = v;
        } else {
            bad_usage("unknown argument", argv[i]);
        }
    }

    struct config cfg = quick ? quick_config : default_config;
    cfg.csv_path = csv_path;
    if (sleepers) {
        char *end, msg[64];
        errno = 0;
        /* Digits only: strtoull alone would take "-1", " 7" or "+7". */
        unsigned long long n = strtoull(sleepers, &end, 10);
        if (!isdigit((unsigned char)sleepers[0]) || errno || *end || n < 1 ||
            n > MAX_SLEEPERS) {
            snprintf(msg, sizeof(msg), "--sleepers wants a count from 1 to %lu, not",
                     MAX_SLEEPERS);
            bad_usage(msg, sleepers);
        }
        cfg.sleepers = (size_t)n;
    }
    return cfg;
}

int main(int argc, char **argv)
{
    struct config cfg = parse_args(argc, argv);
    struct sleep_result sleep_res;

    if (cfg.csv_path) {
        csv = fopen(cfg.csv_path, "w");
        if (!csv) {
            fprintf(stderr, PROG ": cannot write %s: %s\n", cfg.csv_path,
                    strerror(errno));
            return 1;
        }
        fputs("benchmark,metric,value,unit\n", csv);
    }

    print_header(&cfg);
    fflush(stdout);

    /* The sleepers first: ru_maxrss only ever grows, so any benchmark run
     * before them would raise the baseline and hide their memory. */
    run_sleepers(&cfg, &sleep_res);
    run_switch(&cfg);
    run_spawn(&cfg);
    print_sleepers(&sleep_res);

    if (csv && (ferror(csv) | fclose(csv))) {
        fprintf(stderr, PROG ": error writing %s\n", cfg.csv_path);
        return 1;
    }
    return sleep_res.early ? 1 : 0;
}
