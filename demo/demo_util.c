/*
 * demo_util.c - command line, float printing and running loops for the
 * demo programs.  See demo_util.h.
 */
#include "demo_util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Every loop demo_run runs, recorded for --timeline; NULL without it. */
static fiber_trace_t *timeline;

/* ---- the command line -------------------------------------------------- */

static void print_usage(const struct demo_program *program)
{
    printf("usage: %s [--seed N] [--timeline]%s%s\n\n%s\n\n"
           "options:\n"
           "  --seed N    seed the random generator with N (also --seed=N);\n"
           "              accepted anywhere among the arguments\n"
           "  --timeline  after the output, show when each fiber ran and slept\n"
           "  --help, -h  print this help and exit\n\n"
           "Set FIBER_CLOCK=virtual to run on simulated time, where every\n"
           "sleep ends at once.\n",
           program->name, program->args[0] ? " " : "", program->args,
           program->about);
}

_Noreturn void demo_usage_error(const struct demo_cli *cli, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", cli->program->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(DEMO_EXIT_USAGE);
}

/* A decimal integer made of digits only: strtoull alone would also take
 * a sign (even "-1"), leading blanks and nothing at all.  Returns 0,
 * -EINVAL when text is not one, -ERANGE when it does not fit in 64 bits. */
static int parse_u64(const char *text, uint64_t *out)
{
    if (*text == '\0')
        return -EINVAL;
    for (const char *p = text; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
    errno = 0;
    unsigned long long value = strtoull(text, NULL, 10);
    if (errno == ERANGE)
        return -ERANGE;
    *out = (uint64_t)value;
    return 0;
}

/* An argument that looks like a negative number ("-1", "-.5") is a value,
 * so that it is rejected as negative rather than as an unknown option. */
static bool is_option(const char *arg)
{
    if (arg[0] != '-' || arg[1] == '\0')
        return false;
    return !(isdigit((unsigned char)arg[1]) || arg[1] == '.');
}

void demo_parse_args(int argc, char **argv, const struct demo_program *program,
                     struct demo_cli *cli)
{
    const char *seed_text = NULL;
    bool options_done = false;
    size_t nargs = 0;

    cli->program = program;
    cli->args = argv + 1;
    cli->nargs = 0;

    /* --help wins over any mistake elsewhere on the line: whoever asks for
     * help gets it. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_usage(program);
            exit(fflush(stdout) == 0 ? 0 : DEMO_EXIT_FAILURE);
        }
    }

    /* Positional arguments move down over the options; each lands at or
     * before the slot it came from, so none is overwritten unread. */
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];

        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (!options_done && strcmp(arg, "--seed") == 0) {
            if (i + 1 >= argc)
                demo_usage_error(cli, "--seed needs a value");
            seed_text = argv[++i];
        } else if (!options_done && strncmp(arg, "--seed=", 7) == 0) {
            seed_text = arg + 7;
        } else if (!options_done && strcmp(arg, "--timeline") == 0) {
            if (!timeline && fiber_trace_new(&timeline) < 0)
                demo_usage_error(cli, "no memory for --timeline");
        } else if (!options_done && is_option(arg)) {
            demo_usage_error(cli, "unknown option '%s' (see --help)", arg);
        } else {
            if (nargs == program->max_args) {
                if (program->max_args == 0)
                    demo_usage_error(cli, "takes no arguments, got '%s'", arg);
                demo_usage_error(cli, "too many arguments: at most %zu, got '%s'",
                                 program->max_args, arg);
            }
            cli->args[nargs++] = arg;
        }
    }
    cli->nargs = nargs;

    if (seed_text) {
        uint64_t seed;
        if (parse_u64(seed_text, &seed) < 0)
            demo_usage_error(cli, "--seed needs an integer from 0 to %" PRIu64
                             ", got '%s'", UINT64_MAX, seed_text);
        fiber_seed(seed);
    }
}

