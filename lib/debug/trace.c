/*
 * trace.c - recording a loop's switches and writing them in the Chrome
 * trace-event format: the JSON that Perfetto and chrome://tracing open.
 *
 * Each loop is a "process" (pid 1, 2, ... in the order loops ended) and
 * each fiber a "thread" (tid = its id) with slices named run, ready,
 * sleep, await fiber N and wait on <what>.  Flow arrows link a spawn to
 * the child's first run and a task's end to its awaiter's next run.
 */
#include "config.h"

#include "trace.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backtrace.h"
#include "loop.h"

/* At most this many events (40 bytes each) per loop: a loop that runs
 * for ever stops recording rather than eat all memory. */
#define MAX_EVENTS ((size_t)1 << 22)

/* What ends a trace file; a later loop overwrites it with its events and
 * writes it again, so that the file is valid JSON between loops. */
#define TRAILER "\n],\"displayTimeUnit\":\"ms\"}\n"
#define HEADER "{\"traceEvents\":[\n"

/* Guards every fiber_trace_t and the trace file, which loops on several
 * threads may share. */
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;

/* The file FIBER_TRACE names, once a loop of this process has written it,
 * and how many loops it holds. */
static char *file_path;
static unsigned file_loops;

/* ---- recording --------------------------------------------------------- */

struct fiber__trace_log *fiber__trace_log_new(int64_t start, bool is_virtual)
{
    struct fiber__trace_log *log = calloc(1, sizeof(*log));

    if (log) {
        log->start = start;
        log->is_virtual = is_virtual;
    }
    return log;
}

void fiber__trace_log_free(struct fiber__trace_log *log)
{
    if (!log)
        return;
    free(log->events);
    free(log->fibers);
    free(log);
}

static struct fiber__trace_event *push(struct fiber__trace_log *log,
                                       int64_t time, uint8_t kind,
                                       const struct fiber_task *f)
{
    if (log->truncated)
        return NULL;
    if (log->nevents == log->events_cap) {
        size_t cap = log->events_cap ? 2 * log->events_cap : 256;
        struct fiber__trace_event *events = NULL;
        if (cap <= MAX_EVENTS)
            events = realloc(log->events, cap * sizeof(*events));
        if (!events) {
            log->truncated = true;
            return NULL;
        }
        log->events = events;
        log->events_cap = cap;
    }
    struct fiber__trace_event *e = &log->events[log->nevents++];
    *e = (struct fiber__trace_event){
        .time = time - log->start,
        .fiber = f->id,
        .kind = kind,
    };
    return e;
}

static void note_fiber(struct fiber__trace_log *log, const struct fiber_task *f,
                       uint64_t parent)
{
    size_t index = (size_t)(f->id - 1);

    if (index >= log->fibers_cap) {
        size_t cap = log->fibers_cap ? 2 * log->fibers_cap : 64;
        if (cap <= index)
            cap = index + 1;
        struct fiber__trace_fiber *fibers = realloc(log->fibers, cap * sizeof(*fibers));
        if (!fibers) {
            log->truncated = true;
            return;
        }
        memset(fibers + log->fibers_cap, 0,
               (cap - log->fibers_cap) * sizeof(*fibers));
        log->fibers = fibers;
        log->fibers_cap = cap;
    }
    struct fiber__trace_fiber *rec = &log->fibers[index];
    rec->id = f->id;
    rec->parent = parent;
    rec->fn = (void *)(uintptr_t)f->fn;
    snprintf(rec->name, sizeof(rec->name), "%s", fiber__task_name(f));
    if (index >= log->nfibers)
        log->nfibers = index + 1;
}

void fiber__trace_spawn(struct fiber__trace_log *log, int64_t time,
                        const struct fiber_task *parent,
                        const struct fiber_task *child)
{
    if (log->truncated)
        return;
    note_fiber(log, child, parent ? parent->id : 0);
    if (!parent)
        return;
    struct fiber__trace_event *e = push(log, time, FIBER__TRACE_SPAWN, parent);
    if (e)
        e->other = child->id;
}

