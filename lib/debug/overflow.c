/*
 * overflow.c - a SIGSEGV handler that names the fiber whose stack ran into
 * its guard page.
 *
 * The handler runs on an alternate signal stack, since the faulting
 * fiber's own stack is used up.  For a fault inside the guard page of a
 * live fiber of this thread's loop, it writes which fiber overflowed and
 * its backtrace, then calls the SIGSEGV handler the program installed
 * before ours, if any, as the kernel would have (on the alternate stack,
 * since the fiber's is used up).  If that handler returns, or there is
 * none, it puts the default action back and returns: the faulting
 * instruction runs again and the process dies of SIGSEGV, as it would
 * have without us.  Every other SIGSEGV goes to the action installed
 * before ours, untouched.
 *
 * It writes with write(2) and formats by hand: stdio is not safe in a
 * signal handler.  Unwinding and naming use libunwind, which reads memory
 * and symbol tables without locks that the fault could be holding.
 */
#include "config.h"

#include "overflow.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backtrace.h"
#include "loop.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#endif

#if defined(HAVE_LIBUNWIND) && (defined(__x86_64__) || defined(__aarch64__))
#define USE_LIBUNWIND 1
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#endif

/* Room for the handler, libunwind included. */
#define ALT_STACK_SIZE ((size_t)64 * 1024)

/* A runaway recursion has thousands of identical frames: show the first
 * few, where it overflowed, and the last few, where it began. */
#define FIRST_FRAMES 12
#define LAST_FRAMES 4
#define MAX_STEPS 100000

#ifndef SANITIZED

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static int loops_running;           /* loops armed, over all threads */
static struct sigaction previous;   /* SIGSEGV's action before ours */

/* Read by the handler: initial-exec, so no allocation on first use. */
static _Thread_local struct {
    bool armed;
    void *alt_stack;                /* ours, if the thread had none */
} thread_state __attribute__((tls_model("initial-exec")));

/* Frees a thread's alternate stack when it exits: the stack stays from
 * one loop to the next, as mapping it costs more than a whole fiber_run. */
static pthread_key_t alt_stack_key;
static pthread_once_t alt_stack_once = PTHREAD_ONCE_INIT;
static bool alt_stack_key_made;

/* ---- writing in a signal handler --------------------------------------- */

struct line {
    char text[512];
    size_t len;
};

static void put(struct line *l, const char *s)
{
    while (*s && l->len < sizeof(l->text) - 1)
        l->text[l->len++] = *s++;
}

static void put_uint(struct line *l, uintmax_t v, unsigned base)
{
    char digits[32];
    size_t n = 0;

    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n > 0 && l->len < sizeof(l->text) - 1)
        l->text[l->len++] = digits[--n];
}