size_t demo_count_arg(const struct demo_cli *cli, size_t i, const char *what,
                      size_t min)
{
    const char *text = cli->args[i];
    const char *kind = min > 0 ? "a positive" : "a non-negative";
    uint64_t value;

    int rc = parse_u64(text, &value);
    if (rc == -ERANGE || (rc == 0 && value > SIZE_MAX))
        demo_usage_error(cli, "%s is too large, got '%s'", what, text);
    if (rc < 0 || value < min)
        demo_usage_error(cli, "%s must be %s integer, got '%s'", what, kind, text);
    return (size_t)value;
}

double demo_delay_arg(const struct demo_cli *cli, size_t i, const char *what)
{
    const char *text = cli->args[i];
    double value = NAN;

    /* strtod skips leading blanks and reads "nan" and "inf": all refused,
     * as is "1e999", which overflows to infinity. */
    if (text[0] != '\0' && !isspace((unsigned char)text[0])) {
        char *end;
        value = strtod(text, &end);
        if (*end != '\0')
            value = NAN;
    }
    if (!isfinite(value) || value < 0)
        demo_usage_error(cli, "%s must be a finite non-negative number of "
                         "seconds, got '%s'", what, text);
    if (value > DEMO_MAX_DELAY)
        demo_usage_error(cli, "%s must be at most %.0f seconds, got '%s'",
                         what, DEMO_MAX_DELAY, text);
    /* Adding zero turns "-0" into 0, which prints as 0.0. */
    return value + 0.0;
}

bool demo_n_delay_args(const struct demo_cli *cli, size_t min_n, size_t *n,
                       double *max_delay)
{
    if (cli->nargs == 0)
        return false;
    if (cli->nargs != 2)
        demo_usage_error(cli, "give both n and max_delay, or neither");
    *n = demo_count_arg(cli, 0, "n", min_n);
    *max_delay = demo_delay_arg(cli, 1, "max_delay");
    return true;
}

double *demo_alloc_delays(const struct demo_cli *cli, size_t n)
{
    double *delays = NULL;

    if (n <= SIZE_MAX / sizeof(*delays))
        delays = malloc((n ? n : 1) * sizeof(*delays));
    if (!delays)
        demo_usage_error(cli, "n is too large: no memory for %zu delays", n);
    return delays;
}

/* ---- running ----------------------------------------------------------- */

int demo_run(const struct demo_cli *cli, fiber_fn main, void *arg)
{
    int status = 0;
    fiber_debug_options_t debug = {.trace = timeline};
    fiber_options_t options = {.debug = timeline ? &debug : NULL};
    int rc = fiber_run(main, arg, &options, NULL, &status);

    if (rc == 0)
        rc = status;
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", cli->program->name, strerror(-rc));
        return DEMO_EXIT_FAILURE;
    }
    return 0;
}

int demo_finish(const struct demo_cli *cli, int status)
{
    if (timeline) {
        putchar('\n');
        fiber_trace_write_timeline(timeline, stdout, 0);
        fiber_trace_free(timeline);
        timeline = NULL;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: cannot write the output: %s\n", cli->program->name,
                strerror(errno));
        return DEMO_EXIT_FAILURE;
    }
    return status;
}

/* One (n, max_delay) call of an exercise, run as a loop's main fiber. */
struct delays_call {
    demo_delays_fn *fn;
    size_t n;
    double max_delay;
    double *delays;
};

static void *run_delays_call(void *arg)
{
    struct delays_call *call = arg;
    int rc = call->fn(call->n, call->max_delay, call->delays);

    return rc < 0 ? fiber_fail(rc) : NULL;
}

int demo_print_delays(const struct demo_cli *cli, demo_delays_fn *fn, size_t n,
                      double max_delay)
{
    struct delays_call call = {
        .fn = fn,
        .n = n,
        .max_delay = max_delay,
        .delays = demo_alloc_delays(cli, n),
    };

    int status = demo_run(cli, run_delays_call, &call);
    if (status == 0)
        demo_print_list(stdout, call.delays, n);
    free(call.delays);
    return status;
}

