/*
 * demo_util.c - the demos' command line and output.  See demo_util.h.
 */
#include "demo_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exercises/exercises.h"

fiber_options_t loop_options;

/* What --timeline records every loop into, and how. */
static fiber_trace_t *timeline;
static fiber_debug_options_t timeline_options;

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

/* Digits only, at most max: strtoull alone would take "-1", " 1" and "". */
static bool parse_count(const char *text, uint64_t max, uint64_t *out)
{
    if (!*text || strspn(text, "0123456789") != strlen(text))
        return false;
    errno = 0;
    *out = strtoull(text, NULL, 10);
    return errno == 0 && *out <= max;
}

/* "-1" and "-.5" are values, to be refused as negative, not options. */
static bool is_option(const char *arg)
{
    return arg[0] == '-' && arg[1] && !isdigit((unsigned char)arg[1]) &&
           arg[1] != '.';
}

void demo_parse_args(int argc, char **argv, const struct demo_program *program,
                     struct demo_cli *cli)
{
    const char *seed = NULL;
    bool options = true;

    *cli = (struct demo_cli){program, argv + 1, 0};
    /* Each line shows when it is printed, also through a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Whoever asks for help gets it, whatever else the line says. */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s [--seed N] [--timeline]%s%s\n\n%s\n\n"
                   "  --seed N    seed the random generator (also --seed=N)\n"
                   "  --timeline  after the output, show when each fiber ran "
                   "and slept\n  --help, -h  print this help\n\n"
                   "FIBER_CLOCK=virtual runs on simulated time, where every "
                   "sleep ends at once.\n", program->name,
                   *program->args ? " " : "", program->args, program->about);
            exit(fflush(stdout) == 0 ? 0 : DEMO_EXIT_FAILURE);
        }
    }
    /* Positional arguments move down over the options, never past one
     * still unread. */
    for (int i = 1; i < argc; i++) {
        if (options && strcmp(argv[i], "--") == 0) {
            options = false;
        } else if (options && strcmp(argv[i], "--seed") == 0) {
            if (++i == argc)
                demo_usage_error(cli, "--seed needs a value");
            seed = argv[i];
        } else if (options && strncmp(argv[i], "--seed=", 7) == 0) {
            seed = argv[i] + 7;
        } else if (options && strcmp(argv[i], "--timeline") == 0) {
            if (!timeline && fiber_trace_new(&timeline) < 0)
                demo_usage_error(cli, "no memory for --timeline");
            timeline_options.trace = timeline;
            loop_options.debug = &timeline_options;
        } else if (options && is_option(argv[i])) {
            demo_usage_error(cli, "unknown option '%s' (see --help)", argv[i]);
        } else if (cli->nargs == program->max_args) {
            demo_usage_error(cli, "too many arguments: at most %zu, got '%s'",
                             program->max_args, argv[i]);
        } else {
            cli->args[cli->nargs++] = argv[i];
        }
    }
    uint64_t value;
    if (seed && !parse_count(seed, UINT64_MAX, &value))
        demo_usage_error(cli, "--seed needs an integer from 0 to %llu, got "
                         "'%s'", (unsigned long long)UINT64_MAX, seed);
    if (seed)
        fiber_seed(value);
}

size_t demo_count_arg(const struct demo_cli *cli, size_t i, const char *what,
                      size_t min)
{
    uint64_t value;

    if (!parse_count(cli->args[i], DEMO_MAX_COUNT, &value) || value < min)
        demo_usage_error(cli, "%s must be an integer from %zu to %zu, got '%s'",
                         what, min, DEMO_MAX_COUNT, cli->args[i]);
    return (size_t)value;
}

double demo_delay_arg(const struct demo_cli *cli, size_t i, const char *what)
{
    const char *text = cli->args[i];
    char *end = NULL;
    /* Neither blanks, "nan", "inf" nor "1e999" (infinite) get through. */
    double value = *text && !isspace((unsigned char)*text) ? strtod(text, &end)
                                                           : NAN;

    if ((end && *end) || !(value >= 0 && value <= DEMO_MAX_DELAY))
        demo_usage_error(cli, "%s must be a number of seconds from 0 to %g, "
                         "got '%s'", what, DEMO_MAX_DELAY, text);
    return value + 0.0;   /* "-0" becomes 0, which prints as 0.0 */
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

int demo_error(const struct demo_cli *cli, int rc)
{
    fprintf(stderr, "%s: %s\n", cli->program->name, strerror(-rc));
    return DEMO_EXIT_FAILURE;
}

static int run(const struct demo_cli *cli, fiber_fn main, void *arg,
               void **result)
{
    int status = 0;
    int rc = fiber_run(main, arg, &loop_options, result, &status);

    return rc < 0 || status < 0 ? demo_error(cli, rc < 0 ? rc : status) : 0;
}

int demo_gather_each(fiber_fn fn, void *items, size_t n, size_t size,
                     const fiber_attr_t *attr, double *seconds)
{
    fiber_task_t **tasks = calloc(n ? n : 1, sizeof(*tasks));
    size_t spawned = 0;
    int rc = 0;

    if (!tasks)
        return -ENOMEM;
    int64_t start = fiber_now_ns();
    for (; spawned < n; spawned++) {
        rc = fiber_spawn(&tasks[spawned], fn, (char *)items + spawned * size,
                         attr);
        if (rc < 0)
            break;
    }
    if (rc < 0)
        for (size_t i = 0; i < spawned; i++)
            fiber_cancel(tasks[i]);
    int gathered = fiber_gather(tasks, spawned, NULL, NULL);
    *seconds = (double)(fiber_now_ns() - start) / 1e9;
    free(tasks);
    return rc < 0 ? rc : gathered < 0 ? gathered : 0;
}

int demo_run(const struct demo_cli *cli, fiber_fn main, void *arg)
{
    return run(cli, main, arg, NULL);
}

int demo_main(int argc, char **argv, const struct demo_program *program,
              fiber_fn main)
{
    struct demo_cli cli;

    demo_parse_args(argc, argv, program, &cli);
    return demo_finish(&cli, demo_run(&cli, main, NULL));
}

int demo_print_delays(const struct demo_cli *cli, fiber_fn fn, size_t n,
                      double max_delay)
{
    void *delays = NULL;
    int status = run(cli, fn, &(struct wait_n_args){n, max_delay}, &delays);

    if (status == 0)
        demo_print_list(stdout, delays, n);
    free(delays);
    return status;
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
        fprintf(stderr, "%s: cannot write the output: %s\n",
                cli->program->name, strerror(errno));
        return DEMO_EXIT_FAILURE;
    }
    return status;
}

void demo_format_double(double x, char buf[static DEMO_DOUBLE_BUFSIZE])
{
    if (!isfinite(x)) {
        strcpy(buf, isnan(x) ? "nan" : x < 0 ? "-inf" : "inf");
        return;
    }
    /* The fewest significant digits that read back as x (17 always do),
     * laid out as Python does: fixed from 1e-4 up to 1e16, with at least
     * one decimal; in exponent form elsewhere. */
    int digits = 0;
    do
        snprintf(buf, DEMO_DOUBLE_BUFSIZE, "%.*e", digits++, x);
    while (digits < 17 && strtod(buf, NULL) != x);
    int exponent = atoi(strchr(buf, 'e') + 1);
    int decimals = digits - 1 - exponent;
    if (exponent >= -4 && exponent < 16)
        snprintf(buf, DEMO_DOUBLE_BUFSIZE, "%.*f", decimals > 0 ? decimals : 1,
                 x);
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
