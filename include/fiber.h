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
 *   random.uniform(a, b)             fiber_uniform(a, b)
 *
 * Error convention: every function that can fail returns 0 (or a
 * non-negative value) on success and a negative errno on failure.  libfiber
 * never reports errors through errno, and it saves and restores errno across
 * every switch, so each fiber sees its own errno.  A user mistake is an
 * error code, never an abort().  Errors used throughout:
 *
 *   -EINVAL     a NULL handle or function, a negative or NaN delay
 *   -EPERM      a fiber-only call made outside a running fiber
 *   -EDEADLK    a fiber awaiting itself; every fiber blocked for ever
 *   -ECANCELED  the calling fiber has been cancelled
 *   -ETIMEDOUT  a deadline passed
 *   -ENOMEM     out of memory; nothing leaked, the loop still usable
 *   -EBUSY      a loop already runs on this thread; a task already awaited
 *
 * Task statuses: a task's function returns a void * result.  Its status is
 * 0 when it returned normally, -ECANCELED when a cancellation was delivered
 * to it (see fiber_cancel), or the negative errno it set with fiber_fail.
 */
#ifndef FIBER_H
#define FIBER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FIBER_API __attribute__((visibility("default")))
#else
#define FIBER_API
#endif

/* The library's version, as a string such as "0.1.0". */
#define FIBER_VERSION "0.1.0"

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
    /* Usable stack size of each fiber; 0 means FIBER_DEFAULT_STACK_SIZE. */
    size_t stack_size;
    /* One of enum fiber_clock. */
    int clock;
} fiber_options_t;

/* Attributes of one fiber, given to fiber_spawn.  All-zero means defaults. */
typedef struct fiber_attr {
    /* Usable stack size; 0 means the loop's stack size. */
    size_t stack_size;
    /* A name shown in reports and descriptions; copied and cut to
     * FIBER_NAME_MAX bytes.  NULL means "Task-<id>". */
    const char *name;
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
 * -ENOMEM if the loop could not be set up, -EDEADLK as above.
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
 * Returns 0, -EINVAL if task or fn is NULL or attr->stack_size is below
 * FIBER_MIN_STACK_SIZE, -EPERM outside a running fiber, -ENOMEM when no
 * stack or task could be allocated (nothing is leaked and *task is left
 * untouched).
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
 * handle and returns -ETIMEDOUT; *result and *status are filled as always,
 * so a result the task returned while unwinding is never lost.
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
 * nor lose their results.  Every handle is consumed.
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
 * fiber_cancel - task.cancel(): ask a task to stop.
 *
 * Cancellation is delivered at blocking calls.  If the task is blocked
 * (sleeping or awaiting), that call returns -ECANCELED at once; if it is
 * ready or running, its next blocking call does.  From then on every
 * blocking call it makes returns -ECANCELED (level-triggered), so a task
 * unwinds by returning errors up its stack.  A blocking call whose wake-up
 * had already happened when the cancel came keeps its own result: the
 * completion came first.  A task cancelled before it started still runs,
 * so that it can release what arg owns, and its first blocking call
 * returns -ECANCELED.  Cancelling again changes nothing.
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
 * status -ECANCELED, 0 if not, -EINVAL for NULL.
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

/* fiber_sleep - asyncio.sleep: sleep for seconds; 0 yields; +infinity
 * sleeps until cancelled. */
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
 */

/* ------------------------------------------------------------------------
 * I/O and coordination
 */

/* ------------------------------------------------------------------------
 * Debugging
 */

#ifdef __cplusplus
}
#endif

#endif /* FIBER_H */
