/*
 * redis_bench.c - 50 fibers, each with its own hiredis connection, send
 * GET through the synchronous API (redisCommand) one after another, as
 * redis-benchmark -t get -c 50 -P 1 does with its event loop.  Prints
 * the requests per second.
 *
 *   redis_bench PORT [REQUESTS] [CLIENTS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "fiber-hook.h"

static int port;
static long requests = 100000, per_client;
static int clients = 50;

static void *client(void *arg)
{
    (void)arg;
    redisContext *c = redisConnect("127.0.0.1", port);

    if (!c || c->err)
        return fiber_fail(-EIO);
    for (long i = 0; i < per_client; i++) {
        redisReply *r = redisCommand(c, "GET key:__rand_int__");
        if (!r) {
            redisFree(c);
            return fiber_fail(-EIO);
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

static double seconds;

static void *bench(void *arg)
{
    fiber_task_t **tasks = calloc((size_t)clients, sizeof(*tasks));
    int *statuses = calloc((size_t)clients, sizeof(*statuses));

    (void)arg;
    if (!tasks || !statuses)
        return fiber_fail(-ENOMEM);
    int64_t t0 = mono_ns();
    for (int i = 0; i < clients; i++)
        if (fiber_spawn(&tasks[i], client, NULL, NULL) < 0)
            exit(1);
    fiber_gather(tasks, (size_t)clients, NULL, statuses);
    seconds = (double)(mono_ns() - t0) / 1e9;
    for (int i = 0; i < clients; i++)
        if (statuses[i] != 0) {
            fprintf(stderr, "redis_bench: a client failed\n");
            exit(1);
        }
    free(tasks);
    free(statuses);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: redis_bench PORT [REQUESTS] [CLIENTS]\n");
        return 2;
    }
    port = atoi(argv[1]);
    if (argc > 2)
        requests = atol(argv[2]);
    if (argc > 3)
        clients = atoi(argv[3]);
    if (requests <= 0 || clients <= 0 || !fiber_hook_installed()) {
        fprintf(stderr, "redis_bench: bad arguments, or libfiber-hook not in place\n");
        return 2;
    }
    per_client = requests / clients;
    const fiber_options_t opts = {.clock = FIBER_CLOCK_REAL};
    if (fiber_run(bench, NULL, &opts, NULL, NULL) != 0)
        return 1;
    printf("GET: %.2f requests per second\n", (double)(per_client * clients) / seconds);
    return 0;
}
