/*
 * 0-basic_async_syntax - wait_random, the course's first coroutine.
 *
 * Like the course's main file, each call runs on a loop of its own, as
 * asyncio.run(wait_random(...)) would.
 */
#include <stdint.h>
#include <stdio.h>

#include "demo_util.h"
#include "exercises/wait_random.h"

static const struct demo_program program = {
    .name = "0-basic_async_syntax",
    .args = "[max_delay ...]",
    .about = "Sleep a random delay in [0, max_delay] seconds and print it, one\n"
             "line per max_delay.  Without arguments: wait_random() (max_delay\n"
             "10), wait_random(5), wait_random(15).",
    .max_args = SIZE_MAX,
};

struct wait_random_call {
    double max_delay;
    double delay;
};

static void *run_wait_random(void *arg)
{
    struct wait_random_call *call = arg;
    int rc = wait_random(call->max_delay, &call->delay);

    return rc < 0 ? fiber_fail(rc) : NULL;
}

int main(int argc, char **argv)
{
    static const double defaults[] = {WAIT_RANDOM_DEFAULT_MAX_DELAY, 5, 15};
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    size_t ncalls = cli.nargs ? cli.nargs : sizeof(defaults) / sizeof(defaults[0]);
    /* Every argument is checked before the first call runs. */
    for (size_t i = 0; i < cli.nargs; i++)
        demo_delay_arg(&cli, i, "max_delay");

    int status = 0;
    for (size_t i = 0; i < ncalls && status == 0; i++) {
        struct wait_random_call call = {
            .max_delay = cli.nargs ? demo_delay_arg(&cli, i, "max_delay")
                                   : defaults[i],
        };
        status = demo_run(&cli, run_wait_random, &call);
        if (status == 0)
            demo_print_double(stdout, call.delay);
    }
    return demo_finish(&cli, status);
}
