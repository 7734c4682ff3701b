/*
 * as_completed - asyncio.as_completed: print results as they arrive.
 *
 *     tasks = [asyncio.create_task(wait_random(max_delay)) for _ in range(n)]
 *     async with asyncio.timeout(timeout):
 *         for next_done in asyncio.as_completed(tasks):
 *             print(await next_done)
 *
 * A waitset hands the tasks back in the order they finish; an optional
 * timeout scope around the loop gives up on the stragglers, which the
 * waitset then cancels.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_util.h"

static const struct demo_program program = {
    .name = "as_completed",
    .args = "[n max_delay [timeout]]",
    .about = "Start n tasks that each sleep a random delay of up to max_delay\n"
             "seconds, and print each task's delay the moment it finishes:\n"
             "the lines come in completion order, so the delays ascend.  With\n"
             "a timeout in seconds, give up on the tasks still running then;\n"
             "they are cancelled.  Without arguments: 5 tasks, up to 3 s each.",
    .max_args = 3,
};

struct run {
    size_t n;
    double max_delay;
    double timeout;   /* +infinity for none */
    double *slots;    /* max_delay in, each task's delay out */
};

static void *sleep_random(void *arg)
{
    double *slot = arg;
    double delay = fiber_uniform(0, *slot);

    int rc = fiber_sleep(delay);
    if (rc < 0)
        return fiber_fail(rc);
    *slot = delay;
    return slot;
}

/* Take the tasks back as they finish and print each one's delay, until all
 * are done or something (the timeout scope) stops the wait. */
static int print_as_completed(fiber_waitset_t *set, int64_t start_ns)
{
    fiber_task_t *task;
    int rc;

    while ((rc = fiber_waitset_next(set, INFINITY, &task)) == 0) {
        char name[FIBER_NAME_MAX + 1], text[DEMO_DOUBLE_BUFSIZE];
        void *result;
        int status;
        snprintf(name, sizeof(name), "%s", fiber_name(task));
        rc = fiber_await(task, &result, &status);
        if (rc == 0)
            rc = status;
        if (rc < 0)
            return rc;
        demo_format_double(*(const double *)result, text);
        printf("[%.3f] %s: %s\n", (double)(fiber_now_ns() - start_ns) / 1e9,
               name, text);
    }
    return rc == -ECHILD ? 0 : rc;
}

static void *run_tasks(void *arg)
{
    struct run *r = arg;
    fiber_waitset_t *set;
    int64_t start_ns = fiber_now_ns();

    int rc = fiber_waitset_create(&set);
    if (rc < 0)
        return fiber_fail(rc);
    for (size_t i = 0; i < r->n && rc == 0; i++) {
        char name[FIBER_NAME_MAX + 1];
        fiber_attr_t attr = {.name = name};
        fiber_task_t *task;
        snprintf(name, sizeof(name), "task %zu", i + 1);
        r->slots[i] = r->max_delay;
        rc = fiber_spawn(&task, sleep_random, &r->slots[i], &attr);
        if (rc == 0)
            rc = fiber_waitset_add(set, task);
    }

    fiber_scope_t scope;
    if (rc == 0)
        rc = fiber_scope_enter_after(&scope, r->timeout);
    if (rc == 0) {
        rc = print_as_completed(set, start_ns);
        fiber_scope_exit(&scope);
    }
    double seconds = (double)(fiber_now_ns() - start_ns) / 1e9;
    if (rc == 0) {
        printf("all %zu tasks done in %.3f s\n", r->n, seconds);
    } else if (rc == -ETIMEDOUT) {
        printf("timed out after %.3f s: %zu of %zu tasks still running, "
               "cancelled\n", seconds, fiber_waitset_size(set), r->n);
        rc = 0;
    }
    /* Cancels and reaps whatever is left, so no task outlives the slots. */
    fiber_waitset_destroy(set);
    return rc < 0 ? fiber_fail(rc) : NULL;
}

int main(int argc, char **argv)
{
    struct run run = {.n = 5, .max_delay = 3, .timeout = INFINITY};
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    if (cli.nargs == 1)
        demo_usage_error(&cli, "give both n and max_delay, or neither");
    if (cli.nargs >= 2) {
        run.n = demo_count_arg(&cli, 0, "n", 0);
        run.max_delay = demo_delay_arg(&cli, 1, "max_delay");
    }
    if (cli.nargs == 3)
        run.timeout = demo_delay_arg(&cli, 2, "timeout");
    run.slots = calloc(run.n ? run.n : 1, sizeof(*run.slots));
    int status = run.slots ? demo_run(&cli, run_tasks, &run)
                           : demo_error(&cli, -ENOMEM);
    free(run.slots);
    return demo_finish(&cli, status);
}
