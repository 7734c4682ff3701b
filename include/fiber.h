/*
 * fiber.h - the public interface of libfiber.
 *
 * libfiber runs many cooperative green threads ("fibers") on one OS thread,
 * the way Python's asyncio runs coroutines on one event loop.  A fiber runs
 * until it makes a blocking call (fiber_sleep, fiber_yield, fiber_await,
 * fiber_gather, fiber_wait_for); the loop then switches to the next ready
 * fiber.  Nothing here is preemptive and nothing here is thread-safe: each
 * thread may run its own loop, and fibers of one loop never run in parallel.
 *
 *   asyncio                          libfiber
 *   asyncio.run(main())              fiber_run(main, arg, opts, &res, &st)
 *   await asyncio.sleep(s)           fiber_sleep(s)
 *   await asyncio.sleep(0)           fiber_yield()
 *   asyncio.create_task(coro)        fiber_spawn(&task, fn, arg, attr)
 *   await task                       fiber_await(task, &res, &st)
 *   asyncio.gather(*tasks)           fiber_gather(tasks, n, results, statuses)
 *   asyncio.wait_for(task, t)        fiber_wait_for(task, t, &res, &st)
 *   task.cancel()                    fiber_cancel(task)
 *   loop.time()                      fiber_time()
 *   perf_counter() around run()      fiber_elapsed_ns() after fiber_run
 *   random.uniform(a, b)             fiber_uniform(a, b)
 *
 * Error convention: every function that can fail returns 0 (or a
 * non-negative value) on success and a negative errno on failure.  libfiber
 * never reports errors through errno, and it saves and restores errno across
 * every switch, so each fiber sees its own errno.  A user mistake is an
 * error code, never an abort().  Errors used throughout:
 *
 *   -EINVAL     a NULL handle or function, a negative or NaN delay
 *   -EPERM      a fiber-only call made outside a running fiber (named
 *               on stderr in debug mode, see "Debugging")
 *   -EDEADLK    a fiber awaiting itself; every fiber blocked for ever
 *   -ECANCELED  the calling fiber has been cancelled
 *   -ETIMEDOUT  a deadline passed
 *   -ENOMEM     out of memory; nothing leaked, the loop still usable
 *   -EBUSY      a loop already runs on this thread; a task already awaited
 *
 * What fibers share: a fiber's own are its stack, its registers and its
 * errno.  The rest of the thread's state is shared by its fibers, as it is
 * by the functions of one thread: the signal mask, thread-local variables,
 * and the floating-point environment (rounding mode, exception masks,
 * flush-to-zero; fesetround, fesetenv).  A switch does not save or restore
 * the floating-point environment, which would more than double its cost,
 * so a fiber that changes it must restore it before its next blocking
 * call, or the fibers that run next compute with its settings.  Debug mode
 * (fiber_debug_options.checks) reports a fiber that switches away with it
 * changed.  With ./configure --with-switch=ucontext, glibc's swapcontext
 * happens to keep it per fiber; do not rely on that.
 *
 * Task statuses: a task's function returns a void * result.  Its status is
 * the negative errno it set with fiber_fail if it did; else -ECANCELED when
 * it was cancelled (see fiber_cancel: a blocking call returned -ECANCELED
 * to it, or it returned without meeting a cancel that came before it ran
 * or while it ran); else 0.
 */
#ifndef FIBER_H
#define FIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FIBER_API __attribute__((visibility("default")))
#else
#define FIBER_API
#endif

/*
 * Versions.  fiber-version.h, installed beside this header and made by
 * configure, defines the version of the headers a program is compiled
 * with: FIBER_VERSION, a string such as "0.1.0"; FIBER_VERSION_MAJOR,
 * FIBER_VERSION_MINOR and FIBER_VERSION_PATCH, its parts as numbers;
 * FIBER_VERSION_NUMBER, major * 10000 + minor * 100 + patch, which grows
 * with every release; and FIBER_VERSION_AT_LEAST(major, minor, patch) for
 * #if.  fiber_version and fiber_version_number give the version of the
 * library the program runs with, which may be a later one:
 *
 *     if (fiber_version_number() < FIBER_VERSION_NUMBER)
 *         fprintf(stderr, "built with libfiber %s, running with %s\n",
 *                 FIBER_VERSION, fiber_version());
 *
 * The shared library's symbols carry the version node LIBFIBER_0.1.
 */
#include "fiber-version.h"

/* fiber_version - the running library's version, as FIBER_VERSION: a
 * static string such as "0.1.0". */
FIBER_API const char *fiber_version(void);

/* fiber_version_number - the running library's version, as
 * FIBER_VERSION_NUMBER: major * 10000 + minor * 100 + patch. */
FIBER_API int fiber_version_number(void);

/*
 * Default usable stack size of a fiber: 64 KiB, plus one guard page.
 * Stacks are mmap'd lazily, so a fiber only costs resident memory for the
 * pages it touches (typically 4 to 8 KiB); the rest is address space.
 * A fiber that overflows its stack hits the guard page and the process dies
 * with SIGSEGV instead of corrupting a neighbour.  Raise the size per loop
 * (fiber_options.stack_size) or per fiber (fiber_attr.stack_size) for deep
 * recursion or large local arrays.
 */
#define FIBER_DEFAULT_STACK_SIZE ((size_t)64 * 1024)

/* The smallest stack size accepted: 16 KiB. */
#define FIBER_MIN_STACK_SIZE ((size_t)16 * 1024)

/* The longest fiber name kept, in bytes, not counting the final NUL. */
#define FIBER_NAME_MAX 31

/* A task: a fiber together with the handle used to await or cancel it. */
typedef struct fiber_task fiber_task_t;

/*
 * A fiber's function.  It receives the arg given to fiber_spawn or
 * fiber_run, and its return value becomes the task's result.
 */
typedef void *(*fiber_fn)(void *arg);

/* Which clock a loop runs on. */
enum fiber_clock {
    /* FIBER_CLOCK=virtual or FIBER_CLOCK=real in the environment chooses;
     * without it, the real clock. */
    FIBER_CLOCK_DEFAULT = 0,
    /* CLOCK_MONOTONIC: sleeping takes real time. */
    FIBER_CLOCK_REAL = 1,
    /* Virtual time: whenever no fiber is ready, the clock jumps to the next
     * deadline.  Fibers wake in the same order and see the same times as
     * under the real clock, but a program sleeping for hours ends at once.
     * Tests use it to make timing exact. */
    FIBER_CLOCK_VIRTUAL = 2,
};

/* Options of a loop, given to fiber_run.  All-zero means the defaults. */
typedef struct fiber_options {
    /* Usable stack size of each fiber; 0 means FIBER_DEFAULT_STACK_SIZE.
     * A size too large to map, up to SIZE_MAX, makes fiber_run return
     * -ENOMEM. */
    size_t stack_size;
    /* One of enum fiber_clock. */
    int clock;
    /* Debugging aids (see "Debugging" below); NULL leaves them to the
     * environment: FIBER_DEBUG, FIBER_TRACE, FIBER_DUMP_SIGNAL. */
    const struct fiber_debug_options *debug;
} fiber_options_t;

/* Attributes of one fiber, given to fiber_spawn.  All-zero means defaults. */
typedef struct fiber_attr {
    /* Usable stack size; 0 means the loop's stack size.  A size too large
     * to map, up to SIZE_MAX, makes fiber_spawn return -ENOMEM. */
    size_t stack_size;
    /* A name shown in reports and descriptions; copied and cut to
     * FIBER_NAME_MAX bytes.  NULL means "Task-<id>". */
    const char *name;
    /*
     * Run as a compact fiber: on a stack shared with the loop's other
     * compact fibers, of the loop's stack size (stack_size must be 0).
     * While another compact fiber runs, the frames this one has in use are
     * kept in a buffer of their own, so a sleeping compact fiber costs about
     * 1 KiB in all instead of at least a page: a million fit in about 1 GiB.
     * Switching from one compact fiber to another copies those frames (a
     * few hundred bytes each way); switching with other fibers copies
     * nothing.
     *
     * The price: a compact fiber's local variables are at their addresses
     * only while it runs.  Never give another fiber or thread a pointer to
     * one (an argument of fiber_spawn or fiber_to_thread, a mutex, queue or
     * scope on its stack that another fiber uses); give them heap or static
     * memory.  Pointers a compact fiber keeps to its own locals, and
     * libfiber's own waits, are safe.  Out of memory while saving the frames
     * stops the program with a message, as running out of stack does.
     * Supported on x86-64 and AArch64; elsewhere fiber_spawn returns
     * -ENOTSUP.
     */
    bool compact;
} fiber_attr_t;

/* ------------------------------------------------------------------------
 * Running a loop
 */

/*
 * fiber_run - asyncio.run: run main(arg) in a fiber on a fresh loop.
 *
 * The loop runs until main returns.  Every fiber still alive then is
 * cancelled and the loop runs until each has returned; then every stack,
 * task and timer is freed, including task handles nobody awaited or
 * detached.  fiber_run may be called again and again in one thread, but
 * not from inside a running loop.
 *
 * opts may be NULL for the defaults.  On return, *result (if result is not
 * NULL) holds main's return value and *status (if status is not NULL) its
 * task status.
 *
 * If every live fiber is blocked and nothing can ever wake them (no fiber
 * ready, no timer pending), the loop writes a report naming the blocked
 * fibers to stderr, cancels them all and returns -EDEADLK once they have
 * unwound (fibers that still cannot finish are abandoned: their stacks are
 * freed without running them further).
 *
 * Returns 0 when main ran to completion, -EINVAL if main is NULL or opts
 * holds an invalid value, -EBUSY if called from inside a running loop,
 * -ENOMEM if the loop could not be set up (opts->stack_size too large to
 * map, whatever its value, included), -EDEADLK as above.
 */
FIBER_API int fiber_run(fiber_fn main, void *arg, const fiber_options_t *opts,
                        void **result, int *status);

/* ------------------------------------------------------------------------
 * Tasks
 *
 * Ownership, as with pthread_join and pthread_detach: fiber_spawn gives
 * the caller a handle.  The handle stays valid until exactly one of these
 * consumes it: fiber_await, fiber_wait_for, fiber_await_until,
 * fiber_gather (each frees it once the task has finished) or fiber_detach
 * (the task frees itself when it finishes).  A handle neither awaited nor
 * detached is freed when its loop ends.  Using a handle after it has been
 * consumed is undefined behaviour, like using a freed pointer.
 */

/*
 * fiber_spawn - asyncio.create_task: start fn(arg) in a new fiber.
 *
 * The new fiber does not run inside fiber_spawn: it is queued and starts at
 * the caller's next blocking call, after fibers already ready.  attr may be
 * NULL.  On success *task holds the handle.
 *
 * Returns 0, -EINVAL if task or fn is NULL, or attr->stack_size is below
 * FIBER_MIN_STACK_SIZE or given for a compact fiber, -ENOTSUP for a compact
 * fiber where they are not supported, -EPERM outside a running fiber,
 * -ENOMEM when no stack or task could be allocated, a stack_size too large
 * to map (whatever its value, SIZE_MAX included) among them: nothing is
 * leaked and *task is left untouched.
 */
FIBER_API int fiber_spawn(fiber_task_t **task, fiber_fn fn, void *arg,
                          const fiber_attr_t *attr);

/*
 * fiber_await - await task: wait until the task finishes and take its result.
 *
 * On return 0 the task has finished; *result (if not NULL) holds its return
 * value and *status (if not NULL) its status; the handle has been freed.
 *
 * If the caller is cancelled while waiting (or was already cancelled), the
 * awaited task is cancelled too, as asyncio does, and fiber_await still
 * waits for it to finish, fills *result and *status, frees the handle and
 * returns -ECANCELED.  So the handle is always consumed, unless the call
 * fails with one of the errors below, which change nothing:
 *
 * -EINVAL task is NULL or is the loop's main fiber; -EPERM outside a
 * running fiber; -EDEADLK the caller is awaiting itself; -EBUSY another
 * fiber is already awaiting the task, or it was detached.
 */
FIBER_API int fiber_await(fiber_task_t *task, void **result, int *status);

/*
 * fiber_wait_for - asyncio.wait_for: fiber_await with a timeout in seconds.
 *
 * If the task has not finished when timeout seconds have passed, it is
 * cancelled and fiber_wait_for waits until it has returned (a task
 * unwinding after cancellation should not block for long), then frees the
 * handle; *result and *status are filled as always, so a result the task
 * returned while unwinding is never lost.  What it returns then depends on
 * whether the cancel reached the task:
 * - it did (the task ended cancelled, status -ECANCELED, or failed with
 *   fiber_fail after a blocking call returned -ECANCELED to it):
 *   -ETIMEDOUT;
 * - it did not (the task was inside a shield, see fiber_scope_enter_shielded,
 *   and returned without blocking after it): 0 and the task's result, even
 *   though it finished after the timeout, as asyncio 3.12's wait_for
 *   returns the result of a task that finished despite the cancel.
 *
 * When the timeout and the task's completion fall at the same instant, the
 * completion wins: a task whose wake-up was already due returns normally,
 * and fiber_wait_for returns 0.  When the caller is cancelled at the same
 * instant the timeout expires, cancellation wins: -ECANCELED.
 *
 * A timeout of 0 polls: a task already finished gives 0, any other is
 * cancelled and reaped.  An infinite timeout waits like fiber_await.
 * Returns 0, -ETIMEDOUT, -ECANCELED (see fiber_await), -EINVAL for a
 * negative or NaN timeout, and the argument errors of fiber_await.
 */
FIBER_API int fiber_wait_for(fiber_task_t *task, double timeout,
                             void **result, int *status);

/*
 * fiber_await_until - fiber_wait_for with an absolute deadline on the loop
 * clock, in nanoseconds (see fiber_now_ns).  A deadline already passed
 * polls, like a zero timeout.  Returns as fiber_wait_for.
 */
FIBER_API int fiber_await_until(fiber_task_t *task, int64_t deadline_ns,
                                void **result, int *status);

/*
 * fiber_gather - asyncio.gather: await n tasks that run concurrently.
 *
 * The tasks have been spawned already and run side by side; fiber_gather
 * returns once all have finished.  results[i] and statuses[i] (each array
 * may be NULL) receive the result and status of tasks[i]: the order passed,
 * not the order of completion.  One task failing does not stop the others
 * nor lose their results.  Every handle is consumed.  Reaping many tasks
 * that have finished takes time of its own: now and then meanwhile, if a
 * deadline has passed, the fibers it woke run first.
 *
 * If the caller is cancelled, every unfinished task is cancelled, all are
 * still reaped and their results filled in, and -ECANCELED is returned.
 * Returns 0 when all finished; -EINVAL if tasks is NULL with n > 0 or any
 * handle is NULL, the main fiber, or listed twice; -EPERM, -EDEADLK, -EBUSY
 * as fiber_await.  On those argument errors no handle is touched.
 */
