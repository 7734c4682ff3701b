/*
 * dump.c - stack dumps of every fiber: state, stack use, backtrace.
 *
 * Stack use is a high-water mark found by looking, from the bottom of the
 * stack up, for the first non-zero word among the pages mincore() reports
 * resident.  Untouched pages of a fresh stack are not resident, and debug
 * mode zeroes a reused stack's resident pages at spawn, so that the first
 * non-zero word is the deepest this fiber has written.  Under Valgrind,
 * which flags reads of a stack below its pointer, whole pages are counted.
 */
#include "config.h"

#include "dump.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backtrace.h"
#include "compact.h"
#include "loop.h"
#include "sanitizers.h"

/* Frames shown per fiber; a deeper stack ends with a count of the rest. */
#define DUMP_FRAMES 32

/* Bytes under a new fiber's stack pointer left as they are when zeroing:
 * more than the 128-byte red zone, and what a switch may keep there. */
#define PAINT_MARGIN 256

/* Pages asked about per mincore call: the cost is mostly per call, and a
 * large stack has millions of pages, nearly all of them never touched. */
#define MINCORE_BATCH 16384

/* ---- stack use --------------------------------------------------------- */

/* Another fiber's stack holds ASan redzones of frames that are gone; the
 * scan reads raw memory and must not be checked. */
__attribute__((no_sanitize_address))
static const char *first_nonzero_word(const char *from, const char *to)
{
    for (const char *p = from; p < to; p += sizeof(uintptr_t)) {
        const uintptr_t *word = (const uintptr_t *)(const void *)p;
        if (*word != 0)
            return p;
    }
    return NULL;
}

/* Call visit(page, arg) for each resident page of [base, base + size),
 * lowest first, until it returns true.  Returns that page, or NULL. */
static char *find_resident(char *base, size_t size, size_t page,
                           bool (*visit)(char *page_addr, void *arg), void *arg)
{
    /* Per thread, not on the stack: the caller may be a fiber with a
     * small one. */
    static _Thread_local unsigned char vec[MINCORE_BATCH];

    /* mincore wants a page-aligned start; a fiber's stack may begin a
     * little above one (its mapping starts there). */
    size_t misalign = (uintptr_t)base % page;
    base -= misalign;
    size += misalign;

    for (size_t off = 0; off < size; off += MINCORE_BATCH * page) {
        size_t len = size - off < MINCORE_BATCH * page ? size - off : MINCORE_BATCH * page;
        if (mincore(base + off, len, vec) < 0)
            return NULL;
        size_t n = (len + page - 1) / page;
        for (size_t i = 0; i < n; i++) {
            /* Eight pages at a time where none is resident, as in most
             * of a large stack. */
            uint64_t eight;
            if (i % 8 == 0 && i + 8 <= n) {
                memcpy(&eight, &vec[i], sizeof(eight));
                if (eight == 0) {
                    i += 7;
                    continue;
                }
            }
            char *p = base + off + i * page;
            if ((vec[i] & 1) && visit(p, arg))
                return p;
        }
    }
    return NULL;
}

struct scan {
    size_t page;
    bool whole_pages;
    const char *hit;
};

static bool page_is_used(char *page_addr, void *arg)
{
    struct scan *scan = arg;

    if (scan->whole_pages) {
        scan->hit = page_addr;
        return true;
    }
    scan->hit = first_nonzero_word(page_addr, page_addr + scan->page);
    return scan->hit != NULL;
}

size_t fiber__stack_high_water(const struct fiber_loop *loop,
                               const struct fiber_task *f)
{
    char *base = f->stack.base;

    /* The shared stack's pages tell nothing of one compact fiber. */
    if (f->compact) {
        if (f != loop->current)
            return fiber__compact_frames_size(f);
        char here;
        return (size_t)(base + f->stack.size - &here);
    }
    struct scan scan = {
        .page = loop->stacks.page_size,
        .whole_pages = RUNNING_ON_VALGRIND,
    };

    if (!base)
        return 0;
    if (!find_resident(base, f->stack.size, scan.page, page_is_used, &scan))
        return 0;
    if (scan.hit < base)
        return f->stack.size;
    return (size_t)(base + f->stack.size - scan.hit);
}

