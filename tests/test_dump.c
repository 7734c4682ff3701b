/*
 * test_dump.c - stack dumps of every fiber, backtraces, naming addresses,
 * stack use, the deadlock report's backtraces and the dump signal.
 *
 * Dumps are written into memory streams and searched for what each fiber
 * must show: its name, entry function, state and frames.  Names of static
 * functions come from the symbol table of this program, which libunwind
 * reads; without libunwind the tests check that stacks are said to be
 * unavailable instead.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "stack_use.h"
#include "stderr_capture.h"

/* " (function)", as reports name a fiber's entry function: static
 * functions have names only where libunwind reads the symbol table. */
#ifdef HAVE_LIBUNWIND
#define FN(name) " (" name ")"
#else
#define FN(name)
#endif

#ifdef HAVE_LIBUNWIND
#define HAVE_BACKTRACES 1
#else
#define HAVE_BACKTRACES 0
#endif

static const fiber_options_t virtual_clock = {.clock = FIBER_CLOCK_VIRTUAL};

/* Run fn(arg) as the main fiber on the virtual clock; every check made
 * inside must have passed. */
static void run_scenario(fiber_fn fn, void *arg, const fiber_options_t *opts)
{
    int status = -1;

    failed_checks = 0;
    assert_int_equal(fiber_run(fn, arg, opts ? opts : &virtual_clock, NULL, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(failed_checks, 0);
}

/* A memory stream and the text written to it so far. */
struct text {
    char *data;
    size_t size;
    FILE *stream;
};

static void text_open(struct text *t)
{
    t->data = NULL;
    t->size = 0;
    t->stream = open_memstream(&t->data, &t->size);
}

/* The text so far; the stream stays open. */
static const char *text_get(struct text *t)
{
    fflush(t->stream);
    return t->data ? t->data : "";
}

static void text_close(struct text *t)
{
    fclose(t->stream);
    free(t->data);
}

/* The line of text holding part, copied into line, or if none. */
static const char *line_of(const char *text, const char *part, char *line, size_t size)
{
    const char *hit = strstr(text, part);

    line[0] = '\0';
    if (!hit)
        return line;
    const char *start = hit;
    while (start > text && start[-1] != '\n')
        start--;
    const char *end = strchr(hit, '\n');
    size_t len = end ? (size_t)(end - start) : strlen(start);
    snprintf(line, size, "%.*s", (int)(len < size ? len : size - 1), start);
    return line;
}

/* ---- fibers in known places -------------------------------------------- */

__attribute__((noinline)) static void *nap_five_seconds(void *arg)
{
    (void)arg;
    fiber_sleep(5);
    return NULL;
}

__attribute__((noinline)) static void *await_the_sleeper(void *arg)
{
    fiber_await(arg, NULL, NULL);
    return NULL;
}

__attribute__((noinline)) static void *never_started(void *arg)
{
    (void)arg;
    return NULL;
}

struct cast {
    fiber_task_t *sleeper, *awaiter, *fresh;
};

/* Spawn the three, let the first two block, spawn the third. */
static void set_the_scene(struct cast *c)
{
    fiber_attr_t sleeper = {.name = "sleeper"};
    fiber_attr_t awaiter = {.name = "awaiter"};
    fiber_attr_t fresh = {.name = "fresh"};

    CHECK_EQ(fiber_spawn(&c->sleeper, nap_five_seconds, NULL, &sleeper), 0);
    CHECK_EQ(fiber_spawn(&c->awaiter, await_the_sleeper, c->sleeper, &awaiter), 0);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_spawn(&c->fresh, never_started, NULL, &fresh), 0);
}

static void clear_the_scene(struct cast *c)
{
    fiber_cancel(c->awaiter);
    CHECK_EQ(fiber_await(c->awaiter, NULL, NULL), 0);
    CHECK_EQ(fiber_await(c->fresh, NULL, NULL), 0);
}

/* ---- fiber_dump --------------------------------------------------------- */

__attribute__((noinline)) static void *dump_the_scene(void *arg)
{
    struct cast c;
    struct text t;
    char line[512];
    (void)arg;

    set_the_scene(&c);
    text_open(&t);
    CHECK_EQ(fiber_dump(t.stream), 4);
    const char *dump = text_get(&t);

    CHECK_CONTAINS(dump, "libfiber: fiber dump (4 live fibers)");
    CHECK_CONTAINS(line_of(dump, "fiber 1 ", line, sizeof(line)),
                   "fiber 1 'main'" FN("dump_the_scene") ": running; stack ");
    CHECK_CONTAINS(line_of(dump, "fiber 2 ", line, sizeof(line)),
                   "fiber 2 'sleeper'" FN("nap_five_seconds") ": sleeping, wakes in 5.000 s");
    CHECK_CONTAINS(line_of(dump, "fiber 3 ", line, sizeof(line)),
                   "fiber 3 'awaiter'" FN("await_the_sleeper") ": awaiting fiber 2 'sleeper'");
    CHECK_CONTAINS(line_of(dump, "fiber 4 ", line, sizeof(line)),
                   "fiber 4 'fresh'" FN("never_started") ": ready, not started");
    /* Oldest first. */
    CHECK(strstr(dump, "fiber 1 ") < strstr(dump, "fiber 2 "));
    CHECK(strstr(dump, "fiber 3 ") < strstr(dump, "fiber 4 "));
    /* A fiber that never ran shows what it will run. */
    CHECK_CONTAINS(dump, HAVE_BACKTRACES ? "#0 never_started+0x0" : "#0 0x");
    if (HAVE_BACKTRACES) {
        /* Each fiber from the function that called into libfiber down to
         * its entry function: none of libfiber's own frames. */
        CHECK_CONTAINS(dump, "#0 nap_five_seconds+");
        CHECK_CONTAINS(dump, "#0 await_the_sleeper+");
        CHECK_CONTAINS(dump, "#0 dump_the_scene+");
        CHECK(strstr(dump, "fiber_") == strstr(dump, "fiber_dump ("));
        CHECK(strstr(dump, "fiber_entry") == NULL);
        CHECK(strstr(dump, "fiber_run") == NULL);
    } else {
        CHECK_CONTAINS(dump, "stacks unavailable");
    }
    text_close(&t);
    clear_the_scene(&c);
    return NULL;
}

static void test_dump_shows_every_fiber_state_and_frames(void **state)
{
    (void)state;
    run_scenario(dump_the_scene, NULL, NULL);
}

static void test_dump_outside_a_loop_is_eperm(void **state)
{
    (void)state;
    assert_int_equal(fiber_dump(stderr), -EPERM);
    assert_int_equal(fiber_dump(NULL), -EINVAL);
}

/* ---- fiber_backtrace and fiber_symbolize ------------------------------- */

/* Whether any of the n frames is named after function. */
static bool frames_include(void **frames, int n, const char *function)
{
    char name[512];
    size_t len = strlen(function);

    for (int i = 0; i < n; i++)
        if (fiber_symbolize(frames[i], name, sizeof(name)) > 0 &&
            strncmp(name, function, len) == 0 && name[len] == '+')
            return true;
    return false;
}

__attribute__((noinline)) static void *backtrace_the_scene(void *arg)
{
    struct cast c;
    void *frames[64];
    char name[512];
    (void)arg;

    set_the_scene(&c);

    /* A fiber that never ran: its entry function, exactly. */
    int n = fiber_backtrace(c.fresh, frames, 64);
    if (HAVE_BACKTRACES) {
        CHECK_EQ(n, 1);
        CHECK_PTR(frames[0], (void *)(uintptr_t)never_started);

        n = fiber_backtrace(c.sleeper, frames, 64);
        CHECK_EQ(n, 1);
        CHECK(fiber_symbolize(frames[0], name, sizeof(name)) > 0);
        CHECK_CONTAINS(name, "nap_five_seconds+");

        /* The calling fiber, from its call of fiber_backtrace down. */
        n = fiber_backtrace(NULL, frames, 64);
        CHECK(n >= 1);
        CHECK(fiber_symbolize(frames[0], name, sizeof(name)) > 0);
        CHECK_CONTAINS(name, "backtrace_the_scene+");
        CHECK(!frames_include(frames, n, "fiber_backtrace"));

        /* At most max frames. */
        CHECK_EQ(fiber_backtrace(c.sleeper, frames, 1), 1);
        CHECK_EQ(fiber_backtrace(c.sleeper, frames, 0), 0);
    } else {
        CHECK_EQ(n, -ENOSYS);
    }
    CHECK_EQ(fiber_backtrace(c.sleeper, NULL, 4), -EINVAL);

    clear_the_scene(&c);
    /* A finished task has no stack left. */
    fiber_task_t *done;
    CHECK_EQ(fiber_spawn(&done, never_started, NULL, NULL), 0);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_done(done), 1);
    CHECK_EQ(fiber_backtrace(done, frames, 64), HAVE_BACKTRACES ? 0 : -ENOSYS);
    CHECK_EQ(fiber_await(done, NULL, NULL), 0);
    return NULL;
}