FIBER_API int fiber_gather(fiber_task_t *const tasks[], size_t n,
                           void *results[], int statuses[]);

/*
 * fiber_gather_fail_fast - asyncio.gather with return_exceptions=False:
 * await n tasks, but stop at the first failure.
 *
 * A task fails when it finishes with a status other than 0: a negative
 * errno it set with fiber_fail, or -ECANCELED when a cancellation from
 * elsewhere was delivered to it (asyncio.gather treats a child's
 * CancelledError as its exception too).  This differs from task groups,
 * where a cancelled child is no failure: a group cancels children itself,
 * while a gather asked for every result, and a cancelled task has none.
 *
 * fiber_gather_fail_fast waits until every task has finished or one has
 * failed, whichever comes first.  At the first failure it cancels every
 * task still running and waits until they have all finished (they should
 * unwind quickly), so no task outlives the call.  Then, as with
 * fiber_gather, results[i] and statuses[i] (each array may be NULL)
 * receive the result and status of tasks[i], of those that finished
 * normally as of those cancelled, and every handle is consumed.
 *
 * If failed is not NULL, *failed receives the index of the task whose
 * failure ended the wait, or n when none did.  When tasks had already
 * failed before the call, that is the lowest index among them; otherwise
 * it is the first to fail in time.  A task that fails while the others
 * are being cancelled is not reported there (its status is, in statuses).
 *
 * If the caller is cancelled, or one of its timeout scopes expires, before
 * or during the wait, every unfinished task is cancelled and reaped in the
 * same way, *failed is n, and the call returns -ECANCELED or -ETIMEDOUT.
 * A failure that had already woken the caller when the cancel came wins.
 *
 * Returns 0 when every task finished with status 0; the failed task's
 * status (a negative errno, statuses[*failed]) when one failed;
 * -ECANCELED or -ETIMEDOUT as above (tell them from a task's own
 * -ECANCELED by *failed being n).  Fails, touching no handle, with the
 * argument errors of fiber_gather, and -ENOMEM.
 */
FIBER_API int fiber_gather_fail_fast(fiber_task_t *const tasks[], size_t n,
                                     void *results[], int statuses[],
                                     size_t *failed);

/*
 * fiber_cancel - task.cancel(): ask a task to stop.
 *
 * Cancellation is delivered at blocking calls.  If the task is blocked
 * (sleeping or awaiting), that call returns -ECANCELED at once; if it is
 * ready or running, its next blocking call does.  From then on every
 * blocking call it makes returns -ECANCELED (level-triggered), so a task
 * unwinds by returning errors up its stack.  A blocking call whose wake-up
 * had already happened when the cancel came keeps its own result: the
 * completion came first.  Cancelling again changes nothing.
 *
 * The task's final status (fiber_cancelled, as task.cancelled()):
 * - Cancelled before it started: it ends cancelled, status -ECANCELED, as
 *   in asyncio.  Unlike asyncio it still runs, so that it can release what
 *   arg owns (C has no garbage collector); its first blocking call returns
 *   -ECANCELED, and if it returns without one its status is still
 *   -ECANCELED.
 * - Cancelled while it runs (it cancels itself) and returning without
 *   another blocking call: -ECANCELED, as an asyncio task whose
 *   CancelledError had no await to be raised at.
 * - A blocking call returned -ECANCELED to it: -ECANCELED, whatever it
 *   returns then (use fiber_fail for another status).
 * - Cancelled while in a blocking call that completed first (its wake-up
 *   was already due) or that a shield protected, and returning without
 *   another blocking call: the cancel never reached it, and its status is
 *   0 with its result, as an asyncio task that caught the CancelledError
 *   and returned a result.
 * A status set with fiber_fail wins over all of these.
 *
 * Returns 0 when the request was recorded, -EALREADY when the task has
 * already finished (its result stands), -EINVAL for NULL, -EPERM outside a
 * running loop.
 */
FIBER_API int fiber_cancel(fiber_task_t *task);

/*
 * fiber_detach - let a task run on with nobody awaiting it.
 *
 * The handle is consumed: the task is freed when it finishes (at once if it
 * has finished already), its result discarded.  Returns 0, -EINVAL for NULL
 * or the main fiber, -EBUSY if a fiber is awaiting it.
 */
FIBER_API int fiber_detach(fiber_task_t *task);

/* fiber_done - 1 if the task has finished, 0 if not, -EINVAL for NULL. */
FIBER_API int fiber_done(const fiber_task_t *task);

/*
 * fiber_cancelled - task.cancelled(): 1 if the task has finished with
 * status -ECANCELED (see fiber_cancel for when a cancelled task does), 0 if
 * not, -EINVAL for NULL.
 */
FIBER_API int fiber_cancelled(const fiber_task_t *task);

/*
 * fiber_cancelling - 1 if a cancellation has been requested for the calling
 * fiber, 0 if not, -EPERM outside a running fiber.
 */
FIBER_API int fiber_cancelling(void);

/*
 * fiber_result - the result and status of a finished task, without
 * consuming the handle.  Returns 0, -EAGAIN if the task has not finished,
 * -EINVAL for NULL.
 */
FIBER_API int fiber_result(const fiber_task_t *task, void **result,
                           int *status);

/*
 * fiber_fail - end the calling task with a failure status.
 *
 * Records status (a negative errno) as the calling task's status and
 * returns NULL, so a task function can write `return fiber_fail(-EIO);`.
 * A status that is not negative is ignored.  Outside a fiber it does
 * nothing and returns NULL.
 */
FIBER_API void *fiber_fail(int status);

/* fiber_self - the calling fiber's task, or NULL outside a running fiber. */
FIBER_API fiber_task_t *fiber_self(void);

/* fiber_id - the task's id (1 for the main fiber, then 2, 3, ... in spawn
 * order, per loop), or 0 for NULL. */
FIBER_API uint64_t fiber_id(const fiber_task_t *task);

/* fiber_name - the task's name, or "" for NULL.  Valid while the handle is. */
FIBER_API const char *fiber_name(const fiber_task_t *task);

/*
 * fiber_describe - write a one-line description of a task into buf, like
 * asyncio's repr of a Task: "<Task pending name='Task-2' id=2 state=sleeping>"
 * or "<Task finished name='Task-2' id=2 status=0 result=0x...>".
 * Returns the length snprintf would write (buf is always NUL-terminated when
 * size > 0), or -EINVAL if task is NULL or buf is NULL with size > 0.
 */
FIBER_API int fiber_describe(const fiber_task_t *task, char *buf, size_t size);

/* ------------------------------------------------------------------------
 * Sleeping and yielding
 *
 * Each returns 0 after the wait, -ECANCELED if the calling fiber is or
 * becomes cancelled, -EPERM outside a running fiber, and -EINVAL for a
 * negative or NaN duration.  They never allocate and never fail otherwise.
 */

/*
 * fiber_sleep - asyncio.sleep: sleep for seconds; 0 yields; +infinity
 * sleeps until cancelled.  The deadline is rounded up to the loop clock's
 * nanosecond, but sleepers keep the order of the exact times they asked
 * for, as asyncio's float deadlines do: two sleeps whose deadlines round to
 * the same nanosecond end in the order of seconds (asked at the same
 * instant), so fibers that sleep random delays wake in ascending order.
 * Sleeps of equal exact times end in the order they began.
 */
FIBER_API int fiber_sleep(double seconds);

/* fiber_sleep_ns - sleep for a number of nanoseconds; 0 yields. */
FIBER_API int fiber_sleep_ns(int64_t ns);

/* fiber_sleep_until - sleep until an absolute time of the loop clock in
 * nanoseconds (see fiber_now_ns); a time already passed yields. */
FIBER_API int fiber_sleep_until(int64_t deadline_ns);

/*
 * fiber_yield - asyncio.sleep(0): let every other ready fiber run once,
 * then continue.  Timers that are due are fired first, so a loop of yields
 * never starves sleepers.
 */
FIBER_API int fiber_yield(void);

/* ------------------------------------------------------------------------
 * The loop clock
 */

/*
 * fiber_now_ns - loop.time() in nanoseconds: the running loop's monotonic
 * clock, real or virtual.  Outside a loop, CLOCK_MONOTONIC.
 */
FIBER_API int64_t fiber_now_ns(void);

/* fiber_time - loop.time(): fiber_now_ns() in seconds. */
FIBER_API double fiber_time(void);

/*
 * fiber_elapsed_ns - how long the run has lasted on its loop clock, in
 * nanoseconds.  Inside a running loop, the time since fiber_run started
 * it; outside, the whole of the calling thread's last fiber_run, the
 * cancelling of the fibers main left behind included (0 before the first
 * run, and after a run refused before its loop started).  Timing a run
 * this way is time.perf_counter() around asyncio.run, on the loop's own
 * clock: under the virtual clock it gives the simulated time, exactly,
 * where the real time taken is next to nothing.
 */
FIBER_API int64_t fiber_elapsed_ns(void);

/*
 * fiber_idle_ns - the part of fiber_elapsed_ns the loop spent idle, in
 * nanoseconds: with no fiber ready, waiting for the next deadline or for
 * I/O, whether in the kernel or on the CPU (a deadline a few microseconds
 * away is waited for there, so idle time is not always time off the CPU).
 * Inside a running loop, the idle time so far; outside, that of the
 * calling thread's last fiber_run (0 before the first).  elapsed - idle
 * is the time fibers and the loop were at work: divided by elapsed, the
 * loop's load.  Under the virtual clock, the jumps of time: there, every
 * elapsed nanosecond is idle.
 */
FIBER_API int64_t fiber_idle_ns(void);

/* fiber_clock_virtual - 1 if the running loop uses the virtual clock, 0 if
 * it uses the real one, -EPERM outside a running loop. */
FIBER_API int fiber_clock_virtual(void);

/* ------------------------------------------------------------------------
 * Random numbers
 *
 * One generator per thread (xoshiro256**), seeded on first use from
 * FIBER_SEED in the environment if set (a decimal number), else from the
 * system's entropy.  The same seed always gives the same sequence.
 */

/* fiber_seed - reseed the calling thread's generator. */
FIBER_API void fiber_seed(uint64_t seed);

/* fiber_random_u64 - 64 uniformly random bits. */
FIBER_API uint64_t fiber_random_u64(void);

/*
 * fiber_uniform - random.uniform(a, b): a double in [a, b] (or [b, a] if
 * b < a).  Returns NaN if a or b is NaN or infinite.
 */
FIBER_API double fiber_uniform(double a, double b);

/*
 * fiber_randint - random.randint(a, b): store in *out an integer in [a, b],
 * both ends included, without modulo bias.  Returns 0, or -EINVAL if out is
 * NULL or b < a (nothing is drawn then).
 */
FIBER_API int fiber_randint(int64_t a, int64_t b, int64_t *out);

/* ------------------------------------------------------------------------
 * Structured concurrency: task groups, as-completed, timeout scopes, shield
 *
 *   asyncio / trio                        libfiber
 *   async with asyncio.TaskGroup() as g   fiber_group_create(&g)
 *   g.create_task(coro)                   fiber_group_spawn(g, &t, fn, arg, attr)
 *   (the end of the async with block)     fiber_group_wait(g), fiber_group_destroy(g)
 *   asyncio.as_completed(tasks)           fiber_waitset_add(set, t) for each, then
 *                                         fiber_waitset_next(set, timeout, &t)
 *   asyncio.wait(.., FIRST_COMPLETED)     fiber_wait_any(tasks, n, timeout)
 *   async with asyncio.timeout(s)         fiber_scope_enter_after(&scope, s) ...
 *   trio.move_on_after(s), fail_after(s)  ... fiber_scope_exit(&scope)
 *   asyncio.timeout_at(when)              fiber_scope_enter(&scope, deadline_ns)
 *   cancel_scope.cancel()                 fiber_scope_cancel(&scope)
 *   CancelScope(shield=True), bounded     fiber_scope_enter_shielded(&scope, s)
 *
 * The rules every blocking call follows (fiber_sleep*, fiber_yield,
 * fiber_await*, fiber_wait_for, fiber_gather, the calls below, and those
 * of "I/O and coordination"):
 *
 * - Cancellation (fiber_cancel) is delivered to the blocking call the
 *   fiber is in when it comes, which returns -ECANCELED, then to every
 *   later blocking call: it is level-triggered until the fiber returns.
 *   Only a shield suspends it, for as long as the shield lasts.
 * - A completion that had already happened when a cancel or a timeout
 *   comes wins: a sleep whose time was up returns 0, an await whose task
 *   had finished returns 0 with its result, a task whose wake-up was due
 *   finishes normally.  The cancel is delivered at the next blocking call.
 * - When a cancel and a timeout come at the same instant, the cancel wins
 *   (fiber_wait_for, the waits below, and every call cut short by a
 *   timeout scope), even over a task finishing at that instant too: the
 *   call returns -ECANCELED, with the task's result filled in.
 * - A task's result and status are never lost: each call that consumes a
 *   handle, or stops waiting for it, fills them in whatever it returns, and
 *   a group keeps every child's until it is destroyed.
 */

/* ---- Timeout scopes and shields ----------------------------------------
 *
 * A scope puts one deadline on every blocking call that the fiber that
 * entered it makes until it exits, however deep in the fiber's calls:
 *
 *     // example (tests/examples.sh builds each such block as written)
 *     fiber_scope_t scope;
 *     fiber_scope_enter_after(&scope, 2.5);
 *     int rc = fiber_sleep(1);              // sleeps, awaits, waits, ...
 *     if (rc == 0)
 *         rc = fiber_sleep(2);              // -ETIMEDOUT at 2.5 s
 *     if (fiber_scope_exit(&scope) == -ETIMEDOUT)
 *         puts("gave up after 2.5 s");
 *     // end of example
 *
 * - Once its deadline has passed, the call blocked then returns -ETIMEDOUT,
 *   and so does every later blocking call of the fiber until the scope
 *   exits (level-triggered, like a cancellation).  A scope cancelled with
 *   fiber_scope_cancel does the same with -ECANCELED.  An await, gather or
 *   group wait stopped so cancels the tasks it waits for and reaps them,
 *   results filled in, exactly as when the fiber itself is cancelled.
 * - The fiber is not cancelled: after fiber_scope_exit its blocking calls
 *   work again, fiber_cancelling() stays 0, and its final status does not
 *   become -ECANCELED because of a scope.
 * - Scopes nest.  A call obeys every scope it is in, so the earliest
 *   deadline applies: an inner scope cannot extend an outer one.  When
 *   several are expired or cancelled, the error is the outermost one's,
 *   and the fiber's own cancellation counts as outermost of all: an inner
 *   scope never swallows what an outer one, or a cancel, meant.
 * - When a scope's deadline and a call's own outcome fall at the same
 *   instant (a sleep ending, a task finishing, a wait_for's own timeout),
 *   the call's outcome wins and the scope stops the next call.
 * - A scope is plain memory of the caller's, usually a local variable, and
 *   holds no resources.  Scopes are exited in the reverse order of
 *   entering, by the fiber that entered them, before its function returns
 *   (one still entered when it returns simply ends there).
 */

