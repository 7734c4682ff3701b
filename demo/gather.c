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
 * Task 2 finishes first, and the whole takes 2 seconds, not 3.
 */
#include <stdint.h>
#include <stdio.h>

#include "demo_util.h"

static const struct demo_program program = {
    .name = "gather",
    .args = "",
    .about = "Gather two tasks, Task 1 sleeping 2 seconds and Task 2 sleeping\n"
             "1 second, and print when each completes and the time it all took.",
    .max_args = 0,
};

struct sleeper {
    int number;
    double seconds;
};

static void *sleep_then_report(void *arg)
{
    const struct sleeper *sleeper = arg;

    int rc = fiber_sleep(sleeper->seconds);
    if (rc < 0)
        return fiber_fail(rc);
    printf("Task %d completed\n", sleeper->number);
    fflush(stdout);
    return NULL;
}

static void *gather_two(void *arg)
{
    static const struct sleeper sleepers[] = {{1, 2}, {2, 1}};
    fiber_task_t *tasks[2];
    int statuses[2];
    (void)arg;

    int64_t start = fiber_now_ns();
    for (size_t i = 0; i < 2; i++) {
        int rc = fiber_spawn(&tasks[i], sleep_then_report,
                             (void *)&sleepers[i], NULL);
        /* A task already started is not leaked: when main returns, the
         * loop cancels and frees every task left behind. */
        if (rc < 0)
            return fiber_fail(rc);
    }

    int rc = fiber_gather(tasks, 2, NULL, statuses);
    for (size_t i = 0; i < 2 && rc == 0; i++)
        rc = statuses[i];
    if (rc < 0)
        return fiber_fail(rc);
    printf("Both tasks completed in %.2f seconds\n",
           (double)(fiber_now_ns() - start) / 1e9);
    return NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    return demo_finish(&cli, demo_run(&cli, gather_two, NULL));
}