bool fiber__stack_paint(const struct fiber_loop *loop, struct fiber_task *f)
{
#ifdef FIBER__ASAN
    /* ASan keeps its own shadow of these bytes; it measures stacks itself. */
    (void)loop;
    (void)f;
    return false;
#else
    /* The shared stack holds other compact fibers' frames. */
    if (f->compact)
        return false;
    char *base = f->stack.base;
    char *sp = fiber__context_sp(&f->ctx);
    size_t page = loop->stacks.page_size;

    /* Valgrind would see writes below another stack's pointer. */
    if (RUNNING_ON_VALGRIND || !base || !sp || sp <= base + PAINT_MARGIN ||
        sp > base + f->stack.size)
        return false;
    /* Only well below the first frame: the switch may keep a word or two
     * just under the starting stack pointer.  The whole pages below are
     * given back to the kernel, which reads them as zeros and no longer
     * counts them resident: it visits only the pages that are, so a huge
     * stack costs no more than a small one, where asking mincore about
     * every page of it would take seconds.  The page holding end, shared
     * with the first frame, is zeroed up to end if resident.  The first
     * page may start below base, in the slot's rounding: unused. */
    char *end = sp - PAINT_MARGIN;
    char *low = (char *)((uintptr_t)base & ~(uintptr_t)(page - 1));
    char *last = (char *)((uintptr_t)end & ~(uintptr_t)(page - 1));
    unsigned char resident = 0;
    if (last > low && madvise(low, (size_t)(last - low), MADV_DONTNEED) < 0)
        return false;
    if (last < base)
        last = base;
    if (mincore((char *)((uintptr_t)last & ~(uintptr_t)(page - 1)), 1, &resident) == 0 &&
        (resident & 1))
        memset(last, 0, (size_t)(end - last));
    return true;
#endif
}

/* ---- descriptions ------------------------------------------------------ */

static bool never_ran(const struct fiber_loop *loop, const struct fiber_task *f)
{
    return f != loop->current &&
           fiber__context_pc(&f->ctx) == (void *)(uintptr_t)fiber__entry_point;
}

const char *fiber__entry_name(const struct fiber_task *f, char *buf, size_t size)
{
    uintptr_t off;

    if (!fiber__symbol_name((uintptr_t)f->fn, buf, size, &off) && size > 0)
        buf[0] = '\0';
    return buf;
}

void fiber__label(const struct fiber_task *f, char *buf, size_t size)
{
    char fn[128];

    fiber__entry_name(f, fn, sizeof(fn));
    snprintf(buf, size, "fiber %" PRIu64 " '%s'%s%s%s", f->id, fiber__task_name(f),
             fn[0] ? " (" : "", fn, fn[0] ? ")" : "");
}

void fiber__describe_state(const struct fiber_loop *loop,
                           const struct fiber_task *f, char *buf, size_t size)
{
    char timer[64] = "";
    int64_t now = fiber__clock_now(&loop->clock);

    if (fiber__timer_active(&f->timer)) {
        int64_t deadline = fiber__timer_deadline(&loop->timers, &f->timer);
        snprintf(timer, sizeof(timer), ", %s in %.3f s",
                 f->state == FIBER__SLEEPING ? "wakes" : "times out",
                 (double)(deadline - now) / 1e9);
    }
    const char *cancelling = f->cancel_requested && f->state != FIBER__DONE
                                 ? ", cancelling" : "";

    switch (f->state) {
    case FIBER__READY:
        snprintf(buf, size, "ready%s%s", never_ran(loop, f) ? ", not started" : "",
                 cancelling);
        break;
    case FIBER__SLEEPING:
        snprintf(buf, size, "sleeping%s%s", timer[0] ? timer : " for ever", cancelling);
        break;
    case FIBER__AWAITING:
        if (f->awaiting)
            snprintf(buf, size, "awaiting fiber %" PRIu64 " '%s'%s%s%s",
                     f->awaiting->id, fiber__task_name(f->awaiting),
                     f->cancellable ? "" : " (reaping it after a cancel)", timer,
                     cancelling);
        else
            snprintf(buf, size, "awaiting%s%s", timer, cancelling);
        break;
    case FIBER__WAITING:
        snprintf(buf, size, "waiting on %s%s%s", f->wait_what ? f->wait_what : "?",
                 timer, cancelling);
        break;
    case FIBER__DONE:
        snprintf(buf, size, "finished, status %d", f->status);
        break;
    default:
        snprintf(buf, size, "%s%s", fiber__state_name(f->state), cancelling);
        break;
    }
}

/* ---- dumps ------------------------------------------------------------- */