/* A timeout scope or a shield, declared by the caller and given to
 * fiber_scope_enter*.  The fields are private. */
typedef struct fiber_scope {
    struct fiber_scope *private_outer;
    fiber_task_t *private_owner;
    uint64_t private_owner_id;
    uint64_t private_owner_loop;
    int64_t private_deadline;
    int private_cause;
    unsigned char private_shield;
    unsigned char private_caught;
    uint32_t private_magic;
} fiber_scope_t;

/*
 * fiber_scope_enter - asyncio.timeout_at(when): enter scope, with an
 * absolute deadline on the loop clock in nanoseconds (see fiber_now_ns),
 * INT64_MAX for none (a scope that only fiber_scope_cancel ends).  A
 * deadline already passed makes the next blocking call fail.  Entering
 * never blocks, and works in a cancelled fiber too.
 *
 * Returns 0, -EINVAL for NULL, -EPERM outside a fiber, -EBUSY if the
 * caller is inside scope already.  On error nothing changes.
 */
FIBER_API int fiber_scope_enter(fiber_scope_t *scope, int64_t deadline_ns);

/*
 * fiber_scope_enter_after - asyncio.timeout(s), trio.move_on_after(s):
 * fiber_scope_enter with the deadline seconds from now (+infinity: none).
 * Returns as fiber_scope_enter, and -EINVAL for a negative or NaN number.
 */
FIBER_API int fiber_scope_enter_after(fiber_scope_t *scope, double seconds);

/*
 * fiber_scope_enter_shielded - a shield: let cleanup code block after a
 * cancellation, for a bounded time.
 *
 * Inside a shield, the fiber's own cancellation and every scope around the
 * shield are out of sight: blocking calls work, and a cancel that comes
 * meanwhile wakes nothing.  When the shield exits they are back in force:
 * the next blocking call of a cancelled fiber returns -ECANCELED.  The
 * shield is itself a scope whose deadline, seconds from now, bounds the
 * cleanup: past it, calls inside return -ETIMEDOUT.  Scopes entered inside
 * a shield apply as usual, and fiber_scope_cancel works on the shield
 * itself.  With seconds = +infinity the shield is unbounded and may hold
 * up the end of fiber_run for as long as the cleanup blocks.
 *
 * Returns as fiber_scope_enter_after.
 */
FIBER_API int fiber_scope_enter_shielded(fiber_scope_t *scope, double seconds);

/*
 * fiber_scope_exit - leave the calling fiber's innermost scope.
 *
 * Returns 0 when the scope did not cut the block short, -ETIMEDOUT when
 * its deadline did (a blocking call inside returned -ETIMEDOUT on its
 * account), -ECANCELED when fiber_scope_cancel did.  An error that was an
 * outer scope's, or the fiber's cancellation, is not this scope's: it
 * returns 0, and the other one still applies.  So asyncio.timeout and
 * trio.fail_after read `rc = fiber_scope_exit(&s); if (rc < 0) return rc;`
 * while trio.move_on_after ignores the result.
 *
 * Fails, changing nothing, with -EINVAL for NULL or a scope that is not
 * the caller's innermost, -EPERM outside a fiber.
 */
FIBER_API int fiber_scope_exit(fiber_scope_t *scope);

/*
 * fiber_scope_cancel - cancel_scope.cancel(): cancel a scope that a fiber
 * of the running loop is inside, from that fiber or any other.  The call
 * it is blocked in returns -ECANCELED at once (when a shield inside the
 * scope ends, if one is in the way), and so does every later blocking
 * call until the scope exits.  A scope whose deadline has already passed
 * stays timed out; cancelling again changes nothing.
 *
 * To cancel a compact fiber's scope from another fiber, the scope must be
 * in heap or static memory, as fiber_attr.compact says of all shared
 * memory.
 *
 * Returns 0, -EALREADY if the scope has exited or the fiber that entered
 * it has returned, -EINVAL for NULL, a scope never entered or one of
 * another loop (an earlier one included), -EPERM outside a running loop,
 * -EBUSY (nothing changed) when a compact fiber cancels a scope of another
 * compact fiber that is suspended: the other's enclosing scopes are in its
 * frames, off the stack they share.
 */
FIBER_API int fiber_scope_cancel(fiber_scope_t *scope);

/*
 * fiber_scope_expired - Timeout.expired(): 1 if the scope's deadline has
 * passed or it was cancelled (before it exited, once it has), even if no
 * call inside noticed; 0 if not; -EINVAL for NULL or a scope never entered.
 */
FIBER_API int fiber_scope_expired(const fiber_scope_t *scope);

/* ---- Task groups ---------------------------------------------------------
 *
 *     // example
 *     int download_all(fiber_fn download, void *jobs[], size_t n)
 *     {
 *         fiber_group_t *g;
 *         int rc, status;
 *         if ((rc = fiber_group_create(&g)) < 0)
 *             return rc;
 *         for (size_t i = 0; i < n; i++)
 *             fiber_group_spawn(g, NULL, download, jobs[i], NULL);
 *         rc = fiber_group_wait(g);     // 0, the first failure, -ECANCELED
 *         for (fiber_task_t *t = fiber_group_next(g, NULL); t;
 *              t = fiber_group_next(g, t))
 *             fiber_result(t, NULL, &status);      // every child's status
 *         fiber_group_destroy(g);
 *         return rc;
 *     }
 *     // end of example
 *
 * - The fiber that creates a group owns it: only the owner waits for it
 *   and destroys it.  Any fiber of the loop may spawn into it (a child may
 *   add siblings) and cancel it.
 * - A child fails when it ends with a negative status other than
 *   -ECANCELED, as with `return fiber_fail(-EIO);`.  The first failure
 *   makes the group cancel every other child still running; a cancelled
 *   child is no failure.  The owner is not cancelled: fiber_group_wait
 *   tells it.
 * - When the owner is cancelled, or one of its timeout scopes expires,
 *   while it is in fiber_group_wait or before it calls it, the group
 *   cancels its children still running.
 * - In every case the group waits for every child to finish before
 *   fiber_group_wait returns, and keeps each child's handle, with its
 *   result and status, until fiber_group_destroy.  Nothing is lost, and
 *   no child outlives its group.
 * - A group that has cancelled its children stays cancelled: a child
 *   spawned into it later starts cancelled (it still runs, so that it can
 *   release what its arg owns, and its first blocking call fails).
 * - An owner that returns without destroying its group destroys it then,
 *   waiting for the children, before it counts as finished.
 */
typedef struct fiber_group fiber_group_t;

/*
 * fiber_group_create - a new, empty group owned by the calling fiber, in
 * *group.  Returns 0, -EINVAL for NULL, -EPERM outside a fiber, -ENOMEM.
 */
FIBER_API int fiber_group_create(fiber_group_t **group);

/*
 * fiber_group_spawn - g.create_task(): fiber_spawn, into the group.
 *
 * If task is not NULL, *task receives the child's handle, which belongs to
 * the group: it stays valid until fiber_group_destroy and may be given to
 * fiber_cancel (a child cancelled so does not fail the group),
 * fiber_done, fiber_result, fiber_name and the like, but not to
 * fiber_await, fiber_wait_for, fiber_gather, fiber_detach or a waitset,
 * which refuse it with -EBUSY.
 *
 * Returns 0, -EINVAL for a NULL group or fn, a group of another loop or
 * a stack size below FIBER_MIN_STACK_SIZE, -EPERM outside a fiber,
 * -ENOMEM (nothing spawned, *task untouched).
 */
FIBER_API int fiber_group_spawn(fiber_group_t *group, fiber_task_t **task,
                                fiber_fn fn, void *arg,
                                const fiber_attr_t *attr);

/*
 * fiber_group_wait - the end of `async with TaskGroup()`: wait until every
 * child has finished.
 *
 * Returns 0 when no child failed; the first failed child's status (see
 * fiber_group_error) when one did; -ECANCELED or -ETIMEDOUT when the
 * owner's cancellation or one of its timeout scopes stopped the wait, or
 * would have stopped any blocking call (level-triggered): the children
 * still running were cancelled then.  Whatever it returns, every child
 * has finished.  It may be called again, after more spawns say.
 *
 * Fails without waiting with -EINVAL for NULL, -EPERM when the caller is
 * not the group's owner.
 */
FIBER_API int fiber_group_wait(fiber_group_t *group);

/*
 * fiber_group_cancel - cancel every child still running, and every child
 * spawned from now on.  Callable from any fiber of the loop.  Cancelled
 * children are no failures: fiber_group_wait then returns 0 unless one
 * failed.  Returns 0, -EINVAL for NULL or a group of another loop, -EPERM
 * outside a running loop.
 */
FIBER_API int fiber_group_cancel(fiber_group_t *group);

/*
 * fiber_group_error - the status of the first child that failed, 0 while
 * none has, -EINVAL for NULL.  If failed is not NULL, *failed receives that
 * child's handle (NULL while none has failed).
 */
FIBER_API int fiber_group_error(const fiber_group_t *group,
                                fiber_task_t **failed);

/*
 * fiber_group_next - the group's children in the order spawned: the first
 * when prev is NULL, else the one after prev.  Returns NULL after the last,
 * for a NULL group, or when prev is not a child of the group.
 */
FIBER_API fiber_task_t *fiber_group_next(const fiber_group_t *group,
                                         const fiber_task_t *prev);

/*
 * fiber_group_destroy - wait for the children as fiber_group_wait does,
 * then free every child's handle and the group (as fiber_gather reaps,
 * letting fibers whose deadline has passed run now and then).  Returns what
 * fiber_group_wait returns, and the group is freed in every case, except
 * for -EINVAL (NULL) and -EPERM (not the owner), which change nothing.
 */
FIBER_API int fiber_group_destroy(fiber_group_t *group);

/* ---- As completed, wait any ----------------------------------------------
 *
 * A waitset holds tasks and hands each back as it finishes, in the order
 * they finish: the course's "ascending without sort".
 *
 *     // example
 *     void as_completed(fiber_fn fn, void *args[], size_t n)
 *     {
 *         fiber_waitset_t *set;
 *         fiber_task_t *t;
 *         void *result;
 *         int status;
 *         if (fiber_waitset_create(&set) < 0)
 *             return;
 *         for (size_t i = 0; i < n; i++)
 *             if (fiber_spawn(&t, fn, args[i], NULL) == 0)
 *                 fiber_waitset_add(set, t);
 *         while (fiber_waitset_next(set, INFINITY, &t) == 0)
 *             fiber_await(t, &result, &status);  // finished: at once
 *         fiber_waitset_destroy(set);
 *     }
 *     // end of example
 *
 * Ownership: fiber_waitset_add gives the handle to the set (await, detach
 * and gather refuse it with -EBUSY); fiber_waitset_next gives it back,
 * finished, to the caller, who consumes it like any handle (fiber_await
 * returns at once with its result; one never consumed is freed with the
 * loop).  fiber_waitset_destroy cancels the tasks still in the set, waits
 * for them and frees them: no task is left running unseen.  Only the
 * fiber that created a waitset may use it; one that returns without
 * destroying its waitset destroys it then.
 */
typedef struct fiber_waitset fiber_waitset_t;

/*
 * fiber_waitset_create - a new, empty waitset owned by the calling fiber,
 * in *set.  Returns 0, -EINVAL for NULL, -EPERM outside a fiber, -ENOMEM.
 */
FIBER_API int fiber_waitset_create(fiber_waitset_t **set);

/*
 * fiber_waitset_add - put a task, finished or not, into the set.  A task
 * that has finished already is queued at once, after those that finished
 * before it was added.  Returns 0; -EINVAL for a NULL set or task, the
 * main fiber or a task of another loop; -EPERM if the caller does not own
 * the set; -EDEADLK for the caller itself; -EBUSY for a task awaited,
 * gathered, detached, or in a group or waitset already.
 */
FIBER_API int fiber_waitset_add(fiber_waitset_t *set, fiber_task_t *task);

/*
 * fiber_waitset_next - next(as_completed): the set's next task to finish.
 *
 * Waits at most timeout seconds (+infinity: no limit; 0: take only a task
 * that has finished already) until a task of the set has finished, then
 * takes the one that finished first out of the set and stores it in
 * *task: the caller owns that handle again.
 *
 * Returns 0; -ECHILD when the set is empty (every task taken, as wait(2)
 * says when no child is left); -ETIMEDOUT when none finished in time;
 * -ECANCELED when the caller is cancelled (level-triggered); -ETIMEDOUT
 * or -ECANCELED from a timeout scope.  On every error the set is unchanged
 * and its tasks run on: unlike fiber_wait_for, a timeout cancels nothing.
 * A task that finishes at the very instant of the timeout is returned
 * (the completion wins).  -EINVAL for a NULL set or task, a negative or
 * NaN timeout; -EPERM if the caller does not own the set.
 */
FIBER_API int fiber_waitset_next(fiber_waitset_t *set, double timeout,
                                 fiber_task_t **task);

/* fiber_waitset_size - how many tasks the set holds, finished or not: 0
 * once every task has been taken, and for NULL. */
FIBER_API size_t fiber_waitset_size(const fiber_waitset_t *set);

/*
 * fiber_waitset_destroy - cancel the tasks still in the set, wait until
 * they have finished (no cancel of the caller ends this wait), then free
 * them, their results unread, and the set.  Returns 0, or -EINVAL for
 * NULL and -EPERM if the caller does not own the set, which change
 * nothing.
 */
FIBER_API int fiber_waitset_destroy(fiber_waitset_t *set);

