/*
 * 0-basic_async_syntax - the course's main file for exercise 0:
 *
 *     print(asyncio.run(wait_random()))
 *     print(asyncio.run(wait_random(5)))
 *     print(asyncio.run(wait_random(15)))
 */
#include <stdint.h>

#include "demo_util.h"
#include "exercises/exercises.h"

static const struct demo_program program = {
    "0-basic_async_syntax", "[max_delay ...]",
    "Print asyncio.run(wait_random(max_delay)), a random delay slept, for\n"
    "each max_delay.  Without arguments: wait_random() (max_delay 10), (5),\n"
    "(15).",
    SIZE_MAX};

int main(int argc, char **argv)
{
    static const double defaults[] = {10, 5, 15};
    struct demo_cli cli;
    int status = 0;

    demo_parse_args(argc, argv, &program, &cli);
    for (size_t i = 0; i < cli.nargs; i++)   /* all checked before any runs */
        demo_delay_arg(&cli, i, "max_delay");
    for (size_t i = 0; i < (cli.nargs ? cli.nargs : 3) && status == 0; i++) {
        double delay = cli.nargs ? demo_delay_arg(&cli, i, "max_delay")
                                 : defaults[i];
        status = demo_run(&cli, wait_random, &delay);
        if (status == 0)
            demo_print_double(stdout, delay);
    }
    return demo_finish(&cli, status);
}