static void test_backtrace_returns_each_fibers_frames(void **state)
{
    void *frames[4];
    (void)state;

    run_scenario(backtrace_the_scene, NULL, NULL);
    assert_int_equal(fiber_backtrace(NULL, frames, 4), -EPERM);
}

static void test_symbolize_names_functions_static_or_not(void **state)
{
    char name[512];
    (void)state;

    /* Exported from libfiber.so: its dynamic symbol table is enough. */
    assert_true(fiber_symbolize((void *)(uintptr_t)fiber_run, name, sizeof(name)) > 0);
    assert_non_null(strstr(name, "fiber_run+0x0"));
    assert_non_null(strstr(name, "(libfiber"));
    if (HAVE_BACKTRACES) {
        /* Static, in this program: only the full symbol table has it. */
        int len = fiber_symbolize((char *)(uintptr_t)nap_five_seconds + 3, name,
                                  sizeof(name));
        assert_true(len > 0);
        assert_int_equal(len, (int)strlen(name));
        assert_non_null(strstr(name, "nap_five_seconds+0x3"));
        assert_non_null(strstr(name, "(test_dump"));
    }
    /* Like snprintf: the full length, whatever fits. */
    int len = fiber_symbolize((void *)(uintptr_t)fiber_run, NULL, 0);
    assert_true(len > (int)strlen("fiber_run+0x0"));
    assert_int_equal(fiber_symbolize((void *)(uintptr_t)fiber_run, name, 5), len);
    assert_string_equal(name, "fibe");
    assert_int_equal(fiber_symbolize((void *)(uintptr_t)fiber_run, NULL, 8), -EINVAL);
    /* Nothing lives at address 16: its number is all there is to say. */
    assert_int_equal(fiber_symbolize((void *)16, name, sizeof(name)), -ENOENT);
    assert_string_equal(name, "0x10");
}