/*
 * fiber_wait_any - asyncio.wait(tasks, timeout,
 * return_when=FIRST_COMPLETED): wait until one of n tasks has finished,
 * at most timeout seconds.
 *
 * Returns the index of the task that finished first (when several had
 * finished before the call, the lowest such index).  No handle is
 * consumed and no task cancelled, whatever it returns: await the one
 * returned and call again with the others, or use a waitset to take many
 * in order.  Returns -ETIMEDOUT when none finished in time; -ECANCELED
 * when the caller is cancelled (level-triggered); a timeout scope's error;
 * -EINVAL for NULL tasks, n of 0 or above INT_MAX, a NULL handle, a task
 * listed twice, the main fiber, a task of another loop, a negative or NaN
 * timeout; -EPERM outside a fiber; -EDEADLK if the caller is listed;
 * -EBUSY for a task awaited, gathered, detached, or in a group or waitset;
 * -ENOMEM.
 */
FIBER_API int fiber_wait_any(fiber_task_t *const tasks[], size_t n,
                             double timeout);

/* ------------------------------------------------------------------------
 * I/O and coordination
 */

/* ---- Coordination: mutex, event, semaphore, condition, queue ----------
 *
 *   asyncio                          libfiber
 *   asyncio.Lock()                   fiber_mutex_t m; fiber_mutex_init(&m)
 *   async with lock: ...             fiber_mutex_lock(&m) ... unlock(&m)
 *   asyncio.Event()                  fiber_event_t, fiber_event_wait/set
 *   asyncio.Semaphore(n)             fiber_sem_t, fiber_sem_init(&s, n)
 *   asyncio.BoundedSemaphore(n)      fiber_sem_init_bounded(&s, n)
 *   asyncio.Condition(lock)          fiber_cond_t, fiber_cond_wait(&c, &m)
 *   asyncio.Queue(maxsize=n)         fiber_queue_t, fiber_queue_init(&q, n)
 *
 * The types are plain structs that the caller declares (on the stack, in
 * another struct, static) and initializes with fiber_*_init (once: doing
 * it again while in use is undefined behaviour); their fields are
 * private.  Only the queue allocates (its ring of items, at init).  A
 * primitive belongs to no loop: it may serve one fiber_run after another,
 * but the fibers waiting on it at any moment must all run on one loop (one
 * thread), as nothing here is thread-safe.  A primitive must outlive every
 * wait on it; fiber_*_destroy refuses with -EBUSY while fibers wait.  Using
 * one never initialized, or destroyed, gives -EINVAL (when its memory
 * happens to look initialized, behaviour is undefined, like any garbage).
 *
 * Waiting: every call that can wait has a variant ending in _until taking
 * an absolute deadline on the loop clock in nanoseconds (see fiber_now_ns;
 * INT64_MAX means no deadline; one already passed fails with -ETIMEDOUT
 * at once unless the call can succeed without waiting).  Calls that can
 * wait need a running fiber (-EPERM outside one) and follow the rules of
 * every blocking call: they return -ECANCELED when the calling fiber is or
 * becomes cancelled, even if they could have succeeded without waiting,
 * and a timeout scope's error when one stops them; a cancel at the instant
 * of the deadline wins over it.  A cancelled fiber uses the try variants
 * (which never wait and ignore cancellation) to take what it needs to
 * clean up.  A call that fails changes nothing.
 *
 * Fairness: waiters are served first come, first served, by hand-off: the
 * fiber that releases a resource gives it to the oldest waiter then and
 * there, so nobody arriving later can take it first and no waiter
 * starves.  A waiter that times out or is cancelled leaves the line and is
 * given nothing; one that was handed the resource before the cancel came
 * keeps it: its call returns 0 and the cancel is delivered at its next
 * blocking call.  So a resource is never lost between the two.
 */

/* Room for a queue of waiting fibers inside the types below.  Private. */
struct fiber_waitq_storage {
    void *private_words[3];
};

/* A mutex (asyncio.Lock): owned by one fiber at a time, not recursive. */
typedef struct fiber_mutex {
    struct fiber_waitq_storage private_waiters;
    uint64_t private_owner_id;
    uint64_t private_owner_loop;
    uint32_t private_magic;
} fiber_mutex_t;

/* An event (asyncio.Event): a flag that fibers can wait to see set. */
typedef struct fiber_event {
    struct fiber_waitq_storage private_waiters;
    int private_is_set;
    uint32_t private_magic;
} fiber_event_t;

/* A counting semaphore (asyncio.Semaphore, asyncio.BoundedSemaphore). */
typedef struct fiber_sem {
    struct fiber_waitq_storage private_waiters;
    size_t private_value;
    size_t private_max;
    uint32_t private_magic;
} fiber_sem_t;

/* A condition variable (asyncio.Condition), used with a fiber_mutex_t. */
typedef struct fiber_cond {
    struct fiber_waitq_storage private_waiters;
    uint32_t private_magic;
} fiber_cond_t;

/* A bounded FIFO queue of void * items (asyncio.Queue). */
typedef struct fiber_queue {
    struct fiber_waitq_storage private_getters;
    struct fiber_waitq_storage private_putters;
    struct fiber_waitq_storage private_joiners;
    void **private_items;
    size_t private_capacity;
    size_t private_head;
    size_t private_len;
    size_t private_unfinished;
    int private_closed;
    uint32_t private_magic;
} fiber_queue_t;

/*
 * fiber_mutex_init - make m an unlocked mutex.  Callable anywhere.
 * Returns 0, or -EINVAL for NULL.
 */
FIBER_API int fiber_mutex_init(fiber_mutex_t *m);

/*
 * fiber_mutex_destroy - end the life of an unlocked mutex nobody waits on.
 * Returns 0, -EINVAL for NULL or a mutex not initialized, -EBUSY if it is
 * locked (or handed to a waiter that has not run yet) or fibers wait on it.
 */
FIBER_API int fiber_mutex_destroy(fiber_mutex_t *m);

/*
 * fiber_mutex_lock - async with lock: take the mutex, waiting in line while
 * another fiber owns it.  On 0 the caller owns it until fiber_mutex_unlock.
 * A fiber that finishes while owning a mutex leaves it locked for ever:
 * owned by nobody who runs, so that unlocking it gives -EPERM and locking
 * it waits, in every fiber, even one spawned later in the memory of the
 * finished one (a mutex knows its owner by an identity never reused in the
 * process, not by its task handle).
 *
 * Returns 0, -ECANCELED, -EINVAL (see fiber_mutex_destroy), -EPERM outside
 * a fiber, -EDEADLK if the caller owns it already.
 */
FIBER_API int fiber_mutex_lock(fiber_mutex_t *m);

/* fiber_mutex_lock_until - fiber_mutex_lock, giving up with -ETIMEDOUT at
 * the deadline (loop clock, ns). */
FIBER_API int fiber_mutex_lock_until(fiber_mutex_t *m, int64_t deadline_ns);

/*
 * fiber_mutex_trylock - take the mutex only if it is free; never waits.
 * Returns 0, -EBUSY if any fiber (the caller included) owns it, -EINVAL,
 * -EPERM outside a fiber (a mutex is owned by a fiber).
 */
FIBER_API int fiber_mutex_trylock(fiber_mutex_t *m);

/*
 * fiber_mutex_unlock - release the mutex: the oldest waiter, if any, owns
 * it from now on and is made ready.  Never waits and ignores cancellation.
 * Returns 0, -EINVAL, -EPERM if the caller does not own it (outside a
 * fiber included).
 */
FIBER_API int fiber_mutex_unlock(fiber_mutex_t *m);

/* fiber_mutex_locked - lock.locked(): 1 if some fiber owns the mutex, 0
 * if not, -EINVAL. */
FIBER_API int fiber_mutex_locked(const fiber_mutex_t *m);

/* fiber_event_init - make e an event that is not set.  Returns 0 or
 * -EINVAL for NULL. */
FIBER_API int fiber_event_init(fiber_event_t *e);

/* fiber_event_destroy - returns 0, -EINVAL, or -EBUSY while fibers wait. */
FIBER_API int fiber_event_destroy(fiber_event_t *e);

/*
 * fiber_event_set - event.set(): set the flag and wake every waiter, oldest
 * first; each one's wait returns 0 even if the flag is cleared before it
 * runs.  Callable anywhere.  Returns 0 or -EINVAL.
 */
FIBER_API int fiber_event_set(fiber_event_t *e);

/* fiber_event_clear - event.clear(): unset the flag.  Callable anywhere.
 * Returns 0 or -EINVAL. */
FIBER_API int fiber_event_clear(fiber_event_t *e);

/* fiber_event_is_set - event.is_set(): 1 or 0, or -EINVAL. */
FIBER_API int fiber_event_is_set(const fiber_event_t *e);

/*
 * fiber_event_wait - await event.wait(): return at once if the flag is set,
 * else wait until fiber_event_set.  Returns 0, -ECANCELED, -EINVAL, -EPERM
 * outside a fiber.
 */
FIBER_API int fiber_event_wait(fiber_event_t *e);

/* fiber_event_wait_until - fiber_event_wait with a deadline: -ETIMEDOUT. */
FIBER_API int fiber_event_wait_until(fiber_event_t *e, int64_t deadline_ns);

/*
 * fiber_sem_init - asyncio.Semaphore(value): a semaphore holding value
 * units.  Callable anywhere.  Returns 0 or -EINVAL for NULL.
 */
FIBER_API int fiber_sem_init(fiber_sem_t *s, size_t value);

/*
 * fiber_sem_init_bounded - asyncio.BoundedSemaphore(value): as
 * fiber_sem_init, but a release that would make the value exceed its
 * initial value fails with -EOVERFLOW.
 */
FIBER_API int fiber_sem_init_bounded(fiber_sem_t *s, size_t value);

/* fiber_sem_destroy - returns 0, -EINVAL, or -EBUSY while fibers wait. */
FIBER_API int fiber_sem_destroy(fiber_sem_t *s);

/*
 * fiber_sem_acquire - take one unit, waiting in line while there is none.
 * Returns 0, -ECANCELED, -EINVAL, -EPERM outside a fiber.
 */
FIBER_API int fiber_sem_acquire(fiber_sem_t *s);

/* fiber_sem_acquire_until - fiber_sem_acquire with a deadline:
 * -ETIMEDOUT. */
FIBER_API int fiber_sem_acquire_until(fiber_sem_t *s, int64_t deadline_ns);

/*
 * fiber_sem_try_acquire - take one unit if one is free; never waits.
 * Callable anywhere.  Returns 0, -EAGAIN if none is free, -EINVAL.
 */
FIBER_API int fiber_sem_try_acquire(fiber_sem_t *s);

/*
 * fiber_sem_release - give one unit back: to the oldest waiter if any
 * (made ready), else to the semaphore.  Callable anywhere.  Returns 0,
 * -EINVAL, -EOVERFLOW if the value would exceed a bounded semaphore's
 * initial value or SIZE_MAX.
 */
FIBER_API int fiber_sem_release(fiber_sem_t *s);

/* fiber_sem_value - the units free now, or 0 for NULL or a semaphore not
 * initialized. */
FIBER_API size_t fiber_sem_value(const fiber_sem_t *s);

/* fiber_cond_init - make c a condition variable.  Returns 0 or -EINVAL. */
FIBER_API int fiber_cond_init(fiber_cond_t *c);

/* fiber_cond_destroy - returns 0, -EINVAL, or -EBUSY while fibers wait. */
FIBER_API int fiber_cond_destroy(fiber_cond_t *c);

/*
 * fiber_cond_wait - await cond.wait(): the caller, owning m, releases it
 * (to m's oldest waiter), waits for fiber_cond_signal or _broadcast, then
 * takes m back, waiting in m's line like any fiber_mutex_lock.
 *
 * Whatever ends the wait (a signal, the deadline, a cancel, a timeout
 * scope), the caller owns m again when the call returns, as with asyncio:
 * taking m back cannot be cancelled nor cut short.  The call returns what ended the wait: a fiber
 * signalled and then cancelled before it ran, or while it waited for m,
 * returns 0 (the signal is not lost) and gets -ECANCELED from its next
 * blocking call.  As with any condition variable, check the predicate
 * again in a loop.  m must outlive the wait.
 *
 * Returns 0 when signalled, -ECANCELED, -EINVAL if c or m is invalid,
 * -EPERM outside a fiber or if the caller does not own m.  On -ECANCELED
 * at entry, as on the argument errors, m was never released.
 */
FIBER_API int fiber_cond_wait(fiber_cond_t *c, fiber_mutex_t *m);

/* fiber_cond_wait_until - fiber_cond_wait with a deadline: -ETIMEDOUT,
 * with m owned again.  A deadline already passed returns -ETIMEDOUT
 * without releasing m. */
FIBER_API int fiber_cond_wait_until(fiber_cond_t *c, fiber_mutex_t *m,
                                    int64_t deadline_ns);

/*
 * fiber_cond_signal - cond.notify(1): wake the oldest waiter, if any.
 * Holding the mutex is not required.  Callable anywhere.  Returns 0 or
 * -EINVAL.
 */
FIBER_API int fiber_cond_signal(fiber_cond_t *c);

/* fiber_cond_broadcast - cond.notify_all(): wake every waiter, oldest
 * first.  Returns 0 or -EINVAL. */
FIBER_API int fiber_cond_broadcast(fiber_cond_t *c);

/*
 * fiber_queue_init - asyncio.Queue(maxsize=capacity): an empty queue that
 * holds up to capacity items, in a ring allocated here.  Items are void *
 * (NULL is an item like any other); the queue never looks at what they
 * point to.  Callable anywhere.  Returns 0, -EINVAL for NULL or a capacity
 * of 0, -ENOMEM (nothing allocated then).
 */
FIBER_API int fiber_queue_init(fiber_queue_t *q, size_t capacity);

/*
 * fiber_queue_destroy - free the ring.  Items still queued are dropped
 * (what they point to is the caller's).  Returns 0, -EINVAL, -EBUSY while
 * fibers wait to put, get or join.
 */
FIBER_API int fiber_queue_destroy(fiber_queue_t *q);

/*
 * fiber_queue_put - await queue.put(item): append item, waiting in line
 * while the queue is full.  An item given to a waiting getter goes to it
 * directly.  Returns 0 once the item is in the queue (or handed over),
 * -EPIPE if the queue is or becomes closed (the item was not taken),
 * -ECANCELED, -EINVAL, -EPERM outside a fiber.
 */
FIBER_API int fiber_queue_put(fiber_queue_t *q, void *item);

/* fiber_queue_put_until - fiber_queue_put with a deadline: -ETIMEDOUT
 * (the item was not taken). */
FIBER_API int fiber_queue_put_until(fiber_queue_t *q, void *item,
                                    int64_t deadline_ns);

/*
 * fiber_queue_try_put - queue.put_nowait(item): append item if there is
 * room; never waits.  Callable anywhere (to fill a queue before
 * fiber_run, say).  Returns 0, -EAGAIN if full, -EPIPE if closed, -EINVAL.
 */
