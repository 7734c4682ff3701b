/*
 * hello - the smallest asyncio program:
 *
 *     async def main():
 *         print('Hello')
 *         await asyncio.sleep(1)
 *         print('World')
 *
 *     asyncio.run(main())
 */
#include <stdio.h>

#include "demo_util.h"

static const struct demo_program program = {
    .name = "hello",
    .args = "",
    .about = "Print Start, then run a fiber that prints Hello, sleeps one\n"
             "second and prints World, then print End.",
    .max_args = 0,
};

static void *hello_world(void *arg)
{
    (void)arg;
    printf("Hello\n");
    /* Show the line now, not after the pause, when stdout is a terminal
     * or a pipe read as it comes. */
    fflush(stdout);
    int rc = fiber_sleep(1);
    if (rc < 0)
        return fiber_fail(rc);
    printf("World\n");
    return NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    printf("Start\n");
    int status = demo_run(&cli, hello_world, NULL);
    if (status == 0)
        printf("End\n");
    return demo_finish(&cli, status);
}
