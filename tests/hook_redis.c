/*
 * hook_redis.c - hiredis's synchronous API in fibers, through
 * libfiber-hook, against the redis-server that tests/hook_redis.sh starts.
 * Prints TAP.
 *
 *   hook_redis PORT
 *
 * - 100 fibers, each with its own connection, run BLPOP key_i 0.2: the
 *   server answers each after 0.2 s, and all are done in well under a
 *   second of wall time (one after another they would take 20 s).
 * - 100 fibers each make 1,000 SET/GET pairs on their own connection;
 *   every value read back is the one written.
 * - A fiber cancelled in the middle of a BLPOP gets an error from hiredis
 *   (REDIS_ERR_IO, "Operation canceled"); ten others in BLPOP at the same
 *   time get their answers as if nothing happened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fiber-hook.h"
#include "tap_ok.h"

static int port;

static redisContext *connect_redis(void)
{
    redisContext *c = redisConnect("127.0.0.1", port);

    if (c && c->err) {
        fprintf(stderr, "hook_redis: connect: %s\n", c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* ---- BLPOP key_i 0.2 in 100 fibers ------------------------------------- */

#define NBLPOP 100

static void *blpop_fiber(void *arg)
{
    int i = (int)(intptr_t)arg;
    redisContext *c = connect_redis();

    if (!c)
        return fiber_fail(-EIO);
    redisReply *r = redisCommand(c, "BLPOP blpop_key_%d 0.2", i);
    /* Nothing was pushed: a nil after the server's 0.2 s. */
    int good = r && r->type == REDIS_REPLY_NIL;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return good ? NULL : fiber_fail(-EPROTO);
}

static void blpop_concurrently(void)
{
    double took;
    int bad = run_each_at_once(blpop_fiber, NBLPOP, NULL, &took);
    ok(bad == 0, "100 BLPOP key_i 0.2 each gave nil (%d failed)", bad);
    ok(took >= 0.2 && took < 0.8,
       "100 BLPOPs of 0.2 s took %.3f s of wall time (one after another: 20 s)", took);
}

/* ---- SET/GET pairs --------------------------------------------------------- */

#define NSETGET 100
#define PAIRS 1000

static void *setget_fiber(void *arg)
{
    int i = (int)(intptr_t)arg;
    redisContext *c = connect_redis();

    if (!c)
        return fiber_fail(-EIO);
    int bad = 0;
    for (int k = 0; k < PAIRS && !bad; k++) {
        char key[64], value[64];
        snprintf(key, sizeof(key), "setget:%d:%d", i, k % 10);
        snprintf(value, sizeof(value), "value-%d-%d-%u", i, k, (unsigned)(i * 7919 + k));
        redisReply *r = redisCommand(c, "SET %s %s", key, value);
        bad = !r || r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0;
        if (r)
            freeReplyObject(r);
        if (bad)
            break;
        r = redisCommand(c, "GET %s", key);
        bad = !r || r->type != REDIS_REPLY_STRING || strcmp(r->str, value) != 0;
        if (r)
            freeReplyObject(r);
    }
    redisFree(c);
    return bad ? fiber_fail(-EPROTO) : NULL;
}

static void setget_concurrently(void)
{
    double took;
    int bad = run_each_at_once(setget_fiber, NSETGET, NULL, &took);
    ok(bad == 0, "100 fibers x 1000 SET/GET pairs, every value checked (%d fibers "
       "failed, %.2f s)", bad, took);
}

/* ---- cancelling a BLPOP ------------------------------------------------------ */

struct cancelled {
    int err;
    char errstr[128];
    int got_reply;
};

static void *blpop_forever(void *arg)
{
    struct cancelled *x = arg;
    redisContext *c = connect_redis();

    if (!c)
        return fiber_fail(-EIO);
    redisReply *r = redisCommand(c, "BLPOP never_pushed 0");
    x->got_reply = r != NULL;
    x->err = c->err;
    snprintf(x->errstr, sizeof(x->errstr), "%s", c->errstr);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return NULL;
}

static void *blpop_pushed(void *arg)
{
    int i = (int)(intptr_t)arg;
    redisContext *c = connect_redis();

    if (!c)
        return fiber_fail(-EIO);
    redisReply *r = redisCommand(c, "BLPOP pushed_%d 5", i);
    char want[32];
    snprintf(want, sizeof(want), "v%d", i);
    int good = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               strcmp(r->element[1]->str, want) == 0;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return good ? NULL : fiber_fail(-EPROTO);
}

static void cancel_in_blpop(void)
{
    struct cancelled x = {0};
    fiber_task_t *victim, *others[10];
    int statuses[10], bad = 0;

    fiber_spawn(&victim, blpop_forever, &x, NULL);
    for (int i = 0; i < 10; i++)
        fiber_spawn(&others[i], blpop_pushed, (void *)(intptr_t)i, NULL);
    fiber_sleep(0.1);   /* every BLPOP is waiting in the server now */
    fiber_cancel(victim);
    int vstatus = 0;
    fiber_await(victim, NULL, &vstatus);
    ok(!x.got_reply && x.err == REDIS_ERR_IO && strstr(x.errstr, "canceled") != NULL,
       "a fiber cancelled in BLPOP gets an error from hiredis (err %d, \"%s\")",
       x.err, x.errstr);

    redisContext *c = connect_redis();
    for (int i = 0; c && i < 10; i++) {
        redisReply *r = redisCommand(c, "RPUSH pushed_%d v%d", i, i);
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    fiber_gather(others, 10, NULL, statuses);
    for (int i = 0; i < 10; i++)
        bad += statuses[i] != 0;
    ok(c && bad == 0, "the other ten BLPOPs got their values (%d failed)", bad);
}

static void *run(void *arg)
{
    (void)arg;
    blpop_concurrently();
    setget_concurrently();
    cancel_in_blpop();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: hook_redis PORT\n");
        return 2;
    }
    port = atoi(argv[1]);
    printf("1..6\n");
    ok(fiber_hook_installed() == 1, "libfiber-hook is linked ahead of libc");
    const fiber_options_t opts = {.clock = FIBER_CLOCK_REAL};
    int rc = fiber_run(run, NULL, &opts, NULL, NULL);
    if (rc != 0)
        printf("Bail out! fiber_run: %s\n", strerror(-rc));
    return failures || rc ? 1 : 0;
}