int demo_spawn_gather(size_t n, fiber_fn fn, void *arg)
{
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / sizeof(fiber_task_t *))
        return -ENOMEM;
    fiber_task_t **tasks = malloc(n * sizeof(*tasks));
    if (!tasks)
        return -ENOMEM;

    size_t started = 0;
    int rc = 0;
    while (started < n && rc == 0) {
        rc = fiber_spawn(&tasks[started], fn, arg, NULL);
        if (rc == 0)
            started++;
    }
    /* On a failed spawn the others must not run on with arg, which the
     * caller is about to give up: cancel them, then reap them all. */
    if (rc < 0)
        for (size_t i = 0; i < started; i++)
            fiber_cancel(tasks[i]);

    int gather_rc = fiber_gather(tasks, started, NULL, NULL);
    free(tasks);
    return rc < 0 ? rc : gather_rc;
}

/* ---- printing floats --------------------------------------------------- */

void demo_format_double(double x, char buf[static DEMO_DOUBLE_BUFSIZE])
{
    if (isnan(x) || isinf(x)) {
        snprintf(buf, DEMO_DOUBLE_BUFSIZE, "%s",
                 isnan(x) ? "nan" : x < 0 ? "-inf" : "inf");
        return;
    }

    /* The fewest significant digits that read back as x; 17 always do. */
    char sci[DEMO_DOUBLE_BUFSIZE];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(sci, sizeof(sci), "%.*e", digits - 1, x);
        if (strtod(sci, NULL) == x)
            break;
    }

    /* Take sci apart: sign, digits without the point, decimal exponent. */
    const char *p = sci;
    bool negative = *p == '-';
    if (negative)
        p++;
    char mantissa[DEMO_DOUBLE_BUFSIZE];
    size_t ndigits = 0;
    for (; *p != 'e'; p++)
        if (isdigit((unsigned char)*p))
            mantissa[ndigits++] = *p;
    while (ndigits > 1 && mantissa[ndigits - 1] == '0')
        ndigits--;
    mantissa[ndigits] = '\0';
    int exponent = atoi(p + 1);

    /* Lay it out as Python's repr does. */
    char *out = buf;
    if (negative)
        *out++ = '-';
    if (exponent < -4 || exponent >= 16) {
        *out++ = mantissa[0];
        if (ndigits > 1) {
            *out++ = '.';
            memcpy(out, mantissa + 1, ndigits - 1);
            out += ndigits - 1;
        }
        snprintf(out, DEMO_DOUBLE_BUFSIZE - (size_t)(out - buf), "e%c%02d",
                 exponent < 0 ? '-' : '+', abs(exponent));
    } else if (exponent < 0) {
        *out++ = '0';
        *out++ = '.';
        for (int i = -1; i > exponent; i--)
            *out++ = '0';
        memcpy(out, mantissa, ndigits + 1);
    } else {
        size_t whole = (size_t)exponent + 1;
        for (size_t i = 0; i < whole; i++)
            *out++ = i < ndigits ? mantissa[i] : '0';
        *out++ = '.';
        if (ndigits > whole) {
            memcpy(out, mantissa + whole, ndigits - whole + 1);
        } else {
            *out++ = '0';
            *out = '\0';
        }
    }
}

void demo_print_double(FILE *out, double x)
{
    char text[DEMO_DOUBLE_BUFSIZE];

    demo_format_double(x, text);
    fprintf(out, "%s\n", text);
}

void demo_print_list(FILE *out, const double *values, size_t n)
{
    char text[DEMO_DOUBLE_BUFSIZE];

    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        demo_format_double(values[i], text);
        fprintf(out, "%s%s", i ? ", " : "", text);
    }
    fputs("]\n", out);
}
