/*
 * 1-concurrent_coroutines_as_completed - wait_n in the as-completed style:
 * a waitset hands the n wait_random fibers back as they finish, and their
 * delays are listed in that order, which is ascending.  The same seed
 * gives the very list 1-concurrent_coroutines prints.
 */
#include <stdio.h>

#include "demo_util.h"
#include "exercises/wait_n_as_completed.h"

static const struct demo_program program = {
    .name = "1-concurrent_coroutines_as_completed",
    .args = "[n max_delay]",
    .about = "Run wait_random(max_delay) n times concurrently, take the calls\n"
             "back as they complete (asyncio.as_completed) and print their\n"
             "delays in that order: ascending, unsorted.\n"
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
        return demo_finish(&cli, demo_print_delays(&cli, wait_n_as_completed,
                                                   n, max_delay));

    /* Like the course's main file: one loop per call. */
    int status = 0;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && status == 0; i++)
        status = demo_print_delays(&cli, wait_n_as_completed, defaults[i].n,
                                   defaults[i].max_delay);
    return demo_finish(&cli, status);
}
