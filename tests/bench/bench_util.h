/*
 * bench_util.h - what libfiber's benchmark programs share: the clock,
 * medians, and peak-RSS readings.  The peer programs under peers/ stay
 * self-contained, so that each builds with nothing but its own toolchain.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BENCH_UNUSED __attribute__((unused))

BENCH_UNUSED static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

BENCH_UNUSED static double now_s(void)
{
    return (double)mono_ns() / 1e9;
}

BENCH_UNUSED static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

BENCH_UNUSED static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The median of n values (sorted in place); the mean of the middle two
 * when n is even. */
BENCH_UNUSED static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* VmHWM from /proc/self/status in KiB, or -1: the peak RSS of this process
 * image alone.  ru_maxrss also keeps the peak of whatever exec'd us (such
 * as libtool's wrapper shell), which can hide a small benchmark. */
BENCH_UNUSED static long vm_hwm_kib(void)
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

/* Write one byte per page, so that memory allocated for bookkeeping is
 * resident before a baseline is taken and does not count as the fibers'.
 * The writes are volatile so that they cannot be elided. */
BENCH_UNUSED static void touch_pages(void *p, size_t len)
{
    volatile unsigned char *b = p;

    for (size_t i = 0; i < len; i += 4096)
        b[i] = 0;
    if (len > 0)
        b[len - 1] = 0;
}

#endif
