/*
 * test_thread_pool.c - fiber_to_thread: results, other fibers running
 * while a job blocks its thread, four jobs at once, cancellation of queued
 * and running jobs, argument errors, and the workers joined at loop end.
 *
 * Jobs that must block do so on a pipe that a fiber writes to, so the
 * tests wait for events, never for time to pass.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "io_helpers.h"

static void *square(void *arg)
{
    intptr_t n = (intptr_t)arg;

    return (void *)(n * n);
}

static void *thread_id(void *arg)
{
    *(pthread_t *)arg = pthread_self();
    return NULL;
}

static void *scenario_result(void *arg)
{
    void *result = NULL;
    pthread_t worker = pthread_self();

    (void)arg;
    CHECK_EQ(fiber_to_thread(square, (void *)7, &result), 0);
    CHECK_EQ((intptr_t)result, 49);
    CHECK_EQ(fiber_to_thread(square, (void *)8, NULL), 0);
    CHECK_EQ(fiber_to_thread(thread_id, &worker, NULL), 0);
    CHECK(!pthread_equal(worker, pthread_self()));
    return NULL;
}

static void test_job_runs_on_another_thread_and_returns_its_result(void **state)
{
    (void)state;
    run_virtual(scenario_result, NULL);
}

/* ---- jobs that block -------------------------------------------------- */

/* A job that blocks its thread reading one byte from a blocking pipe. */
struct blocker {
    int fds[2];
    atomic_int started, finished;
};

static void *block_on_pipe(void *arg)
{
    struct blocker *b = arg;
    char c = 0;

    atomic_fetch_add(&b->started, 1);
    ssize_t n = read(b->fds[0], &c, 1);
    atomic_fetch_add(&b->finished, 1);
    return (void *)(intptr_t)(n == 1 ? c : -1);
}

static void blocker_open(struct blocker *b)
{
    /* Blocking on purpose: the jobs must block their threads. */
    CHECK_EQ(pipe2(b->fds, O_CLOEXEC), 0);
    atomic_init(&b->started, 0);
    atomic_init(&b->finished, 0);
}

/* Release n blocked jobs; plain write(2): the loop never sees this pipe. */
static void blocker_release(struct blocker *b, int n, char c)
{
    for (int i = 0; i < n; i++)
        CHECK_EQ(write(b->fds[1], &c, 1), 1);
}

static void blocker_close(struct blocker *b)
{
    close(b->fds[0]);
    close(b->fds[1]);
}

static void *run_blocker(void *arg)
{
    void *result = NULL;
    int rc = fiber_to_thread(block_on_pipe, arg, &result);

    CHECK_EQ(rc, 0);
    return result;
}

static void *scenario_loop_runs_while_job_blocks(void *arg)
{
    struct blocker b;
    void *result;

    (void)arg;
    blocker_open(&b);
    fiber_task_t *t = spawn(run_blocker, &b);
    /* The loop keeps running timers while the job blocks its thread. */
    CHECK_EQ(fiber_sleep(5), 0);
    CHECK_EQ(elapsed_ns(), 5 * SEC);
    CHECK_EQ(fiber_done(t), 0);
    blocker_release(&b, 1, 'r');
    CHECK_EQ(fiber_await(t, &result, NULL), 0);
    CHECK_EQ((intptr_t)result, 'r');
    blocker_close(&b);
    return NULL;
}

static void test_other_fibers_run_while_a_job_blocks(void **state)
{
    (void)state;
    run_virtual(scenario_loop_runs_while_job_blocks, NULL);
}

/* Four jobs each wait until all four have started: they finish only if
 * four threads run them at once. */
struct rendezvous {
    pthread_mutex_t lock;
    pthread_cond_t all_here;
    int here;
};

static void *meet(void *arg)
{
    struct rendezvous *r = arg;
    struct timespec limit;
    bool met = true;

    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 10;
    pthread_mutex_lock(&r->lock);
    if (++r->here == 4)
        pthread_cond_broadcast(&r->all_here);
    while (r->here < 4 && met)
        met = pthread_cond_timedwait(&r->all_here, &r->lock, &limit) == 0;
    pthread_mutex_unlock(&r->lock);
    return (void *)(intptr_t)met;
}

