/*
 * 4-tasks_as_completed - task_wait_n in the as-completed style: the tasks
 * that task_wait_random starts go into a waitset, which hands them back
 * as they finish; the list comes out ascending, without sorting, and the
 * same seed gives the very list 4-tasks prints.
 */
#include <stdio.h>

#include "demo_util.h"
#include "exercises/task_wait_n_as_completed.h"

static const struct demo_program program = {
    .name = "4-tasks_as_completed",
    .args = "[n max_delay]",
    .about = "Start n wait_random(max_delay) tasks with task_wait_random, take\n"
             "them back as they complete (asyncio.as_completed) and print their\n"
             "delays in that order.\n"
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
    return demo_finish(&cli, demo_print_delays(&cli, task_wait_n_as_completed,
                                               n, max_delay));
}
