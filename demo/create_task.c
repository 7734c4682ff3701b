/*
 * create_task - asyncio.create_task: tasks start when their creator
 * blocks, and run side by side.
 *
 *     async def worker(name, delay):
 *         print(f"{name} started")
 *         await asyncio.sleep(delay)
 *         print(f"{name} finished after {delay} s")
 *
 *     async def main():
 *         task1 = asyncio.create_task(worker("Task 1", 1))
 *         task2 = asyncio.create_task(worker("Task 2", 2))
 *         print("Both tasks created")
 *         await task1
 *         await task2
 */
#include <stdio.h>

#include "demo_util.h"

static const struct demo_program program = {
    .name = "create_task",
    .args = "",
    .about = "Create two tasks, Task 1 sleeping 1 second and Task 2 sleeping 2\n"
             "seconds, then await both.  Neither starts before main blocks;\n"
             "both have started before either finishes.",
    .max_args = 0,
};

static void *worker(void *arg)
{
    const double *seconds = arg;
    const char *name = fiber_name(fiber_self());

    printf("%s started\n", name);
    fflush(stdout);
    int rc = fiber_sleep(*seconds);
    if (rc < 0)
        return fiber_fail(rc);
    printf("%s finished after %g s\n", name, *seconds);
    fflush(stdout);
    return NULL;
}

static void *create_two(void *arg)
{
    static const double seconds[] = {1, 2};
    static const char *const names[] = {"Task 1", "Task 2"};
    fiber_task_t *tasks[2];
    (void)arg;

    for (size_t i = 0; i < 2; i++) {
        fiber_attr_t attr = {.name = names[i]};
        int rc = fiber_spawn(&tasks[i], worker, (void *)&seconds[i], &attr);
        /* A task already started is not leaked: when main returns, the
         * loop cancels and frees every task left behind. */
        if (rc < 0)
            return fiber_fail(rc);
    }
    printf("Both tasks created\n");

    for (size_t i = 0; i < 2; i++) {
        int status;
        int rc = fiber_await(tasks[i], NULL, &status);
        if (rc == 0)
            rc = status;
        if (rc < 0)
            return fiber_fail(rc);
    }
    printf("Both tasks done\n");
    return NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    return demo_finish(&cli, demo_run(&cli, create_two, NULL));
}
