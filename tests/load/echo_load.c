/*
 * echo_load - load for a line echo server: open N TCP connections to it
 * (all open at once), then on each send L lines one after another, each
 * waiting for its echo, and check that every byte comes back unchanged.
 *
 *   echo_load PORT [CONNECTIONS [LINES [TIMEOUT_S]]]
 *
 * Prints one "key=value" line per measure, for tests/load/echo_load.sh,
 * and exits 0 only if every line came back.  The whole run is bounded by
 * TIMEOUT_S seconds (default 120).  Not part of 'make check'.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fiber.h"

#define NS_PER_S 1000000000.0
#define LINE_MAX_LEN 128

struct load {
    char address[64];
    size_t connections, lines;
    size_t timeout_s;
    int64_t deadline;
    int *fds;
    size_t connected;
    size_t lines_ok, bytes_sent, bytes_received, failures;
    int first_error;
    double connect_s, exchange_s;
};

struct client {
    struct load *load;
    size_t index;
};

static void fail(struct load *l, int error)
{
    l->failures++;
    if (l->first_error == 0)
        l->first_error = error;
}

/* Send each line and wait for its echo before the next. */
static void *exchange(void *arg)
{
    struct client *c = arg;
    struct load *l = c->load;
    int fd = l->fds[c->index];
    char line[LINE_MAX_LEN], echo[LINE_MAX_LEN];

    for (size_t i = 0; i < l->lines; i++) {
        int len = snprintf(line, sizeof(line),
                           "connection %zu line %zu: the quick brown fox\n",
                           c->index, i);
        ssize_t n = fiber_write_until(fd, line, (size_t)len, l->deadline);
        if (n != len) {
            fail(l, n < 0 ? (int)n : -EIO);
            return NULL;
        }
        l->bytes_sent += (size_t)n;
        size_t got = 0;
        while (got < (size_t)len) {
            n = fiber_read_until(fd, echo + got, (size_t)len - got, l->deadline);
            if (n <= 0) {
                fail(l, n < 0 ? (int)n : -ECONNRESET);
                return NULL;
            }
            got += (size_t)n;
        }
        l->bytes_received += got;
        if (memcmp(line, echo, (size_t)len) != 0) {
            fail(l, -EBADMSG);
            return NULL;
        }
        l->lines_ok++;
    }
    return NULL;
}

static void *run_load(void *arg)
{
    struct load *l = arg;
    int64_t start = fiber_now_ns();

    l->deadline = start + (int64_t)((double)l->timeout_s * NS_PER_S);
    /* One at a time: the server's accept queue never overflows. */
    for (; l->connected < l->connections; l->connected++) {
        int fd = fiber_tcp_dial_until(l->address, l->deadline);
        if (fd < 0) {
            fail(l, fd);
            break;
        }
        l->fds[l->connected] = fd;
    }
    int64_t connected = fiber_now_ns();
    l->connect_s = (double)(connected - start) / NS_PER_S;

    struct client *clients = calloc(l->connected, sizeof(*clients));
    fiber_task_t **tasks = calloc(l->connected, sizeof(*tasks));
    size_t spawned = 0;
    if (clients && tasks) {
        for (; spawned < l->connected; spawned++) {
            clients[spawned] = (struct client){l, spawned};
            if (fiber_spawn(&tasks[spawned], exchange, &clients[spawned], NULL) < 0) {
                fail(l, -ENOMEM);
                break;
            }
        }
        fiber_gather(tasks, spawned, NULL, NULL);
    } else {
        fail(l, -ENOMEM);
    }
    l->exchange_s = (double)(fiber_now_ns() - connected) / NS_PER_S;
    for (size_t i = 0; i < l->connected; i++)
        fiber_close(l->fds[i]);
    free(clients);
    free(tasks);
    return NULL;
}

static size_t number_arg(int argc, char **argv, int i, size_t fallback)
{
    if (argc <= i)
        return fallback;
    char *end;
    unsigned long long v = strtoull(argv[i], &end, 10);
    if (*end || end == argv[i] || v == 0) {
        fprintf(stderr, "echo_load: bad number '%s'\n", argv[i]);
        exit(2);
    }
    return (size_t)v;
}

int main(int argc, char **argv)
{
    struct load l = {0};

    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: echo_load PORT [CONNECTIONS [LINES [TIMEOUT_S]]]\n");
        return 2;
    }
    snprintf(l.address, sizeof(l.address), "127.0.0.1:%s", argv[1]);
    l.connections = number_arg(argc, argv, 2, 10000);
    l.lines = number_arg(argc, argv, 3, 100);
    l.timeout_s = number_arg(argc, argv, 4, 120);

    /* One descriptor per connection, and a few more. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    l.fds = calloc(l.connections, sizeof(*l.fds));
    if (!l.fds)
        return 1;
    const fiber_options_t opts = {.clock = FIBER_CLOCK_REAL};
    int rc = fiber_run(run_load, &l, &opts, NULL, NULL);
    free(l.fds);

    size_t expected = l.connections * l.lines;
    printf("connections=%zu\nlines=%zu\nlines_ok=%zu\nbytes_sent=%zu\n"
           "bytes_received=%zu\nfailures=%zu\nfirst_error=%s\n"
           "connect_s=%.3f\nexchange_s=%.3f\nlines_per_s=%.0f\n",
           l.connected, expected, l.lines_ok, l.bytes_sent, l.bytes_received,
           l.failures, l.first_error ? strerror(-l.first_error) : "none",
           l.connect_s, l.exchange_s,
           l.exchange_s > 0 ? (double)l.lines_ok / l.exchange_s : 0.0);
    return rc == 0 && l.lines_ok == expected && l.bytes_sent == l.bytes_received
               ? 0 : 1;
}
