/*
 * demo_util.h - the demos' command line and output, which teach nothing.
 *
 * Every demo takes --help (-h), --seed N (or --seed=N, anywhere: seeds
 * fiber_seed), --timeline (after the output, a timeline of each loop run:
 * fiber_trace_write_timeline) and --.  FIBER_CLOCK picks the clock.  Exit
 * status: 0; 1 when a run failed (one line on stderr); 2 for a bad command
 * line (one line on stderr, nothing on stdout, nothing run).
 */
#ifndef DEMO_UTIL_H
#define DEMO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "fiber.h"

#define DEMO_EXIT_FAILURE 1
#define DEMO_EXIT_USAGE 2

/* The largest count and delay (in seconds, about 31 years) accepted. */
#define DEMO_MAX_COUNT ((size_t)100000000)
#define DEMO_MAX_DELAY 1e9

/* Room for any double demo_format_double writes, NUL included. */
#define DEMO_DOUBLE_BUFSIZE 32

/* A demo's name, positional arguments, what it does, and how many
 * positional arguments it takes at most. */
struct demo_program {
    const char *name, *args, *about;
    size_t max_args;
};

/* The positional arguments left once the options are handled. */
struct demo_cli {
    const struct demo_program *program;
    char **args;
    size_t nargs;
};

/* Handle the options (exits 0 after --help, 2 on a mistake) and keep the
 * positional arguments in cli. */
void demo_parse_args(int argc, char **argv, const struct demo_program *program,
                     struct demo_cli *cli);

/* Print "name: message" on stderr and exit 2. */
_Noreturn void demo_usage_error(const struct demo_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Positional argument i as an integer from min to DEMO_MAX_COUNT, or as a
 * delay from 0 to DEMO_MAX_DELAY seconds; exits 2 when it is not one. */
size_t demo_count_arg(const struct demo_cli *cli, size_t i, const char *what,
                      size_t min);
double demo_delay_arg(const struct demo_cli *cli, size_t i, const char *what);

/* The arguments "n max_delay" (n at least min_n), if given: true then;
 * false without arguments; one without the other exits 2. */
bool demo_n_delay_args(const struct demo_cli *cli, size_t min_n, size_t *n,
                       double *max_delay);

/* asyncio.run(main(arg)) with loop_options (exercises.h).  Returns 0, or
 * 1 after demo_error when the loop or main failed. */
int demo_run(const struct demo_cli *cli, fiber_fn main, void *arg);

/*
 * In a fiber: run fn on each of the n items of size bytes at items, each
 * in a fiber of its own (with attr, or NULL), gather them all, and put
 * the time that took in *seconds.  When a spawn fails the fibers already
 * started are cancelled and gathered.  Returns 0 or a negative errno.
 */
int demo_gather_each(fiber_fn fn, void *items, size_t n, size_t size,
                     const fiber_attr_t *attr, double *seconds);

/* The whole main() of a demo without arguments: asyncio.run(main()). */
int demo_main(int argc, char **argv, const struct demo_program *program,
              fiber_fn main);

/* Print "name: <strerror(-rc)>" on stderr; returns 1, the exit status. */
int demo_error(const struct demo_cli *cli, int rc);

/* Print the --timeline and flush stdout; returns status, or 1 if the
 * output could not be written. */
int demo_finish(const struct demo_cli *cli, int status);

/* x as Python's repr prints a float ("1.0", "0.25", "1e-05"), printed
 * alone on a line, or a list of them as Python prints a list. */
void demo_format_double(double x, char buf[static DEMO_DOUBLE_BUFSIZE]);
void demo_print_double(FILE *out, double x);
void demo_print_list(FILE *out, const double *values, size_t n);

/* print(asyncio.run(fn(n, max_delay))) for wait_n and task_wait_n. */
int demo_print_delays(const struct demo_cli *cli, fiber_fn fn, size_t n,
                      double max_delay);

#endif