/* ---- stack use ---------------------------------------------------------- */

struct usage {
    size_t deep_used, shallow_used, size;
};

static void *measure_stacks(void *arg)
{
    struct usage *u = arg;
    fiber_task_t *deep, *shallow;
    int kib = 24, none = 1;

    /* Both stay alive (awaited later) so their stacks are not reused. */
    CHECK_EQ(fiber_spawn(&deep, recurse_kib, &kib, NULL), 0);
    CHECK_EQ(fiber_spawn(&shallow, nap_five_seconds, &none, NULL), 0);
    CHECK_EQ(fiber_yield(), 0);
    /* deep has finished: its stack is gone. */
    CHECK_EQ(fiber_stack_usage(deep, &u->deep_used, NULL), -EALREADY);
    CHECK_EQ(fiber_stack_usage(shallow, &u->shallow_used, &u->size), 0);
    CHECK_EQ(fiber_cancel(shallow), 0);
    CHECK_EQ(fiber_await(shallow, NULL, NULL), 0);
    CHECK_EQ(fiber_await(deep, NULL, NULL), 0);

    /* The calling fiber: recurse, come back, and the mark stays. */
    use_stack(kib);
    CHECK_EQ(fiber_stack_usage(NULL, &u->deep_used, NULL), 0);
    return NULL;
}

static void test_stack_usage_is_a_high_water_mark(void **state)
{
    struct usage u = {0};
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .stack_size = 128 * 1024};
    (void)state;

    if (getenv("FIBER_TEST_UNDER_TOOL"))
        skip(); /* ASan moves locals off the stack; Valgrind counts pages. */
    run_scenario(measure_stacks, &u, &opts);
    assert_int_equal(u.size, 128 * 1024);
    assert_true(u.deep_used >= 24 * 1024);
    assert_true(u.deep_used < 40 * 1024);
    assert_true(u.shallow_used > 0);
    assert_true(u.shallow_used < 8 * 1024);
    assert_int_equal(fiber_stack_usage(NULL, NULL, NULL), -EPERM);
}

/* ---- the deadlock report ----------------------------------------------- */

__attribute__((noinline)) static void *sleep_for_ever(void *arg)
{
    (void)arg;
    fiber_sleep(INFINITY);
    return NULL;
}

