/*
 * demo_util.h - what the demo programs share: the command line (--help,
 * --seed N, positional numbers), printing floats the way Python prints them,
 * running a loop and reporting its failure, and spawning n fibers at once.
 *
 * Every demo accepts:
 *   --help, -h      print its usage on stdout and exit 0
 *   --seed N        seed the random generator (fiber_seed) with N, a decimal
 *                   integer; accepted anywhere among the arguments, also as
 *                   --seed=N
 *   --timeline      after the normal output, print a text timeline of each
 *                   loop the program ran: one row per fiber, showing when
 *                   it ran, slept and waited (fiber_trace_write_timeline)
 *   --              end of options
 * The clock is whatever FIBER_CLOCK says (real when unset): the demos run
 * their loops with default options.
 *
 * Exit statuses: 0 on success, 1 when the loop or an exercise failed (one
 * line naming the error on stderr), 2 for a bad command line (one line on
 * stderr, nothing on stdout, nothing run).
 */
#ifndef DEMO_UTIL_H
#define DEMO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "fiber.h"

#define DEMO_EXIT_FAILURE 1
#define DEMO_EXIT_USAGE 2

/* The longest delay a demo accepts, in seconds (about 31 years).  The loop
 * clock counts nanoseconds in 64 bits, so much longer sleeps cannot be
 * given a deadline and would never end. */
#define DEMO_MAX_DELAY 1e9

/* Room for any double printed by demo_format_double, NUL included. */
#define DEMO_DOUBLE_BUFSIZE 32

/* What a demo is, for its messages and its --help. */
struct demo_program {
    const char *name;   /* the program's name, used in every message */
    const char *args;   /* synopsis of the positional arguments, "" if none */
    const char *about;  /* what the program does, one or more lines */
    size_t max_args;    /* the most positional arguments accepted */
};

/* A parsed command line: the options are handled, the positional
 * arguments remain, in order, for the program to convert. */
struct demo_cli {
    const struct demo_program *program;
    char **args;
    size_t nargs;
};

/*
 * demo_parse_args - handle --help and --seed, collect the positional
 * arguments into cli (reusing argv's array) and seed the generator if asked.
 * Exits 0 after printing the usage for --help, and 2 with one line on
 * stderr for an unknown option, a bad seed or too many arguments.
 */
void demo_parse_args(int argc, char **argv, const struct demo_program *program,
                     struct demo_cli *cli);

/* Print "name: message" on stderr and exit 2. */
_Noreturn void demo_usage_error(const struct demo_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Positional argument i as a count (a decimal integer at least min), named
 * what in the message when it is not one; exits 2 then. */
size_t demo_count_arg(const struct demo_cli *cli, size_t i, const char *what,
                      size_t min);

/* Positional argument i as a delay in seconds: a finite number in
 * [0, DEMO_MAX_DELAY]; exits 2 when it is not one. */
double demo_delay_arg(const struct demo_cli *cli, size_t i, const char *what);

/*
 * demo_n_delay_args - the optional pair of positional arguments
 * "n max_delay": when both are given, store them (n at least min_n) and
 * return true; when neither is, leave *n and *max_delay alone and return
 * false.  One without the other, or a bad value, exits 2.
 */
bool demo_n_delay_args(const struct demo_cli *cli, size_t min_n, size_t *n,
                       double *max_delay);

/*
 * demo_alloc_delays - an array for n delays, at least one element so that
 * n = 0 needs no special case.  A count too large to allocate is a bad
 * argument: exits 2, before anything runs.
 */
double *demo_alloc_delays(const struct demo_cli *cli, size_t n);

/*
 * demo_run - run main(arg) on a fresh loop with the default options (and,
 * with --timeline, recording it).  The main fiber reports a failure with
 * fiber_fail(-errno).  Returns 0, or DEMO_EXIT_FAILURE after printing
 * "name: <strerror>" on stderr when the loop or the main fiber failed.
 */
int demo_run(const struct demo_cli *cli, fiber_fn main, void *arg);

/* Print the timeline if --timeline asked for one, flush stdout and turn a
 * write error into one line on stderr.  Returns status, or
 * DEMO_EXIT_FAILURE if the output could not be written. */
int demo_finish(const struct demo_cli *cli, int status);

/*
 * demo_format_double - x as Python's repr prints a float: the fewest
 * digits that read back as the same double, "1.0" rather than "1",
 * exponents from 1e+16 up and below 0.0001 ("1e-05").
 */
void demo_format_double(double x, char buf[static DEMO_DOUBLE_BUFSIZE]);

/* Print x like demo_format_double, then a newline. */
void demo_print_double(FILE *out, double x);

/* Print a list like Python prints a list of floats: [0.5, 1.25, 3.0]. */
void demo_print_list(FILE *out, const double *values, size_t n);

/* A (n, max_delay) exercise that fills delays[0..n): wait_n, task_wait_n. */
typedef int demo_delays_fn(size_t n, double max_delay, double *delays);

/*
 * demo_print_delays - run fn(n, max_delay) on its own loop and print the
 * delays as a list.  Returns the exit status (see demo_run); an n too large
 * to allocate exits 2 before anything runs.
 */
int demo_print_delays(const struct demo_cli *cli, demo_delays_fn *fn, size_t n,
                      double max_delay);

/*
 * demo_spawn_gather - run fn(arg) in n new fibers at once and wait until
 * every one has finished.  Must be called from a fiber.  When a spawn
 * fails, the fibers already started are cancelled and reaped before
 * returning, so none outlives arg.  Returns 0, the error of fiber_spawn
 * (-ENOMEM) or of fiber_gather (-ECANCELED if the caller was cancelled).
 * The fibers' own statuses are not looked at: fn reports through arg.
 */
int demo_spawn_gather(size_t n, fiber_fn fn, void *arg);

#endif
