/*
 * 4-tasks - the course's main file for exercise 4:
 *
 *     n = 5
 *     max_delay = 6
 *     print(asyncio.run(task_wait_n(n, max_delay)))
 */
#include "demo_util.h"
#include "exercises/exercises.h"

static const struct demo_program program = {
    "4-tasks", "[n max_delay]",
    "Print asyncio.run(task_wait_n(n, max_delay)): the delays of n\n"
    "wait_random tasks, in the order they completed: ascending, unsorted.\n"
    "Without arguments: n = 5, max_delay = 6.", 2};

int main(int argc, char **argv)
{
    size_t n = 5;
    double max_delay = 6;
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    demo_n_delay_args(&cli, 0, &n, &max_delay);
    int status = demo_print_delays(&cli, task_wait_n, n, max_delay);
    return demo_finish(&cli, status);
}