void fiber__trace_run(struct fiber__trace_log *log, int64_t time,
                      const struct fiber_task *f)
{
    push(log, time, FIBER__TRACE_RUN, f);
}

void fiber__trace_stop(struct fiber__trace_log *log, int64_t time,
                       const struct fiber_task *f)
{
    struct fiber__trace_event *e = push(log, time, FIBER__TRACE_STOP, f);

    if (!e)
        return;
    e->state = (uint8_t)f->state;
    if (f->state == FIBER__AWAITING && f->awaiting)
        e->other = f->awaiting->id;
    if (f->state == FIBER__WAITING)
        e->what = f->wait_what;
}

void fiber__trace_wake(struct fiber__trace_log *log, int64_t time,
                       const struct fiber_task *done,
                       const struct fiber_task *waiter)
{
    struct fiber__trace_event *e = push(log, time, FIBER__TRACE_WAKE, done);

    if (e)
        e->other = waiter->id;
}

void fiber__trace_fiber_label(const struct fiber__trace_fiber *f,
                              struct fiber__name_cache *cache, char *buf,
                              size_t size)
{
    if (f->fn != cache->fn) {
        uintptr_t off;
        cache->fn = f->fn;
        if (!fiber__symbol_name((uintptr_t)f->fn, cache->name, sizeof(cache->name), &off))
            cache->name[0] = '\0';
    }
    snprintf(buf, size, "%" PRIu64 " '%s'%s%s%s", f->id, f->name,
             cache->name[0] ? " (" : "", cache->name, cache->name[0] ? ")" : "");
}

/* ---- Chrome trace JSON ------------------------------------------------- */

struct writer {
    FILE *out;
    bool first;        /* no event written yet: no comma before the next */
    unsigned pid;
    uint64_t flows;    /* flow arrows started in this loop */
};

/* Per fiber while the events are replayed. */
struct track {
    int64_t run_start;   /* -1 unless running */
    int64_t wait_start;  /* -1 unless waiting (ready, sleeping, ...) */
    uint8_t wait_state;
    uint64_t wait_other;
    const char *wait_what;
    uint64_t flow_in;    /* an arrow to end at the next run, or 0 */
    const char *flow_name;
};

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* Start an event: the comma that separates it from the previous one. */
static FILE *event(struct writer *w)
{
    if (!w->first)
        fputs(",\n", w->out);
    w->first = false;
    return w->out;
}

/* Microseconds with nanosecond digits, as the format counts in us. */
static void print_us(FILE *out, const char *key, int64_t ns)
{
    fprintf(out, ",\"%s\":%" PRId64 ".%03d", key, ns / 1000, (int)(ns % 1000));
}

static void slice(struct writer *w, uint64_t tid, const char *name,
                  const char *cat, int64_t from, int64_t to)
{
    FILE *out = event(w);

    fputs("{\"name\":", out);
    json_string(out, name);
    fprintf(out, ",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%u,\"tid\":%" PRIu64,
            cat, w->pid, tid);
    print_us(out, "ts", from);
    print_us(out, "dur", to > from ? to - from : 0);
    fputc('}', out);
}

static void flow(struct writer *w, const char *name, char phase, uint64_t id,
                 uint64_t tid, int64_t time)
{
    FILE *out = event(w);

    fprintf(out, "{\"name\":\"%s\",\"cat\":\"flow\",\"ph\":\"%c\",%s\"id\":%" PRIu64
            ",\"pid\":%u,\"tid\":%" PRIu64, name, phase,
            phase == 'f' ? "\"bp\":\"e\"," : "", id, w->pid, tid);
    print_us(out, "ts", time);
    fputc('}', out);
}

static void wait_slice(struct writer *w, uint64_t tid, const struct track *t,
                       int64_t to)
{
    char name[96];
    const char *cat;

    switch (t->wait_state) {
    case FIBER__SLEEPING:
        cat = "sleep";
        snprintf(name, sizeof(name), "sleep");
        break;
    case FIBER__AWAITING:
        cat = "await";
        snprintf(name, sizeof(name), "await fiber %" PRIu64, t->wait_other);
        break;
    case FIBER__WAITING:
        cat = "wait";
        snprintf(name, sizeof(name), "wait on %s", t->wait_what ? t->wait_what : "?");
        break;
    default:
        cat = "ready";
        snprintf(name, sizeof(name), "ready");
        break;
    }
    slice(w, tid, name, cat, t->wait_start, to);
}

