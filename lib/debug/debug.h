/*
 * debug.h - the debugging aids' per-loop state and the few calls the core
 * makes into them, through the observers' table of hooks (loop.h):
 * attach and detach around a loop, a check at each round, a quarantine
 * for freed tasks, and the checks of debug mode.
 *
 * A loop with every aid off has loop->debug == NULL and pays one branch
 * where the core calls in.
 */
#ifndef FIBER_DEBUG_H
#define FIBER_DEBUG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "loop.h"

struct fiber__trace_log;

/* What debug mode writes into struct fiber_task's debug_magic. */
#define FIBER__MAGIC_LIVE 0x46494245u  /* "FIBE": a handle that may be used */
#define FIBER__MAGIC_FREED 0x44454144u /* "DEAD": consumed, kept aside */

/* Bits of struct fiber_task's debug_flags. */
#define FIBER__FLAG_PENDING_AT_EXIT 1u  /* still running when main returned */
#define FIBER__FLAG_PAINTED 2u          /* its stack was zeroed at spawn */

struct fiber__debug {
    bool checks;               /* debug mode: misuse checks */
    int64_t slow_ns;           /* a fiber running longer is reported */
    int64_t ran_since;         /* CLOCK_MONOTONIC when the current one began */
    unsigned long long fp_control; /* the floating-point environment at the start */
    bool fp_reported;          /* a change of it was reported */
    int dump_signal;           /* the signal that asks for a dump, or 0 */
    unsigned dump_seen;        /* dump requests already served */
    FILE *report;              /* where reports go */
    struct fiber__trace_log *log; /* what ran when, or NULL */
    char *trace_path;          /* write log as JSON here at the end, or NULL */
    fiber_trace_t *trace;      /* hand log over to this trace at the end */
    struct fiber__list quarantine; /* freed tasks, by fiber_task.ready */
    size_t quarantined, quarantined_bytes;
    /* The watch for a loop spinning on fiber_yield under the virtual clock:
     * the time the last round began at, how many rounds in a row began
     * there with nothing but yields before them, whether a fiber blocked or
     * finished since the last round began, and whether it was reported. */
    int64_t spin_at;
    unsigned long spin_rounds;
    bool spin_moved;
    bool spin_reported;
};

/* Rounds in a row at one virtual instant, with nothing but yields, after
 * which debug mode reports the loop as spinning. */
#define FIBER__SPIN_ROUNDS 100000ul

/*
 * Set up the aids that opts (NULL: the environment alone) and the
 * environment ask for, before the main fiber is spawned.  Returns 0,
 * -EINVAL for a bad option or environment variable (after a line on
 * stderr), -ENOMEM.
 */
int fiber__debug_attach(struct fiber_loop *loop, const fiber_debug_options_t *opts);

/* End of the loop, before its tasks are freed: report unretrieved tasks,
 * write the trace, put quarantined tasks back.  Safe after a failed or
 * partial attach. */
void fiber__debug_detach(struct fiber_loop *loop);

/* Called by the observation hooks when from (NULL: the scheduler)
 * switches away: debug mode's slow-fiber check. */
void fiber__debug_switch(struct fiber_loop *loop, struct fiber_task *from);

/* Called at the start of every round: serves a pending dump request. */
void fiber__debug_round(struct fiber_loop *loop);

/* Debug mode: keep a freed task out of reuse for a while (the last
 * FIBER_DEBUG_QUARANTINE tasks, up to FIBER_DEBUG_QUARANTINE_BYTES of
 * memory).  Returns true if it was taken (the caller must not recycle it). */
bool fiber__debug_quarantine(struct fiber_loop *loop, struct fiber_task *f);

/* Put every quarantined task back into circulation, when memory runs
 * out: a program must recover from -ENOMEM as it does without debug
 * mode.  Returns true if there was any. */
bool fiber__debug_unquarantine(struct fiber_loop *loop);

/* Debug mode: report a handle that is no longer a live task, naming the
 * api called with it.  Returns -EINVAL then, 0 for a good handle. */
int fiber__debug_bad_handle(struct fiber_loop *loop, const struct fiber_task *t,
                            const char *api);

/* The report of the entry checks (fiber__outside_report, loop.h): api
 * was called outside a fiber (need_fiber) or outside a running loop. */
void fiber__debug_outside(const char *api, bool need_fiber);

/* Write one line, "libfiber: debug: " and the text, to the report stream
 * of loop (stderr when loop is NULL). */
void fiber__debug_report(struct fiber_loop *loop, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
