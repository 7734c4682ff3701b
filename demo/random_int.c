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
#include <stdint.h>
#include <stdio.h>

#include "demo_util.h"

static const struct demo_program program = {
    .name = "random_int",
    .args = "",
    .about = "Sleep one second, then print a random integer from 1 to 100.",
    .max_args = 0,
};

static void *random_int(void *arg)
{
    int64_t *value = arg;

    int rc = fiber_sleep(1);
    if (rc == 0)
        rc = fiber_randint(1, 100, value);
    return rc < 0 ? fiber_fail(rc) : NULL;
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
