/*
 * taskgroup - asyncio.TaskGroup: three downloads in one group, one fails.
 *
 *     async with asyncio.TaskGroup() as group:
 *         for name in ("alpha.txt", "beta.bin", "gamma.iso"):
 *             group.create_task(download(name))
 *
 * The download that fails makes the group cancel the other two; the group
 * still waits for them to finish, and every download's status is printed
 * at the end, in the order they were started.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "demo_util.h"

static const struct demo_program program = {
    .name = "taskgroup",
    .args = "[failing]",
    .about = "Run three download-like tasks in a task group.  Each receives\n"
             "its chunks one by one, every chunk taking a random 0.2 to 0.4 s;\n"
             "download number `failing` (1 to 3, 0 for none; 2 by default)\n"
             "fails with an I/O error at its third chunk.  The group cancels\n"
             "the others and waits for them; every status is printed.",
    .max_args = 1,
};

struct download {
    const char *name;
    int chunks;      /* chunks to receive */
    int fail_at;     /* the chunk at which it fails, or -1 */
    int received;    /* chunks received so far */
};

static int64_t start_ns;

/* Seconds since the group started, for the log lines. */
static double elapsed(void)
{
    return (double)(fiber_now_ns() - start_ns) / 1e9;
}

static void *download(void *arg)
{
    struct download *d = arg;

    printf("[%.3f] %s: started, %d chunks\n", elapsed(), d->name, d->chunks);
    for (d->received = 0; d->received < d->chunks; d->received++) {
        if (d->received == d->fail_at) {
            printf("[%.3f] %s: %s\n", elapsed(), d->name, strerror(EIO));
            return fiber_fail(-EIO);
        }
        int rc = fiber_sleep(fiber_uniform(0.2, 0.4));
        if (rc < 0) {
            printf("[%.3f] %s: cancelled\n", elapsed(), d->name);
            return fiber_fail(rc);
        }
    }
    printf("[%.3f] %s: done\n", elapsed(), d->name);
    return d;
}

/* One line per download, in the order spawned: how it ended. */
static void print_statuses(const fiber_group_t *group)
{
    for (fiber_task_t *t = fiber_group_next(group, NULL); t;
         t = fiber_group_next(group, t)) {
        void *result;
        int status;
        fiber_result(t, &result, &status);
        printf("  %-10s ", fiber_name(t));
        if (status == 0) {
            const struct download *d = result;
            printf("done, %d of %d chunks\n", d->received, d->chunks);
        } else {
            printf("%s (status %d)\n",
                   status == -ECANCELED ? "cancelled" : strerror(-status),
                   status);
        }
    }
}

static void *run_group(void *arg)
{
    struct download *downloads = arg;
    fiber_group_t *group;

    start_ns = fiber_now_ns();
    int rc = fiber_group_create(&group);
    if (rc < 0)
        return fiber_fail(rc);
    for (int i = 0; i < 3 && rc == 0; i++) {
        fiber_attr_t attr = {.name = downloads[i].name};
        rc = fiber_group_spawn(group, NULL, download, &downloads[i], &attr);
    }
    /* Even when a spawn failed, the group waits for those started. */
    int wait_rc = fiber_group_wait(group);
    fiber_task_t *failed;
    int first_error = fiber_group_error(group, &failed);
    if (first_error < 0)
        printf("group: %s, first failure: %s\n", strerror(-first_error),
               fiber_name(failed));
    else if (wait_rc == 0)
        printf("group: all downloads done\n");
    printf("statuses, in the order started:\n");
    print_statuses(group);
    fiber_group_destroy(group);
    if (rc < 0)
        return fiber_fail(rc);
    /* A failed download is what this demo shows, not a failure of it. */
    return wait_rc < 0 && wait_rc != first_error ? fiber_fail(wait_rc) : NULL;
}

int main(int argc, char **argv)
{
    struct download downloads[3] = {
        {.name = "alpha.txt", .chunks = 6, .fail_at = -1},
        {.name = "beta.bin", .chunks = 8, .fail_at = -1},
        {.name = "gamma.iso", .chunks = 10, .fail_at = -1},
    };
    struct demo_cli cli;
    size_t failing = 2;

    demo_parse_args(argc, argv, &program, &cli);
    if (cli.nargs == 1) {
        failing = demo_count_arg(&cli, 0, "failing", 0);
        if (failing > 3)
            demo_usage_error(&cli, "failing must be 0 to 3, got '%s'",
                             cli.args[0]);
    }
    /* Its third chunk comes before any other download's sixth. */
    if (failing > 0)
        downloads[failing - 1].fail_at = 2;
    return demo_finish(&cli, demo_run(&cli, run_group, downloads));
}
