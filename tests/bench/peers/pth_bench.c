/*
 * pth_bench.c - the suite's workloads done with GNU Pth, for comparison with
 * libfiber (tests/bench/fiber_workloads.c).
 *
 * Same arguments and output as fiber_workloads:
 *
 *   pth_bench switch COUNT REPS    two threads ping-pong with pth_yield
 *   pth_bench spawn COUNT REPS     pth_spawn a thread that returns at once,
 *                                  then pth_join it
 *   pth_bench sleepers N MAX_S     N threads pth_nap uniform [0, MAX_S] s
 *
 * Threads get Pth's default attributes (joinable, 64 KiB stack).
 * Build: cc -O2 pth_bench.c -lpth
 */
#define _POSIX_C_SOURCE 200809L

#include <pth.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define PROG "pth_bench"
#define MAX_REPS 101

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* User plus system CPU time of the process so far, in ns. */
static int64_t cpu_ns(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* VmHWM from /proc/self/status in KiB: the peak RSS of the process. */
static long vm_hwm_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* Fault in every page, so that bookkeeping arrays are resident before the
 * RSS baseline is taken. */
static void touch_pages(void *p, size_t len)
{
    volatile unsigned char *b = p;

    for (size_t i = 0; i < len; i += 4096)
        b[i] = 0;
    if (len > 0)
        b[len - 1] = 0;
}

/* Sleeper i's delay in ns, uniform in [0, max_ns], from the sequence every
 * program of the suite computes, so that all sleep the same delays. */
static int64_t sleep_delay_ns(uint64_t i, int64_t max_ns)
{
    uint64_t x = (i + 1) * UINT64_C(0x9E3779B97F4A7C15);
    double u = (double)(x >> 11) / 9007199254740992.0;

    return (int64_t)(u * (double)max_ns);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fail(const char *what)
{
    fprintf(stderr, PROG ": %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *yielder(void *arg)
{
    long yields = *(const long *)arg;

    for (long i = 0; i < yields; i++)
        pth_yield(NULL);
    return NULL;
}

static void run_switch(long count, int reps)
{
    long yields = count / 2 > 0 ? count / 2 : 1;
    double ns[MAX_REPS];

    /* Repetition -1 is an untimed warm-up. */
    for (int r = -1; r < reps; r++) {
        pth_t a = pth_spawn(PTH_ATTR_DEFAULT, yielder, &yields);
        pth_t b = pth_spawn(PTH_ATTR_DEFAULT, yielder, &yields);
        if (!a || !b)
            fail("pth_spawn");
        /* While main waits, the two threads are all Pth has to run. */
        int64_t t0 = mono_ns();
        if (!pth_join(a, NULL) || !pth_join(b, NULL))
            fail("pth_join");
        int64_t t = mono_ns() - t0;
        if (r >= 0)
            ns[r] = (double)t / (double)(2 * yields);
    }
    printf("switch_ns=%.3f\n", median(ns, reps));
}

static void *return_arg(void *arg)
{
    return arg;
}

static void run_spawn(long count, int reps)
{
    double ns[MAX_REPS];
    uint64_t sum = 0;

    for (int r = -1; r < reps; r++) {
        int64_t t0 = mono_ns();
        for (long i = 0; i < count; i++) {
            void *res = NULL;
            pth_t t = pth_spawn(PTH_ATTR_DEFAULT, return_arg,
                                (void *)(uintptr_t)(i + 1));
            if (!t)
                fail("pth_spawn");
            if (!pth_join(t, &res))
                fail("pth_join");
            sum += (uintptr_t)res;
        }
        int64_t t = mono_ns() - t0;
        if (r >= 0)
            ns[r] = (double)t / (double)count;
    }
    uint64_t n = (uint64_t)count;
    if (sum != (uint64_t)(reps + 1) * (n * (n + 1) / 2)) {
        errno = EPROTO;
        fail("spawn: wrong results");
    }
    printf("spawn_ns=%.3f\n", median(ns, reps));
}

/* In: the delay, rounded to the microseconds pth_nap takes; out: the
 * lateness; both in ns. */
static void *sleeper(void *arg)
{
    int64_t *slot = arg;
    int64_t start = mono_ns();

    pth_nap(pth_time((long)(*slot / 1000000000),
                     (long)(*slot % 1000000000 / 1000)));
    *slot = mono_ns() - (start + *slot);
    return NULL;
}

static void run_sleepers(size_t n, double max_s)
{
    int64_t *slot = malloc(n * sizeof(*slot));
    pth_t *threads = malloc(n * sizeof(*threads));

    if (!slot || !threads)
        fail("sleepers");
    touch_pages(threads, n * sizeof(*threads));
    for (size_t i = 0; i < n; i++)
        slot[i] = sleep_delay_ns(i, (int64_t)(max_s * 1e9)) / 1000 * 1000;

    long base_kib = vm_hwm_kib();
    int64_t t0 = mono_ns();
    for (size_t i = 0; i < n; i++)
        if (!(threads[i] = pth_spawn(PTH_ATTR_DEFAULT, sleeper, &slot[i])))
            fail("pth_spawn");
    int64_t spawn = mono_ns() - t0;
    int64_t cpu0 = cpu_ns();
    for (size_t i = 0; i < n; i++)
        if (!pth_join(threads[i], NULL))
            fail("pth_join");
    int64_t wall = mono_ns() - t0;
    int64_t cpu = cpu_ns() - cpu0;
    long peak_kib = vm_hwm_kib();

    size_t early = 0;
    for (size_t i = 0; i < n; i++)
        early += slot[i] < 0;
    qsort(slot, n, sizeof(*slot), cmp_i64);
    printf("wall_s=%.6f\n", (double)wall / 1e9);
    printf("spawn_ns=%.3f\n", (double)spawn / (double)n);
    printf("cpu_us=%.4f\n", (double)cpu / 1e3 / (double)n);
    printf("late_med_us=%.3f\n", (double)slot[n / 2] / 1e3);
    printf("late_p90_us=%.3f\n", (double)slot[(n * 9 + 9) / 10 - 1] / 1e3);
    printf("late_p99_us=%.3f\n", (double)slot[(n * 99 + 99) / 100 - 1] / 1e3);
    printf("late_max_us=%.3f\n", (double)slot[n - 1] / 1e3);
    printf("early=%zu\n", early);
    printf("rss_kib=%.4f\n", (double)(peak_kib - base_kib) / (double)n);
    free(slot);
    free(threads);
}

static void usage(void)
{
    fprintf(stderr, "usage: " PROG " switch COUNT REPS | spawn COUNT REPS | "
                    "sleepers N MAX_SECONDS\n");
    exit(2);
}

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
    if (!pth_init())
        fail("pth_init");
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
    pth_kill();
    return 0;
}
