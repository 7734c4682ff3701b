/*
 * 4-tasks - task_wait_n: wait_n built on tasks.  Every delay is produced
 * by a task that task_wait_random started; the list comes back in
 * completion order, ascending, without sorting.
 */
#include <stdio.h>

#include "demo_util.h"
#include "exercises/task_wait_n.h"

static const struct demo_program program = {
    .name = "4-tasks",
    .args = "[n max_delay]",
    .about = "Start n wait_random(max_delay) tasks with task_wait_random, await\n"
             "them all and print their delays in the order the tasks finished.\n"
             "Without arguments: task_wait_n(5, 6).",
    .max_args = 2,
};

int main(int argc, char **argv)
{
    struct demo_cli cli;
    size_t n = 5;
    double max_delay = 6;

    demo_parse_args(argc, argv, &program, &cli);
    demo_n_delay_args(&cli, 0, &n, &max_delay);
    return demo_finish(&cli, demo_print_delays(&cli, task_wait_n, n, max_delay));
}