FIBER_API int fiber_queue_try_put(fiber_queue_t *q, void *item);

/*
 * fiber_queue_get - await queue.get(): take the oldest item into *item,
 * waiting in line while the queue is empty.  A closed queue still gives
 * its remaining items, then -EPIPE: the end of the stream.  Returns 0,
 * -EPIPE, -ECANCELED, -EINVAL (item NULL too), -EPERM outside a fiber.
 */
FIBER_API int fiber_queue_get(fiber_queue_t *q, void **item);

/* fiber_queue_get_until - fiber_queue_get with a deadline: -ETIMEDOUT. */
FIBER_API int fiber_queue_get_until(fiber_queue_t *q, void **item,
                                    int64_t deadline_ns);

/*
 * fiber_queue_try_get - queue.get_nowait(): take the oldest item if there
 * is one; never waits.  Callable anywhere.  Returns 0, -EAGAIN if empty,
 * -EPIPE if empty and closed, -EINVAL.
 */
FIBER_API int fiber_queue_try_get(fiber_queue_t *q, void **item);

/*
 * fiber_queue_close - no more puts: every waiting putter wakes with -EPIPE
 * (its item not taken), every waiting getter with -EPIPE (the queue is
 * empty, or they would not wait).  Items already queued can still be got.
 * Closing again does nothing.  Callable anywhere.  Returns 0 or -EINVAL.
 */
FIBER_API int fiber_queue_close(fiber_queue_t *q);

/* fiber_queue_closed - 1 if closed, 0 if not, -EINVAL. */
FIBER_API int fiber_queue_closed(const fiber_queue_t *q);

/* fiber_queue_len - queue.qsize(): the items queued now, or 0 for NULL or
 * a queue not initialized. */
FIBER_API size_t fiber_queue_len(const fiber_queue_t *q);

/* fiber_queue_capacity - queue.maxsize, or 0 for NULL or a queue not
 * initialized. */
FIBER_API size_t fiber_queue_capacity(const fiber_queue_t *q);

/*
 * fiber_queue_task_done - queue.task_done(): one item got earlier is fully
 * processed.  Every successful put counts one unfinished item; when
 * task_done has been called for each, fibers in fiber_queue_join wake.
 * Callable anywhere.  Returns 0, -EINVAL, also when called more times than
 * items were put.
 */
FIBER_API int fiber_queue_task_done(fiber_queue_t *q);

/*
 * fiber_queue_join - await queue.join(): wait until every item put has
 * been marked done with fiber_queue_task_done (at once if none is
 * unfinished).  Closing the queue does not end the wait.  Returns 0,
 * -ECANCELED, -EINVAL, -EPERM outside a fiber.
 */
FIBER_API int fiber_queue_join(fiber_queue_t *q);

/* fiber_queue_join_until - fiber_queue_join with a deadline: -ETIMEDOUT. */
FIBER_API int fiber_queue_join_until(fiber_queue_t *q, int64_t deadline_ns);

/* ---- end of coordination ---------------------------------------------- */

/* ---- I/O: descriptors, sockets, threads, processes, signals -----------
 *
 *   asyncio                              libfiber
 *   loop.add_reader / sock_recv          fiber_wait_fd, fiber_read, fiber_recv
 *   writer.write + drain / sock_sendall  fiber_write, fiber_send
 *   sock_accept / sock_connect           fiber_accept, fiber_connect
 *   asyncio.start_server                 fiber_tcp_listen + fiber_tcp_accept
 *   socket.sendmsg(buffers), os.writev   fiber_writev
 *   asyncio.open_connection              fiber_tcp_dial
 *   asyncio.to_thread(fn, arg)           fiber_to_thread(fn, arg, &result)
 *   create_subprocess_exec(...)          fiber_process_spawn
 *   proc.wait()                          fiber_process_wait
 *   loop.add_signal_handler(sig, ...)    fiber_signal_wait
 *
 * None of these blocks the thread: when a call must wait, its fiber
 * blocks and the loop runs others; when no fiber is ready, the loop sleeps
 * in epoll_wait until the next timer or the next I/O, whichever comes
 * first.  A fiber waiting on I/O, a thread or a process keeps the loop
 * alive: it is never taken for a deadlock.
 *
 * Descriptors.  The calls taking a descriptor work on any kind (socket,
 * pipe, FIFO, terminal, eventfd, regular file...), blocking or not, and
 * never change its flags: an open file description is shared with stdio
 * (stdin, stdout and stderr of a terminal are one), other threads and
 * other processes, and O_NONBLOCK set on it would make their plain writes
 * fail with EAGAIN.  A call is made non-blocking by its own means instead,
 * chosen by the kind of descriptor (fstat(2) the first time the loop sees
 * it; a call that fails with ENOTSOCK or EOPNOTSUPP corrects it):
 *
 *   sockets        recv(2)/send(2) with MSG_DONTWAIT added (send also
 *                  with MSG_NOSIGNAL); fiber_read and fiber_write on a
 *                  socket go this way too.
 *   pipes          preadv2(2)/pwritev2(2) with RWF_NOWAIT (a FIFO, which
 *                  refuses the flag, then goes as below).
 *   terminals      reads: poll(2) for POLLIN, then read(2).  Writes go
 *                  through a new open file description of the same
 *                  terminal (/proc/self/fd/N, O_NONBLOCK), opened for the
 *                  one call and closed before it returns; if that cannot
 *                  be opened (or for a pseudo-terminal master), as other
 *                  devices below.
 *   FIFOs, files,  reads: poll(2) for POLLIN, then read(2).  Writes: to a
 *   eventfds,      descriptor the program made O_NONBLOCK, write(2); to a
 *   other devices  regular file or block device, write(2) (disk I/O does
 *                  not wait for readiness); otherwise poll(2) for POLLOUT,
 *                  then write(2) of at most PIPE_BUF bytes, which a FIFO
 *                  takes at once.
 *
 * Readiness then a plain call cannot block unless something outside the
 * loop gets in between: another process reading the same FIFO or terminal
 * can take the data first, and a device other than a FIFO may accept less
 * than PIPE_BUF bytes after POLLOUT (a pseudo-terminal master whose slave
 * reads nothing); then the call waits as read(2) or write(2) would,
 * holding the thread.
 *
 * fiber_accept on a listener the program left blocking polls first too
 * (another process accepting from the same listener can win the race for
 * a connection; the call then waits for the next one, holding the
 * thread); on a non-blocking listener it is a plain accept4(2).
 * fiber_connect on a blocking socket sets O_NONBLOCK for the connect(2)
 * call alone and clears it again before anything else runs: the kernel
 * has no per-call flag for it, and the flag is never seen across a wait.
 *
 * Descriptors the library creates (accept, listen, dial, pipes of
 * processes) are its own: O_NONBLOCK and O_CLOEXEC.  Close a descriptor
 * used here with fiber_close: the loop remembers descriptors by number,
 * and fiber_close is what makes it forget one, waking the fibers waiting
 * on it with -EBADF instead of leaving them blocked.  A number closed with
 * close(2) and reused for another file is safe too: calls never block
 * the thread and deadlines hold, and the first wait on the new file finds
 * out and starts afresh (each wait re-arms the descriptor's epoll entry
 * with one epoll_ctl(2), which fails for a file epoll does not know).  Until then a call may still take the new file
 * for the old one's kind (the one consequence: a socket taking a pipe's
 * number may be written as a pipe, and raise SIGPIPE if its peer has
 * gone).  Fibers that were waiting on the old file when close(2) ran are
 * not told; they wait on until their deadline, a cancel, or the number's
 * new file becomes ready.
 *
 * Waiting.  Every call that can wait has a variant ending in _until taking
 * an absolute deadline on the loop clock in nanoseconds (see fiber_now_ns;
 * INT64_MAX means none).  When a call must wait past its deadline it fails
 * with -ETIMEDOUT; a deadline already passed lets it do what it can
 * without waiting.  Calls that can wait need a running fiber (-EPERM
 * outside one) and return -ECANCELED when the fiber is or becomes
 * cancelled, without doing anything if the cancel came first.  EINTR is
 * retried, never returned.
 *
 * Lost data.  A read that fails has read nothing.  A write that is
 * interrupted (deadline, cancel, error) after some bytes went out returns
 * how many did, as write(2) does after a signal; the next call reports the
 * cause.  Sockets never raise SIGPIPE (a closed peer gives -EPIPE); a pipe
 * whose reader has gone raises it as write(2) does, unless the program
 * ignores SIGPIPE, and then gives -EPIPE.
 *
 * The virtual clock.  Time stands still while I/O is ready.  When no fiber
 * is ready and fibers wait on I/O as well as on timers, the loop waits for
 * I/O in real time for up to 5 ms; if none wakes a fiber, the clock jumps
 * to the next deadline.  Without timers it waits for I/O for as long as it
 * takes.  I/O between fibers of the same loop (socketpairs, pipes,
 * loopback connections) is ready at once, so tests using it are exact;
 * I/O that depends on another process or thread may lose a race against a
 * virtual deadline, and is best tested on the real clock.
 *
 * Thread and process work under the virtual clock.  Virtual time counts
 * the loop's timers, not work: fibers running take none, and neither does
 * work on the thread pool (fiber_to_thread, host names for fiber_tcp_dial)
 * or in a child process (fiber_process_wait), which the loop cannot
 * measure.  While a fiber waits for such work, the clock moves only as the
 * timers of the other fibers make it: with none pending, the loop waits in
 * real time and virtual time stands still (the work takes no virtual
 * time); with some pending, the loop waits up to 5 ms of real time for the
 * work, then jumps to the next deadline and fires it, and so on, so the
 * work seems to take as many deadlines as pass meanwhile (0.2 s of thread
 * work beside a fiber ticking every 10 ms reads as several tenths of a
 * second, or none with no ticker).  So under the virtual clock, a time
 * measured across thread or process work means nothing, and a timeout
 * racing such work may fire whatever its length: time it, and test its
 * timeouts, on the real clock.  Work in fibers, and I/O between the
 * loop's own fibers, keep exact virtual times.
 *
 * Polling under the virtual clock.  Time moves only when no fiber is
 * ready, so fibers that poll a flag with fiber_yield keep it still for
 * ever, and the sleeper that would set the flag never wakes: the loop
 * spins at 100% CPU.  Wait on an event, a queue or a task, or sleep
 * between polls.  Debug mode reports such a loop (see "Debugging").
 *
 * Threads.  Each thread may run its own loop, with its own epoll instance,
 * thread pool and descriptors; a descriptor is waited on from one loop at
 * a time.
 */

/* Events for fiber_wait_fd. */
#define FIBER_READABLE 1
#define FIBER_WRITABLE 2

/*
 * fiber_wait_fd - loop.add_reader/add_writer as one call: wait until fd is
 * readable, writable, or either (events is FIBER_READABLE, FIBER_WRITABLE
 * or both).  The descriptor's mode is left as it is.  A hang-up or error
 * on it counts as ready, as poll(2) says.  Returns the events that are
 * ready (a non-zero subset of events), -EINVAL for bad events, -EBADF for
 * a descriptor that is not open or that another fiber closed with
 * fiber_close meanwhile, -ETIMEDOUT, -ECANCELED, -EPERM, -ENOMEM.
 */
FIBER_API int fiber_wait_fd(int fd, int events);
FIBER_API int fiber_wait_fd_until(int fd, int events, int64_t deadline_ns);

/*
 * fiber_wait_fd_again_until - fiber_wait_fd_until for a caller whose own
 * non-blocking call on fd (recv with MSG_DONTWAIT, say) has just failed
 * with EAGAIN: it skips the poll(2) that fiber_wait_fd makes first, one
 * system call less per wait.  It may return 0 when the descriptor is not
 * ready after all (an old edge): make the call again, and wait again on
 * EAGAIN.  Returns 0 or the errors of fiber_wait_fd_until.
 */
FIBER_API int fiber_wait_fd_again_until(int fd, int events, int64_t deadline_ns);

/*
 * fiber_read - read(2) up to len bytes, waiting until there are some.
 * Returns the number read (at least 1 when len > 0), 0 at end of file, or
 * a negative errno: read(2)'s errors, -EBADF also when the descriptor was
 * closed with fiber_close while waiting, -EINVAL when buf is NULL with
 * len > 0, -ETIMEDOUT, -ECANCELED, -EPERM.
 */
FIBER_API ssize_t fiber_read(int fd, void *buf, size_t len);
FIBER_API ssize_t fiber_read_until(int fd, void *buf, size_t len,
                                   int64_t deadline_ns);

/*
 * fiber_write - write(2) the whole buffer, waiting whenever the descriptor
 * is full.  Returns len, or the number of bytes written before an
 * interruption (less than len, see "Lost data"), or a negative errno when
 * nothing was written: write(2)'s errors (-EPIPE), -EBADF, -EINVAL,
 * -ETIMEDOUT, -ECANCELED, -EPERM.
 */
FIBER_API ssize_t fiber_write(int fd, const void *buf, size_t len);
FIBER_API ssize_t fiber_write_until(int fd, const void *buf, size_t len,
                                    int64_t deadline_ns);

/* fiber_recv - recv(2) with flags (MSG_DONTWAIT is always added), waiting
 * as fiber_read does; returns as fiber_read, with recv(2)'s errors
 * (-ENOTSOCK, -ECONNRESET...). */
FIBER_API ssize_t fiber_recv(int fd, void *buf, size_t len, int flags);
FIBER_API ssize_t fiber_recv_until(int fd, void *buf, size_t len, int flags,
                                   int64_t deadline_ns);

/* fiber_send - send(2) the whole buffer with flags (MSG_NOSIGNAL and
 * MSG_DONTWAIT are always added), waiting as fiber_write does; returns as
 * fiber_write. */
FIBER_API ssize_t fiber_send(int fd, const void *buf, size_t len, int flags);
FIBER_API ssize_t fiber_send_until(int fd, const void *buf, size_t len,
                                   int flags, int64_t deadline_ns);

/*
 * fiber_writev - writev(2) the whole gather, waiting as fiber_write does:
 * a response's head and body leave in one system call instead of two.  A
 * socket is written with sendmsg(2) and MSG_DONTWAIT | MSG_NOSIGNAL, its
 * flags untouched; any other descriptor one piece at a time with
 * fiber_write.  iov is not modified.  Returns the total length, or the
 * number of bytes written before an interruption (see "Lost data"), or a
 * negative errno when nothing was written: -EINVAL for iovcnt below 0 or
 * above IOV_MAX, a NULL base with a length, or a total above SSIZE_MAX;
 * sendmsg(2)'s errors (-EPIPE, -ECONNRESET...), -EBADF, -ETIMEDOUT,
 * -ECANCELED, -EPERM.
 */
