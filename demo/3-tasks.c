/*
 * 3-tasks - task_wait_random: a task is started at once and awaited later.
 *
 * The course prints the Task object; here the task is described before it
 * is awaited (fiber_describe) and once it has finished.  Awaiting consumes
 * the handle, so the second description is put together from what
 * fiber_await hands back, with the delay in place of the result pointer.
 */
#include <inttypes.h>
#include <stdio.h>

#include "demo_util.h"
#include "exercises/task_wait_random.h"

static const struct demo_program program = {
    .name = "3-tasks",
    .args = "[max_delay]",
    .about = "Start wait_random(max_delay) as a task with task_wait_random,\n"
             "print the task, await it, and print the finished task with the\n"
             "delay it slept.  Without arguments: max_delay = 5.",
    .max_args = 1,
};

static void *show_task(void *arg)
{
    const double *max_delay = arg;
    char description[128];
    fiber_task_t *task;
    double delay;
    int status;

    int rc = task_wait_random(*max_delay, &delay, &task);
    if (rc < 0)
        return fiber_fail(rc);
    fiber_describe(task, description, sizeof(description));
    printf("%s\n", description);

    /* The name and id go with the handle: keep them for afterwards. */
    char name[FIBER_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", fiber_name(task));
    uint64_t id = fiber_id(task);

    rc = fiber_await(task, NULL, &status);
    if (rc == 0)
        rc = status;
    if (rc < 0)
        return fiber_fail(rc);
    char text[DEMO_DOUBLE_BUFSIZE];
    demo_format_double(delay, text);
    printf("<Task finished name='%s' id=%" PRIu64 " status=%d result=%s>\n",
           name, id, status, text);
    return NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;
    double max_delay = 5;

    demo_parse_args(argc, argv, &program, &cli);
    if (cli.nargs == 1)
        max_delay = demo_delay_arg(&cli, 0, "max_delay");
    return demo_finish(&cli, demo_run(&cli, show_task, &max_delay));
}