static void *run_meet(void *arg)
{
    void *met = NULL;

    CHECK_EQ(fiber_to_thread(meet, arg, &met), 0);
    return met;
}

static void *scenario_four_at_once(void *arg)
{
    struct rendezvous r = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    fiber_task_t *t[4];
    void *met[4];

    (void)arg;
    for (int i = 0; i < 4; i++)
        t[i] = spawn(run_meet, &r);
    CHECK_EQ(fiber_gather(t, 4, met, NULL), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ((intptr_t)met[i], 1);
    return NULL;
}

static void test_four_jobs_run_at_once(void **state)
{
    (void)state;
    run_virtual(scenario_four_at_once, NULL);
}

/* ---- cancellation ------------------------------------------------------- */

static atomic_int never_ran_count;

static void *must_not_run(void *arg)
{
    (void)arg;
    atomic_fetch_add(&never_ran_count, 1);
    return NULL;
}

static void *run_must_not_run(void *arg)
{
    void *result = (void *)0x1234;

    (void)arg;
    CHECK_EQ(fiber_to_thread(must_not_run, NULL, &result), -ECANCELED);
    CHECK_PTR(result, 0x1234);   /* untouched: the job never ran */
    return NULL;
}

/*
 * Four jobs block every worker; a fifth waits in the queue.  Cancelling
 * its fiber takes it back at once: it never runs.
 */
static void *scenario_cancel_queued(void *arg)
{
    struct blocker b;
    fiber_task_t *blockers[4];

    (void)arg;
    atomic_store(&never_ran_count, 0);
    blocker_open(&b);
    for (int i = 0; i < 4; i++)
        blockers[i] = spawn(run_blocker, &b);
    fiber_task_t *queued = spawn(run_must_not_run, NULL);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(queued), 0);
    CHECK_EQ(await_status(queued), -ECANCELED);
    CHECK_EQ(elapsed_ns(), SEC);
    blocker_release(&b, 4, 'q');
    CHECK_EQ(fiber_gather(blockers, 4, NULL, NULL), 0);
    CHECK_EQ(atomic_load(&b.finished), 4);
    CHECK_EQ(atomic_load(&never_ran_count), 0);
    blocker_close(&b);
    return NULL;
}

static void test_cancel_takes_back_a_queued_job(void **state)
{
    (void)state;
    run_virtual(scenario_cancel_queued, NULL);
}

struct cancelled_runner {
    struct blocker *b;
    int rc;
    void *result;
    int finished_when_returned;
};

static void *run_then_cancelled(void *arg)
{
    struct cancelled_runner *c = arg;

    c->rc = fiber_to_thread(block_on_pipe, c->b, &c->result);
    c->finished_when_returned = atomic_load(&c->b->finished);
    return NULL;
}

/* Wait until a job has started on its thread: the loop cannot tell, so
 * yield (running timers) until the counter moves, within a bound. */
static bool wait_started(struct blocker *b, int n)
{
    for (int i = 0; i < 100000 && atomic_load(&b->started) < n; i++)
        fiber_sleep(0.001);
    return atomic_load(&b->started) >= n;
}

/*
 * A running job cannot be stopped: the cancelled fiber waits for it to
 * return, keeps its result, and only then returns -ECANCELED.
 */
static void *scenario_cancel_running(void *arg)
{
    struct blocker b;
    struct cancelled_runner c = {.b = &b};

    (void)arg;
    blocker_open(&b);
    fiber_task_t *t = spawn(run_then_cancelled, &c);
    CHECK(wait_started(&b, 1));
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_done(t), 0);        /* still waiting for the job */
    blocker_release(&b, 1, 'c');
    CHECK_EQ(await_status(t), -ECANCELED);
    CHECK_EQ(c.rc, -ECANCELED);
    CHECK_EQ(c.finished_when_returned, 1);
    CHECK_EQ((intptr_t)c.result, 'c');
    blocker_close(&b);
    return NULL;
}

static void test_cancel_waits_for_a_running_job_and_keeps_its_result(void **state)
{
    (void)state;
    run_virtual(scenario_cancel_running, NULL);
}

static void *to_thread_cancelled_first(void *arg)
{
    (void)arg;
    fiber_cancel(fiber_self());
    CHECK_EQ(fiber_to_thread(must_not_run, NULL, NULL), -ECANCELED);
    return NULL;
}