FIBER_API ssize_t fiber_writev(int fd, const struct iovec *iov, int iovcnt);
FIBER_API ssize_t fiber_writev_until(int fd, const struct iovec *iov,
                                     int iovcnt, int64_t deadline_ns);

/*
 * fiber_accept - accept(2) a connection on a listening socket, waiting
 * until one comes.  addr and addrlen are as for accept(2) (both may be
 * NULL).  Returns the new socket, non-blocking and close-on-exec, or a
 * negative errno: accept(2)'s errors (-EMFILE...; a connection aborted
 * before it was accepted is skipped), -EBADF, -EINVAL, -ETIMEDOUT,
 * -ECANCELED, -EPERM.
 */
FIBER_API int fiber_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
FIBER_API int fiber_accept_until(int fd, struct sockaddr *addr,
                                 socklen_t *addrlen, int64_t deadline_ns);

/*
 * fiber_connect - connect(2) a socket, waiting until the connection is
 * made or fails.  A blocking socket is non-blocking during the connect(2)
 * call itself, never while the fiber waits (see "Descriptors").  Returns 0, or a negative errno: connect(2)'s errors
 * (-ECONNREFUSED...), -EINVAL for a NULL address, -EBADF, -ETIMEDOUT,
 * -ECANCELED (after which the socket is of no further use: close it),
 * -EPERM.
 */
FIBER_API int fiber_connect(int fd, const struct sockaddr *addr,
                            socklen_t addrlen);
FIBER_API int fiber_connect_until(int fd, const struct sockaddr *addr,
                                  socklen_t addrlen, int64_t deadline_ns);

/*
 * fiber_close - close(2) a descriptor and make the loop forget it: fibers
 * waiting on it wake with -EBADF.  Works outside a loop too (a plain
 * close).  Never waits.  Returns 0, or -EBADF (or close(2)'s -EIO).
 */
FIBER_API int fiber_close(int fd);

/*
 * fiber_forget_fd - make the running loop forget fd without closing it,
 * for a descriptor that is being closed or replaced by other means (a
 * dup2 onto it, say): fibers waiting on it wake with -EBADF.  Does nothing
 * outside a loop or for a descriptor the loop never saw.  libfiber-hook's
 * close, dup2 and dup3 call it (see fiber-hook.h).
 */
FIBER_API void fiber_forget_fd(int fd);

/*
 * fiber_tcp_listen - a TCP socket listening on address, "host:port":
 * "127.0.0.1:8080", "[::1]:8080", "localhost:8080", ":8080" (every IPv4
 * interface).  Port 0 lets the kernel choose (see getsockname(2)).
 * Addresses are strict, here and in fiber_tcp_dial: the port is 1 to 5
 * decimal digits up to 65535 (no sign, no service name); the host is a
 * name or IPv4 address of letters, digits, '.', '-' and '_', or an IPv6
 * address (with an optional %zone) in brackets; nothing else, no space,
 * comes before, between or after them.
 * SO_REUSEADDR is set; backlog <= 0 means SOMAXCONN.  A numeric address
 * needs no fiber; a host name is resolved on the thread pool, from a
 * fiber.  Never waits otherwise.  Returns the socket, non-blocking and
 * close-on-exec, or a negative errno: -EINVAL for a malformed address
 * (see above) or a port above 65535, the errors of name resolution (see fiber_tcp_dial),
 * of socket, bind and listen (-EADDRINUSE...), -ECANCELED, -EPERM for a
 * host name outside a fiber.
 */
FIBER_API int fiber_tcp_listen(const char *address, int backlog);

/*
 * fiber_tcp_dial - asyncio.open_connection: a TCP connection to address
 * ("host:port", "[v6 address]:port", as strict as fiber_tcp_listen's;
 * the host may not be empty).  A host name is resolved with
 * getaddrinfo on the thread pool, so other fibers run meanwhile; each
 * address found is tried in turn until one connects.  Returns the
 * connected socket, non-blocking, close-on-exec and with TCP_NODELAY set
 * (see fiber_tcp_nodelay), or a negative errno:
 * -EINVAL for a malformed address, -ENXIO when the name has no address,
 * -EAGAIN when the name server did not answer, -EIO when resolution
 * failed otherwise, the last connect error (-ECONNREFUSED...),
 * -ETIMEDOUT, -ECANCELED, -EPERM.  A resolution still running at the
 * deadline or cancel is abandoned (it finishes on its thread, unseen).
 */
FIBER_API int fiber_tcp_dial(const char *address);
FIBER_API int fiber_tcp_dial_until(const char *address, int64_t deadline_ns);

/*
 * fiber_tcp_accept - accept every connection pending on a listening TCP
 * socket, up to max of them, into fds: waits (as fiber_accept) for the
 * first, then takes those already queued without waiting, so that one
 * wake-up serves a whole burst of clients.  Each socket is close-on-exec
 * and has TCP_NODELAY set (see fiber_tcp_nodelay); the caller owns them.
 * Returns how many were accepted (1 to max), or a negative errno when
 * none was: -EINVAL for a NULL fds or max below 1, and fiber_accept's
 * errors.  After -EMFILE (or -ENFILE, -ENOBUFS, -ENOMEM) the connection
 * stays queued and the listener stays readable: wait a little before
 * calling again, or the server spins.  An error after the first
 * connection ends the batch and comes back on the next call.
 */
FIBER_API int fiber_tcp_accept(int listener, int *fds, int max);
FIBER_API int fiber_tcp_accept_until(int listener, int *fds, int max,
                                     int64_t deadline_ns);

/*
 * fiber_tcp_nodelay - set (on) or clear TCP_NODELAY on a TCP socket.
 * With it, each write goes out at once; without it (Nagle's algorithm), a
 * small write waits while an earlier one is unacknowledged, and the peer
 * delays its ACK by up to 40 ms hoping to piggyback it on an answer.  A
 * request/response protocol suffers exactly that, so the defaults are
 * those of Go's net package: connections from fiber_tcp_dial and
 * fiber_tcp_accept have TCP_NODELAY set; fiber_accept, a plain accept(2)
 * on any kind of socket, leaves the kernel's default (Nagle on).  Clear
 * it on a connection that sends a stream in many small writes.  Never
 * waits; needs no fiber.  Returns 0 or setsockopt(2)'s error (-EBADF,
 * -ENOTSOCK, -EOPNOTSUPP for a socket that is not TCP).
 */
FIBER_API int fiber_tcp_nodelay(int fd, bool on);

/*
 * fiber_to_thread - asyncio.to_thread: run fn(arg) on a worker thread and
 * wait for its return value, stored in *result (if result is not NULL).
 * Other fibers run meanwhile.  Each loop owns a pool of at most 4 worker
 * threads, started as jobs need them and joined when the loop ends (which
 * waits for jobs still running).  Jobs start in the order submitted.  fn
 * must not call libfiber: it runs outside any loop.  Workers block every
 * signal.  Under the virtual clock the job takes no virtual time of its
 * own (see "Thread and process work under the virtual clock").
 *
 * Cancellation: a thread cannot be stopped.  If the calling fiber is
 * cancelled while its job is still queued, the job is taken back and
 * never runs; *result is untouched.  If the job is running, the fiber
 * waits (uncancellably) for it to return, since fn may use memory the
 * caller owns, stores its result, and returns -ECANCELED: the result is
 * never lost, as with fiber_await.  A timeout scope expiring does the
 * same, with -ETIMEDOUT.
 *
 * Returns 0, -ECANCELED, -ETIMEDOUT (a scope), -EINVAL if fn is NULL,
 * -EPERM outside a fiber,
 * -ENOMEM, or the error of eventfd or pthread_create when no worker
 * thread could be started.
 */
FIBER_API int fiber_to_thread(fiber_fn fn, void *arg, void **result);

/* A child process started by fiber_process_spawn. */
typedef struct fiber_process fiber_process_t;

/* Flags of fiber_process_spawn: which of the child's streams are pipes to
 * the caller, and whether its stderr goes where its stdout goes. */
#define FIBER_PIPE_STDIN 1
#define FIBER_PIPE_STDOUT 2
#define FIBER_PIPE_STDERR 4
#define FIBER_STDERR_TO_STDOUT 8

/*
 * fiber_process_spawn - asyncio.create_subprocess_exec: start argv[0]
 * (searched in PATH) with arguments argv (NULL-terminated) and the
 * environment of the process.  argv has execv's type, so main's argv (or
 * argv + 1) is passed as it is; its strings are not changed.  Streams not asked for as pipes in flags are
 * inherited.  pipes (which may be NULL when flags asks for none) receives
 * the caller's end of each pipe: pipes[0] is written to the child's stdin,
 * pipes[1] and pipes[2] read from its stdout and stderr; -1 where there is
 * no pipe.  They are non-blocking, close-on-exec and the caller's to close
 * with fiber_close (closing pipes[0] gives the child end of file).  The
 * child starts with the thread's signal mask, less the signals the loop
 * watches.  On success *proc holds the handle.
 *
 * Returns 0, -EINVAL (NULL proc, argv or argv[0]; unknown flags;
 * FIBER_PIPE_STDERR with FIBER_STDERR_TO_STDOUT; pipes NULL when needed),
 * -EPERM outside a fiber, posix_spawn's errors (-ENOENT when no such
 * program was found, -EACCES), -EMFILE, -ENOMEM.  Nothing is left behind
 * on failure.
 */
FIBER_API int fiber_process_spawn(fiber_process_t **proc,
                                  char *const argv[], int flags,
                                  int pipes[3]);

/*
 * fiber_process_wait - proc.wait(): wait until the child exits, store its
 * waitpid(2) status in *wstatus (if not NULL; see WIFEXITED, WEXITSTATUS,
 * WIFSIGNALED, WTERMSIG) and free the handle.  The loop learns of the
 * exit through a pidfd (Linux 5.3+) or, without one, through SIGCHLD,
 * which must then reach the loop's thread: block it in other threads.
 * Under the virtual clock the child's run takes no virtual time of its
 * own (see "Thread and process work under the virtual clock").
 *
 * If the wait ends early (-ETIMEDOUT, -ECANCELED) the child runs on and
 * the handle stays valid: wait again, or kill it first.  A handle never
 * waited for is freed when the loop ends; the child, if still running,
 * is left to run.  Returns 0, -ETIMEDOUT, -ECANCELED, -ECHILD when
 * somebody else reaped the child (the handle is freed), -EINVAL for NULL
 * or another loop's handle, -EBUSY when another fiber is waiting for it,
 * -EPERM outside a fiber.
 */
FIBER_API int fiber_process_wait(fiber_process_t *proc, int *wstatus);
FIBER_API int fiber_process_wait_until(fiber_process_t *proc, int *wstatus,
                                       int64_t deadline_ns);

/* fiber_process_kill - send signo (0 checks the child exists) to the
 * child.  Never waits.  Returns 0, -EINVAL for NULL or a bad signal, or
 * kill(2)'s error. */
FIBER_API int fiber_process_kill(fiber_process_t *proc, int signo);

/* fiber_process_pid - the child's process id, or -EINVAL for NULL. */
FIBER_API int fiber_process_pid(const fiber_process_t *proc);

/*
 * fiber_signal_watch - start catching the n signals listed (SIGINT,
 * SIGTERM, SIGHUP, SIGUSR1...): from now until the loop ends they are
 * blocked on the loop's thread and queued for fiber_signal_wait instead
 * of running their default action or a handler.  fiber_signal_wait
 * watches the signals it names too; watching first closes the window in
 * which a signal arriving before the first wait would, say, kill the
 * process.  In a program with several threads, block the signals in the
 * others too, or the kernel may deliver them there.  When the loop ends,
 * watched signals still pending are discarded and the thread's signal
 * mask is put back.  Returns 0, -EINVAL for an empty or NULL list or a
 * signal that cannot be waited for (SIGKILL, SIGSTOP, the signals of
 * faults such as SIGSEGV, and those glibc keeps for itself), -EPERM
 * outside a fiber, or the error of signalfd.
 */
FIBER_API int fiber_signal_watch(const int signals[], size_t n);

/*
 * fiber_signal_wait - wait until one of the n signals listed arrives and
 * return its number.  Every fiber waiting for a signal when it arrives is
 * woken by it; one arriving while none waits is kept (once, as the kernel
 * keeps a pending signal) for the next wait.  Returns the signal number,
 * or the errors of fiber_signal_watch, -ETIMEDOUT, -ECANCELED, -ENOMEM.
 */
FIBER_API int fiber_signal_wait(const int signals[], size_t n);
FIBER_API int fiber_signal_wait_until(const int signals[], size_t n,
                                      int64_t deadline_ns);

