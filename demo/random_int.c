/*
 * random_int - a coroutine that returns a value:
 *
 *     async def random_int():
 *         await asyncio.sleep(1)
 *         return random.randint(1, 100)
 *
 *     print(asyncio.run(random_int()))
 */
#include <inttypes.h>
#include <stdio.h>

#include "demo_util.h"

static const struct demo_program program = {
    "random_int", "",
    "Sleep one second, then print a random integer from 1 to 100.", 0};

/* The integer goes where arg points, and the result points to it. */
static void *random_int(void *arg)
{
    int rc = fiber_sleep(1);

    if (rc == 0)
        rc = fiber_randint(1, 100, arg);
    return rc < 0 ? fiber_fail(rc) : arg;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;
    int64_t value;

    demo_parse_args(argc, argv, &program, &cli);
    int status = demo_run(&cli, random_int, &value);
    if (status == 0)
        printf("%" PRId64 "\n", value);
    return demo_finish(&cli, status);
}