static void *scenario_errors(void *arg)
{
    (void)arg;
    atomic_store(&never_ran_count, 0);
    CHECK_EQ(fiber_to_thread(NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(await_status(spawn(to_thread_cancelled_first, NULL)), -ECANCELED);
    CHECK_EQ(atomic_load(&never_ran_count), 0);
    return NULL;
}

static void test_argument_errors_and_cancel_before_the_call(void **state)
{
    (void)state;
    run_virtual(scenario_errors, NULL);
    assert_int_equal(fiber_to_thread(square, NULL, NULL), -EPERM);
}

/* ---- many jobs, and the end of the loop ---------------------------------- */

static void *sum_squares(void *arg)
{
    intptr_t first = (intptr_t)arg, total = 0;

    for (intptr_t i = first; i < first + 10; i++) {
        void *r;
        CHECK_EQ(fiber_to_thread(square, (void *)i, &r), 0);
        total += (intptr_t)r;
    }
    return (void *)total;
}

static void *scenario_many_jobs(void *arg)
{
    enum { FIBERS = 100 };
    fiber_task_t *t[FIBERS];
    void *sums[FIBERS];
    intptr_t total = 0, expect = 0;

    (void)arg;
    for (intptr_t i = 0; i < FIBERS; i++)
        t[i] = spawn(sum_squares, (void *)(i * 10));
    CHECK_EQ(fiber_gather(t, FIBERS, sums, NULL), 0);
    for (int i = 0; i < FIBERS; i++)
        total += (intptr_t)sums[i];
    for (intptr_t i = 0; i < FIBERS * 10; i++)
        expect += i * i;
    CHECK_EQ(total, expect);
    return NULL;
}

static void test_a_thousand_jobs_from_a_hundred_fibers(void **state)
{
    (void)state;
    run_virtual(scenario_many_jobs, NULL);
}

static int count_threads(void)
{
    return count_dir_entries("/proc/self/task");
}

static atomic_int slow_job_started, slow_job_done;

static void *slow_job(void *arg)
{
    struct timespec ts = {0, 100 * 1000 * 1000};

    (void)arg;
    atomic_store(&slow_job_started, 1);
    nanosleep(&ts, NULL);
    atomic_store(&slow_job_done, 1);
    return NULL;
}

static void *run_slow_job(void *arg)
{
    (void)arg;
    /* Cancelled by the end of the loop while its job runs. */
    CHECK_EQ(fiber_to_thread(slow_job, NULL, NULL), -ECANCELED);
    return NULL;
}

static void *scenario_main_leaves_job_running(void *arg)
{
    (void)arg;
    fiber_task_t *t = spawn(run_slow_job, NULL);
    CHECK_EQ(fiber_detach(t), 0);
    /* Return only once the job runs, so that it cannot be taken back. */
    for (int i = 0; i < 5000 && !atomic_load(&slow_job_started); i++)
        CHECK_EQ(fiber_sleep(0.001), 0);
    CHECK_EQ(atomic_load(&slow_job_started), 1);
    return NULL;
}

static void test_loop_end_waits_for_jobs_and_joins_workers(void **state)
{
    (void)state;
    int before = count_threads();
    atomic_store(&slow_job_started, 0);
    atomic_store(&slow_job_done, 0);
    run_real(scenario_main_leaves_job_running, NULL);
    assert_int_equal(atomic_load(&slow_job_done), 1);
    assert_int_equal(count_threads(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_runs_on_another_thread_and_returns_its_result),
        cmocka_unit_test(test_other_fibers_run_while_a_job_blocks),
        cmocka_unit_test(test_four_jobs_run_at_once),
        cmocka_unit_test(test_cancel_takes_back_a_queued_job),
        cmocka_unit_test(test_cancel_waits_for_a_running_job_and_keeps_its_result),
        cmocka_unit_test(test_argument_errors_and_cancel_before_the_call),
        cmocka_unit_test(test_a_thousand_jobs_from_a_hundred_fibers),
        cmocka_unit_test(test_loop_end_waits_for_jobs_and_joins_workers),
    };

    return cmocka_run_group_tests_name("thread_pool", tests, NULL, NULL);
}
