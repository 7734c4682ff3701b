/*
 * overflow_prog - overflow a fiber's stack on purpose, for overflow.sh.
 *
 *   overflow_prog overflow       a fiber named "deep" recurses until its
 *                                stack runs into the guard page
 *   overflow_prog big-frames     the same with frames of 3000 bytes, so
 *                                that the fault lands deep in the guard
 *   overflow_prog null           a fiber writes through a null pointer
 *   overflow_prog user-handler   the same, with a SIGSEGV handler of the
 *                                program's own installed first: it must be
 *                                the one to run
 *   overflow_prog user-overflow  a fiber overflows while the program has
 *                                its own handler, but no alternate stack
 *                                for it to run on: the overflow is named,
 *                                then the program's handler runs
 *   overflow_prog user-altstack  the same with the program's own
 *                                alternate stack
 *   overflow_prog user-siginfo   the same with an SA_SIGINFO handler, which
 *                                checks the fault's siginfo_t
 *   overflow_prog user-returns   the same with an SA_RESETHAND handler that
 *                                returns: the process dies of SIGSEGV
 *   overflow_prog user-ignored   the same with SIGSEGV ignored: the
 *                                process dies of SIGSEGV
 *
 * overflow, big-frames, null, user-returns and user-ignored die of
 * SIGSEGV; user-handler, user-overflow, user-altstack and user-siginfo
 * exit 42 from the program's handler.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fiber.h"

/* Recurse for ever, in a way the compiler can neither flatten nor turn
 * into a loop. */
static int recurse(volatile char *previous)
{
    volatile char frame[256];

    frame[0] = previous ? previous[0] : 1;
    frame[sizeof(frame) - 1] = frame[0];
    /* Never true (frame[0] is always 1), but the compiler cannot know. */
    if (frame[0] == 42)
        return 0;
    return recurse(frame) + frame[sizeof(frame) - 1];
}

static void *deep(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)recurse(NULL);
}

/* Each frame is written from its lowest byte up: the first write past
 * the end of the stack lands anywhere in the guard page.  Not inlined
 * into itself: two frames at once would be larger than the guard page,
 * and jump over it (what -fstack-clash-protection is for). */
__attribute__((noinline)) static int recurse_big(int depth)
{
    volatile char frame[3000];

    for (size_t i = 0; i < sizeof(frame); i += 512)
        frame[i] = (char)depth;
    __asm__ volatile("" : : "r"(frame) : "memory");
    if (frame[0] == 42 && depth < 0)
        return 0;
    return recurse_big(depth + 1) + frame[sizeof(frame) - 1];
}

static void *deep_big(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)recurse_big(1);
}

static void *write_null(void *arg)
{
    volatile int *volatile nowhere = arg;

    *nowhere = 1;
    return NULL;
}

static bool compact;

static void *nap(void *arg)
{
    (void)arg;
    fiber_sleep(1);
    return NULL;
}

static void *run_one(void *arg)
{
    fiber_fn fn = (fiber_fn)(uintptr_t)arg;
    /* A compact fiber runs on the loop's shared stack, of the loop's size;
     * another compact fiber has its frames saved off it first. */
    fiber_attr_t attr = {.name = "deep", .stack_size = FIBER_MIN_STACK_SIZE};
    fiber_attr_t compact_attr = {.name = "deep", .compact = true};
    fiber_task_t *task;

    if (compact) {
        fiber_attr_t napper = {.compact = true};
        if (fiber_spawn(&task, nap, NULL, &napper) < 0)
            return NULL;
        fiber_detach(task);
        fiber_yield();
    }
    if (fiber_spawn(&task, fn, NULL, compact ? &compact_attr : &attr) < 0)
        return NULL;
    fiber_await(task, NULL, NULL);
    return NULL;
}

static void users_own_handler(int sig)
{
    static const char message[] = "the program's own handler ran\n";

    (void)sig;
    if (write(STDERR_FILENO, message, sizeof(message) - 1) < 0)
        _exit(43);
    _exit(42);
}

/* The fault's own siginfo_t, as the kernel gives it: an address in the
 * guard page below the fiber's stack. */
static void users_siginfo_handler(int sig, siginfo_t *info, void *ucontext)
{
    static const char message[] = "the program's siginfo handler ran\n";

    if (sig != SIGSEGV || !info || info->si_signo != SIGSEGV ||
        info->si_code <= 0 || !info->si_addr || !ucontext)
        _exit(44);
    if (write(STDERR_FILENO, message, sizeof(message) - 1) < 0)
        _exit(43);
    _exit(42);
}

static void users_returning_handler(int sig)
{
    static const char message[] = "the program's handler returns\n";

    (void)sig;
    if (write(STDERR_FILENO, message, sizeof(message) - 1) < 0)
        _exit(43);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "overflow";
    fiber_fn fn = deep;
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL};

    if (strcmp(what, "null") == 0 || strcmp(what, "user-handler") == 0)
        fn = write_null;
    if (strcmp(what, "big-frames") == 0)
        fn = deep_big;
    if (strcmp(what, "compact") == 0) {
        compact = true;
        opts.stack_size = FIBER_MIN_STACK_SIZE;
    }
    if (strncmp(what, "user-", 5) == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = users_own_handler;
        if (strcmp(what, "user-siginfo") == 0) {
            sa.sa_sigaction = users_siginfo_handler;
            sa.sa_flags = SA_SIGINFO;
        }
        if (strcmp(what, "user-returns") == 0) {
            sa.sa_handler = users_returning_handler;
            sa.sa_flags = SA_RESETHAND;
        }
        if (strcmp(what, "user-ignored") == 0)
            sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        if (strcmp(what, "user-altstack") == 0) {
            static char alt_stack[64 * 1024];
            stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof(alt_stack)};
            sigaltstack(&ss, NULL);
            sa.sa_flags |= SA_ONSTACK;
        }
        sigaction(SIGSEGV, &sa, NULL);
    }
    fiber_run(run_one, (void *)(uintptr_t)fn, &opts, NULL, NULL);
    fprintf(stderr, "overflow_prog: %s did not fault\n", what);
    return 1;
}
