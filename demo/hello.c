/*
 * hello - the smallest asyncio program:
 *
 *     async def main():
 *         print('Hello')
 *         await asyncio.sleep(1)
 *         print('World')
 *
 *     print('Start')
 *     asyncio.run(main())
 *     print('End')
 */
#include <stdio.h>

#include "demo_util.h"

static const struct demo_program program = {
    "hello", "", "Print Start, then Hello, World a second later, then End.", 0};

static void *hello(void *arg)
{
    printf("Hello\n");
    int rc = fiber_sleep(1);
    if (rc < 0)
        return fiber_fail(rc);
    printf("World\n");
    return arg;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    printf("Start\n");
    int status = demo_run(&cli, hello, NULL);
    if (status == 0)
        printf("End\n");
    return demo_finish(&cli, status);
}
