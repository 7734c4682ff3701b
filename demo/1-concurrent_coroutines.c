/*
 * 1-concurrent_coroutines - the course's main file for exercise 1:
 *
 *     print(asyncio.run(wait_n(5, 5)))
 *     print(asyncio.run(wait_n(10, 7)))
 *     print(asyncio.run(wait_n(10, 0)))
 */
#include "demo_util.h"
#include "exercises/exercises.h"

static const struct demo_program program = {
    "1-concurrent_coroutines", "[n max_delay]",
    "Print asyncio.run(wait_n(n, max_delay)): the delays of n concurrent\n"
    "wait_random calls, in the order they completed: ascending, unsorted.\n"
    "Without arguments: wait_n(5, 5), wait_n(10, 7), wait_n(10, 0).", 2};

int main(int argc, char **argv)
{
    struct wait_n_args calls[] = {{5, 5}, {10, 7}, {10, 0}};
    size_t ncalls = 3;
    struct demo_cli cli;
    int status = 0;

    demo_parse_args(argc, argv, &program, &cli);
    if (demo_n_delay_args(&cli, 0, &calls[0].n, &calls[0].max_delay))
        ncalls = 1;
    for (size_t i = 0; i < ncalls && status == 0; i++)
        status = demo_print_delays(&cli, wait_n, calls[i].n,
                                   calls[i].max_delay);
    return demo_finish(&cli, status);
}
