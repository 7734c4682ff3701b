/*
 * backtrace.c - unwinding fiber stacks with libunwind, naming addresses.
 *
 * Unwinding needs the nongnu libunwind, on x86-64 or AArch64, where an
 * unw_context_t is a ucontext_t or (AArch64) its leading part, and a saved
 * context is copied into one.  Naming prefers libunwind, which reads
 * an object's full symbol table and so names static functions too, and
 * falls back to dladdr, which sees exported symbols only.
 */
#include "config.h"

#include "backtrace.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "compact.h"
#include "loop.h"

#if defined(HAVE_LIBUNWIND) && (defined(__x86_64__) || defined(__aarch64__))
#define USE_LIBUNWIND 1
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#else
#define USE_LIBUNWIND 0
#endif

/* How many frames from the top may be libfiber's own: the way from a
 * blocking call into the switch, or from a dump into the unwinder. */
#define LEAD_FRAMES 24

bool fiber__backtrace_available(void)
{
    return USE_LIBUNWIND;
}

#if USE_LIBUNWIND
/* The load address of the object holding pc, 0 if unknown. */
static uintptr_t object_base(uintptr_t pc)
{
    Dl_info info;

    return dladdr((void *)pc, &info) ? (uintptr_t)info.dli_fbase : 0;
}

/* The instruction pointer of the cursor's frame; false at the end of the
 * fiber's stack: the trampoline, or nothing more to unwind. */
static bool frame_ip(unw_cursor_t *cursor, uintptr_t *pc)
{
    unw_word_t ip = 0;
    unw_proc_info_t info;

    if (unw_get_reg(cursor, UNW_REG_IP, &ip) < 0 || ip == 0)
        return false;
    if (unw_get_proc_info(cursor, &info) == 0 &&
        info.start_ip == (unw_word_t)(uintptr_t)fiber__entry_point)
        return false;
    *pc = (uintptr_t)ip;
    return true;
}

static bool named_like_libfiber(unw_cursor_t *cursor)
{
    char name[128];
    unw_word_t off;

    return unw_get_proc_name(cursor, name, sizeof(name), &off) == 0 &&
           strncmp(name, "fiber_", 6) == 0;
}

/*
 * Unwind from cursor into pcs, leaving out libfiber's own frames at the
 * top, so that frame 0 is the function that called into libfiber.  When
 * libfiber is a shared object of its own (lib_base), its frames are those
 * in it; linked into the program, they are those up to the last one named
 * fiber_* among the first LEAD_FRAMES (its static helpers come before).
 */
static int unwind(unw_cursor_t *cursor, uintptr_t *pcs, size_t max,
                  uintptr_t lib_base)
{
    uintptr_t lead[LEAD_FRAMES];
    size_t nlead = 0, first = 0, n = 0;
    bool found = false, more = true;
    uintptr_t pc;

    while (more && nlead < LEAD_FRAMES && !(lib_base && found)) {
        if (!frame_ip(cursor, &pc)) {
            more = false;
            break;
        }
        if (lib_base && object_base(pc) != lib_base) {
            found = true;
            first = nlead;
        } else if (!lib_base && named_like_libfiber(cursor)) {
            found = true;
            first = nlead + 1;
        }
        lead[nlead++] = pc;
        more = unw_step(cursor) > 0;
    }
    /* Nothing but libfiber, or no way to tell: keep every frame. */
    if (!found || (first == nlead && !more))
        first = 0;

    for (size_t i = first; i < nlead && n < max; i++)
        pcs[n++] = lead[i];
    while (more && n < max && frame_ip(cursor, &pc)) {
        pcs[n++] = pc;
        more = unw_step(cursor) > 0;
    }
    return (int)n;
}

/* Kept out of line so that the context it takes is its own frame, left
 * out with the rest of libfiber's. */
__attribute__((noinline)) static int unwind_here(uintptr_t *pcs, size_t max,
                                                 uintptr_t lib_base)
{
    unw_context_t uc;
    unw_cursor_t cursor;

    if (unw_getcontext(&uc) < 0 || unw_init_local(&cursor, &uc) < 0)
        return 0;
    return unwind(&cursor, pcs, max, lib_base);
}
#endif

