/*
 * timeout - asyncio.wait_for: give up on a task that takes too long.
 *
 *     async def long_task():
 *         await asyncio.sleep(5)
 *
 *     async def main():
 *         try:
 *             await asyncio.wait_for(long_task(), timeout=3)
 *         except asyncio.TimeoutError:
 *             print("Task timed out!")
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "demo_util.h"

static const struct demo_program program = {
    .name = "timeout",
    .args = "",
    .about = "Await a task that sleeps 5 seconds with a timeout of 3 seconds:\n"
             "the task is cancelled and \"Task timed out!\" printed after 3\n"
             "seconds.",
    .max_args = 0,
};

static void *long_task(void *arg)
{
    (void)arg;
    int rc = fiber_sleep(5);
    if (rc < 0)
        return fiber_fail(rc);
    printf("Long task finished\n");
    return NULL;
}

static void *wait_with_timeout(void *arg)
{
    fiber_task_t *task;
    (void)arg;

    int rc = fiber_spawn(&task, long_task, NULL, NULL);
    if (rc < 0)
        return fiber_fail(rc);
    int64_t start = fiber_now_ns();
    rc = fiber_wait_for(task, 3, NULL, NULL);
    if (rc == -ETIMEDOUT) {
        printf("Task timed out!\n");
        printf("Gave up after %.2f seconds\n",
               (double)(fiber_now_ns() - start) / 1e9);
        return NULL;
    }
    return rc < 0 ? fiber_fail(rc) : NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    return demo_finish(&cli, demo_run(&cli, wait_with_timeout, NULL));
}