static void metadata(struct writer *w, const struct fiber__trace_log *log)
{
    struct fiber__name_cache cache = {0};
    FILE *out = event(w);

    fprintf(out, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,"
            "\"args\":{\"name\":\"loop %u (%s clock%s)\"}}", w->pid, w->pid,
            log->is_virtual ? "virtual" : "real",
            log->truncated ? ", trace cut short" : "");
    for (size_t i = 0; i < log->nfibers; i++) {
        const struct fiber__trace_fiber *f = &log->fibers[i];
        char label[FIBER_NAME_MAX + 160];
        if (f->id == 0)
            continue;
        fiber__trace_fiber_label(f, &cache, label, sizeof(label));
        out = event(w);
        fprintf(out, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":%" PRIu64
                ",\"args\":{\"name\":", w->pid, f->id);
        json_string(out, label);
        fputs("}}", out);
        out = event(w);
        fprintf(out, "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%u,\"tid\":%"
                PRIu64 ",\"args\":{\"sort_index\":%" PRIu64 "}}", w->pid, f->id, f->id);
    }
}

static void replay(struct writer *w, const struct fiber__trace_log *log,
                   struct track *tracks)
{
    for (size_t i = 0; i < log->nfibers; i++)
        tracks[i] = (struct track){.run_start = -1, .wait_start = -1};

    for (size_t i = 0; i < log->nevents; i++) {
        const struct fiber__trace_event *e = &log->events[i];
        if (e->fiber == 0 || e->fiber > log->nfibers)
            continue;
        struct track *t = &tracks[e->fiber - 1];
        switch (e->kind) {
        case FIBER__TRACE_SPAWN:
            if (e->other == 0 || e->other > log->nfibers)
                break;
            tracks[e->other - 1].wait_start = e->time;
            tracks[e->other - 1].wait_state = FIBER__READY;
            tracks[e->other - 1].flow_in = ((uint64_t)w->pid << 32) | ++w->flows;
            tracks[e->other - 1].flow_name = "spawn";
            flow(w, "spawn", 's', tracks[e->other - 1].flow_in, e->fiber, e->time);
            break;
        case FIBER__TRACE_RUN:
            if (t->wait_start >= 0)
                wait_slice(w, e->fiber, t, e->time);
            t->wait_start = -1;
            if (t->flow_in) {
                flow(w, t->flow_name, 'f', t->flow_in, e->fiber, e->time);
                t->flow_in = 0;
            }
            t->run_start = e->time;
            break;
        case FIBER__TRACE_STOP:
            if (t->run_start >= 0)
                slice(w, e->fiber, "run", "run", t->run_start, e->time);
            t->run_start = -1;
            if (e->state != FIBER__DONE) {
                t->wait_start = e->time;
                t->wait_state = e->state;
                t->wait_other = e->other;
                t->wait_what = e->what;
            }
            break;
        case FIBER__TRACE_WAKE:
            if (e->other == 0 || e->other > log->nfibers)
                break;
            tracks[e->other - 1].flow_in = ((uint64_t)w->pid << 32) | ++w->flows;
            tracks[e->other - 1].flow_name = "await";
            flow(w, "await", 's', tracks[e->other - 1].flow_in, e->fiber, e->time);
            break;
        default:
            break;
        }
    }
    /* Whatever was still going on when the loop ended. */
    for (size_t i = 0; i < log->nfibers; i++) {
        if (tracks[i].run_start >= 0)
            slice(w, i + 1, "run", "run", tracks[i].run_start, log->end);
        if (tracks[i].wait_start >= 0)
            wait_slice(w, i + 1, &tracks[i], log->end);
    }
}

static int write_log(struct writer *w, const struct fiber__trace_log *log)
{
    struct track *tracks = calloc(log->nfibers ? log->nfibers : 1, sizeof(*tracks));

    if (!tracks)
        return -ENOMEM;
    w->flows = 0;
    metadata(w, log);
    replay(w, log, tracks);
    free(tracks);
    return ferror(w->out) ? -EIO : 0;
}