int fiber__backtrace(const struct fiber_loop *loop, const struct fiber_task *f,
                     uintptr_t *pcs, size_t max)
{
    if (max == 0)
        return 0;
    /* A fiber that never ran still points at the trampoline: show what it
     * will run. */
    if (f != loop->current &&
        fiber__context_pc(&f->ctx) == (void *)(uintptr_t)fiber__entry_point) {
        pcs[0] = (uintptr_t)f->fn;
        return 1;
    }
    /* A compact fiber's frames may be off the stack its context names. */
    if (f->compact && !fiber__compact_bring_in(loop, f))
        return -EAGAIN;
#if USE_LIBUNWIND
    uintptr_t lib_base = object_base((uintptr_t)fiber__entry_point);
    if (lib_base == object_base((uintptr_t)f->fn))
        lib_base = 0;
    if (f == loop->current)
        return unwind_here(pcs, max, lib_base);

    /* Unwind a copy: libunwind may write through its register locations,
     * and the saved context is the fiber's. */
    unw_context_t uc;
    unw_cursor_t cursor;
    /* The asm switch keeps only the leading part of a ucontext_t. */
    size_t saved = sizeof(f->ctx.storage) < sizeof(uc) ? sizeof(f->ctx.storage)
                                                        : sizeof(uc);
    memset(&uc, 0, sizeof(uc));
    memcpy(&uc, f->ctx.storage, saved);
    if (unw_init_local(&cursor, &uc) < 0)
        return 0;
    return unwind(&cursor, pcs, max, lib_base);
#else
    return -ENOSYS;
#endif
}

bool fiber__symbol_name(uintptr_t pc, char *name, size_t size, uintptr_t *offset)
{
    if (size == 0)
        return false;
#if USE_LIBUNWIND
    /* A cursor whose frame is exactly pc: a signal frame's instruction
     * pointer is not a return address, so libunwind looks it up as is. */
    unw_context_t uc;
    unw_cursor_t cursor;
    unw_word_t off = 0;
    if (unw_getcontext(&uc) == 0 &&
        unw_init_local2(&cursor, &uc, UNW_INIT_SIGNAL_FRAME) == 0 &&
        unw_set_reg(&cursor, UNW_REG_IP, (unw_word_t)pc) == 0) {
        int rc = unw_get_proc_name(&cursor, name, size, &off);
        /* -UNW_ENOMEM: the name was cut to fit, which is fine. */
        if ((rc == 0 || rc == -UNW_ENOMEM) && name[0] != '\0') {
            name[size - 1] = '\0';
            *offset = (uintptr_t)off;
            return true;
        }
    }
#endif
    Dl_info info;
    if (dladdr((void *)pc, &info) && info.dli_sname && info.dli_saddr) {
        snprintf(name, size, "%s", info.dli_sname);
        *offset = pc - (uintptr_t)info.dli_saddr;
        return true;
    }
    name[0] = '\0';
    return false;
}

const char *fiber__object_name(uintptr_t pc)
{
    Dl_info info;

    if (!dladdr((void *)pc, &info) || !info.dli_fname || !info.dli_fname[0])
        return NULL;
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

int fiber__format_frame(uintptr_t pc, char *buf, size_t size, bool *found)
{
    char name[256];
    uintptr_t off = 0;
    const char *object = fiber__object_name(pc);

    *found = fiber__symbol_name(pc, name, sizeof(name), &off);
    if (!*found)
        return snprintf(buf, size, "0x%" PRIxPTR "%s%s%s", pc,
                        object ? " (" : "", object ? object : "", object ? ")" : "");
    return snprintf(buf, size, "%s+0x%" PRIxPTR "%s%s%s", name, off,
                    object ? " (" : "", object ? object : "", object ? ")" : "");
}

FIBER_API int fiber_symbolize(const void *addr, char *buf, size_t size)
{
    bool found;

    if (!buf && size > 0)
        return -EINVAL;
    int n = fiber__format_frame((uintptr_t)addr, buf, size, &found);
    if (!found)
        return -ENOENT;
    return n < 0 ? -EINVAL : n;
}

FIBER_API int fiber_backtrace(const fiber_task_t *task, void **frames, size_t max)
{
    struct fiber_loop *loop = fiber__loop;
    if (!frames && max > 0)
        return -EINVAL;
    const struct fiber_task *self = fiber__enter_fiber("fiber_backtrace");
    if (!self)
        return -EPERM;
    if (!task)
        task = self;
    if (task->loop != loop)
        return -EINVAL;
    if (!fiber__backtrace_available())
        return -ENOSYS;
    if (task->state == FIBER__DONE || max == 0)
        return 0;

    /* Unwinding into integers and converting each keeps the types honest;
     * a deep request takes its room from the heap, not the fiber's stack. */
    uintptr_t small[32];
    uintptr_t *pcs = small;
    if (max > sizeof(small) / sizeof(small[0])) {
        if (max > SIZE_MAX / sizeof(*pcs) || !(pcs = malloc(max * sizeof(*pcs))))
            return -ENOMEM;
    }
    int n = fiber__backtrace(loop, task, pcs, max);
    for (int i = 0; i < n; i++)
        frames[i] = (void *)pcs[i];
    if (pcs != small)
        free(pcs);
    return n;
}