/* ---- Streams: buffered reading and writing ------------------------------
 *
 *   asyncio                              libfiber
 *   StreamReader(limit=n)                fiber_reader_new(&r, fd, n)
 *   await reader.readline()              fiber_reader_readline(r, &line)
 *   await reader.readuntil(sep)          fiber_reader_readuntil(r, sep, len, &data)
 *   await reader.readexactly(n)          fiber_reader_readexactly(r, buf, n, &got)
 *   await reader.read(n)                 fiber_reader_read(r, buf, n)
 *   reader.at_eof()                      fiber_reader_at_eof(r)
 *   writer.write(data)                   fiber_writer_write(w, data, len)
 *   await writer.drain()                 fiber_writer_drain(w)
 *
 *     fiber_reader_t *r;
 *     char *line;
 *     ssize_t n;
 *     if ((rc = fiber_reader_new(&r, fd, 0)) < 0)
 *         return rc;
 *     while ((n = fiber_reader_readline(r, &line)) > 0)
 *         handle(line, n);          (NUL-terminated, "\n" included)
 *     fiber_reader_free(r);         (n: 0 at the end, or an error)
 *
 * A reader reads a descriptor (socket, pipe, terminal...) a buffer at a
 * time and hands out lines, delimited records, exact sizes or whatever has
 * come.  A writer gathers small writes into one buffer and writes it out
 * when full or when drained.  Reader and writer are separate objects,
 * each over one descriptor, which they never close: a socket has one of
 * each, a child process's pipes one each.  Both are made, queried and
 * freed anywhere; the calls that read or write need a running fiber.
 *
 * Waiting.  Reading and writing go through fiber_read_until and
 * fiber_write_until, and follow the rules of "Waiting" above: every call
 * has an _until variant taking a deadline on the loop clock in
 * nanoseconds (INT64_MAX for none), fails with -ETIMEDOUT when it would
 * have to wait past it, with -ECANCELED when the calling fiber is or
 * becomes cancelled (also when what is buffered would have done: a cancel
 * that came first does nothing), and with a timeout scope's error.  A
 * call that fails that way, or with the descriptor's error, consumes
 * nothing: what it had read stays buffered for the next call.  Each call
 * is one blocking call: a deadline bounds the whole call, not each read.
 *
 * One fiber at a time: a call on a stream in which another fiber waits
 * fails with -EBUSY, changing nothing.
 *
 * End of file.  Once a read of the descriptor has returned 0, the reader
 * never reads it again; what is buffered is still handed out, then:
 *   - fiber_reader_readline returns the last line without its "\n" when
 *     the stream ends in the middle of one, and 0 when nothing is left;
 *   - fiber_reader_readuntil returns 0 when nothing is left, and -EPIPE
 *     when the stream ends after some bytes but before the separator:
 *     those bytes stay in the buffer (fiber_reader_buffered says how many,
 *     fiber_reader_read takes them), as asyncio's IncompleteReadError
 *     carries them;
 *   - fiber_reader_readexactly returns -EPIPE unless all n bytes came,
 *     with the bytes that did copied to buf, consumed, and their number
 *     (0 to n - 1) in *nread: asyncio's IncompleteReadError.partial;
 *   - fiber_reader_read returns what is buffered, then 0.
 *
 * The limit.  A reader's buffer holds its limit in bytes (the default, 0,
 * means FIBER_STREAM_LIMIT, as asyncio's 64 KiB), and a line or record,
 * separator included, must fit in it: when the separator is not among the
 * first limit bytes, readline and readuntil fail with -EMSGSIZE (asyncio's
 * LimitOverrunError) and consume nothing.  The buffer then holds at least
 * limit bytes of the long line, its start, and the next readline fails the
 * same way: take the bytes with fiber_reader_read (in pieces of one's
 * choosing, as the echo demo does to send a long line back in pieces), or
 * give up on the stream.  The limit keeps a peer that never sends a
 * newline from making the reader grow.  Only readexactly enlarges the
 * buffer, to hold the n bytes it was asked for until they have all come
 * (so that a deadline or a cancel loses none); it shrinks back to the
 * limit once emptied.
 */

/* The default limit of a reader and size of a writer's buffer, 64 KiB. */
#define FIBER_STREAM_LIMIT ((size_t)64 * 1024)

/* A buffered reader over a descriptor. */
typedef struct fiber_reader fiber_reader_t;

/* A buffered writer over a descriptor. */
typedef struct fiber_writer fiber_writer_t;

/*
 * fiber_reader_new - a reader of fd in *reader, with a buffer of limit
 * bytes (0: FIBER_STREAM_LIMIT), the longest line it accepts.  fd is not
 * touched until the first read, and stays the caller's to close, after
 * fiber_reader_free.  Callable anywhere.  Returns 0, -EINVAL for NULL or
 * a limit above SSIZE_MAX - 1, -EBADF for a negative fd, -ENOMEM.
 */
FIBER_API int fiber_reader_new(fiber_reader_t **reader, int fd, size_t limit);

/*
 * fiber_reader_free - free the reader and its buffer, and what is still
 * buffered with it; the descriptor stays open.  Callable anywhere.
 * Returns 0, -EINVAL for NULL, -EBUSY while a fiber waits in a call on
 * it (nothing is freed then).
 */
FIBER_API int fiber_reader_free(fiber_reader_t *reader);

/*
 * fiber_reader_readline - await reader.readline(): the next line, up to
 * and including its "\n".  *line points to it in the reader's buffer,
 * NUL-terminated there (the caller may change its bytes), valid until
 * the next call on the reader.  Returns its length, "\n" included; at end
 * of file the last line without "\n", then 0 (see "End of file");
 * -EMSGSIZE when no "\n" is among the first limit bytes (see "The
 * limit"); -EINVAL for NULL; the errors of fiber_read (-ECONNRESET...),
 * -ETIMEDOUT, -ECANCELED, -EBUSY, -EPERM.  A line may hold NUL bytes: the
 * length, not strlen, tells where it ends.
 */
FIBER_API ssize_t fiber_reader_readline(fiber_reader_t *reader, char **line);
FIBER_API ssize_t fiber_reader_readline_until(fiber_reader_t *reader,
                                              char **line,
                                              int64_t deadline_ns);

/*
 * fiber_reader_readuntil - await reader.readuntil(separator): the bytes
 * up to and including the seplen bytes of sep (which may hold any bytes,
 * "\r\n\r\n" say), handed out as fiber_reader_readline hands out a line.
 * A separator split across reads is found.  Returns the length, separator
 * included; 0 at end of file with nothing left; -EPIPE at end of file
 * after an incomplete record, which stays buffered (see "End of file");
 * -EMSGSIZE as fiber_reader_readline; -EINVAL for NULL, seplen 0 or above
 * the limit; and the errors of fiber_reader_readline.
 */
FIBER_API ssize_t fiber_reader_readuntil(fiber_reader_t *reader,
                                         const void *sep, size_t seplen,
                                         char **data);
FIBER_API ssize_t fiber_reader_readuntil_until(fiber_reader_t *reader,
                                               const void *sep, size_t seplen,
                                               char **data,
                                               int64_t deadline_ns);

/*
 * fiber_reader_readexactly - await reader.readexactly(n): copy exactly n
 * bytes into buf, waiting until they have all come.  *nread (if nread is
 * not NULL) receives how many bytes were copied: n on success, those
 * before end of file on -EPIPE, 0 on any other error (nothing consumed:
 * the bytes stay buffered).  Returns n; -EPIPE at end of file before n
 * bytes (see "End of file"); -EINVAL for NULL buf with n > 0 or n above
 * SSIZE_MAX - 1 (*nread untouched); -ENOMEM when the buffer could not
 * grow to n bytes; the errors of fiber_read, -ETIMEDOUT, -ECANCELED,
 * -EBUSY, -EPERM.  n = 0 returns 0 without reading.
 */
FIBER_API ssize_t fiber_reader_readexactly(fiber_reader_t *reader, void *buf,
                                           size_t n, size_t *nread);
FIBER_API ssize_t fiber_reader_readexactly_until(fiber_reader_t *reader,
                                                 void *buf, size_t n,
                                                 size_t *nread,
                                                 int64_t deadline_ns);

/*
 * fiber_reader_read - await reader.read(n): copy up to n bytes into buf:
 * what is buffered, or when nothing is, what one read of the descriptor
 * gives (a read of at least the buffer's size goes straight into buf).
 * Returns the number copied (at least 1 when n > 0), 0 at end of file
 * once nothing is buffered, or the errors of fiber_read, -ETIMEDOUT,
 * -ECANCELED, -EBUSY, -EPERM, -EINVAL for NULL buf with n > 0.
 */
FIBER_API ssize_t fiber_reader_read(fiber_reader_t *reader, void *buf,
                                    size_t n);
FIBER_API ssize_t fiber_reader_read_until(fiber_reader_t *reader, void *buf,
                                          size_t n, int64_t deadline_ns);

/* fiber_reader_buffered - how many bytes the reader holds, read from the
 * descriptor and not yet handed out; 0 for NULL. */
FIBER_API size_t fiber_reader_buffered(const fiber_reader_t *reader);

/* fiber_reader_at_eof - reader.at_eof(): 1 when the descriptor has said
 * end of file and nothing is left in the buffer, 0 if not, -EINVAL for
 * NULL. */
FIBER_API int fiber_reader_at_eof(const fiber_reader_t *reader);

/*
 * fiber_writer_new - a writer of fd in *writer, with a buffer of size
 * bytes (0: FIBER_STREAM_LIMIT).  fd stays the caller's to close, after
 * fiber_writer_free.  Callable anywhere.  Returns 0, -EINVAL for NULL or
 * a size above SSIZE_MAX, -EBADF for a negative fd, -ENOMEM.
 */
FIBER_API int fiber_writer_new(fiber_writer_t **writer, int fd, size_t size);

/*
 * fiber_writer_free - free the writer and its buffer.  Bytes still
 * buffered are dropped: drain first to send them.  The descriptor stays
 * open.  Callable anywhere.  Returns 0, -EINVAL for NULL, -EBUSY while a
 * fiber waits in a call on it (nothing is freed then).
 */
FIBER_API int fiber_writer_free(fiber_writer_t *writer);

/*
 * fiber_writer_write - writer.write(data): add len bytes to the buffer.
 * While they fit, nothing is written and the call never waits.  When they
 * do not, the buffer is written out first (waiting as fiber_write does),
 * then the bytes are buffered, or written at once when they are at least
 * the buffer's size.  Bytes go out in the order written.
 *
 * Returns len when every byte was taken (buffered or written); when the
 * buffer could not be written out, the error (-EPIPE, -ETIMEDOUT,
 * -ECANCELED...) and none of data is taken, while what was buffered
 * before stays buffered, less what did go out; when data written at once
 * was interrupted after some bytes, how many went (see "Lost data"); also
 * -EINVAL for NULL data with len > 0 or len above SSIZE_MAX, -EBUSY,
 * -EPERM.
 */
FIBER_API ssize_t fiber_writer_write(fiber_writer_t *writer, const void *data,
                                     size_t len);
FIBER_API ssize_t fiber_writer_write_until(fiber_writer_t *writer,
                                           const void *data, size_t len,
                                           int64_t deadline_ns);

/*
 * fiber_writer_drain - await writer.drain(), flush: write out everything
 * buffered, waiting as fiber_write does.  Returns 0 once the buffer is
 * empty (at once if it was), or the error that stopped it (-EPIPE,
 * -ECONNRESET, -ETIMEDOUT, -ECANCELED...), with the bytes not written
 * still buffered, in order, for another drain; -EINVAL for NULL, -EBUSY,
 * -EPERM.
 */
FIBER_API int fiber_writer_drain(fiber_writer_t *writer);
FIBER_API int fiber_writer_drain_until(fiber_writer_t *writer,
                                       int64_t deadline_ns);

/* fiber_writer_buffered - how many bytes wait in the writer's buffer to be
 * written; 0 for NULL. */
FIBER_API size_t fiber_writer_buffered(const fiber_writer_t *writer);

/* ---- A child's whole conversation: communicate --------------------------
 *
 *   asyncio                              libfiber
 *   out, err = await proc.communicate(   fiber_process_communicate(proc, pipes,
 *       input)                               input, len, &output)
 *   proc.returncode                      output.returncode
 *                                        fiber_process_returncode(wstatus)
 *
 *     const char *argv[] = {"sort", NULL};
 *     fiber_process_output_t output;
 *     int pipes[3];
 *     rc = fiber_process_spawn(&proc, argv, FIBER_PIPE_STDIN |
 *                              FIBER_PIPE_STDOUT | FIBER_PIPE_STDERR, pipes);
 *     if (rc == 0)
 *         rc = fiber_process_communicate(proc, pipes, text, len, &output);
 *     if (rc == 0 && output.returncode == 0)
 *         fwrite(output.out, 1, output.out_len, stdout);
 *     fiber_process_output_free(&output);
 *
 * The child's stdin is written, and its stdout and stderr read, at the
 * same time, each by a fiber of its own.  Writing all of the input before
 * reading, or reading one output to its end before the other, deadlocks
 * with a child that writes more than a pipe holds (64 KiB) to the stream
 * not being read: it blocks writing, and never reads or ends.
 */

/* What fiber_process_communicate collected. */
typedef struct fiber_process_output {
    /* The child's stdout, NUL-terminated (after out_len bytes, which may
     * hold NUL bytes of their own), malloc'd; NULL when it was no pipe. */
    char *out;
    size_t out_len;
    /* The same for stderr. */
    char *err;
    size_t err_len;
    /* proc.returncode: the exit code, or minus the number of the signal
     * that ended the child (-9 for SIGKILL), as fiber_process_returncode
     * decodes it; INT_MIN when the child was not reaped by this call. */
    int returncode;
} fiber_process_output_t;

/*
 * fiber_process_communicate - await proc.communicate(input): write the
 * input_len bytes of input to the child's stdin, then close it; read its
 * stdout and stderr until each ends; wait until the child exits.
 *
 * pipes is the array fiber_process_spawn filled (NULL when the child has
 * no pipes): -1 entries are skipped, so FIBER_STDERR_TO_STDOUT, or a
 * stream left inherited, work as expected.  Without input (input_len 0)
 * the child's stdin is closed at once, so a child reading it sees its end.
 * A child that exits or closes its stdin before reading all of the input
 * is no error: the rest is dropped and the call goes on.  SIGPIPE is
 * never raised for it, whatever the program's disposition of SIGPIPE.
 *
 * The call consumes the handle and the pipes whatever it returns, except
 * for the argument errors below: each pipe is closed (its entry set to
 * -1) and the child reaped, as fiber_process_wait does.  When the call
 * fails before the child has exited (its deadline, a cancel, a timeout
 * scope, an error), the child is killed with SIGKILL and reaped then,
 * output->returncode showing -9; as fiber_wait_for cancels and reaps the
 * task it gave up on, nothing is left running.
 *
 * *output is filled in every case but the argument errors, with what was
 * read so far when the call fails; free it with fiber_process_output_free.
 *
 * Returns 0 when the child has exited and everything was read; -ETIMEDOUT
 * at the deadline; -ECANCELED; a timeout scope's error; the errors of
 * fiber_read and fiber_write on the pipes (-EPIPE excepted, as above);
 * -ECHILD when somebody else reaped the child (returncode is INT_MIN);
 * -ENOMEM.  Fails changing nothing with -EINVAL (NULL proc or output;
 * NULL input with input_len > 0; input_len > 0 without a stdin pipe; an
 * entry of pipes below -1; another loop's handle), -EBUSY when another
 * fiber is in fiber_process_wait for the child, -EPERM outside a fiber.
 */
FIBER_API int fiber_process_communicate(fiber_process_t *proc, int pipes[3],
                                        const void *input, size_t input_len,
                                        fiber_process_output_t *output);

/* fiber_process_communicate_until - fiber_process_communicate with a
 * deadline on the loop clock in nanoseconds (see fiber_now_ns) for all of
 * it: input, output and exit.  Past it, -ETIMEDOUT, the child killed and
 * reaped. */
FIBER_API int fiber_process_communicate_until(fiber_process_t *proc,
                                              int pipes[3], const void *input,
                                              size_t input_len,
                                              fiber_process_output_t *output,
                                              int64_t deadline_ns);

/* fiber_process_output_free - free output->out and output->err, and set
 * them to NULL and their lengths to 0; NULL is ignored. */
FIBER_API void fiber_process_output_free(fiber_process_output_t *output);