static void write_frames(const struct fiber_loop *loop, const struct fiber_task *f,
                         FILE *out, const char *indent, uintptr_t *pcs)
{
    int n = fiber__backtrace(loop, f, pcs, DUMP_FRAMES + 1);

    if (n < 0)
        return;
    for (int i = 0; i < n && i < DUMP_FRAMES; i++) {
        char frame[320];
        bool found;
        fiber__format_frame(pcs[i], frame, sizeof(frame), &found);
        fprintf(out, "%s    #%d %s\n", indent, i, frame);
    }
    if (n > DUMP_FRAMES)
        fprintf(out, "%s    ... deeper frames left out\n", indent);
}

static void write_entry(const struct fiber_loop *loop, const struct fiber_task *f,
                        FILE *out, const char *indent, uintptr_t *pcs)
{
    char label[FIBER_NAME_MAX + 200];
    char state[FIBER_NAME_MAX + 160];

    fiber__label(f, label, sizeof(label));
    fiber__describe_state(loop, f, state, sizeof(state));
    fprintf(out, "%s%s: %s; stack %zu of %zu bytes\n", indent, label, state,
            fiber__stack_high_water(loop, f), f->stack.size);
    if (pcs && (fiber__backtrace_available() || never_ran(loop, f))) {
        if (f->compact && !never_ran(loop, f) && !fiber__compact_bring_in(loop, f))
            fprintf(out, "%s    (a compact fiber: its frames are saved off the "
                         "stack while the dumping compact fiber runs)\n", indent);
        else
            write_frames(loop, f, out, indent, pcs);
    }
}

size_t fiber__dump_fibers(struct fiber_loop *loop, FILE *out, const char *indent)
{
    const struct fiber_task *f;
    size_t n = 0;
    /* On the heap: the caller may be a fiber with little stack left. */
    uintptr_t *pcs = malloc((DUMP_FRAMES + 1) * sizeof(*pcs));

    fiber__foreach_task_reverse(f, loop) {
        if (f->state == FIBER__DONE)
            continue;
        write_entry(loop, f, out, indent, pcs);
        n++;
    }
    if (!pcs && n > 0)
        fprintf(out, "%s(no memory for backtraces)\n", indent);
    free(pcs);
    return n;
}

void fiber__report_deadlock(struct fiber_loop *loop, FILE *out,
                            const char *reason)
{
    const struct fiber_task *f;
    size_t n = 0;

    fiber__foreach_task(f, loop)
        if (f->state != FIBER__DONE)
            n++;
    fprintf(out, "libfiber: deadlock: %s (%zu fiber%s):\n", reason, n,
            n == 1 ? "" : "s");
    /* Each blocked fiber with its state, stack use and backtrace, so that
     * the report shows where every one of them is stuck. */
    fiber__dump_fibers(loop, out, "  ");
    fflush(out);
}

int fiber__dump(struct fiber_loop *loop, FILE *out, const char *title)
{
    const struct fiber_task *f;
    size_t live = 0;

    fiber__foreach_task(f, loop)
        if (f->state != FIBER__DONE)
            live++;
    fprintf(out, "libfiber: %s (%zu live fiber%s)%s\n", title, live,
            live == 1 ? "" : "s",
            fiber__backtrace_available()
                ? ":" : "; stacks unavailable: libfiber was built without libunwind:");
    size_t n = fiber__dump_fibers(loop, out, "  ");
    if (fflush(out) != 0 || ferror(out))
        return -EIO;
    return (int)n;
}

FIBER_API int fiber_dump(FILE *out)
{
    if (!out)
        return -EINVAL;
    struct fiber_loop *loop = fiber__enter_loop("fiber_dump");
    if (!loop)
        return -EPERM;
    return fiber__dump(loop, out, "fiber dump");
}

FIBER_API int fiber_stack_usage(const fiber_task_t *task, size_t *used,
                                size_t *size)
{
    struct fiber_task *self;

    self = fiber__enter_fiber("fiber_stack_usage");
    if (!self)
        return -EPERM;
    if (!task)
        task = self;
    int rc = fiber__check_handle(task, "fiber_stack_usage");
    if (rc < 0)
        return rc;
    if (task->loop != self->loop)
        return -EINVAL;
    if (task->state == FIBER__DONE)
        return -EALREADY;
    if (used)
        *used = fiber__stack_high_water(self->loop, task);
    if (size)
        *size = task->stack.size;
    return 0;
}
