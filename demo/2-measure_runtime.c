/*
 * 2-measure_runtime - the course's main file for exercise 2:
 *
 *     n = 5
 *     max_delay = 9
 *     print(measure_time(n, max_delay))
 */
#include "demo_util.h"
#include "exercises/exercises.h"

static const struct demo_program program = {
    "2-measure_runtime", "[n max_delay]",
    "Print measure_time(n, max_delay): how long asyncio.run(wait_n(n,\n"
    "max_delay)) took on its loop clock, divided by n; at most max_delay / n,\n"
    "as the calls run concurrently.  Without arguments: n = 5, max_delay = 9.",
    2};

int main(int argc, char **argv)
{
    size_t n = 5;
    double max_delay = 9;
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    demo_n_delay_args(&cli, 1, &n, &max_delay);
    double per_call = measure_time(n, max_delay);
    if (per_call < 0)
        return demo_finish(&cli, demo_error(&cli, (int)per_call));
    demo_print_double(stdout, per_call);
    return demo_finish(&cli, 0);
}