/*
 * fiber_process_returncode - proc.returncode from a waitpid(2) status, as
 * fiber_process_wait stores it: the exit code (WEXITSTATUS) of a child
 * that exited, minus the signal number (-WTERMSIG) of one a signal ended,
 * INT_MIN for any other status (a stopped child).  Callable anywhere.
 */
FIBER_API int fiber_process_returncode(int wstatus);

/* ---- The address a socket is bound to ----------------------------------
 *
 * A server listening on port 0 lets the kernel choose a free port, as
 * tests do: these say which it chose.
 *
 *     int fd = fiber_tcp_listen("127.0.0.1:0", 0);
 *     int port = fiber_tcp_local_port(fd);           (e.g. 41235)
 *     char address[FIBER_ADDRESS_MAX];
 *     fiber_tcp_local_address(fd, address, sizeof(address));
 *     fiber_tcp_dial(address);                       ("127.0.0.1:41235")
 */

/* Room for any address fiber_tcp_local_address writes, NUL included:
 * "[ffff:...:255.255.255.255]:65535". */
#define FIBER_ADDRESS_MAX 56

/*
 * fiber_tcp_local_port - the local port of an IPv4 or IPv6 socket (see
 * getsockname(2)): the port the kernel chose for one bound to port 0, 0
 * for one not bound yet.  Never waits; callable anywhere.  Returns the
 * port (0 to 65535), -EBADF, -ENOTSOCK, -EAFNOSUPPORT for a socket of
 * another family (a Unix socket).
 */
FIBER_API int fiber_tcp_local_port(int fd);

/*
 * fiber_tcp_local_address - write the local address of an IPv4 or IPv6
 * socket into buf as "host:port", "127.0.0.1:41235" or "[::1]:41235", the
 * form fiber_tcp_dial and fiber_tcp_listen take, like snprintf (buf is
 * NUL-terminated when size > 0).  Returns the length of the whole text,
 * which fits when it is below size (always, with FIBER_ADDRESS_MAX);
 * -EINVAL if buf is NULL with size > 0; and the errors of
 * fiber_tcp_local_port, with buf untouched.
 */
FIBER_API int fiber_tcp_local_address(int fd, char *buf, size_t size);

/* ---- end of I/O --------------------------------------------------------- */

/* ------------------------------------------------------------------------
 * Debugging
 *
 * Seeing every fiber.  fiber_dump writes, for each live fiber of the
 * running loop, its id, name and entry function, its state (running,
 * ready, sleeping and for how long, awaiting which task, waiting on
 * what), its stack high-water mark and its backtrace, like a Go goroutine
 * dump.  The deadlock report of fiber_run is such a dump.  With a dump
 * signal (dump_signal below, or FIBER_DUMP_SIGNAL=SIGQUIT), that signal
 * makes the loop write the dump to its report stream (stderr) at its next
 * scheduling point, and the program goes on.
 *
 * Backtraces are taken with libunwind (the nongnu one, Debian package
 * libunwind-dev) on x86-64 and AArch64: a blocked fiber is unwound from
 * the context saved when it switched away, the calling fiber from where
 * it stands.
 * libfiber's own frames are left out, so frame 0 is the function that
 * called into libfiber (the blocking call, or the dump); frames stop at
 * the fiber's entry, and a fiber that never ran shows its entry function.
 * Built with ./configure --without-libunwind, dumps say that stacks are
 * unavailable and fiber_backtrace returns -ENOSYS.
 *
 * Stack use is a high-water mark: the deepest non-zero word among the
 * stack's pages that are resident (mincore).  Debug mode zeroes a reused
 * stack when a fiber is spawned (it gives the pages below the first frame
 * back to the kernel, which costs the same for a stack of any size), so
 * the mark is that fiber's own; without it, a reused stack may show the deeper mark
 * an earlier fiber left.  Under Valgrind it is counted in whole pages.
 *
 * Stack overflow.  While a loop runs, a SIGSEGV handler on an alternate
 * signal stack recognises a fault in the guard page below a fiber's stack,
 * writes "libfiber: fiber N 'name' overflowed its S-byte stack" and that
 * fiber's backtrace to stderr.  Then, if the program had installed a
 * SIGSEGV handler before the loop started, that handler is called as the
 * kernel would have called it (with the fault's siginfo_t and context for
 * SA_SIGINFO, its sa_mask blocked, reset to the default first for
 * SA_RESETHAND), on the alternate signal stack: it may write its own
 * report and _exit.  If it returns, or SIGSEGV was ignored or left to
 * its default, the default action is put back and the process dies of
 * SIGSEGV as it would have.  Every other fault goes to the handler
 * installed before the loop started (or the default action), untouched.  The handler is left
 * out with overflow_check = -1 or FIBER_OVERFLOW_CHECK=0, and in builds
 * with AddressSanitizer or ThreadSanitizer, which report overflows
 * themselves.
 *
 * Debug mode (checks = 1 or FIBER_DEBUG=1) reports, on the report stream,
 * each naming the fiber concerned:
 *   - a task handle used after fiber_await, fiber_gather, fiber_wait_for
 *     or fiber_detach consumed it ("awaited twice"): fiber_await and its
 *     variants, fiber_gather, fiber_cancel, fiber_detach, fiber_result
 *     and fiber_stack_usage then return -EINVAL instead of undefined
 *     behaviour.  Freed tasks are kept out of reuse for the last
 *     FIBER_DEBUG_QUARANTINE of them (within FIBER_DEBUG_QUARANTINE_BYTES,
 *     and only until memory runs out), so that such a handle is
 *     recognised;
 *   - at the end of the loop, every task that was never awaited nor
 *     detached, as asyncio's "Task was destroyed but it is pending!" (it
 *     still ran when main returned) and "never retrieved" (it finished);
 *   - a fiber that held the CPU longer than slow_seconds without a
 *     blocking call, as asyncio's slow-callback warning;
 *   - the first fiber that switches away with the floating-point
 *     environment not as the loop found it (see "What fibers share" at
 *     the top of this file), once per loop;
 *   - under the virtual clock, a loop whose time has not moved for 100,000
 *     rounds in a row in which every runnable fiber only yielded (fibers
 *     polling with fiber_yield, see "Polling under the virtual clock"),
 *     naming those fibers, once per loop;
 *   - every call that returns -EPERM outside a running fiber (sleeping,
 *     spawning, awaiting, scopes, groups, waitsets, the synchronisation
 *     primitives and queues, I/O, TCP, fiber_to_thread, processes,
 *     signals, backtraces) made outside one, and every call that needs a
 *     running loop (fiber_cancel, fiber_group_cancel, fiber_scope_cancel,
 *     fiber_clock_virtual, fiber_dump) made where none runs, naming the
 *     call; FIBER_DEBUG=1 turns this on where no loop runs as well.
 * A loop in debug mode is slower: each switch reads the clock.
 *
 * Tracing.  trace_path (or FIBER_TRACE=path.json) makes the loop write a
 * trace in the Chrome trace-event format, which Perfetto
 * (ui.perfetto.dev) and chrome://tracing open: one track per fiber, a
 * slice for each stretch it ran, for its sleeps and its waits, and arrows
 * from spawn to first run and from a task's end to its awaiter.  Each
 * loop is one "process" of the trace, added to the file when the loop
 * ends, which leaves it valid JSON; the first loop of the program to
 * write there starts the file afresh.  A fiber_trace_t records loops in
 * memory for fiber_trace_write_timeline, a text picture of the same.
 * Times are on the loop clock: under the virtual clock a stretch of
 * running takes no time at all, and only waits have length.
 *
 * The dump signal's and the trace's state is shared by the loops of all
 * threads; each loop serves every dump request made while it runs.
 *
 * Environment, read by fiber_run where the options leave a field 0:
 *   FIBER_DEBUG=1               debug mode (0 or unset: off)
 *   FIBER_DEBUG_SLOW=seconds    the slow-fiber threshold (default 0.1)
 *   FIBER_DUMP_SIGNAL=SIGQUIT   a signal by name, with or without SIG, or
 *                               number; not SIGSEGV, SIGBUS, SIGILL,
 *                               SIGFPE, SIGTRAP, SIGABRT, SIGKILL nor
 *                               SIGSTOP
 *   FIBER_TRACE=path.json       write a Chrome trace there
 *   FIBER_OVERFLOW_CHECK=0      no SIGSEGV handler
 * A value that cannot be read makes fiber_run return -EINVAL after a line
 * on stderr, as a bad FIBER_CLOCK does.
 */

/* Freed tasks debug mode keeps out of reuse to catch stale handles: at
 * most this many, holding at most FIBER_DEBUG_QUARANTINE_BYTES of stacks
 * and tasks.  When a spawn runs out of memory they are all put back into
 * circulation and the spawn is tried again, so that a program recovers
 * from -ENOMEM in debug mode as it does without it. */
#define FIBER_DEBUG_QUARANTINE 4096
#define FIBER_DEBUG_QUARANTINE_BYTES ((size_t)256 << 20)

/* Recorded loops, for a timeline or a trace written later. */
typedef struct fiber_trace fiber_trace_t;

/* Debugging aids of a loop (fiber_options.debug).  All-zero means the
 * environment's choices. */
typedef struct fiber_debug_options {
    /* 1: debug mode; -1: not; 0: FIBER_DEBUG decides. */
    int checks;
    /* Debug mode's slow-fiber threshold in seconds; 0: FIBER_DEBUG_SLOW,
     * else 0.1. */
    double slow_seconds;
    /* A signal number (SIGQUIT, SIGUSR1, ...) that asks for a dump;
     * -1: none; 0: FIBER_DUMP_SIGNAL decides. */
    int dump_signal;
    /* Write a Chrome trace of the loop to this file; NULL: FIBER_TRACE. */
    const char *trace_path;
    /* Record the loop into this trace as well (see fiber_trace_new). */
    fiber_trace_t *trace;
    /* Where reports and signal dumps go; NULL: stderr. */
    FILE *report;
    /* 1: catch stack overflows; -1: not; 0: yes unless
     * FIBER_OVERFLOW_CHECK=0. */
    int overflow_check;
} fiber_debug_options_t;

/*
 * fiber_dump - write every live fiber of the running loop to out, oldest
 * first (see above).  Callable from any fiber.  Returns the number of
 * fibers written, -EINVAL if out is NULL, -EPERM outside a running loop,
 * -EIO if writing failed.
 */
FIBER_API int fiber_dump(FILE *out);

/*
 * fiber_backtrace - the return addresses on task's stack, innermost first,
 * for programs that log their own way (see fiber_symbolize).  task NULL
 * means the calling fiber.  Frame 0 is the function that made the call
 * into libfiber: the blocking call of a blocked fiber, this call for the
 * calling fiber.  A fiber that never ran has one frame, its entry
 * function.  Frames stop before the fiber's entry trampoline.
 *
 * Returns the number of frames stored in frames (at most max), 0 for a
 * finished task, -EINVAL if frames is NULL with max > 0 or task belongs to
 * another loop, -EPERM outside a running fiber, -ENOSYS without libunwind,
 * -ENOMEM if no room could be found to unwind more than 32 frames, -EAGAIN
 * when a compact fiber asks for another suspended compact fiber's frames,
 * which are off the stack they share while the caller runs.
 */
FIBER_API int fiber_backtrace(const fiber_task_t *task, void **frames,
                              size_t max);

/*
 * fiber_symbolize - name the code address addr (a frame of
 * fiber_backtrace, a function pointer) as "function+0xoffset (object)"
 * into buf, like snprintf.  Static functions are named too when the
 * object has its symbol table and libunwind is available.  Callable
 * anywhere.  Returns the length of the full text, -ENOENT when no symbol
 * is known (buf then holds the address in hex), -EINVAL if buf is NULL
 * with size > 0.
 */
FIBER_API int fiber_symbolize(const void *addr, char *buf, size_t size);

/*
 * fiber_stack_usage - task's stack high-water mark in bytes (see above)
 * into *used and its usable size into *size (either may be NULL).  For a
 * compact fiber, *used is the size of the frames it has in use now, or had
 * when it last stopped.  task
 * NULL means the calling fiber.  Returns 0, -EINVAL for a task of another
 * loop, -EPERM outside a running fiber, -EALREADY if the task has
 * finished (its stack is gone).
 */
FIBER_API int fiber_stack_usage(const fiber_task_t *task, size_t *used,
                                size_t *size);

/*
 * fiber_debug_slow_ns - debug mode's slow-fiber threshold in nanoseconds
 * when the calling fiber's loop runs in debug mode, else 0 (also outside a
 * fiber).
 */
FIBER_API int64_t fiber_debug_slow_ns(void);

/*
 * fiber_debug_blocked - in debug mode, report on the loop's report stream
 * that the calling fiber blocked its thread for ns nanoseconds in what (a
 * call that could not wait as a fiber, such as a read of a regular file
 * through libfiber-hook), when that is longer than the slow-fiber
 * threshold.  Returns 1 when reported, 0 when not (debug mode off, or
 * quick enough), -EINVAL for a NULL what, -EPERM outside a fiber.
 */
FIBER_API int fiber_debug_blocked(const char *what, int64_t ns);

/*
 * fiber_trace_new - an empty trace, to be given to loops in
 * fiber_debug_options.trace.  Each loop run with it is recorded when it
 * ends; loops on several threads may share one trace.  Returns 0, -EINVAL
 * for NULL, -ENOMEM.
 */
FIBER_API int fiber_trace_new(fiber_trace_t **trace);

/* fiber_trace_free - free a trace no running loop records into; NULL is
 * ignored. */
FIBER_API void fiber_trace_free(fiber_trace_t *trace);

/*
 * fiber_trace_write_json - write the recorded loops to out in the Chrome
 * trace-event format (what FIBER_TRACE writes).  Returns 0, -EINVAL for
 * NULL, -EIO if writing failed.
 */
FIBER_API int fiber_trace_write_json(const fiber_trace_t *trace, FILE *out);

/*
 * fiber_trace_write_timeline - write a text timeline of each recorded
 * loop to out: one row per fiber, time across in width columns (0: 64;
 * at least 8), each column showing what the fiber did in that slice of
 * time:
 *   #  ran (under the virtual clock, running takes no time; a # marks
 *      that it ran then)
 *   ~  ready, waiting for its turn
 *   -  sleeping
 *   .  awaiting a task or waiting on something else
 *      (blank) not yet spawned, or finished
 * Returns 0, -EINVAL for NULL or a width below 8, -EIO if writing failed.
 */
FIBER_API int fiber_trace_write_timeline(const fiber_trace_t *trace,
                                         FILE *out, unsigned width);

#ifdef __cplusplus
}
#endif

#endif /* FIBER_H */