static void *await_for_ever(void *arg)
{
    fiber_attr_t attr = {.name = "stuck"};
    fiber_task_t *task;
    (void)arg;

    CHECK_EQ(fiber_spawn(&task, sleep_for_ever, NULL, &attr), 0);
    fiber_await(task, NULL, NULL);
    return NULL;
}

static void test_deadlock_report_shows_backtraces(void **state)
{
    char report[8192] = "";
    struct captured_stderr captured;
    (void)state;

    capture_stderr(&captured);
    int rc = fiber_run(await_for_ever, NULL, &virtual_clock, NULL, NULL);
    release_stderr(&captured, report, sizeof(report));

    assert_int_equal(rc, -EDEADLK);
    assert_non_null(strstr(report, "libfiber: deadlock:"));
    assert_non_null(strstr(report, "fiber 2 'stuck'" FN("sleep_for_ever") ": sleeping for ever"));
    assert_non_null(strstr(report, "fiber 1 'main'" FN("await_for_ever") ": awaiting fiber 2 'stuck'"));
    if (HAVE_BACKTRACES) {
        assert_non_null(strstr(report, "#0 sleep_for_ever+"));
        assert_non_null(strstr(report, "#0 await_for_ever+"));
    }
}

/* ---- fibers abandoned by a loop ----------------------------------------- */

/* Frames with arrays, which AddressSanitizer fences with red zones, depth
 * of them; then a wait that nothing ends and no cancel reaches, so that
 * the loop abandons the fiber with its frames in place. */
__attribute__((noinline)) static int block_deep(int depth)
{
    volatile char frame[512];

    frame[0] = (char)depth;
    __asm__ volatile("" : : "r"(frame) : "memory");
    if (depth > 0)
        return block_deep(depth - 1) + frame[0];
    fiber_scope_t shield;
    fiber_scope_enter_shielded(&shield, INFINITY);
    fiber_sleep(INFINITY);
    return frame[0];
}

static void *blocked_deep(void *arg)
{
    return (void *)(intptr_t)block_deep((int)(intptr_t)arg);
}

/* Fibers of the default stack size, of another and compact ones. */
static const fiber_attr_t abandoned_kinds[] = {
    {.name = "default"},
    {.name = "big", .stack_size = 256 * 1024},
    {.name = "compact", .compact = true},
};

static void *abandon_fibers(void *arg)
{
    fiber_task_t *task;
    (void)arg;

    for (int i = 0; i < 60; i++) {
        const fiber_attr_t *attr = &abandoned_kinds[i % 3];
        int depth = attr->compact ? 8 : 40;
        int rc = fiber_spawn(&task, blocked_deep, (void *)(intptr_t)depth, attr);
        CHECK(rc == 0 || (attr->compact && rc == -ENOTSUP));
    }
    fiber_sleep(INFINITY);
    return NULL;
}

static void *nap_a_second(void *arg)
{
    volatile char frame[256];

    frame[0] = 1;
    __asm__ volatile("" : : "r"(frame) : "memory");
    fiber_sleep(1);
    return arg;
}

/* Other sizes next, so that tasks and frames fall where the abandoned
 * fibers' frames were, not where their own were. */
static const fiber_attr_t next_kinds[] = {
    {.name = "96k", .stack_size = 96 * 1024},
    {.name = "default"},
    {.name = "128k", .stack_size = 128 * 1024},
    {.name = "compact", .compact = true},
    {.name = "40k", .stack_size = 40 * 1024},
};

/* Many fibers on the stacks the abandoned ones left, and a dump of them
 * all, which unwinds every one. */
static void *spawn_many_and_dump(void *arg)
{
    enum { N = 300 };
    fiber_task_t *tasks[N];
    char *text = NULL;
    size_t len = 0;
    (void)arg;

    for (int i = 0; i < N; i++) {
        const fiber_attr_t *attr = &next_kinds[i % 5];
        int rc = fiber_spawn(&tasks[i], nap_a_second, NULL, attr);
        if (rc == -ENOTSUP)
            rc = fiber_spawn(&tasks[i], nap_a_second, NULL, NULL);
        CHECK_EQ(rc, 0);
    }
    fiber_yield();
    FILE *out = open_memstream(&text, &len);
    CHECK(out != NULL);
    CHECK_EQ(fiber_dump(out), N + 1);
    fclose(out);
    free(text);
    CHECK_EQ(fiber_gather(tasks, N, NULL, NULL), 0);
    return NULL;
}

