/*
 * process_argv - run the command given as arguments with
 * fiber_process_spawn, passing main's own argv (a char **) on, as
 * programs do, and exit with the child's exit status.  Built with -Werror:
 * that the call compiles without a cast is the point.  Run by
 * process_argv.sh.
 */
#include <stdio.h>
#include <sys/wait.h>

#include "fiber.h"

static void *run_child(void *arg)
{
    char **argv = arg;
    fiber_process_t *proc;
    int wstatus = 0;

    int rc = fiber_process_spawn(&proc, argv, 0, NULL);
    if (rc < 0) {
        fprintf(stderr, "process_argv: fiber_process_spawn: %d\n", rc);
        return (void *)(intptr_t)100;
    }
    rc = fiber_process_wait(proc, &wstatus);
    if (rc < 0 || !WIFEXITED(wstatus))
        return (void *)(intptr_t)101;
    return (void *)(intptr_t)WEXITSTATUS(wstatus);
}

int main(int argc, char **argv)
{
    void *result = NULL;

    if (argc < 2) {
        fprintf(stderr, "usage: process_argv program [argument...]\n");
        return 2;
    }
    if (fiber_run(run_child, argv + 1, NULL, &result, NULL) < 0)
        return 102;
    return (int)(intptr_t)result;
}