/* ---- traces and files -------------------------------------------------- */

static struct fiber__trace_log *log_of(struct fiber__link *link)
{
    return fiber__container_of(link, struct fiber__trace_log, link);
}

void fiber__trace_adopt(fiber_trace_t *trace, struct fiber__trace_log *log)
{
    pthread_mutex_lock(&trace_lock);
    fiber__list_push_back(&trace->logs, &log->link);
    trace->nlogs++;
    pthread_mutex_unlock(&trace_lock);
}

/* Open path to add one more loop after those already there: past the
 * events, over the trailer.  NULL if path does not end as we left it. */
static FILE *reopen_for_append(const char *path)
{
    long trailer = (long)strlen(TRAILER);
    char tail[sizeof(TRAILER)];
    FILE *f = fopen(path, "r+");

    if (!f)
        return NULL;
    if (fseek(f, -trailer, SEEK_END) == 0 &&
        fread(tail, 1, (size_t)trailer, f) == (size_t)trailer &&
        memcmp(tail, TRAILER, (size_t)trailer) == 0 &&
        fseek(f, -trailer, SEEK_END) == 0)
        return f;
    fclose(f);
    return NULL;
}

int fiber__trace_append_file(const char *path, const struct fiber__trace_log *log)
{
    struct writer w = {.first = false};
    int rc = 0;

    pthread_mutex_lock(&trace_lock);
    if (file_path && strcmp(file_path, path) == 0)
        w.out = reopen_for_append(path);
    if (!w.out) {
        char *copy = strdup(path);
        w.out = copy ? fopen(path, "w") : NULL;
        if (!w.out) {
            rc = copy ? -errno : -ENOMEM;
            free(copy);
            pthread_mutex_unlock(&trace_lock);
            return rc;
        }
        free(file_path);
        file_path = copy;
        file_loops = 0;
        fputs(HEADER, w.out);
        w.first = true;
    }
    w.pid = ++file_loops;
    rc = write_log(&w, log);
    fputs(TRAILER, w.out);
    if (fclose(w.out) != 0 && rc == 0)
        rc = -EIO;
    pthread_mutex_unlock(&trace_lock);
    return rc;
}

FIBER_API int fiber_trace_new(fiber_trace_t **trace)
{
    if (!trace)
        return -EINVAL;
    fiber_trace_t *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    *trace = t;
    return 0;
}

FIBER_API void fiber_trace_free(fiber_trace_t *trace)
{
    if (!trace)
        return;
    struct fiber__link *link;

    while ((link = fiber__list_pop_front(&trace->logs)))
        fiber__trace_log_free(log_of(link));
    free(trace);
}

FIBER_API int fiber_trace_write_json(const fiber_trace_t *trace, FILE *out)
{
    struct writer w = {.out = out, .first = true};
    int rc = 0;

    if (!trace || !out)
        return -EINVAL;
    pthread_mutex_lock(&trace_lock);
    fputs(HEADER, out);
    struct fiber__link *link;
    fiber__list_foreach(link, &trace->logs) {
        if (rc < 0)
            break;
        w.pid++;
        rc = write_log(&w, log_of(link));
    }
    fputs(TRAILER, out);
    pthread_mutex_unlock(&trace_lock);
    if (rc == 0 && (fflush(out) != 0 || ferror(out)))
        rc = -EIO;
    return rc;
}

FIBER_API int fiber_trace_write_timeline(const fiber_trace_t *trace, FILE *out,
                                         unsigned width)
{
    if (!trace || !out || (width != 0 && width < 8))
        return -EINVAL;
    pthread_mutex_lock(&trace_lock);
    unsigned pid = 0;
    struct fiber__link *link;
    fiber__list_foreach(link, &trace->logs)
        fiber__timeline_write(log_of(link), ++pid, out, width ? width : 64);
    pthread_mutex_unlock(&trace_lock);
    return fflush(out) != 0 || ferror(out) ? -EIO : 0;
}
