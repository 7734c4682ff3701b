/*
 * timeout_scope - asyncio.timeout: one deadline over a block of steps.
 *
 *     async with asyncio.timeout(2.5):
 *         await connect(); await send_request()
 *         await wait_for_reply(); await read_body()
 *
 * Each step sleeps; the single deadline cuts the block short wherever it
 * falls, with no timeout passed to any step.  After the block the fiber
 * is not cancelled: it sleeps once more, normally.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "demo_util.h"

static const struct demo_program program = {
    .name = "timeout_scope",
    .args = "[timeout]",
    .about = "Run four steps (connect 0.5 s, send request 0.25 s, wait for\n"
             "reply 1.5 s, read body 1 s) inside one timeout scope of timeout\n"
             "seconds (2.5 by default), which cuts the block short wherever\n"
             "the deadline falls; then sleep 0.5 s after the scope.",
    .max_args = 1,
};

static const struct step {
    const char *name;
    double seconds;
} steps[] = {
    {"connect", 0.5},
    {"send request", 0.25},
    {"wait for reply", 1.5},
    {"read body", 1.0},
};
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

static int64_t start_ns;

static double elapsed(void)
{
    return (double)(fiber_now_ns() - start_ns) / 1e9;
}

/* The block: every step in turn, stopping at the first that fails.  It
 * knows nothing of the deadline.  Returns how many steps were done. */
static size_t run_steps(void)
{
    for (size_t i = 0; i < NSTEPS; i++) {
        int rc = fiber_sleep(steps[i].seconds);
        printf("[%.3f] %s: %s\n", elapsed(), steps[i].name,
               rc == 0 ? "done" : strerror(-rc));
        if (rc < 0)
            return i;
    }
    return NSTEPS;
}

static void *run_block(void *arg)
{
    double timeout = *(const double *)arg;
    fiber_scope_t scope;

    start_ns = fiber_now_ns();
    int rc = fiber_scope_enter_after(&scope, timeout);
    if (rc < 0)
        return fiber_fail(rc);
    size_t done = run_steps();
    if (fiber_scope_exit(&scope) == -ETIMEDOUT)
        printf("the %g s deadline cut the block short: %zu of %zu steps done\n",
               timeout, done, NSTEPS);
    else
        printf("the block ended before the %g s deadline: %zu of %zu steps "
               "done\n", timeout, done, NSTEPS);

    rc = fiber_sleep(0.5);
    printf("[%.3f] after the scope, a 0.5 s sleep: %s\n", elapsed(),
           rc == 0 ? "done" : strerror(-rc));
    return rc < 0 ? fiber_fail(rc) : NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;
    double timeout = 2.5;

    demo_parse_args(argc, argv, &program, &cli);
    if (cli.nargs == 1)
        timeout = demo_delay_arg(&cli, 0, "timeout");
    return demo_finish(&cli, demo_run(&cli, run_block, &timeout));
}
