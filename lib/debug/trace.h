/*
 * trace.h - recording what each fiber of a loop did and when, and writing
 * it as a Chrome trace (trace.c) or a text timeline (timeline.c).
 *
 * A loop being traced appends one event per switch, spawn and await
 * wake-up to its log; nothing is formatted until the loop has ended.
 */
#ifndef FIBER_TRACE_H
#define FIBER_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fiber.h"
#include "list.h"

struct fiber_task;

enum fiber__trace_kind {
    FIBER__TRACE_SPAWN, /* fiber spawned other */
    FIBER__TRACE_RUN,   /* fiber was switched to */
    FIBER__TRACE_STOP,  /* fiber switched away, in state */
    FIBER__TRACE_WAKE,  /* fiber finished and woke other, its awaiter */
};

struct fiber__trace_event {
    int64_t time;        /* ns since the loop started, on the loop clock */
    uint64_t fiber;
    uint64_t other;      /* SPAWN: the child; STOP: the task awaited;
                          * WAKE: the awaiter */
    const char *what;    /* STOP while waiting: what on (a static string) */
    uint8_t kind;        /* enum fiber__trace_kind */
    uint8_t state;       /* STOP: enum fiber__state it stopped in */
};

struct fiber__trace_fiber {
    uint64_t id, parent;   /* parent 0: the main fiber */
    void *fn;
    char name[FIBER_NAME_MAX + 1];
};

struct fiber__trace_log {
    int64_t start;         /* loop clock when recording began */
    int64_t end;           /* ns since start when the loop ended */
    bool is_virtual;
    bool truncated;        /* memory ran out or the cap was reached */
    struct fiber__trace_event *events;
    size_t nevents, events_cap;
    struct fiber__trace_fiber *fibers;  /* fibers[id - 1] */
    size_t nfibers, fibers_cap;
    struct fiber__link link;            /* in a fiber_trace_t */
};

/* A log for a loop whose clock reads start now.  NULL without memory. */
struct fiber__trace_log *fiber__trace_log_new(int64_t start, bool is_virtual);
void fiber__trace_log_free(struct fiber__trace_log *log);

/* Record; time is the loop clock.  Never fails: a log that cannot grow
 * stops recording and says so when written. */
void fiber__trace_spawn(struct fiber__trace_log *log, int64_t time,
                        const struct fiber_task *parent,
                        const struct fiber_task *child);
void fiber__trace_run(struct fiber__trace_log *log, int64_t time,
                      const struct fiber_task *f);
void fiber__trace_stop(struct fiber__trace_log *log, int64_t time,
                       const struct fiber_task *f);
void fiber__trace_wake(struct fiber__trace_log *log, int64_t time,
                       const struct fiber_task *done,
                       const struct fiber_task *waiter);

/* Append log as one more process of the Chrome trace at path, which is
 * started afresh by the first loop of the process that writes there.
 * Returns 0 or a negative errno. */
int fiber__trace_append_file(const char *path, const struct fiber__trace_log *log);

/* Give log to trace, which owns it from then on. */
void fiber__trace_adopt(fiber_trace_t *trace, struct fiber__trace_log *log);

/* The last function named, since most fibers of a loop share a few. */
struct fiber__name_cache {
    void *fn;
    char name[128];
};

/* The label of a recorded fiber, "2 'Task-2' (worker)", into buf. */
void fiber__trace_fiber_label(const struct fiber__trace_fiber *f,
                              struct fiber__name_cache *cache, char *buf,
                              size_t size);

/* Write log as a timeline (timeline.c); pid numbers the loop. */
void fiber__timeline_write(const struct fiber__trace_log *log, unsigned pid,
                           FILE *out, unsigned width);

struct fiber_trace {
    struct fiber__list logs;            /* by fiber__trace_log.link */
    size_t nlogs;
};

#endif
