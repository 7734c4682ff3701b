/*
 * 1-concurrent_coroutines - wait_n: n wait_random calls at once, their
 * delays listed in the order they finished, which is ascending.
 */
#include <stdio.h>

#include "demo_util.h"
#include "exercises/wait_n.h"

static const struct demo_program program = {
    .name = "1-concurrent_coroutines",
    .args = "[n max_delay]",
    .about = "Run wait_random(max_delay) n times concurrently and print the\n"
             "delays in the order the calls finished: ascending, unsorted.\n"
             "Without arguments: wait_n(5, 5), wait_n(10, 7), wait_n(10, 0).",
    .max_args = 2,
};

int main(int argc, char **argv)
{
    static const struct {
        size_t n;
        double max_delay;
    } defaults[] = {{5, 5}, {10, 7}, {10, 0}};
    struct demo_cli cli;
    size_t n;
    double max_delay;

    demo_parse_args(argc, argv, &program, &cli);
    if (demo_n_delay_args(&cli, 0, &n, &max_delay))
        return demo_finish(&cli, demo_print_delays(&cli, wait_n, n, max_delay));

    /* Like the course's main file: one loop per call. */
    int status = 0;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && status == 0; i++)
        status = demo_print_delays(&cli, wait_n, defaults[i].n,
                                   defaults[i].max_delay);
    return demo_finish(&cli, status);
}
