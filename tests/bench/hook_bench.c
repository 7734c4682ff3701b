/*
 * hook_bench.c - what libfiber-hook adds to a read or write that does not
 * have to wait: a fiber writes 64 bytes into a blocking socket and reads
 * them back from its peer, through the hooks (write(2) and read(2) as any
 * program calls them), next to the same pair made with the plain system
 * calls.  Prints both, in nanoseconds per write+read pair, and the ratio
 * (the median of several rounds, the two interleaved).
 *
 *   hook_bench [PAIRS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_util.h"
#include "fiber-hook.h"

#define ROUNDS 9

static long pairs = 200000;
static int sv[2];
static double plain_ns[ROUNDS], hooked_ns[ROUNDS];

static double run_plain(void)
{
    char buf[64] = {0};
    int64_t t0 = mono_ns();

    for (long i = 0; i < pairs; i++) {
        if (syscall(SYS_write, sv[1], buf, sizeof(buf)) != (long)sizeof(buf) ||
            syscall(SYS_read, sv[0], buf, sizeof(buf)) != (long)sizeof(buf))
            exit(1);
    }
    return (double)(mono_ns() - t0) / (double)pairs;
}

static double run_hooked(void)
{
    char buf[64] = {0};
    int64_t t0 = mono_ns();

    for (long i = 0; i < pairs; i++) {
        if (write(sv[1], buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
            read(sv[0], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
            exit(1);
    }
    return (double)(mono_ns() - t0) / (double)pairs;
}

static void *bench(void *arg)
{
    (void)arg;
    run_plain();   /* warm up both paths */
    run_hooked();
    for (int r = 0; r < ROUNDS; r++) {
        plain_ns[r] = run_plain();
        hooked_ns[r] = run_hooked();
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        pairs = atol(argv[1]);
    if (pairs <= 0 || !fiber_hook_installed()) {
        fprintf(stderr, "hook_bench: %s\n", pairs <= 0 ? "PAIRS must be positive"
                                                      : "libfiber-hook is not in place");
        return 2;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 1;
    const fiber_options_t opts = {.clock = FIBER_CLOCK_REAL};
    if (fiber_run(bench, NULL, &opts, NULL, NULL) != 0)
        return 1;
    qsort(plain_ns, ROUNDS, sizeof(double), cmp_double);
    qsort(hooked_ns, ROUNDS, sizeof(double), cmp_double);
    double p = plain_ns[ROUNDS / 2], h = hooked_ns[ROUNDS / 2];
    printf("hook_bench: write+read of 64 bytes on a ready socket, in a fiber "
           "(median of %d rounds of %ld)\n", ROUNDS, pairs);
    printf("  plain system calls      %8.1f ns\n", p);
    printf("  through libfiber-hook   %8.1f ns\n", h);
    printf("  ratio                   %8.3f (at most 1.2 expected)\n", h / p);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
