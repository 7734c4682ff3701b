/*
 * hook_preload_prog.c - a program built with libfiber but without
 * libfiber-hook, for tests/hook_preload.sh: n writer fibers each sleep
 * 0.2 s with nanosleep and write a byte into a socket, which a reader
 * fiber waits for in read(2).  Run alone it takes n times 0.2 s (each
 * nanosleep blocks the thread; the writers run first, so that no read
 * waits for a fiber that cannot run); with libfiber-hook preloaded, 0.2 s.
 * Prints the elapsed wall time in seconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"

struct job {
    int sv[2];
    int ok;
};

static void *writer(void *arg)
{
    struct job *j = arg;
    struct timespec ts = {0, 200 * 1000000};

    nanosleep(&ts, NULL);
    if (write(j->sv[1], "x", 1) != 1)
        return NULL;
    return NULL;
}

static void *reader(void *arg)
{
    struct job *j = arg;
    char c = 0;

    j->ok = read(j->sv[0], &c, 1) == 1 && c == 'x';
    return NULL;
}

static void *run(void *arg)
{
    int n = *(int *)arg, ok = 0;
    struct job *jobs = calloc((size_t)n, sizeof(*jobs));
    fiber_task_t **tasks = calloc((size_t)n * 2, sizeof(*tasks));

    for (int i = 0; i < n; i++) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, jobs[i].sv);
        fiber_spawn(&tasks[i], writer, &jobs[i], NULL);
    }
    for (int i = 0; i < n; i++)
        fiber_spawn(&tasks[n + i], reader, &jobs[i], NULL);
    fiber_gather(tasks, (size_t)n * 2, NULL, NULL);
    for (int i = 0; i < n; i++) {
        ok += jobs[i].ok;
        close(jobs[i].sv[0]);
        close(jobs[i].sv[1]);
    }
    free(jobs);
    free(tasks);
    return (void *)(intptr_t)(ok == n);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    void *ok = NULL;
    struct timespec t0, t1;
    const fiber_options_t opts = {.clock = FIBER_CLOCK_REAL};

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (fiber_run(run, &n, &opts, &ok, NULL) != 0 || !ok) {
        fprintf(stderr, "hook_preload_prog: a read failed\n");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.3f\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