static void test_stacks_of_abandoned_fibers_are_clean_for_the_next_loop(void **state)
{
    char report[1 << 16] = "";
    struct captured_stderr captured;
    (void)state;

    for (int round = 0; round < 2; round++) {
        failed_checks = 0;
        capture_stderr(&captured);
        int rc = fiber_run(abandon_fibers, NULL, &virtual_clock, NULL, NULL);
        release_stderr(&captured, report, sizeof(report));
        assert_int_equal(rc, -EDEADLK);
        assert_int_equal(failed_checks, 0);
        assert_non_null(strstr(report, "abandoned"));
        run_scenario(spawn_many_and_dump, NULL, NULL);
    }
}

/* ---- the dump signal --------------------------------------------------- */

static void *raise_and_go_on(void *arg)
{
    fiber_task_t *task;
    fiber_attr_t attr = {.name = "sleeper"};

    CHECK_EQ(fiber_spawn(&task, nap_five_seconds, NULL, &attr), 0);
    CHECK_EQ(fiber_yield(), 0);
    raise(*(int *)arg);
    /* The dump is written at the next scheduling point; then on we go. */
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_await(task, NULL, NULL), 0);
    return NULL;
}

static void test_dump_signal_dumps_and_the_program_goes_on(void **state)
{
    struct text t;
    int sig = SIGUSR1;
    char title[64];
    struct sigaction after;
    (void)state;

    text_open(&t);
    fiber_debug_options_t debug = {.dump_signal = sig, .report = t.stream};
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &debug};
    run_scenario(raise_and_go_on, &sig, &opts);

    const char *dump = text_get(&t);
    snprintf(title, sizeof(title), "libfiber: dump on signal %d (2 live fibers)", sig);
    assert_non_null(strstr(dump, title));
    assert_non_null(strstr(dump, "fiber 1 'main'" FN("raise_and_go_on")));
    assert_non_null(strstr(dump, "fiber 2 'sleeper'" FN("nap_five_seconds") ": sleeping"));
    if (HAVE_BACKTRACES)
        /* main was unwound where it stood: in its blocking call. */
        assert_non_null(strstr(dump, "#0 raise_and_go_on+"));
    /* Once per signal. */
    assert_null(strstr(strstr(dump, title) + strlen(title), "dump on signal"));
    text_close(&t);

    /* The signal's own action is back once the loop has ended. */
    assert_int_equal(sigaction(sig, NULL, &after), 0);
    assert_true(after.sa_handler == SIG_DFL);
}

static void test_dump_signal_from_the_environment(void **state)
{
    (void)state;

    setenv("FIBER_DUMP_SIGNAL", "SIGSEGV", 1);
    assert_int_equal(fiber_run(never_started, NULL, &virtual_clock, NULL, NULL), -EINVAL);
    setenv("FIBER_DUMP_SIGNAL", "bogus", 1);
    assert_int_equal(fiber_run(never_started, NULL, &virtual_clock, NULL, NULL), -EINVAL);
    setenv("FIBER_DUMP_SIGNAL", "usr2", 1);
    assert_int_equal(fiber_run(never_started, NULL, &virtual_clock, NULL, NULL), 0);
    setenv("FIBER_DUMP_SIGNAL", "12", 1);
    assert_int_equal(fiber_run(never_started, NULL, &virtual_clock, NULL, NULL), 0);
    unsetenv("FIBER_DUMP_SIGNAL");

    fiber_debug_options_t bad = {.dump_signal = SIGKILL};
    fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &bad};
    assert_int_equal(fiber_run(never_started, NULL, &opts, NULL, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_shows_every_fiber_state_and_frames),
        cmocka_unit_test(test_dump_outside_a_loop_is_eperm),
        cmocka_unit_test(test_backtrace_returns_each_fibers_frames),
        cmocka_unit_test(test_symbolize_names_functions_static_or_not),
        cmocka_unit_test(test_stack_usage_is_a_high_water_mark),
        cmocka_unit_test(test_deadlock_report_shows_backtraces),
        cmocka_unit_test(test_stacks_of_abandoned_fibers_are_clean_for_the_next_loop),
        cmocka_unit_test(test_dump_signal_dumps_and_the_program_goes_on),
        cmocka_unit_test(test_dump_signal_from_the_environment),
    };

    return cmocka_run_group_tests_name("dump", tests, NULL, NULL);
}
