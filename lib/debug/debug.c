/*
 * debug.c - debug mode's checks, the dump signal, and setting up and
 * tearing down a loop's debugging aids.
 *
 * What a loop uses is decided once, at fiber_run, from its options and
 * then the environment (FIBER_DEBUG, FIBER_DEBUG_SLOW, FIBER_DUMP_SIGNAL,
 * FIBER_TRACE, FIBER_OVERFLOW_CHECK); see "Debugging" in fiber.h.
 */
#include "config.h"

#include "debug.h"
#include "task_memory.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "context.h"
#include "dump.h"
#include "overflow.h"
#include "trace.h"

/* asyncio's slow_callback_duration. */
#define DEFAULT_SLOW_SECONDS 0.1

/* ---- reports ----------------------------------------------------------- */

void fiber__debug_report(struct fiber_loop *loop, const char *fmt, ...)
{
    FILE *out = loop && loop->debug ? loop->debug->report : stderr;
    va_list ap;

    fputs("libfiber: debug: ", out);
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
}

/* "fiber 3 'name' (function)" of the running fiber, for reports. */
static void who(struct fiber_loop *loop, char *buf, size_t size)
{
    if (loop && loop->current)
        fiber__label(loop->current, buf, size);
    else
        snprintf(buf, size, "code outside any fiber");
}

/* ---- the environment --------------------------------------------------- */

/* A variable set to something: NULL when unset or empty. */
static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

static int bad_env(const char *name, const char *value, const char *expected)
{
    fprintf(stderr, "libfiber: %s=%s is not %s\n", name, value, expected);
    return -EINVAL;
}

/* FIBER_DEBUG or FIBER_OVERFLOW_CHECK: "1" on, "0" off, unset: dflt. */
static int env_switch(const char *name, bool dflt, bool *on)
{
    const char *v = env(name);

    if (!v)
        *on = dflt;
    else if (strcmp(v, "1") == 0)
        *on = true;
    else if (strcmp(v, "0") == 0)
        *on = false;
    else
        return bad_env(name, v, "0 or 1");
    return 0;
}

static const struct {
    const char *name;
    int number;
} signal_names[] = {
    {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU}, {"URG", SIGURG}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR}, {"SYS", SIGSYS},
};

/* Signals that report faults or cannot be caught: never a dump's. */
static bool signal_usable(int sig)
{
    return sig > 0 && sig < NSIG && sig != SIGSEGV && sig != SIGBUS &&
           sig != SIGILL && sig != SIGFPE && sig != SIGKILL && sig != SIGSTOP &&
           sig != SIGTRAP && sig != SIGABRT;
}

/* "SIGQUIT", "QUIT", "quit" or "3". */
static int parse_signal(const char *text)
{
    if (isdigit((unsigned char)text[0])) {
        char *end;
        long n = strtol(text, &end, 10);
        return *end == '\0' && n > 0 && n < NSIG ? (int)n : -1;
    }
    if (strncasecmp(text, "SIG", 3) == 0)
        text += 3;
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
        if (strcasecmp(text, signal_names[i].name) == 0)
            return signal_names[i].number;
    return -1;
}

/* What a loop will use, options first, then the environment. */
struct settings {
    bool checks;
    double slow_seconds;
    int dump_signal;
    const char *trace_path;
    fiber_trace_t *trace;
    FILE *report;
    bool overflow_check;
};

static int read_settings(const fiber_debug_options_t *opts, struct settings *s)
{
    fiber_debug_options_t o = opts ? *opts : (fiber_debug_options_t){0};
    int rc;

    /* The options are the program's: a bad one is an argument error. */
    if (o.checks < -1 || o.checks > 1 || o.overflow_check < -1 ||
        o.overflow_check > 1 || isnan(o.slow_seconds) || o.slow_seconds < 0 ||
        isinf(o.slow_seconds) ||
        (o.dump_signal != 0 && o.dump_signal != -1 && !signal_usable(o.dump_signal)))
        return -EINVAL;

    *s = (struct settings){
        .checks = o.checks == 1,
        .slow_seconds = o.slow_seconds,
        .dump_signal = o.dump_signal > 0 ? o.dump_signal : 0,
        .trace_path = o.trace_path,
        .trace = o.trace,
        .report = o.report ? o.report : stderr,
        .overflow_check = o.overflow_check != -1,
    };
    if (o.checks == 0 && (rc = env_switch("FIBER_DEBUG", false, &s->checks)) < 0)
        return rc;
    if (o.overflow_check == 0 &&
        (rc = env_switch("FIBER_OVERFLOW_CHECK", true, &s->overflow_check)) < 0)
        return rc;
    if (o.slow_seconds == 0) {
        const char *v = env("FIBER_DEBUG_SLOW");
        s->slow_seconds = DEFAULT_SLOW_SECONDS;
        if (v) {
            char *end;
            double seconds = strtod(v, &end);
            if (*end != '\0' || !isfinite(seconds) || seconds <= 0)
                return bad_env("FIBER_DEBUG_SLOW", v, "a positive number of seconds");
            s->slow_seconds = seconds;
        }
    }
    if (o.dump_signal == 0) {
        const char *v = env("FIBER_DUMP_SIGNAL");
        if (v) {
            int sig = parse_signal(v);
            if (!signal_usable(sig))
                return bad_env("FIBER_DUMP_SIGNAL", v,
                               "a signal that can ask for a dump (such as SIGQUIT)");
            s->dump_signal = sig;
        }
    }
    if (!o.trace_path)
        s->trace_path = env("FIBER_TRACE");
    return 0;
}

