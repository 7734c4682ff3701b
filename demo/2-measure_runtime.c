/*
 * 2-measure_runtime - measure_time: how long wait_n takes, per call.
 */
#include <stdio.h>
#include <stdlib.h>

#include "demo_util.h"
#include "exercises/measure_time.h"

static const struct demo_program program = {
    .name = "2-measure_runtime",
    .args = "[n max_delay]",
    .about = "Time wait_n(n, max_delay) on the loop clock and print the time\n"
             "per call in seconds: at most max_delay / n, since the calls run\n"
             "concurrently.  n must be positive.  Without arguments: n = 5,\n"
             "max_delay = 9.",
    .max_args = 2,
};

struct measure_call {
    size_t n;
    double max_delay;
    double per_call;
};

static void *run_measure_time(void *arg)
{
    struct measure_call *call = arg;
    int rc = measure_time(call->n, call->max_delay, &call->per_call);

    return rc < 0 ? fiber_fail(rc) : NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;
    struct measure_call call = {.n = 5, .max_delay = 9};

    demo_parse_args(argc, argv, &program, &cli);
    demo_n_delay_args(&cli, 1, &call.n, &call.max_delay);
    /* measure_time needs room for n delays: refuse an n too large for that
     * now, as a bad argument, rather than fail once running. */
    free(demo_alloc_delays(&cli, call.n));

    int status = demo_run(&cli, run_measure_time, &call);
    if (status == 0)
        demo_print_double(stdout, call.per_call);
    return demo_finish(&cli, status);
}
