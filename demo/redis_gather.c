/*
 * redis_gather - asyncio.gather over Redis commands, with hiredis's plain
 * blocking API:
 *
 *     async def main():
 *         replies = await asyncio.gather(*(blpop(i, delay) for ...))
 *
 * Each of n fibers opens its own connection and runs
 * BLPOP redis_gather:<i> <delay>, a command the server answers (with nil)
 * after delay seconds, a random number in [0.1, 0.5].  hiredis blocks in
 * read(2) and poll(2); libfiber-hook makes those waits fiber waits, so the
 * n commands run at once.  The replies are printed in the order the
 * commands were given, then the total time next to the sum of the
 * individual times.
 */
#include "config.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_util.h"
#include "fiber-hook.h"

static const struct demo_program program = {
    .name = "redis_gather",
    .args = "[HOST:PORT] [N]",
    .about = "Run N commands (default 5) against the Redis server at HOST:PORT\n"
             "(default 127.0.0.1:6379) at once, each in a fiber of its own with\n"
             "its own connection, through hiredis's blocking API: BLPOP on an\n"
             "empty list with a random timeout in [0.1, 0.5] s.  Prints the\n"
             "replies in the order given, then the total time next to the sum of\n"
             "the individual times.  Exits 1 if any command failed.",
    .max_args = 2,
};

struct command {
    int index;
    double delay;
    char reply[128];
    int failed;
    double seconds;
};

static char host[256] = "127.0.0.1";
static int port = 6379;

static void *run_command(void *arg)
{
    struct command *c = arg;
    int64_t start = fiber_now_ns();
    redisContext *ctx = redisConnect(host, port);

    if (!ctx || ctx->err) {
        snprintf(c->reply, sizeof(c->reply), "%s",
                 ctx ? ctx->errstr : "out of memory");
        c->failed = 1;
    } else {
        redisReply *r = redisCommand(ctx, "BLPOP redis_gather:%d %.3f", c->index, c->delay);
        if (!r) {
            snprintf(c->reply, sizeof(c->reply), "%s", ctx->errstr);
            c->failed = 1;
        } else if (r->type == REDIS_REPLY_NIL) {
            snprintf(c->reply, sizeof(c->reply), "(nil)");
        } else if (r->type == REDIS_REPLY_ERROR) {
            snprintf(c->reply, sizeof(c->reply), "error: %s", r->str);
            c->failed = 1;
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            snprintf(c->reply, sizeof(c->reply), "\"%s\"", r->element[1]->str);
        } else {
            snprintf(c->reply, sizeof(c->reply), "reply of type %d", r->type);
        }
        if (r)
            freeReplyObject(r);
    }
    if (ctx)
        redisFree(ctx);
    c->seconds = (double)(fiber_now_ns() - start) / 1e9;
    return NULL;
}

struct job {
    struct command *commands;
    size_t n;
    double total;
};

static void *gather_all(void *arg)
{
    struct job *job = arg;

    for (size_t i = 0; i < job->n; i++) {
        job->commands[i].index = (int)i;
        job->commands[i].delay = fiber_uniform(0.1, 0.5);
    }
    int rc = demo_gather_each(run_command, job->commands, job->n,
                              sizeof(job->commands[0]), NULL, &job->total);
    return rc < 0 ? fiber_fail(rc) : NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;
    size_t n = 5;

    demo_parse_args(argc, argv, &program, &cli);
    for (size_t i = 0; i < cli.nargs; i++) {
        const char *colon = strrchr(cli.args[i], ':');
        if (colon) {
            char *end;
            long p = strtol(colon + 1, &end, 10);
            size_t hlen = (size_t)(colon - cli.args[i]);
            if (*end || p < 1 || p > 65535 || hlen == 0 || hlen >= sizeof(host))
                demo_usage_error(&cli, "bad address '%s': give HOST:PORT", cli.args[i]);
            memcpy(host, cli.args[i], hlen);
            host[hlen] = '\0';
            port = (int)p;
        } else {
            n = demo_count_arg(&cli, i, "N", 1);
            if (n > 10000)
                demo_usage_error(&cli, "N must be at most 10000");
        }
    }
    if (!fiber_hook_installed())
        fprintf(stderr, "redis_gather: libfiber-hook is not in place: the commands "
                "will run one after another\n");

    struct command *commands = calloc(n, sizeof(*commands));
    if (!commands)
        demo_usage_error(&cli, "out of memory");
    struct job job = {commands, n, 0};
    int status = demo_run(&cli, gather_all, &job);
    if (status == 0) {
        double sum = 0;
        for (size_t i = 0; i < n; i++) {
            struct command *c = &commands[i];
            sum += c->seconds;
            printf("%s %zu: BLPOP redis_gather:%d %.3f (%.3f s): %s\n",
                   c->failed ? "Error from" : "Reply", i, c->index, c->delay,
                   c->seconds, c->reply);
            if (c->failed)
                status = DEMO_EXIT_FAILURE;
        }
        printf("Gathered %zu repl%s in %.3f s (sum of individual times: %.3f s)\n",
               n, n == 1 ? "y" : "ies", job.total, sum);
    }
    free(commands);
    return demo_finish(&cli, status);
}