/* ---- the dump signal --------------------------------------------------- */

/* Requests made by the signal so far; each loop serves every one. */
static volatile sig_atomic_t dump_requests;

static pthread_mutex_t signal_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int users;                  /* running loops that asked for it */
    struct sigaction previous;  /* what it did before */
} dump_signals[NSIG];

/* Only note the request: the loop writes the dump at a safe point. */
static void on_dump_signal(int sig)
{
    (void)sig;
    dump_requests = dump_requests + 1;
}

static int install_dump_signal(int sig)
{
    int rc = 0;

    pthread_mutex_lock(&signal_lock);
    if (dump_signals[sig].users == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_dump_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, &sa, &dump_signals[sig].previous) < 0)
            rc = -errno;
    }
    if (rc == 0)
        dump_signals[sig].users++;
    pthread_mutex_unlock(&signal_lock);
    return rc;
}

static void uninstall_dump_signal(int sig)
{
    pthread_mutex_lock(&signal_lock);
    if (--dump_signals[sig].users == 0) {
        struct sigaction current;
        if (sigaction(sig, NULL, &current) == 0 &&
            !(current.sa_flags & SA_SIGINFO) && current.sa_handler == on_dump_signal)
            sigaction(sig, &dump_signals[sig].previous, NULL);
    }
    pthread_mutex_unlock(&signal_lock);
}

/* ---- attaching and detaching ------------------------------------------- */

int fiber__debug_attach(struct fiber_loop *loop, const fiber_debug_options_t *opts)
{
    struct settings s;
    int rc = read_settings(opts, &s);

    if (rc < 0)
        return rc;
    if (s.overflow_check && (rc = fiber__overflow_arm()) < 0)
        return rc;
    if (!s.checks && !s.dump_signal && !s.trace_path && !s.trace)
        return 0;

    struct fiber__debug *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    loop->debug = d;
    d->checks = s.checks;
    d->slow_ns = (int64_t)(s.slow_seconds * 1e9);
    d->report = s.report;
    d->trace = s.trace;
    if (s.trace_path && !(d->trace_path = strdup(s.trace_path)))
        return -ENOMEM;
    if (s.trace_path || s.trace) {
        d->log = fiber__trace_log_new(fiber__clock_now(&loop->clock),
                                      loop->clock.is_virtual);
        if (!d->log)
            return -ENOMEM;
    }
    if (s.dump_signal) {
        d->dump_seen = (unsigned)dump_requests;
        if ((rc = install_dump_signal(s.dump_signal)) < 0)
            return rc;
        d->dump_signal = s.dump_signal;
    }
    d->ran_since = fiber__monotonic_ns();
    d->fp_control = fiber__context_fp_control();
    loop->observed = d->checks || d->log;
    return 0;
}

/* Tasks nobody awaited nor detached, oldest first (asyncio's "Task was
 * destroyed but it is pending!" and "never retrieved"). */
static void report_unretrieved(struct fiber_loop *loop)
{
    const struct fiber_task *f;

    fiber__foreach_task_reverse(f, loop) {
        char label[FIBER_NAME_MAX + 200];
        if (f->is_main || f->detached)
            continue;
        fiber__label(f, label, sizeof(label));
        if (f->debug_flags & FIBER__FLAG_PENDING_AT_EXIT)
            fiber__debug_report(loop, "Task was destroyed but it is pending: %s "
                                "still ran when main returned, so the loop "
                                "cancelled it; nobody awaited nor detached it",
                                label);
        else if (f->status < 0 && f->status != -ECANCELED)
            fiber__debug_report(loop, "Task failure was never retrieved: %s "
                                "ended with status %d (%s) and was never "
                                "awaited nor detached", label, f->status,
                                strerror(-f->status));
        else
            fiber__debug_report(loop, "Task result was never retrieved: %s "
                                "finished (status %d) but was never awaited "
                                "nor detached", label, f->status);
    }
}

