/*
 * gather - asyncio.gather: two tasks sleep side by side.
 *
 *     async def task(name, delay):
 *         await asyncio.sleep(delay)
 *         print(f"Task {name} completed")
 *
 *     async def main():
 *         await asyncio.gather(task(1, 2), task(2, 1))
 *
 * Task 2 completes first, and the whole takes 2 seconds, not 3.
 */
#include <stdio.h>

#include "demo_util.h"

struct task {
    int name;
    double delay;
};

static void *task(void *arg)
{
    const struct task *t = arg;
    int rc = fiber_sleep(t->delay);

    if (rc < 0)
        return fiber_fail(rc);
    printf("Task %d completed\n", t->name);
    return NULL;
}

static void *gather(void *arg)
{
    static const struct task args[] = {{1, 2}, {2, 1}};
    fiber_task_t *tasks[2];
    int statuses[2], rc = 0;

    /* A task already spawned when another spawn fails is not leaked: the
     * loop cancels and frees what main leaves behind. */
    for (size_t i = 0; i < 2 && rc == 0; i++)
        rc = fiber_spawn(&tasks[i], task, (void *)&args[i], NULL);
    if (rc == 0)
        rc = fiber_gather(tasks, 2, NULL, statuses);
    for (size_t i = 0; i < 2 && rc == 0; i++)
        rc = statuses[i];
    if (rc < 0)
        return fiber_fail(rc);
    printf("Both tasks completed in %.2f seconds\n", fiber_elapsed_ns() / 1e9);
    return arg;
}

int main(int argc, char **argv)
{
    static const struct demo_program program = {
        "gather", "",
        "Gather Task 1, which sleeps 2 seconds, and Task 2, which sleeps 1,\n"
        "and print when each completes and how long it all took.", 0};

    return demo_main(argc, argv, &program, gather);
}