static void flush(struct line *l)
{
    size_t done = 0;

    while (done < l->len) {
        ssize_t n = write(STDERR_FILENO, l->text + done, l->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    l->len = 0;
}

/* ---- the report -------------------------------------------------------- */

/* The live fiber whose guard page holds addr: the page just below its
 * stack's mapping (the fiber's stack proper may start a little higher). */
static struct fiber_task *guard_owner(struct fiber_loop *loop, uintptr_t addr)
{
    uintptr_t page = loop->stacks.page_size;
    uintptr_t shared = (uintptr_t)loop->shared_stack.base;
    struct fiber_task *f;

    /* Only the running fiber can overflow the stack compact fibers share. */
    if (shared && addr >= shared - page && addr < shared)
        return loop->current && loop->current->compact ? loop->current : NULL;
    fiber__foreach_task(f, loop) {
        uintptr_t base = (uintptr_t)f->slot_base;
        if (f->state != FIBER__DONE && base && addr >= base - page && addr < base)
            return f;
    }
    return NULL;
}

#ifdef USE_LIBUNWIND
static void put_frame(struct line *l, uintmax_t index, uintptr_t pc)
{
    char name[256];
    uintptr_t off;
    const char *object = fiber__object_name(pc);

    put(l, "    #");
    put_uint(l, index, 10);
    put(l, " ");
    if (fiber__symbol_name(pc, name, sizeof(name), &off)) {
        put(l, name);
        put(l, "+0x");
        put_uint(l, off, 16);
    } else {
        put(l, "0x");
        put_uint(l, pc, 16);
    }
    if (object) {
        put(l, " (");
        put(l, object);
        put(l, ")");
    }
    put(l, "\n");
    flush(l);
}

#endif

static void put_backtrace(struct line *l, void *ucontext)
{
#ifdef USE_LIBUNWIND
    unw_cursor_t cursor;
    uintptr_t last[LAST_FRAMES];
    uintmax_t n = 0;

    /* The signal's context is the fault's: its pc is the faulting
     * instruction, not a return address. */
    if (unw_init_local2(&cursor, (unw_context_t *)ucontext, UNW_INIT_SIGNAL_FRAME) < 0)
        return;
    do {
        unw_word_t ip = 0;
        unw_proc_info_t info;
        if (unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        if (unw_get_proc_info(&cursor, &info) == 0 &&
            info.start_ip == (unw_word_t)(uintptr_t)fiber__entry_point)
            break;
        if (n < FIRST_FRAMES)
            put_frame(l, n, (uintptr_t)ip);
        else
            last[n % LAST_FRAMES] = (uintptr_t)ip;
        n++;
    } while (n < MAX_STEPS && unw_step(&cursor) > 0);

    if (n <= FIRST_FRAMES)
        return;
    uintmax_t tail = n - FIRST_FRAMES < LAST_FRAMES ? n - FIRST_FRAMES : LAST_FRAMES;
    if (n - tail > FIRST_FRAMES) {
        put(l, "    ... ");
        put_uint(l, n - tail - FIRST_FRAMES, 10);
        put(l, " more frames ...\n");
        flush(l);
    }
    for (uintmax_t i = n - tail; i < n; i++)
        put_frame(l, i, last[i % LAST_FRAMES]);
#else
    (void)ucontext;
    put(l, "    (no backtrace: libfiber was built without libunwind)\n");
    flush(l);
#endif
}

static void report(struct fiber_task *f, void *ucontext)
{
    struct line l = {.len = 0};
    char fn[128];
    uintptr_t off;

    put(&l, "libfiber: fiber ");
    put_uint(&l, f->id, 10);
    put(&l, " '");
    /* The name is formatted lazily elsewhere; snprintf is no signal's. */
    if (f->name[0]) {
        put(&l, f->name);
    } else {
        put(&l, "Task-");
        put_uint(&l, f->id, 10);
    }
    put(&l, "'");
    if (fiber__symbol_name((uintptr_t)f->fn, fn, sizeof(fn), &off)) {
        put(&l, " (");
        put(&l, fn);
        put(&l, ")");
    }
    put(&l, " overflowed its ");
    put_uint(&l, f->stack.size, 10);
    put(&l, "-byte stack\n");
    flush(&l);
    put_backtrace(&l, ucontext);
}

/* ---- the handler ------------------------------------------------------- */

static void restore_default(void)
{
    struct sigaction dfl;

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGSEGV, &dfl, NULL);
}

static bool is_handler(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) ||
           (sa->sa_handler != SIG_DFL && sa->sa_handler != SIG_IGN);
}

/*
 * Call the program's handler prev as the kernel would have: with its
 * sa_mask blocked (and the signal too, unless SA_NODEFER), with the
 * fault's siginfo_t and context if SA_SIGINFO, and reset to the default
 * first if SA_RESETHAND, so that the next SIGSEGV gets the default.
 */
static void call_handler(const struct sigaction *prev, int sig,
                         siginfo_t *info, void *ucontext)
{
    struct sigaction sa = *prev;
    sigset_t old, only_sig;

    if (sa.sa_flags & SA_RESETHAND) {
        memset(&previous, 0, sizeof(previous));
        previous.sa_handler = SIG_DFL;
        sigemptyset(&previous.sa_mask);
    }
    pthread_sigmask(SIG_BLOCK, &sa.sa_mask, &old);
    if (sa.sa_flags & SA_NODEFER) {
        sigemptyset(&only_sig);
        sigaddset(&only_sig, sig);
        pthread_sigmask(SIG_UNBLOCK, &only_sig, NULL);
    }
    if (sa.sa_flags & SA_SIGINFO)
        sa.sa_sigaction(sig, info, ucontext);
    else
        sa.sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Do what SIGSEGV would have done without us. */
static void pass_on(int sig, siginfo_t *info, void *ucontext)
{
    struct sigaction prev = previous;
    bool sent = info->si_code <= 0; /* by kill() or the like, not a fault */

    if (is_handler(&prev)) {
        call_handler(&prev, sig, info, ucontext);
    } else if (prev.sa_handler == SIG_IGN && sent) {
        /* Ignored, as it would have been. */
    } else {
        /* A fault cannot be ignored: it happens again on return, under
         * the default action; a sent signal is sent again. */
        restore_default();
        if (sent)
            raise(sig);
    }
}

static void on_segv(int sig, siginfo_t *info, void *ucontext)
{
    int saved_errno = errno;
    struct fiber_loop *loop = fiber__loop;
    struct fiber_task *f = NULL;

    if (loop && info->si_code > 0)
        f = guard_owner(loop, (uintptr_t)info->si_addr);
    if (!f) {
        pass_on(sig, info, ucontext);
    } else {
        report(f, ucontext);
        /* Then the program's own handler, if it had one, on this
         * alternate stack (or its own): it may log, clean up, exit or
         * jump away.  If it returns, or there is none, the default action
         * puts an end to it: the fault happens again on return, and the
         * process dies of SIGSEGV, as it would have without us. */
        struct sigaction prev = previous;
        if (is_handler(&prev))
            call_handler(&prev, sig, info, ucontext);
        restore_default();
    }
    errno = saved_errno;
}

static bool is_ours(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_segv;
}

static void free_alt_stack(void *mem)
{
    stack_t current;

    /* At thread exit: take it down first if it is still the thread's. */
    if (sigaltstack(NULL, &current) == 0 && current.ss_sp == mem) {
        stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
    }
    munmap(mem, ALT_STACK_SIZE);
}

static void make_alt_stack_key(void)
{
    alt_stack_key_made = pthread_key_create(&alt_stack_key, free_alt_stack) == 0;
}

/* Give the thread an alternate signal stack if it has none: ours from an
 * earlier loop, or a new one.  A stack the program set up stays. */
static int ensure_alt_stack(void)
{
    stack_t old;

    if (sigaltstack(NULL, &old) < 0 || !(old.ss_flags & SS_DISABLE))
        return 0;
    void *mem = thread_state.alt_stack;
    if (!mem) {
        pthread_once(&alt_stack_once, make_alt_stack_key);
        mem = mmap(NULL, ALT_STACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
            return -ENOMEM;
        if (!alt_stack_key_made || pthread_setspecific(alt_stack_key, mem) != 0) {
            munmap(mem, ALT_STACK_SIZE);
            return -ENOMEM;
        }
        thread_state.alt_stack = mem;
    }
    stack_t ss = {.ss_sp = mem, .ss_size = ALT_STACK_SIZE, .ss_flags = 0};
    return sigaltstack(&ss, NULL) < 0 ? -ENOMEM : 0;
}

int fiber__overflow_arm(void)
{
    if (thread_state.armed)
        return 0;
    int rc = ensure_alt_stack();
    if (rc < 0)
        return rc;

    pthread_mutex_lock(&handler_lock);
    if (loops_running++ == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &previous);
        /* Left installed by a loop whose user replaced and then restored
         * it: passing on to ourselves would never end. */
        if (is_ours(&previous)) {
            memset(&previous, 0, sizeof(previous));
            previous.sa_handler = SIG_DFL;
        }
    }
    pthread_mutex_unlock(&handler_lock);
    thread_state.armed = true;
    return 0;
}

void fiber__overflow_disarm(void)
{
    if (!thread_state.armed)
        return;
    pthread_mutex_lock(&handler_lock);
    if (--loops_running == 0) {
        struct sigaction current;
        /* Someone else's handler, installed since, stays. */
        if (sigaction(SIGSEGV, NULL, &current) == 0 && is_ours(&current))
            sigaction(SIGSEGV, &previous, NULL);
    }
    pthread_mutex_unlock(&handler_lock);
    /* The alternate stack stays, for the thread's next loop; it does no
     * harm meanwhile, and goes when the thread exits. */
    thread_state.armed = false;
}

#else /* SANITIZED */

int fiber__overflow_arm(void)
{
    return 0;
}

void fiber__overflow_disarm(void)
{
}

#endif