static void finish_trace(struct fiber_loop *loop, struct fiber__debug *d)
{
    d->log->end = fiber__clock_now(&loop->clock) - d->log->start;
    if (d->trace_path) {
        int rc = fiber__trace_append_file(d->trace_path, d->log);
        if (rc < 0)
            fprintf(stderr, "libfiber: cannot write the trace to %s: %s\n",
                    d->trace_path, strerror(-rc));
    }
    if (d->trace)
        fiber__trace_adopt(d->trace, d->log);
    else
        fiber__trace_log_free(d->log);
    d->log = NULL;
}

void fiber__debug_detach(struct fiber_loop *loop)
{
    struct fiber__debug *d = loop->debug;

    fiber__overflow_disarm();
    if (!d)
        return;
    if (d->checks && loop->main)
        report_unretrieved(loop);
    if (d->log)
        finish_trace(loop, d);
    if (d->dump_signal)
        uninstall_dump_signal(d->dump_signal);
    /* Quarantined tasks go back to be freed with the loop. */
    fiber__debug_unquarantine(loop);
    free(d->trace_path);
    free(d);
    loop->debug = NULL;
    loop->observed = false;
}

/* ---- checks ------------------------------------------------------------ */

/* Report the fiber that has run since d->ran_since if that is too long,
 * and start timing anew. */
static void check_slow(struct fiber_loop *loop, const struct fiber_task *f)
{
    struct fiber__debug *d = loop->debug;
    int64_t now = fiber__monotonic_ns();

    if (f && now - d->ran_since > d->slow_ns) {
        char label[FIBER_NAME_MAX + 200];
        fiber__label(f, label, sizeof(label));
        fiber__debug_report(loop, "%s held the CPU for %.3f s without a "
                            "blocking call (more than %.3f s): other fibers "
                            "could not run meanwhile", label,
                            (double)(now - d->ran_since) / 1e9,
                            (double)d->slow_ns / 1e9);
    }
    d->ran_since = now;
}

/* A fiber that switches away with the floating-point environment changed
 * changes it for the fibers that run next (see fiber.h).  Reported once per
 * loop: with --with-switch=ucontext each fiber keeps its own environment,
 * so after a change the others would differ from it too. */
static void check_fp_control(struct fiber_loop *loop, const struct fiber_task *f)
{
    struct fiber__debug *d = loop->debug;

    if (!f || d->fp_reported)
        return;
    unsigned long long now = fiber__context_fp_control();
    if (now != d->fp_control) {
        char label[FIBER_NAME_MAX + 200];
        fiber__label(f, label, sizeof(label));
        fiber__debug_report(loop, "%s switched away with the floating-point "
                            "environment changed (control 0x%llx, was 0x%llx): "
                            "the fibers of a thread share it, so the rounding "
                            "mode or exception masks it set now apply to the "
                            "fibers that run next; restore it before a "
                            "blocking call", label, now, d->fp_control);
        d->fp_reported = true;
    }
}

/* Name the fibers that can run (at most a few) into buf. */
static void runnable_labels(struct fiber_loop *loop, char *buf, size_t size)
{
    size_t len = 0, shown = 0, more = 0;

    const struct fiber_task *f;

    buf[0] = '\0';
    fiber__foreach_task(f, loop) {
        if (f->state != FIBER__READY && f->state != FIBER__RUNNING)
            continue;
        if (shown == 8) {
            more++;
            continue;
        }
        char label[FIBER_NAME_MAX + 200];
        fiber__label(f, label, sizeof(label));
        int n = snprintf(buf + len, size - len, "%s%s", shown ? ", " : "",
                         label);
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += (size_t)n;
        shown++;
    }
    if (more)
        snprintf(buf + len, size - len, " and %zu more", more);
}

/*
 * Under the virtual clock time moves only when no fiber is ready, so
 * fibers that poll with fiber_yield keep it still for ever, and a sleeper
 * they wait for never wakes: 100% CPU, not a word.  Reported, once per
 * loop, when many rounds in a row began at one instant with nothing but
 * yields before them.  A round begun by the scheduler, or by a fiber that
 * blocked, is progress; so is a fiber blocking or finishing in between
 * (fiber__debug_switch).
 */
static void check_spin(struct fiber_loop *loop)
{
    struct fiber__debug *d = loop->debug;
    const struct fiber_task *self = loop->current;
    int64_t now = fiber__clock_now(&loop->clock);
    bool moved = d->spin_moved || now != d->spin_at || !self ||
                 self->state != FIBER__READY;

    d->spin_moved = false;
    d->spin_at = now;
    if (moved) {
        d->spin_rounds = 0;
        return;
    }
    if (++d->spin_rounds < FIBER__SPIN_ROUNDS)
        return;
    char labels[8 * (FIBER_NAME_MAX + 200) + 64];
    runnable_labels(loop, labels, sizeof(labels));
    fiber__debug_report(loop, "virtual time has not moved for %lu rounds in "
                        "which every runnable fiber only yielded: %s.  Under "
                        "the virtual clock time moves only when no fiber is "
                        "ready, so fibers polling with fiber_yield keep every "
                        "sleeper and timeout from coming due: wait on an "
                        "event, a queue or a task instead, or sleep between "
                        "polls", d->spin_rounds, labels);
    d->spin_reported = true;
}

