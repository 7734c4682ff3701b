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
#include <stdio.h>

#include "demo_util.h"

static void *long_task(void *arg)
{
    int rc = fiber_sleep(5);

    return rc < 0 ? fiber_fail(rc) : arg;
}

static void *timeout(void *arg)
{
    fiber_task_t *task;
    int status = 0;

    int rc = fiber_spawn(&task, long_task, NULL, NULL);
    if (rc == 0)
        rc = fiber_wait_for(task, 3, NULL, &status);
    if (rc == -ETIMEDOUT)
        printf("Task timed out!\nGave up after %.2f seconds\n",
               fiber_elapsed_ns() / 1e9);
    else if (rc < 0 || status < 0)
        return fiber_fail(rc < 0 ? rc : status);
    return arg;
}

int main(int argc, char **argv)
{
    static const struct demo_program program = {
        "timeout", "",
        "Await a task that sleeps 5 seconds with a timeout of 3: after 3\n"
        "seconds the task is cancelled and \"Task timed out!\" printed.", 0};

    return demo_main(argc, argv, &program, timeout);
}
