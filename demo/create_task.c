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

struct worker {
    const char *name;
    double delay;
};

static void *worker(void *arg)
{
    const struct worker *w = arg;

    printf("%s started\n", w->name);
    int rc = fiber_sleep(w->delay);
    if (rc < 0)
        return fiber_fail(rc);
    printf("%s finished after %g s\n", w->name, w->delay);
    return NULL;
}

/* await task: the task's status, or the await's own error. */
static int await_task(fiber_task_t *task)
{
    int status, rc = fiber_await(task, NULL, &status);

    return rc < 0 ? rc : status;
}

static void *create_task(void *arg)
{
    static const struct worker workers[] = {{"Task 1", 1}, {"Task 2", 2}};
    fiber_task_t *task1, *task2;

    /* What main leaves behind on an error, the loop cancels and frees. */
    int rc = fiber_spawn(&task1, worker, (void *)&workers[0], NULL);
    if (rc == 0)
        rc = fiber_spawn(&task2, worker, (void *)&workers[1], NULL);
    if (rc == 0)
        printf("Both tasks created\n");
    if (rc == 0)
        rc = await_task(task1);
    if (rc == 0)
        rc = await_task(task2);
    if (rc < 0)
        return fiber_fail(rc);
    printf("Both tasks done\n");
    return arg;
}

int main(int argc, char **argv)
{
    static const struct demo_program program = {
        "create_task", "",
        "Create Task 1, which sleeps 1 second, and Task 2, which sleeps 2,\n"
        "then await both: neither starts before main blocks.", 0};

    return demo_main(argc, argv, &program, create_task);
}
