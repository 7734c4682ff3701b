/*
 * timeline.c - a recorded loop as text: one row per fiber, time across.
 *
 * Each column covers an equal slice of the loop's time and shows the most
 * telling thing the fiber did in it: ran (#), waited for its turn (~),
 * slept (-), awaited or waited (.).  Under the virtual clock running takes
 * no time, so a # marks the instants a fiber ran.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "trace.h"

/* The widest fiber label; longer ones are cut. */
#define LABEL_MAX 36

/* What a fiber is doing, most telling first when a column holds several. */
enum activity { NOTHING, WAITING, SLEEPING, READY, RUNNING };

static const char activity_mark[] = " .-~#";

struct row {
    enum activity now;   /* since `since` */
    int64_t since;
    unsigned char *cells; /* width activities */
};

struct grid {
    int64_t span;        /* ns covered by all columns */
    unsigned width;
};

static unsigned column(const struct grid *g, int64_t t)
{
    double c = (double)t / (double)g->span * g->width;

    if (c < 0)
        return 0;
    return c >= g->width ? g->width - 1 : (unsigned)c;
}

/* Mark what r did from a to b in every column that time touches. */
static void mark(const struct grid *g, struct row *r, enum activity what,
                 int64_t a, int64_t b)
{
    if (what == NOTHING)
        return;
    unsigned first = column(g, a);
    /* An interval ending on a column's left edge does not reach into it. */
    unsigned last = column(g, b > a ? b - 1 : a);
    for (unsigned c = first; c <= last; c++)
        if (what > r->cells[c])
            r->cells[c] = (unsigned char)what;
}

static enum activity activity_of(uint8_t state)
{
    switch (state) {
    case FIBER__READY: return READY;
    case FIBER__SLEEPING: return SLEEPING;
    case FIBER__AWAITING:
    case FIBER__WAITING: return WAITING;
    case FIBER__RUNNING: return RUNNING;
    default: return NOTHING;
    }
}

static void replay(const struct fiber__trace_log *log, const struct grid *g,
                   struct row *rows)
{
    for (size_t i = 0; i < log->nevents; i++) {
        const struct fiber__trace_event *e = &log->events[i];
        if (e->fiber == 0 || e->fiber > log->nfibers)
            continue;
        struct row *r = &rows[e->fiber - 1];
        switch (e->kind) {
        case FIBER__TRACE_SPAWN:
            if (e->other > 0 && e->other <= log->nfibers) {
                rows[e->other - 1].now = READY;
                rows[e->other - 1].since = e->time;
            }
            break;
        case FIBER__TRACE_RUN:
            mark(g, r, r->now, r->since, e->time);
            r->now = RUNNING;
            r->since = e->time;
            break;
        case FIBER__TRACE_STOP:
            mark(g, r, r->now, r->since, e->time);
            r->now = e->state == FIBER__DONE ? NOTHING : activity_of(e->state);
            r->since = e->time;
            break;
        default:
            break;
        }
    }
    for (size_t i = 0; i < log->nfibers; i++)
        mark(g, &rows[i], rows[i].now, rows[i].since, log->end);
}

/* "77.5 ms", "1.25 s": a duration people read at a glance. */
static void format_duration(char *buf, size_t size, double seconds)
{
    if (seconds >= 1)
        snprintf(buf, size, "%.3g s", seconds);
    else if (seconds >= 1e-3)
        snprintf(buf, size, "%.3g ms", seconds * 1e3);
    else
        snprintf(buf, size, "%.3g us", seconds * 1e6);
}

static void write_rows(const struct fiber__trace_log *log, const struct row *rows,
                       unsigned width, FILE *out)
{
    struct fiber__name_cache cache = {0};
    char label[FIBER_NAME_MAX + 160];
    char end[32];
    int label_width = 0;

    for (size_t i = 0; i < log->nfibers; i++) {
        if (log->fibers[i].id == 0)
            continue;
        fiber__trace_fiber_label(&log->fibers[i], &cache, label, sizeof(label));
        int len = (int)strlen(label);
        if (len > label_width)
            label_width = len > LABEL_MAX ? LABEL_MAX : len;
    }

    snprintf(end, sizeof(end), "%.3f s", (double)log->end / 1e9);
    /* "0 s" over the first column, the end time ending over the last. */
    int left = (int)width - (int)strlen(end);
    fprintf(out, "%*s  %-*s%s\n", label_width, "", left > 4 ? left : 4, "0 s", end);
    for (size_t i = 0; i < log->nfibers; i++) {
        if (log->fibers[i].id == 0)
            continue;
        fiber__trace_fiber_label(&log->fibers[i], &cache, label, sizeof(label));
        fprintf(out, "%-*.*s |", label_width, LABEL_MAX, label);
        for (unsigned c = 0; c < width; c++)
            fputc(activity_mark[rows[i].cells[c]], out);
        fputs("|\n", out);
    }
}

void fiber__timeline_write(const struct fiber__trace_log *log, unsigned pid,
                           FILE *out, unsigned width)
{
    struct grid g = {.span = log->end > 0 ? log->end : 1, .width = width};
    char column_time[32];
    size_t nrows = log->nfibers ? log->nfibers : 1;
    struct row *rows = calloc(nrows, sizeof(*rows));
    unsigned char *cells = calloc(nrows, width);

    format_duration(column_time, sizeof(column_time), (double)g.span / 1e9 / width);
    fprintf(out, "timeline of loop %u (%s clock): %.3f s, one column is %s%s\n",
            pid, log->is_virtual ? "virtual" : "real", (double)log->end / 1e9,
            column_time, log->truncated ? " (recording was cut short)" : "");
    if (!rows || !cells) {
        fputs("  (no memory for the timeline)\n", out);
    } else {
        for (size_t i = 0; i < nrows; i++)
            rows[i].cells = cells + i * width;
        replay(log, &g, rows);
        write_rows(log, rows, width, out);
        fputs("# ran  ~ ready  - sleeping  . awaiting or waiting\n", out);
    }
    free(cells);
    free(rows);
}
