/*
 * 3-tasks - the course's main file for exercise 3:
 *
 *     async def test(max_delay: int) -> float:
 *         task = task_wait_random(max_delay)
 *         await task
 *         print(task.__class__)
 *
 *     asyncio.run(test(5))
 *
 * Here the task is described before and after it is awaited; awaiting
 * frees the handle, so the second line is built from what was kept.
 */
#include <inttypes.h>
#include <stdio.h>

#include "demo_util.h"
#include "exercises/exercises.h"

static const struct demo_program program = {
    "3-tasks", "[max_delay]",
    "Start wait_random(max_delay) as a task with task_wait_random, print the\n"
    "task, await it and print it finished, with the delay it slept.\n"
    "Without arguments: max_delay = 5.", 1};

static void *test(void *arg)
{
    char text[128], name[FIBER_NAME_MAX + 1];
    fiber_task_t *task;
    int status;

    int rc = task_wait_random(arg, &task);
    if (rc < 0)
        return fiber_fail(rc);
    fiber_describe(task, text, sizeof(text));
    printf("%s\n", text);
    snprintf(name, sizeof(name), "%s", fiber_name(task));
    uint64_t id = fiber_id(task);
    if ((rc = fiber_await(task, NULL, &status)) < 0 || status < 0)
        return fiber_fail(rc < 0 ? rc : status);
    demo_format_double(*(double *)arg, text);
    printf("<Task finished name='%s' id=%" PRIu64 " status=0 result=%s>\n",
           name, id, text);
    return NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;
    double max_delay = 5;

    demo_parse_args(argc, argv, &program, &cli);
    if (cli.nargs == 1)
        max_delay = demo_delay_arg(&cli, 0, "max_delay");
    return demo_finish(&cli, demo_run(&cli, test, &max_delay));
}