void fiber__debug_switch(struct fiber_loop *loop, struct fiber_task *from)
{
    check_slow(loop, from);
    check_fp_control(loop, from);
    /* Leaving in any state but ready, from has blocked or finished. */
    if (from && from->state != FIBER__READY)
        loop->debug->spin_moved = true;
}

void fiber__debug_round(struct fiber_loop *loop)
{
    struct fiber__debug *d = loop->debug;

    /* A round starts at a blocking call of the current fiber, if any. */
    if (d->checks)
        check_slow(loop, loop->current);
    if (d->checks && loop->clock.is_virtual && !d->spin_reported)
        check_spin(loop);
    if (d->dump_signal && d->dump_seen != (unsigned)dump_requests) {
        char title[64];
        d->dump_seen = (unsigned)dump_requests;
        snprintf(title, sizeof(title), "dump on signal %d", d->dump_signal);
        fiber__dump(loop, d->report, title);
    }
}

/* The memory a quarantined task keeps from reuse: its stack and task, or
 * a compact task and its frames. */
static size_t task_bytes(const struct fiber_task *f)
{
    return f->compact ? sizeof(*f) + f->frames_cap : f->slot_size;
}

/* Put the oldest quarantined task back into circulation. */
static void release_oldest(struct fiber_loop *loop, struct fiber__debug *d)
{
    struct fiber_task *old = fiber__ready_task(fiber__list_pop_front(&d->quarantine));

    d->quarantined--;
    d->quarantined_bytes -= task_bytes(old);
    fiber__release_task(loop, old);
}

bool fiber__debug_quarantine(struct fiber_loop *loop, struct fiber_task *f)
{
    struct fiber__debug *d = loop->debug;

    if (!d->checks)
        return false;
    f->debug_magic = FIBER__MAGIC_FREED;
    fiber__list_push_back(&d->quarantine, &f->ready);
    d->quarantined++;
    d->quarantined_bytes += task_bytes(f);
    /* The oldest go back into circulation, one this large at once. */
    while (d->quarantined > FIBER_DEBUG_QUARANTINE ||
           d->quarantined_bytes > FIBER_DEBUG_QUARANTINE_BYTES)
        release_oldest(loop, d);
    return true;
}

bool fiber__debug_unquarantine(struct fiber_loop *loop)
{
    struct fiber__debug *d = loop->debug;

    if (!d || fiber__list_empty(&d->quarantine))
        return false;
    while (!fiber__list_empty(&d->quarantine))
        release_oldest(loop, d);
    return true;
}

int fiber__debug_bad_handle(struct fiber_loop *loop, const struct fiber_task *t,
                            const char *api)
{
    char caller[FIBER_NAME_MAX + 200];

    if (!loop->debug->checks || t->debug_magic == FIBER__MAGIC_LIVE)
        return 0;
    who(loop, caller, sizeof(caller));
    /* Freed tasks stay readable until the loop ends: nothing is given
     * back to malloc before then. */
    if (t->debug_magic == FIBER__MAGIC_FREED)
        fiber__debug_report(loop, "%s called %s with the handle of task %" PRIu64
                            " '%s', which was already %s: a handle is used up "
                            "once awaited, gathered or detached", caller, api,
                            t->id, fiber__task_name(t),
                            t->detached ? "detached and has finished" : "awaited");
    else
        fiber__debug_report(loop, "%s called %s with %p, which is not a task "
                            "handle of this loop", caller, api, (const void *)t);
    return -EINVAL;
}

/* Debug mode is asked for by the running loop, or by FIBER_DEBUG when
 * none runs on this thread. */
static bool checks_on(struct fiber_loop *loop)
{
    bool on;

    if (loop)
        return loop->debug && loop->debug->checks;
    if (env_switch("FIBER_DEBUG", false, &on) < 0)
        return false;
    return on;
}

void fiber__debug_outside(const char *api, bool need_fiber)
{
    struct fiber_loop *loop = need_fiber ? fiber__loop : NULL;

    if (!checks_on(loop))
        return;
    if (need_fiber)
        fiber__debug_report(loop, "%s called outside a fiber: it must be called "
                            "from a fiber of a running loop (inside fiber_run)%s",
                            api, loop ? "" : ", and no loop runs on this thread");
    else
        fiber__debug_report(NULL, "%s called outside a running loop: it must "
                            "be called on the thread of a loop, inside "
                            "fiber_run", api);
}
